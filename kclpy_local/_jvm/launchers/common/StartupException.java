/*
 * kclpy-local launchers: a start-up failure explained in one line.
 * SPDX-License-Identifier: Apache-2.0
 */
package dev.kclpylocal.common;

/** A failure while preparing, with a message that says it all in one line. */
public final class StartupException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public StartupException(String message, Throwable cause) {
        super(message, cause);
    }
}
