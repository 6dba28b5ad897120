/*
 * kclpy-local launchers: the level of a record processor's stderr line.
 * SPDX-License-Identifier: Apache-2.0
 */
package dev.kclpylocal.common;

/**
 * The stock daemons log every line a record processor writes to stderr at their
 * highest level (KCL 1.x: {@code SEVERE: Received error line from subprocess [LINE]
 * for shard S}; KCL 3.x: the same message at {@code ERROR}), whatever the line says.
 * kclpy-local's runtime starts each of its log lines with the record's level
 * ({@code INFO name: message}), as does Python's {@code logging.basicConfig()}
 * ({@code INFO:name:message}). The launchers log such a line at that level instead:
 * {@code DEBUG}, {@code INFO}, {@code WARNING} (or {@code WARN}), {@code ERROR} and
 * {@code CRITICAL} (or {@code FATAL}), in upper case, followed by a space or a colon.
 * Every other line (a traceback, a {@code print}, kclpy-local's own report of a
 * processor that raised) keeps the error level. The message is not changed.
 *
 * <p>This class is the mapping; each launcher hooks it into its logging (KCL 1.x:
 * a {@code java.util.logging.Filter}, KCL 3.x: a logback {@code TurboFilter}).
 */
public final class ChildLogLevels {

    /** The levels a child's line can have. */
    public enum Level {
        DEBUG, INFO, WARNING, ERROR;

        /** This level among a logging system's four: the one given for it. */
        public <T> T in(T debug, T info, T warning, T error) {
            switch (this) {
                case DEBUG:
                    return debug;
                case INFO:
                    return info;
                case WARNING:
                    return warning;
                default:
                    return error;
            }
        }
    }

    /** The stock daemons' message for a child's stderr line: this, the line, {@link #MESSAGE_SHARD}, the shard. */
    public static final String MESSAGE_START = "Received error line from subprocess [";
    public static final String MESSAGE_SHARD = "] for shard ";

    private static final String[] NAMES = {"DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL"};
    private static final Level[] LEVELS = {
        Level.DEBUG, Level.INFO, Level.WARNING, Level.WARNING, Level.ERROR, Level.ERROR, Level.ERROR,
    };

    private ChildLogLevels() {
    }

    /** The level a child's stderr line starts with; {@link Level#ERROR} when it starts with none. */
    public static Level of(String line) {
        if (line == null) {
            return Level.ERROR;
        }
        for (int i = 0; i < NAMES.length; i++) {
            String name = NAMES[i];
            if (line.startsWith(name) && line.length() > name.length()) {
                char next = line.charAt(name.length());
                if (next == ' ' || next == ':') {
                    return LEVELS[i];
                }
            }
        }
        return Level.ERROR;
    }

    /**
     * The child's line in a whole message of the stock daemon ("Received error line from
     * subprocess [LINE] for shard S"); {@code null} when the message is not one.
     */
    public static String lineOf(String message) {
        if (message == null || !message.startsWith(MESSAGE_START)) {
            return null;
        }
        int end = message.lastIndexOf(MESSAGE_SHARD);
        if (end < MESSAGE_START.length()) {
            return null;
        }
        return message.substring(MESSAGE_START.length(), end);
    }
}
