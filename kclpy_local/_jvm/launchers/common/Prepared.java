/*
 * kclpy-local launchers: a worker ready to run.
 * SPDX-License-Identifier: Apache-2.0
 */
package dev.kclpylocal.common;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.function.Supplier;

/** Everything needed to run, built from one properties file: the KCL's loop and how to stop it. */
public class Prepared {
    /** The KCL 1.x {@code Worker} or the KCL 3.x {@code Scheduler}. */
    final Runnable loop;
    /** Stops a loop that has not started yet. */
    final Runnable stopBeforeStart;
    /** Starts the KCL's graceful shutdown; the future says whether it completed. */
    final Supplier<? extends Future<Boolean>> gracefulShutdown;
    final WorkerStatus status;
    final ExecutorService executor;
    final long graceMillis;

    public Prepared(Runnable loop, Runnable stopBeforeStart, Supplier<? extends Future<Boolean>> gracefulShutdown,
            WorkerStatus status, ExecutorService executor, long graceMillis) {
        this.loop = loop;
        this.stopBeforeStart = stopBeforeStart;
        this.gracefulShutdown = gracefulShutdown;
        this.status = status;
        this.executor = executor;
        this.graceMillis = graceMillis;
    }

    /** Runs before the loop (the eager initial lease sync); never throws. */
    protected void beforeStart() {
    }

    /** After a graceful shutdown that ended in time; {@code deadline} is in epoch millis. */
    protected void afterGracefulShutdown(boolean complete, long deadline) {
    }

    /** Appended to the line that says a graceful shutdown did not end in time. */
    protected String unfinishedShutdownNote() {
        return "";
    }
}
