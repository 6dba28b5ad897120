/*
 * kclpy-local launchers: the start, the stop and the self-check both generations share.
 * SPDX-License-Identifier: Apache-2.0
 */
package dev.kclpylocal.common;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.Charset;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * What the KCL 1.x and 3.x launchers do alike: the arguments, the charset check,
 * the ready line's callers, the stop on SIGTERM/SIGINT or when the parent process
 * goes away ({@link Lifeline}), the exit codes and the self-check. A launcher's {@code main} hands its {@link Generation} to
 * {@link #main(String[], Generation)}; the class comments of the launchers say what
 * each of them adds to its stock daemon.
 */
public final class Launch {

    public static final String READY_LINE = "kclpy-local: worker STARTED";
    public static final String PREFIX = "kclpy-local: ";
    public static final String CLOUDWATCH_ENDPOINT = "cloudWatchEndpoint";
    public static final String CBOR_DISABLED = "isCBORProtocolDisabled";
    public static final String GRACE = "shutdownGraceMillis";
    public static final String INITIAL_LEASE_SYNC = "initialLeaseSync";
    public static final String SYNC_WORKER = "worker";
    public static final String SYNC_EAGER = "eager";
    public static final String EAGER_LINE = "eager initial lease sync";
    /**
     * The key that names several streams for one application (the KCL's multi-stream
     * mode): the KCL 3.x launcher reads it; the 1.x one refuses it, where it would be
     * skipped silently.
     */
    public static final String STREAM_NAMES = "streamNames";
    public static final long DEFAULT_GRACE_MILLIS = 20000L;
    /**
     * How long a stop may take once the parent process is gone (the lifeline's end): the
     * emulator it started may be gone with it, and then no graceful stop can finish.
     */
    public static final long PARENT_GONE_GRACE_MILLIS = 8000L;
    public static final int EXIT_FAILED = 1;
    public static final int EXIT_CHARSET = 2;
    public static final int EXIT_NEVER_STARTED = 3;

    private Launch() {
    }

    /** {@code <properties file>} runs the worker, {@code --self-check} checks the class path. */
    public static void main(String[] args, Generation generation) {
        if (args.length == 1 && "--self-check".equals(args[0])) {
            System.exit(selfCheck(generation));
        }
        if (args.length != 1) {
            generation.usage("expected exactly one argument, the properties file");
            System.exit(EXIT_FAILED);
        }
        System.exit(run(args[0], generation));
    }

    public static void say(String message) {
        System.err.println(PREFIX + message);
        System.err.flush();
    }

    /** The exception's class and message on one line. */
    public static String oneLine(Throwable t) {
        String message = t.getMessage();
        String text = t.getClass().getSimpleName() + (message == null ? "" : ": " + message);
        return text.replaceAll("\\s*[\\r\\n]+\\s*", " ").trim();
    }

    public static Throwable rootCause(Throwable t) {
        Throwable cause = t;
        while (cause.getCause() != null && cause.getCause() != cause) {
            cause = cause.getCause();
        }
        return cause;
    }

    /** Stock behaviour of the multilang pipes depends on the default charset. */
    static boolean charsetIsUtf8() {
        String name = Charset.defaultCharset().name();
        if ("UTF-8".equalsIgnoreCase(name)) {
            return true;
        }
        say("the JVM's default charset is " + name + ", not UTF-8: the record processors' "
                + "pipes would garble non-ASCII text; run java with -Dfile.encoding=UTF-8");
        return false;
    }

    static int run(String propertiesPath, Generation generation) {
        if (!charsetIsUtf8()) {
            return EXIT_CHARSET;
        }
        final Prepared prepared;
        try {
            prepared = prepare(generation, propertiesPath);
        } catch (IOException | IllegalArgumentException e) {
            generation.usageError(propertiesPath, e);
            return EXIT_FAILED;
        } catch (StartupException e) {
            say("cannot start: " + e.getMessage());
            return EXIT_FAILED;
        } catch (RuntimeException e) {
            say("cannot start: " + generation.startFailure(e));
            return EXIT_FAILED;
        }
        final AtomicBoolean finished = new AtomicBoolean(false);
        final Runnable graceful = new Runnable() {
            @Override
            public void run() {
                shutdownGracefully(prepared);
            }
        };
        final boolean signals = StopSignals.install(graceful);
        if (!signals) {
            // No signal API: a shutdown hook, which also runs when the KCL itself exits.
            Runtime.getRuntime().addShutdownHook(new Thread(new Runnable() {
                @Override
                public void run() {
                    if (!finished.get()) {
                        graceful.run();
                    }
                }
            }, "kclpy-local-shutdown"));
        }
        Lifeline.watch(new Runnable() {
            @Override
            public void run() {
                haltAfter(Math.min(prepared.graceMillis, PARENT_GONE_GRACE_MILLIS));
                if (!signals) {
                    System.exit(128 + StopSignals.SIGTERM);  // the shutdown hook stops gracefully
                } else if (!StopSignals.terminate(graceful)) {
                    say("a stop is already in progress");
                }
            }
        });

        prepared.beforeStart();
        int code;
        try {
            Future<?> running = prepared.executor.submit(prepared.loop);
            running.get();
            if (prepared.status.hasStarted()) {
                code = 0;
            } else {
                say("the worker never reached STARTED (initialization failed"
                        + prepared.status.failureText() + "; see the errors above)");
                code = EXIT_NEVER_STARTED;
            }
        } catch (ExecutionException e) {
            say("the worker failed: " + e.getCause());
            e.getCause().printStackTrace();
            code = EXIT_FAILED;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            code = EXIT_FAILED;
        }
        finished.set(true);
        StopSignals.awaitStop();  // a stop in progress exits with 128 + its signal
        return code;
    }

    /** Halts the JVM (exit status 143) when it still runs {@code millis} from now. */
    static void haltAfter(final long millis) {
        Thread thread = new Thread(new Runnable() {
            @Override
            public void run() {
                try {
                    Thread.sleep(millis);
                } catch (InterruptedException e) {
                    return;
                }
                say("the stop did not end within " + millis + " ms of the parent process's end; exiting now");
                Runtime.getRuntime().halt(128 + StopSignals.SIGTERM);
            }
        }, "kclpy-local-parent-gone");
        thread.setDaemon(true);
        thread.start();
    }

    /** The launcher keys both generations read, then the generation's own preparation. */
    static Prepared prepare(Generation generation, String propertiesPath) throws IOException {
        Settings settings = Settings.read(propertiesPath);
        if (settings.cborDisabled) {
            generation.disableCbor();
            say("CBOR disabled (" + CBOR_DISABLED + " = true)");
        }
        return generation.prepare(propertiesPath, settings);
    }

    static void shutdownGracefully(Prepared prepared) {
        try {
            if (!prepared.status.hasStarted()) {
                say("stop requested before the worker started; shutting it down");
                prepared.stopBeforeStart.run();
                return;
            }
            say("stop requested; graceful shutdown (up to " + prepared.graceMillis + " ms)");
            long deadline = System.currentTimeMillis() + prepared.graceMillis;
            Future<Boolean> done = prepared.gracefulShutdown.get();
            boolean complete = Boolean.TRUE.equals(done.get(prepared.graceMillis, TimeUnit.MILLISECONDS));
            say("graceful shutdown " + (complete ? "complete" : "ended early"));
            prepared.afterGracefulShutdown(complete, deadline);
        } catch (TimeoutException e) {
            say("graceful shutdown did not finish within " + prepared.graceMillis + " ms; exiting anyway"
                    + prepared.unfinishedShutdownNote());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Exception e) {
            say("error during graceful shutdown: " + e);
        }
    }

    /** Builds everything from a throw-away file, without any network call. */
    static int selfCheck(Generation generation) {
        File file = null;
        try {
            System.setProperty("aws.accessKeyId", "self-check");
            file = File.createTempFile("kclpy-local-self-check", ".properties");
            Properties p = new Properties();
            p.setProperty("applicationName", "kclpy-local-self-check");
            p.setProperty("streamName", "self-check");
            p.setProperty("executableName", "self-check");
            p.setProperty("regionName", "us-east-1");
            p.setProperty("kinesisEndpoint", "http://127.0.0.1:9");
            p.setProperty("dynamoDBEndpoint", "http://127.0.0.1:9");
            p.setProperty(CLOUDWATCH_ENDPOINT, "http://127.0.0.1:9");
            p.setProperty(CBOR_DISABLED, "true");
            p.setProperty(INITIAL_LEASE_SYNC, SYNC_EAGER);
            generation.selfCheckSetUp(p);
            OutputStream out = new FileOutputStream(file);
            try {
                p.store(out, "kclpy-local self-check");
            } finally {
                out.close();
            }
            Prepared prepared = prepare(generation, file.getAbsolutePath());
            prepared.executor.shutdownNow();
            System.out.println(PREFIX + "self-check OK (charset " + Charset.defaultCharset().name() + ")");
            return 0;
        } catch (Throwable t) {
            say("self-check failed: " + t);
            t.printStackTrace();
            return EXIT_FAILED;
        } finally {
            if (file != null && !file.delete()) {
                file.deleteOnExit();
            }
        }
    }
}
