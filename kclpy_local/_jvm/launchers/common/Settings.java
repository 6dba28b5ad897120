/*
 * kclpy-local launchers: the properties file, as the launchers read it themselves.
 * SPDX-License-Identifier: Apache-2.0
 */
package dev.kclpylocal.common;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

/**
 * The launcher keys both generations read ({@code isCBORProtocolDisabled},
 * {@code cloudWatchEndpoint}, {@code initialLeaseSync}, and whether
 * {@code shutdownGraceMillis} is set), read before the stock configuration, and
 * the parsers for the rest.
 */
public final class Settings {
    /** The whole file, for the generation's own keys. */
    public final Properties properties;
    /** {@code cloudWatchEndpoint}, trimmed; {@code null} when absent. */
    public final String cloudWatchEndpoint;
    /** {@code initialLeaseSync = eager}. */
    public final boolean eager;
    /** {@code isCBORProtocolDisabled = true}. */
    public final boolean cborDisabled;

    private Settings(Properties properties, String cloudWatchEndpoint, boolean eager, boolean cborDisabled) {
        this.properties = properties;
        this.cloudWatchEndpoint = cloudWatchEndpoint;
        this.eager = eager;
        this.cborDisabled = cborDisabled;
    }

    /** Reads the file. */
    public static Settings read(String propertiesPath) throws IOException {
        Properties extra = loadProperties(propertiesPath);
        boolean cborDisabled = parseBoolean(extra, Launch.CBOR_DISABLED, false);
        String cloudWatchEndpoint = trimmedOrNull(extra.getProperty(Launch.CLOUDWATCH_ENDPOINT));
        boolean eager = Launch.SYNC_EAGER.equals(
                parseChoice(extra, Launch.INITIAL_LEASE_SYNC, Launch.SYNC_WORKER, Launch.SYNC_EAGER));
        return new Settings(extra, cloudWatchEndpoint, eager, cborDisabled);
    }

    /**
     * {@code configured} (the stock configuration's {@code shutdownGraceMillis}) when
     * the file sets the key, else {@link Launch#DEFAULT_GRACE_MILLIS}.
     */
    public long graceMillis(long configured) {
        return properties.getProperty(Launch.GRACE) != null ? configured : Launch.DEFAULT_GRACE_MILLIS;
    }

    /** Same lookup as the stock daemon: a class path resource first, then a file. */
    static Properties loadProperties(String path) throws IOException {
        Properties properties = new Properties();
        ClassLoader loader = Thread.currentThread().getContextClassLoader();
        InputStream in = loader == null ? null : loader.getResourceAsStream(path);
        if (in == null) {
            in = new FileInputStream(path);
        }
        try {
            properties.load(in);
        } finally {
            in.close();
        }
        return properties;
    }

    public static String trimmedOrNull(String value) {
        if (value == null) {
            return null;
        }
        String trimmed = value.trim();
        return trimmed.isEmpty() ? null : trimmed;
    }

    /** The trimmed value, lower case, one of {@code choices}; the first choice when the key is absent. */
    public static String parseChoice(Properties properties, String key, String... choices) {
        String value = trimmedOrNull(properties.getProperty(key));
        if (value == null) {
            return choices[0];
        }
        for (String choice : choices) {
            if (choice.equalsIgnoreCase(value)) {
                return choice;
            }
        }
        throw new IllegalArgumentException(key + " must be one of " + String.join(", ", choices) + ", not '"
                + value + "'");
    }

    public static boolean parseBoolean(Properties properties, String key, boolean absent) {
        String value = trimmedOrNull(properties.getProperty(key));
        if (value == null) {
            return absent;
        }
        if ("false".equalsIgnoreCase(value)) {
            return false;
        }
        if ("true".equalsIgnoreCase(value)) {
            return true;
        }
        throw new IllegalArgumentException(key + " must be true or false, not '" + value + "'");
    }

    /** The trimmed value as a positive long; {@code null} when the key is absent. */
    public static Long parsePositiveLong(Properties properties, String key) {
        String value = trimmedOrNull(properties.getProperty(key));
        if (value == null) {
            return null;
        }
        try {
            long parsed = Long.parseLong(value);
            if (parsed > 0) {
                return parsed;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException(key + " must be a positive whole number, not '" + value + "'");
    }
}
