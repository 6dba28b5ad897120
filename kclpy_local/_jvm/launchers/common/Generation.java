/*
 * kclpy-local launchers: what a KCL generation's launcher supplies to the shared code.
 * SPDX-License-Identifier: Apache-2.0
 */
package dev.kclpylocal.common;

import java.io.IOException;
import java.util.Properties;

/** The parts of a launcher that depend on its KCL and AWS SDK; {@link Launch} does the rest. */
public interface Generation {

    /**
     * Everything needed to run, built from one properties file; {@code settings} are
     * the launcher keys both generations read, read from it already.
     *
     * @throws IOException when the file cannot be read (a usage error)
     * @throws IllegalArgumentException for a value the launcher rejects (a usage error)
     * @throws StartupException for a failure that its message explains in one line
     */
    Prepared prepare(String propertiesPath, Settings settings) throws IOException;

    /**
     * Makes the AWS SDK's Kinesis client send JSON instead of CBOR (a system
     * property, set before any client is built).
     */
    void disableCbor();

    /** Says {@code message} and how the launcher is called, on stderr. */
    void usage(String message);

    /** Reports an {@link IOException} or {@link IllegalArgumentException} of {@link #prepare}. */
    void usageError(String propertiesPath, Exception e);

    /** The one-line text after "cannot start: " for another exception of {@link #prepare}. */
    String startFailure(RuntimeException e);

    /**
     * Completes the self-check's properties (the common keys are set) and system
     * properties ({@code aws.accessKeyId} is set): the credentials, further keys.
     */
    void selfCheckSetUp(Properties properties);
}
