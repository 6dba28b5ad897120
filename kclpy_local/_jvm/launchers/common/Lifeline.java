/*
 * kclpy-local launchers: stop when the process that started the JVM is gone.
 * SPDX-License-Identifier: Apache-2.0
 */
package dev.kclpylocal.common;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Field;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The lifeline: kclpy-local starts the JVM with the read end of a pipe it inherits
 * and {@value #VARIABLE} set to that file descriptor's number; the parent keeps the
 * write end and never writes to it. When the parent ends, however it ends (SIGKILL
 * included), the kernel closes the write end and a read of the pipe returns end of
 * file. A daemon thread blocks on that read (through {@code /dev/fd/N}, which Linux
 * and macOS both offer) and then stops the JVM as SIGTERM does: a graceful shutdown,
 * then exit status 143, within {@link Launch#PARENT_GONE_GRACE_MILLIS} ms (or
 * {@code shutdownGraceMillis}, when shorter), since what the parent started, an
 * emulator the worker talks to, may have ended with it. So no worker, and none of
 * its record processors, outlives the process that started it by more than that.
 *
 * <p>Without the variable nothing is watched. A value that is not a file descriptor
 * number, a descriptor that cannot be opened or one that names a regular file or a
 * directory is reported in one line, and the JVM runs without the watch. The record
 * processors the daemon starts do not inherit the descriptor (the JVM closes every
 * descriptor above 2 in its children) and the launchers remove the variable from
 * their environment ({@link #keepFromProcessor}).
 */
public final class Lifeline {
    public static final String VARIABLE = "KCLPY_LOCAL_LIFELINE";
    public static final String GONE_LINE = "the parent process went away";

    private static final AtomicBoolean SCRUB_REPORTED = new AtomicBoolean(false);
    private static volatile boolean watched;

    private Lifeline() {
    }

    /** Starts the watch when {@value #VARIABLE} is set; {@code parentGone} runs once, on its thread. */
    static void watch(final Runnable parentGone) {
        String value = System.getenv(VARIABLE);
        if (value == null || value.isEmpty()) {
            return;
        }
        final int fd;
        try {
            fd = Integer.parseInt(value.trim());
        } catch (NumberFormatException e) {
            Launch.say("warning: " + VARIABLE + "=" + value + " is not a file descriptor number; "
                    + "not watching the parent process");
            return;
        }
        final String name = "/dev/fd/" + fd;
        final InputStream in;
        try {
            if (fd < 0) {
                throw new IOException("a negative number");
            }
            Path path = Paths.get(name);
            if (Files.isRegularFile(path) || Files.isDirectory(path)) {
                throw new IOException("a " + (Files.isDirectory(path) ? "directory" : "regular file")
                        + ", not a pipe");
            }
            in = new FileInputStream(name);
        } catch (IOException | RuntimeException e) {
            Launch.say("warning: " + VARIABLE + "=" + value + ": cannot open " + name + " ("
                    + Launch.oneLine(e) + "); not watching the parent process");
            return;
        }
        Thread thread = new Thread(new Runnable() {
            @Override
            public void run() {
                String how = "closed";
                try {
                    byte[] buffer = new byte[64];
                    while (in.read(buffer) >= 0) {
                        // the parent never writes; anything it does write is ignored
                    }
                } catch (IOException e) {
                    how = "failed: " + Launch.oneLine(e);
                } finally {
                    try {
                        in.close();
                    } catch (IOException e) {
                        // nothing left to read either way
                    }
                }
                Launch.say(GONE_LINE + " (lifeline " + name + " " + how + "); stopping as on SIGTERM");
                parentGone.run();
            }
        }, "kclpy-local-lifeline");
        thread.setDaemon(true);
        thread.start();
        watched = true;
    }

    /** Whether the lifeline is watched: a kclpy-local process started this JVM, which stops when it ends. */
    static boolean isWatched() {
        return watched;
    }

    /** Removes {@value #VARIABLE} from the environment of the children {@code builder} starts. */
    public static ProcessBuilder keepFrom(ProcessBuilder builder) {
        builder.environment().remove(VARIABLE);
        return builder;
    }

    /**
     * Removes {@value #VARIABLE} from the environment of the child process a stock
     * multilang record processor will start: its {@code ProcessBuilder} field, reached
     * by reflection (the processor classes offer no other way). Returns
     * {@code processor}; when the field cannot be reached, says so once and leaves
     * the variable (the descriptor it names is closed in the child anyway).
     */
    public static <T> T keepFromProcessor(T processor) {
        if (processor == null || System.getenv(VARIABLE) == null) {
            return processor;
        }
        try {
            for (Class<?> type = processor.getClass(); type != null; type = type.getSuperclass()) {
                for (Field field : type.getDeclaredFields()) {
                    if (field.getType() == ProcessBuilder.class) {
                        field.setAccessible(true);
                        ProcessBuilder builder = (ProcessBuilder) field.get(processor);
                        if (builder != null) {
                            keepFrom(builder);
                            return processor;
                        }
                    }
                }
            }
            throw new NoSuchFieldException("no ProcessBuilder in " + processor.getClass().getName());
        } catch (ReflectiveOperationException | RuntimeException e) {
            if (SCRUB_REPORTED.compareAndSet(false, true)) {
                Launch.say("warning: cannot remove " + VARIABLE + " from the record processors' environment ("
                        + Launch.oneLine(e) + "); they inherit it (said once)");
            }
            return processor;
        }
    }
}
