/*
 * kclpy-local launchers: the worker's states and the ready line.
 * SPDX-License-Identifier: Apache-2.0
 */
package dev.kclpylocal.common;

/** Reports worker states, fed by each KCL's state listener; the STARTED line is what callers wait for. */
public final class WorkerStatus {
    public final String applicationName;
    /** The stream(s) in words, as the ready line names them: {@code stream orders}, {@code streams a, b}. */
    public final String streams;
    public final String workerId;
    private volatile boolean started;
    private volatile Throwable failure;

    public WorkerStatus(String applicationName, String streams, String workerId) {
        this.applicationName = applicationName;
        this.streams = streams;
        this.workerId = workerId;
    }

    public boolean hasStarted() {
        return started;
    }

    /** A new state; {@code isStarted} when it is STARTED, which prints {@link Launch#READY_LINE}. */
    public void changed(Object state, boolean isStarted) {
        if (isStarted) {
            started = true;
            System.err.println(Launch.READY_LINE + " (application " + applicationName + ", " + streams
                    + ", worker " + workerId + ")");
            System.err.flush();
        } else {
            Launch.say("worker " + state);
        }
    }

    /** The KCL gave up initializing, for this reason. */
    public void failed(Throwable e) {
        failure = e;
    }

    String failureText() {
        Throwable t = failure;
        return t == null ? "" : ": " + Launch.oneLine(Launch.rootCause(t));
    }
}
