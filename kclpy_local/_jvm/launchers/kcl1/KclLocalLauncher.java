/*
 * kclpy-local launcher for the KCL 1.x MultiLangDaemon.
 * SPDX-License-Identifier: Apache-2.0
 */
package dev.kclpylocal.kcl1;

import com.amazonaws.ClientConfiguration;
import com.amazonaws.SdkClientException;
import com.amazonaws.auth.AWSCredentialsProvider;
import com.amazonaws.client.builder.AwsClientBuilder;
import com.amazonaws.regions.Regions;
import com.amazonaws.services.cloudwatch.AmazonCloudWatch;
import com.amazonaws.services.cloudwatch.AmazonCloudWatchClientBuilder;
import com.amazonaws.services.dynamodbv2.AmazonDynamoDB;
import com.amazonaws.services.dynamodbv2.AmazonDynamoDBClientBuilder;
import com.amazonaws.services.kinesis.AmazonKinesis;
import com.amazonaws.services.kinesis.AmazonKinesisClientBuilder;
import com.amazonaws.services.kinesis.clientlibrary.lib.worker.KinesisClientLibConfiguration;
import com.amazonaws.services.kinesis.clientlibrary.lib.worker.ShardSyncTask;
import com.amazonaws.services.kinesis.clientlibrary.lib.worker.ShardSyncer;
import com.amazonaws.services.kinesis.clientlibrary.lib.worker.TaskResult;
import com.amazonaws.services.kinesis.clientlibrary.lib.worker.Worker;
import com.amazonaws.services.kinesis.clientlibrary.lib.worker.WorkerStateChangeListener;
import com.amazonaws.services.kinesis.clientlibrary.proxies.KinesisProxy;
import com.amazonaws.services.kinesis.clientlibrary.types.ExtendedSequenceNumber;
import com.amazonaws.services.kinesis.leases.exceptions.DependencyException;
import com.amazonaws.services.kinesis.leases.exceptions.InvalidStateException;
import com.amazonaws.services.kinesis.leases.exceptions.ProvisionedThroughputException;
import com.amazonaws.services.kinesis.leases.impl.KinesisClientLease;
import com.amazonaws.services.kinesis.leases.impl.KinesisClientLeaseManager;
import com.amazonaws.services.kinesis.leases.impl.LeaseTaker;
import com.amazonaws.services.kinesis.leases.interfaces.ILeaseTaker;
import com.amazonaws.services.kinesis.metrics.impl.MetricsHelper;
import com.amazonaws.services.kinesis.metrics.impl.NullMetricsFactory;
import com.amazonaws.services.kinesis.multilang.MultiLangDaemon;
import com.amazonaws.services.kinesis.multilang.MultiLangDaemonConfig;

import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.nio.charset.Charset;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Runs the KCL 1.x MultiLangDaemon from one properties file, as the stock
 * {@code MultiLangDaemon} does, by composition of its public classes.
 *
 * <p>Additions to the stock daemon:
 * <ul>
 *   <li>{@code cloudWatchEndpoint} (String): endpoint of the CloudWatch client
 *       (the stock daemon has no such setting);</li>
 *   <li>{@code isCBORProtocolDisabled} (boolean): sets the system property
 *       {@code com.amazonaws.sdk.disableCbor=true} before any client is built;</li>
 *   <li>{@code initialLeaseSync} ({@code worker} or {@code eager}, any case;
 *       default {@code worker}): see below;</li>
 *   <li>{@code gracefulLeaseHandoff} (boolean, default {@code true}): see below;</li>
 *   <li>the three AWS clients are built with the SDK's client builders, with an
 *       {@code EndpointConfiguration(endpoint, regionName)} when an endpoint is
 *       set, and injected into the Worker;</li>
 *   <li>the line {@value #READY_LINE} on stderr when the worker reaches STARTED;</li>
 *   <li>on SIGTERM/SIGINT a graceful shutdown (record processors receive
 *       shutdownRequested and may checkpoint), bounded by {@code shutdownGraceMillis},
 *       then exit with 128 + the signal number; a second signal exits at once.
 *       When the KCL exits by itself (a record processor failed), nothing waits;
 *       When the key is absent the launcher waits {@value #DEFAULT_GRACE_MILLIS} ms,
 *       not the KCL's default of 5000 ms: deliberately, so that processors that
 *       checkpoint on shutdownRequested (a child process, its own start-up and a
 *       checkpoint round trip per shard) have time to do it; kclpy-local sends
 *       SIGKILL only 30 s after SIGTERM by default. A value in the file is used as
 *       it is.</li>
 * </ul>
 * The key names {@code cloudWatchEndpoint} and {@code isCBORProtocolDisabled}
 * are those of the unmerged upstream pull request #785, so files stay portable.
 * Every other key is read by the stock {@code MultiLangDaemonConfig}; stock
 * KCL 1.x ignores the launcher's keys.
 *
 * <p><b>{@code initialLeaseSync}.</b> On an empty lease table (a new application)
 * KCL 1.15's {@code Worker.initialize()} asks {@code Worker.shouldInitiateLeaseSync()},
 * which waits a random 1 to 30 s, checking every 3 s whether another worker has
 * filled the table ("Lease table is still empty. Checking again in 3000 ms"),
 * before the worker creates the leases itself; the constants are private to the
 * KCL. The jitter spreads the shard listing of many workers that start together.
 * With {@code worker} (the default) the launcher leaves this as it is. With
 * {@code eager} the launcher, before the worker starts, creates the lease table as
 * the worker would ({@code createLeaseTableIfNotExists} with
 * {@code initialLeaseTableReadCapacity}/{@code WriteCapacity}, the configured
 * billing mode) and, <em>only if the table is empty</em>, runs the worker's own
 * initial sync once: a KCL {@code ShardSyncTask} with the KCL's
 * {@code KinesisShardSyncer} (reached by reflection: the class is package-private),
 * {@code initialPositionInStream}, {@code cleanupLeasesUponShardCompletion} and
 * {@code ignoreUnexpectedChildShards}. The same lease manager, shard syncer and
 * Kinesis proxy are then given to the worker, which finds the table filled and
 * skips its wait. Leases are created with the KCL's conditional put (only if
 * absent), so workers that start together each create the missing leases and
 * none is written twice, as when the workers' own waits end together. The eager
 * sync publishes no metrics. If it fails, the launcher says so in one line and
 * the worker does its own initial sync, as with {@code worker}. A value other than
 * {@code worker} or {@code eager} is a usage error.
 *
 * <p><b>{@code gracefulLeaseHandoff}.</b> On a graceful shutdown KCL 1.15's worker
 * ({@code Worker.createWorkerShutdownCallable}, {@code GracefulShutdownCoordinator})
 * stops its lease taker, lets each record processor checkpoint on
 * shutdownRequested, then drops the lease from its renewer
 * ({@code LeaseCoordinator.dropLease}) and stops renewing ({@code Worker.shutdown},
 * {@code LeaseCoordinator.stop}); the lease table is not written: the leases keep
 * this worker as owner until they expire. Another running worker's
 * {@code LeaseTaker} counts a lease as expired only when its counter has not
 * changed between two of its scans, which run every
 * 2 x ({@code failoverTimeMillis} + 25 ms); clearing the owner does not help it,
 * since the cleared lease's new counter reads as a renewal (KCL 2.6 and later treat
 * a lease without owner as available at once). With {@code true} (the default):
 * <ul>
 *   <li>after a graceful shutdown that completed (every record processor finished
 *       its shutdownRequested step), the launcher releases each lease the table
 *       still names this worker as owner of, with the KCL's own conditional
 *       eviction ({@code LeaseManager.evictLease}: the owner is removed and the
 *       counter incremented only if the owner is still this worker), one line per
 *       lease; a shutdown that did not complete leaves the leases to expire;</li>
 *   <li>the worker's lease taker is the KCL's {@code LeaseTaker} (built as the
 *       worker builds it), followed at each of its passes by a look for leases
 *       without owner: the worker takes such leases, with the KCL's conditional
 *       {@code takeLease}, up to its share (the leases divided by the workers
 *       owning leases, this one included, rounded up, at most
 *       {@code maxLeasesForWorker}), one line per lease.</li>
 * </ul>
 * So a released lease is taken at the next lease-taker pass of a worker that runs
 * this launcher, at most one taker interval after the release instead of one to
 * two intervals. (KCL 1.15's {@code LeaseTaker} counts leases without owner as a
 * worker named null; when they exceed a worker's share while it lacks leases, its
 * steal path throws a NullPointerException: the launcher then logs one line and
 * still looks for released leases in that pass.) With {@code false} the launcher leaves both to the KCL. A value
 * other than {@code true} or {@code false} is a usage error.
 *
 * <p>Exit codes: 0 when the worker's loop ends by itself (after SIGTERM or SIGINT the
 * JVM exits with 128 + the signal's number, as any JVM); {@value #EXIT_FAILED} on a usage
 * error (no or unreadable file, a value the launcher rejects), on a failure while
 * preparing the configuration, the clients and the worker (for instance no AWS
 * credentials: one line on stderr names the problem) or when the worker fails;
 * {@value #EXIT_CHARSET} when the JVM's default charset is not UTF-8;
 * {@value #EXIT_NEVER_STARTED} when the worker never reaches STARTED
 * (initialization failed; the stock daemon exits 0 then).
 *
 * <p>{@code --self-check} builds a configuration, clients and a Worker (with the
 * eager sync's objects) from a throw-away properties file without touching the
 * network, proving the class path is complete.
 */
public final class KclLocalLauncher {

    public static final String READY_LINE = "kclpy-local: worker STARTED";
    static final String PREFIX = "kclpy-local: ";
    static final String CLOUDWATCH_ENDPOINT = "cloudWatchEndpoint";
    static final String CBOR_DISABLED = "isCBORProtocolDisabled";
    static final String GRACE = "shutdownGraceMillis";
    static final String INITIAL_LEASE_SYNC = "initialLeaseSync";
    static final String SYNC_WORKER = "worker";
    static final String SYNC_EAGER = "eager";
    static final String EAGER_LINE = "eager initial lease sync";
    static final String LEASE_HANDOFF = "gracefulLeaseHandoff";
    static final String RELEASED_LINE = "released lease ";
    static final String TOOK_RELEASED_LINE = "took released lease ";
    static final String KCL_WORKER_PACKAGE = "com.amazonaws.services.kinesis.clientlibrary.lib.worker";
    /** As {@code KinesisClientLibLeaseCoordinator.initialize()} waits, but polled every second. */
    static final long TABLE_POLL_SECONDS = 1L;
    static final long TABLE_TIMEOUT_SECONDS = 600L;
    static final String CBOR_SYSTEM_PROPERTY = "com.amazonaws.sdk.disableCbor";
    static final long DEFAULT_GRACE_MILLIS = 20000L;
    static final int EXIT_FAILED = 1;
    static final int EXIT_CHARSET = 2;
    static final int EXIT_NEVER_STARTED = 3;

    private KclLocalLauncher() {
    }

    public static void main(String[] args) {
        if (args.length == 1 && "--self-check".equals(args[0])) {
            System.exit(selfCheck());
        }
        if (args.length != 1) {
            MultiLangDaemon.printUsage(System.err, "expected exactly one argument, the properties file");
            System.exit(EXIT_FAILED);
        }
        System.exit(run(args[0]));
    }

    static void say(String message) {
        System.err.println(PREFIX + message);
        System.err.flush();
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

    static int run(String propertiesPath) {
        if (!charsetIsUtf8()) {
            return EXIT_CHARSET;
        }
        final Prepared prepared;
        try {
            prepared = prepare(propertiesPath);
        } catch (IOException | IllegalArgumentException e) {
            MultiLangDaemon.printUsage(System.err, e.getMessage());
            return EXIT_FAILED;
        } catch (StartupException e) {
            say("cannot start: " + e.getMessage());
            return EXIT_FAILED;
        } catch (RuntimeException e) {
            say("cannot start: " + oneLine(e));
            return EXIT_FAILED;
        }
        final AtomicBoolean finished = new AtomicBoolean(false);
        final Runnable graceful = new Runnable() {
            @Override
            public void run() {
                shutdownGracefully(prepared);
            }
        };
        if (!StopSignals.install(graceful)) {
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

        if (prepared.eagerSync != null) {
            prepared.eagerSync.run();
        }
        int code;
        try {
            Future<?> running = prepared.executor.submit(prepared.worker);
            running.get();
            if (prepared.listener.hasStarted()) {
                code = 0;
            } else {
                say("the worker never reached STARTED (initialization failed; see the errors above)");
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

    /**
     * SIGTERM and SIGINT start a graceful shutdown on a thread of their own, which
     * exits the JVM with 128 + the signal number when it is done; a second signal
     * halts at once. Only signals do this: when the KCL itself exits the JVM (it
     * does so when a record processor fails), no graceful shutdown is attempted,
     * since the worker that would run it is the one exiting. {@code sun.misc.Signal}
     * is reached by reflection, so the launcher still compiles for Java 8.
     */
    static final class StopSignals {
        private static final AtomicBoolean STOPPING = new AtomicBoolean(false);
        private static volatile Thread stopper;

        private StopSignals() {
        }

        static boolean install(final Runnable graceful) {
            try {
                final Class<?> signalClass = Class.forName("sun.misc.Signal");
                Class<?> handlerClass = Class.forName("sun.misc.SignalHandler");
                final Method number = signalClass.getMethod("getNumber");
                Object handler = Proxy.newProxyInstance(handlerClass.getClassLoader(),
                        new Class<?>[] {handlerClass}, new InvocationHandler() {
                            @Override
                            public Object invoke(Object proxy, Method method, Object[] args) throws Exception {
                                if ("handle".equals(method.getName())) {
                                    onSignal((Integer) number.invoke(args[0]), graceful);
                                    return null;
                                }
                                if ("equals".equals(method.getName())) {
                                    return proxy == args[0];
                                }
                                if ("hashCode".equals(method.getName())) {
                                    return System.identityHashCode(proxy);
                                }
                                return "kclpy-local stop signals";
                            }
                        });
                Method handle = signalClass.getMethod("handle", signalClass, handlerClass);
                Constructor<?> named = signalClass.getConstructor(String.class);
                for (String name : new String[] {"TERM", "INT"}) {
                    handle.invoke(null, named.newInstance(name), handler);
                }
                return true;
            } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
                return false;
            }
        }

        static void onSignal(final int signal, final Runnable graceful) {
            if (!STOPPING.compareAndSet(false, true)) {
                say("second stop signal; exiting now");
                Runtime.getRuntime().halt(128 + signal);
                return;
            }
            Thread thread = new Thread(new Runnable() {
                @Override
                public void run() {
                    graceful.run();
                    System.exit(128 + signal);
                }
            }, "kclpy-local-stop");
            stopper = thread;
            thread.start();
        }

        /** Wait for a stop in progress (it exits the JVM); return at once if there is none. */
        static void awaitStop() {
            Thread thread = stopper;
            if (thread == null) {
                return;
            }
            try {
                thread.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Everything needed to run, built from one properties file. */
    static final class Prepared {
        final Worker worker;
        final StateListener listener;
        final ExecutorService executor;
        final long graceMillis;
        /** {@code null} unless {@code initialLeaseSync = eager}. */
        final EagerLeaseSync eagerSync;
        /** {@code null} unless {@code gracefulLeaseHandoff = true}. */
        final LeaseRelease release;

        Prepared(Worker worker, StateListener listener, ExecutorService executor, long graceMillis,
                EagerLeaseSync eagerSync, LeaseRelease release) {
            this.worker = worker;
            this.listener = listener;
            this.executor = executor;
            this.graceMillis = graceMillis;
            this.eagerSync = eagerSync;
            this.release = release;
        }
    }

    /** A failure while preparing, with a message that says it all in one line. */
    static final class StartupException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        StartupException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** The exception's class and message on one line. */
    static String oneLine(Throwable t) {
        String message = t.getMessage();
        String text = t.getClass().getSimpleName() + (message == null ? "" : ": " + message);
        return text.replaceAll("\\s*[\\r\\n]+\\s*", " ").trim();
    }

    static Prepared prepare(String propertiesPath) throws IOException {
        Properties extra = loadProperties(propertiesPath);
        boolean cborDisabled = parseBoolean(extra, CBOR_DISABLED, false);
        if (cborDisabled) {
            System.setProperty(CBOR_SYSTEM_PROPERTY, "true");
            say("CBOR disabled (" + CBOR_DISABLED + " = true)");
        }
        String cloudWatchEndpoint = trimmedOrNull(extra.getProperty(CLOUDWATCH_ENDPOINT));
        boolean eager = SYNC_EAGER.equals(parseChoice(extra, INITIAL_LEASE_SYNC, SYNC_WORKER, SYNC_EAGER));
        boolean handoff = parseBoolean(extra, LEASE_HANDOFF, true);

        MultiLangDaemonConfig config;
        try {
            // Resolves the credentials once (it logs their access key id).
            config = new MultiLangDaemonConfig(propertiesPath);
        } catch (SdkClientException e) {
            String message = String.valueOf(e.getMessage());
            if (message.toLowerCase(Locale.ROOT).contains("credentials")) {
                throw new StartupException("no AWS credentials: AWSCredentialsProvider = "
                        + trimmedOrNull(extra.getProperty("AWSCredentialsProvider")) + " found none ("
                        + oneLine(e) + "); for a local emulator any non-empty values will do", e);
            }
            throw e;
        }
        KinesisClientLibConfiguration kcl = config.getKinesisClientLibConfiguration();
        String region = kcl.getRegionName();

        AmazonKinesis kinesis = buildClient(AmazonKinesisClientBuilder.standard(),
                kcl.getKinesisCredentialsProvider(), kcl.getKinesisClientConfiguration(),
                kcl.getKinesisEndpoint(), region, "Kinesis");
        AmazonDynamoDBClientBuilder dynamoBuilder = AmazonDynamoDBClientBuilder.standard();
        if (trimmedOrNull(kcl.getDynamoDBEndpoint()) != null) {
            // Emulators (moto) evaluate {Value, ComparisonOperator} as equality; the
            // equivalent {AttributeValueList, ComparisonOperator} form works everywhere.
            dynamoBuilder.withRequestHandlers(new ExpectedValueRewriter());
            say("DynamoDB conditions sent in AttributeValueList form (local endpoint)");
        }
        AmazonDynamoDB dynamoDB = buildClient(dynamoBuilder,
                kcl.getDynamoDBCredentialsProvider(), kcl.getDynamoDBClientConfiguration(),
                kcl.getDynamoDBEndpoint(), region, "DynamoDB");
        AmazonCloudWatch cloudWatch = buildClient(AmazonCloudWatchClientBuilder.standard(),
                kcl.getCloudWatchCredentialsProvider(), kcl.getCloudWatchClientConfiguration(),
                cloudWatchEndpoint, region, "CloudWatch");

        StateListener listener = new StateListener(kcl);
        ExecutorService executor = config.getExecutorService();
        Worker.Builder builder = new Worker.Builder()
                .recordProcessorFactory(config.getRecordProcessorFactory())
                .config(kcl)
                .execService(executor)
                .kinesisClient(kinesis)
                .dynamoDBClient(dynamoDB)
                .cloudWatchClient(cloudWatch)
                .workerStateChangeListener(listener);
        EagerLeaseSync eagerSync = null;
        KinesisClientLeaseManager leaseManager = null;
        if (eager) {
            eagerSync = new EagerLeaseSync(kcl, kinesis, dynamoDB);
            leaseManager = eagerSync.leaseManager;
            // The objects Worker.Builder would create itself, shared with the eager sync.
            builder.leaseManager(eagerSync.leaseManager)
                    .shardSyncer(eagerSync.shardSyncer)
                    .kinesisProxy(eagerSync.kinesisProxy);
        }
        LeaseRelease release = null;
        if (handoff) {
            if (leaseManager == null) {
                // As Worker.Builder.build() makes it when none is given.
                leaseManager = new KinesisClientLeaseManager(kcl.getTableName(), dynamoDB, kcl.getBillingMode());
                builder.leaseManager(leaseManager);
            }
            release = new LeaseRelease(leaseManager, kcl.getWorkerIdentifier());
            builder.leaseTaker(new HandoffLeaseTaker(leaseManager, kcl));
        }
        Worker worker = builder.build();
        long grace = extra.getProperty(GRACE) != null ? kcl.getShutdownGraceMillis() : DEFAULT_GRACE_MILLIS;
        return new Prepared(worker, listener, executor, grace, eagerSync, release);
    }

    /**
     * The worker's initial lease sync, run once before the worker starts when the
     * lease table is empty (see {@code initialLeaseSync} in the class comment).
     */
    static final class EagerLeaseSync {
        final KinesisClientLibConfiguration kcl;
        final KinesisClientLeaseManager leaseManager;
        final KinesisProxy kinesisProxy;
        final ShardSyncer shardSyncer;

        EagerLeaseSync(KinesisClientLibConfiguration kcl, AmazonKinesis kinesis, AmazonDynamoDB dynamoDB) {
            this.kcl = kcl;
            // As Worker.Builder.build() makes them when none is given.
            this.leaseManager = new KinesisClientLeaseManager(kcl.getTableName(), dynamoDB, kcl.getBillingMode());
            this.kinesisProxy = new KinesisProxy(kcl, kinesis);
            this.shardSyncer = kclShardSyncer();
        }

        /** {@code new KinesisShardSyncer(new KinesisLeaseCleanupValidator())}: both classes are package-private. */
        static ShardSyncer kclShardSyncer() {
            try {
                Constructor<?> validatorConstructor =
                        Class.forName(KCL_WORKER_PACKAGE + ".KinesisLeaseCleanupValidator").getDeclaredConstructor();
                validatorConstructor.setAccessible(true);
                Constructor<?> syncerConstructor = Class.forName(KCL_WORKER_PACKAGE + ".KinesisShardSyncer")
                        .getDeclaredConstructor(Class.forName(KCL_WORKER_PACKAGE + ".LeaseCleanupValidator"));
                syncerConstructor.setAccessible(true);
                return (ShardSyncer) syncerConstructor.newInstance(validatorConstructor.newInstance());
            } catch (ReflectiveOperationException | RuntimeException e) {
                throw new StartupException(INITIAL_LEASE_SYNC + " = " + SYNC_EAGER
                        + " needs the KCL's KinesisShardSyncer, which this KCL does not offer (" + oneLine(e)
                        + "); remove the key", e);
            }
        }

        /** Never throws: on failure the worker does its own initial sync. */
        void run() {
            long start = System.currentTimeMillis();
            String table = kcl.getTableName();
            try {
                if (leaseManager.createLeaseTableIfNotExists((long) kcl.getInitialLeaseTableReadCapacity(),
                        (long) kcl.getInitialLeaseTableWriteCapacity())) {
                    say(EAGER_LINE + ": created the lease table " + table);
                }
                if (!leaseManager.waitUntilLeaseTableExists(TABLE_POLL_SECONDS, TABLE_TIMEOUT_SECONDS)) {
                    say(EAGER_LINE + " skipped: the lease table " + table + " is not active after "
                            + TABLE_TIMEOUT_SECONDS + " s; the worker will sync itself");
                    return;
                }
                if (!leaseManager.isLeaseTableEmpty()) {
                    say(EAGER_LINE + " not needed: the lease table " + table + " already has leases");
                    return;
                }
                TaskResult result;
                MetricsHelper.startScope(new NullMetricsFactory(), "EagerInitialLeaseSync");
                try {
                    result = new ShardSyncTask(kinesisProxy, leaseManager, kcl.getInitialPositionInStreamExtended(),
                            kcl.shouldCleanupLeasesUponShardCompletion(), kcl.shouldIgnoreUnexpectedChildShards(),
                            0L, shardSyncer, null).call();
                } finally {
                    MetricsHelper.endScope();
                }
                if (result.getException() != null) {
                    throw result.getException();
                }
                int leases = leaseManager.listLeases().size();
                say(EAGER_LINE + ": " + leases + " lease(s) in " + table + " for stream " + kcl.getStreamName()
                        + " in " + (System.currentTimeMillis() - start) + " ms; the worker will not wait"
                        + " for an empty lease table");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (Exception e) {
                say(EAGER_LINE + " failed (" + oneLine(e) + "); the worker will sync itself");
            }
        }
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

    static String trimmedOrNull(String value) {
        if (value == null) {
            return null;
        }
        String trimmed = value.trim();
        return trimmed.isEmpty() ? null : trimmed;
    }

    /** The trimmed value, lower case, one of {@code choices}; the first choice when the key is absent. */
    static String parseChoice(Properties properties, String key, String... choices) {
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

    static boolean parseBoolean(Properties properties, String key, boolean absent) {
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

    /** As the stock Worker.Builder: endpoint (signed for the region), else region, else us-east-1. */
    static <B extends AwsClientBuilder<B, T>, T> T buildClient(B builder, AWSCredentialsProvider credentials,
            ClientConfiguration clientConfiguration, String endpoint, String region, String service) {
        builder.withCredentials(credentials).withClientConfiguration(clientConfiguration);
        if (endpoint != null && !endpoint.isEmpty()) {
            builder.withEndpointConfiguration(new AwsClientBuilder.EndpointConfiguration(endpoint, region));
            say(service + " endpoint " + endpoint + " (signing region " + region + ")");
        } else if (region != null && !region.isEmpty()) {
            builder.withRegion(region);
        } else {
            builder.withRegion(Regions.US_EAST_1);
        }
        return builder.build();
    }

    static void shutdownGracefully(Prepared prepared) {
        try {
            if (!prepared.listener.hasStarted()) {
                say("stop requested before the worker started; shutting it down");
                prepared.worker.shutdown();
                return;
            }
            say("stop requested; graceful shutdown (up to " + prepared.graceMillis + " ms)");
            long deadline = System.currentTimeMillis() + prepared.graceMillis;
            Future<Boolean> done = prepared.worker.startGracefulShutdown();
            Boolean complete = done.get(prepared.graceMillis, TimeUnit.MILLISECONDS);
            say("graceful shutdown " + (Boolean.TRUE.equals(complete) ? "complete" : "ended early"));
            if (prepared.release != null) {
                if (Boolean.TRUE.equals(complete)) {
                    prepared.release.run(deadline);
                } else {
                    say("leases not released (the record processors did not all finish); they will expire");
                }
            }
        } catch (TimeoutException e) {
            say("graceful shutdown did not finish within " + prepared.graceMillis + " ms; exiting anyway"
                    + (prepared.release != null ? "; leases not released, they will expire" : ""));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Exception e) {
            say("error during graceful shutdown: " + e);
        }
    }

    /** A lease's checkpoint for a log line: the sequence number, and the sub-sequence number if any. */
    static String checkpointOf(KinesisClientLease lease) {
        ExtendedSequenceNumber checkpoint = lease.getCheckpoint();
        if (checkpoint == null) {
            return "none";
        }
        Long sub = checkpoint.getSubSequenceNumber();
        return checkpoint.getSequenceNumber() + (sub == null || sub == 0L ? "" : "/" + sub);
    }

    /**
     * Releases the leases this worker still owns in the lease table, after a
     * complete graceful shutdown (see {@code gracefulLeaseHandoff} in the class comment).
     */
    static final class LeaseRelease {
        final KinesisClientLeaseManager leaseManager;
        final String workerId;

        LeaseRelease(KinesisClientLeaseManager leaseManager, String workerId) {
            this.leaseManager = leaseManager;
            this.workerId = workerId;
        }

        /** Never throws; stops at {@code deadline} (epoch millis), leaving the rest to expire. */
        void run(long deadline) {
            List<KinesisClientLease> mine = new ArrayList<>();
            try {
                for (KinesisClientLease lease : leaseManager.listLeases()) {
                    if (workerId.equals(lease.getLeaseOwner())) {
                        mine.add(lease);
                    }
                }
            } catch (Exception e) {
                say("cannot list the leases to release them (" + oneLine(e) + "); they will expire");
                return;
            }
            for (int i = 0; i < mine.size(); i++) {
                KinesisClientLease lease = mine.get(i);
                if (System.currentTimeMillis() >= deadline) {
                    say((mine.size() - i) + " lease(s) not released (no time left); they will expire");
                    return;
                }
                try {
                    if (leaseManager.evictLease(lease)) {
                        say(RELEASED_LINE + lease.getLeaseKey() + " (checkpoint " + checkpointOf(lease)
                                + "): no owner, for another worker to take");
                    } else {
                        say("lease " + lease.getLeaseKey() + " not released: another worker owns it now");
                    }
                } catch (Exception e) {
                    say("lease " + lease.getLeaseKey() + " not released (" + oneLine(e) + "); it will expire");
                }
            }
        }
    }

    /**
     * The KCL's {@code LeaseTaker}, then, at each pass, the leases without owner up to
     * this worker's share (see {@code gracefulLeaseHandoff} in the class comment).
     */
    static final class HandoffLeaseTaker implements ILeaseTaker<KinesisClientLease> {
        final LeaseTaker<KinesisClientLease> kclTaker;
        final KinesisClientLeaseManager leaseManager;
        final String workerId;
        final int maxLeasesForWorker;
        private String lastProblem;

        HandoffLeaseTaker(KinesisClientLeaseManager leaseManager, KinesisClientLibConfiguration kcl) {
            // As Worker.Builder.build() makes it when none is given.
            this.kclTaker = new LeaseTaker<KinesisClientLease>(leaseManager, kcl.getWorkerIdentifier(),
                    kcl.getFailoverTimeMillis())
                    .withMaxLeasesForWorker(kcl.getMaxLeasesForWorker())
                    .withMaxLeasesToStealAtOneTime(kcl.getMaxLeasesToStealAtOneTime());
            this.leaseManager = leaseManager;
            this.workerId = kcl.getWorkerIdentifier();
            this.maxLeasesForWorker = kcl.getMaxLeasesForWorker();
        }

        @Override
        public String getWorkerIdentifier() {
            return workerId;
        }

        @Override
        public Map<String, KinesisClientLease> takeLeases() throws DependencyException, InvalidStateException {
            Map<String, KinesisClientLease> taken;
            try {
                taken = kclTaker.takeLeases();
            } catch (RuntimeException e) {
                // KCL 1.x's LeaseTaker counts leases without owner as a worker named null; when
                // they are more than this worker's share and it lacks leases, its steal path
                // fails (NullPointerException in chooseLeasesToSteal). Those leases are taken below.
                say("the KCL's lease-taker pass failed (" + oneLine(e) + "); looking for released leases");
                taken = new HashMap<>();
            }
            try {
                takeReleased(taken);
                lastProblem = null;
            } catch (DependencyException | InvalidStateException | ProvisionedThroughputException
                    | RuntimeException e) {
                String problem = oneLine(e);
                if (!problem.equals(lastProblem)) {
                    say("cannot look for released leases (" + problem + "); they will be taken when they expire");
                }
                lastProblem = problem;
            }
            return taken;
        }

        void takeReleased(Map<String, KinesisClientLease> taken)
                throws DependencyException, InvalidStateException, ProvisionedThroughputException {
            List<KinesisClientLease> leases = leaseManager.listLeases();
            List<KinesisClientLease> released = new ArrayList<>();
            Set<String> owners = new HashSet<>();
            owners.add(workerId);
            int mine = 0;
            for (KinesisClientLease lease : leases) {
                String owner = lease.getLeaseOwner();
                if (owner == null) {
                    released.add(lease);
                } else {
                    owners.add(owner);
                    if (owner.equals(workerId)) {
                        mine++;
                    }
                }
            }
            if (released.isEmpty()) {
                return;
            }
            int share = Math.min((leases.size() + owners.size() - 1) / owners.size(), maxLeasesForWorker);
            int wanted = share - mine;
            Collections.shuffle(released);
            for (KinesisClientLease lease : released) {
                if (wanted <= 0) {
                    return;
                }
                if (leaseManager.takeLease(lease, workerId)) {
                    // As the KCL's LeaseTaker marks what it took (the renewer needs it).
                    lease.setLastCounterIncrementNanos(System.nanoTime());
                    taken.put(lease.getLeaseKey(), lease);
                    wanted--;
                    say(TOOK_RELEASED_LINE + lease.getLeaseKey() + " (checkpoint " + checkpointOf(lease) + ")");
                }
            }
        }
    }

    /** Reports worker states; the STARTED line is what callers wait for. */
    static final class StateListener implements WorkerStateChangeListener {
        private final KinesisClientLibConfiguration kcl;
        private volatile boolean started;

        StateListener(KinesisClientLibConfiguration kcl) {
            this.kcl = kcl;
        }

        boolean hasStarted() {
            return started;
        }

        @Override
        public void onWorkerStateChange(WorkerState state) {
            if (state == WorkerState.STARTED) {
                started = true;
                System.err.println(READY_LINE + " (application " + kcl.getApplicationName() + ", stream "
                        + kcl.getStreamName() + ", worker " + kcl.getWorkerIdentifier() + ")");
                System.err.flush();
            } else {
                say("worker " + state);
            }
        }
    }

    /** Builds everything from a throw-away file, without any network call. */
    static int selfCheck() {
        File file = null;
        try {
            System.setProperty("aws.accessKeyId", "self-check");
            System.setProperty("aws.secretKey", "self-check");
            file = File.createTempFile("kclpy-local-self-check", ".properties");
            Properties p = new Properties();
            p.setProperty("applicationName", "kclpy-local-self-check");
            p.setProperty("streamName", "self-check");
            p.setProperty("executableName", "self-check");
            p.setProperty("AWSCredentialsProvider", "SystemPropertiesCredentialsProvider");
            p.setProperty("regionName", "us-east-1");
            p.setProperty("kinesisEndpoint", "http://127.0.0.1:9");
            p.setProperty("dynamoDBEndpoint", "http://127.0.0.1:9");
            p.setProperty(CLOUDWATCH_ENDPOINT, "http://127.0.0.1:9");
            p.setProperty(CBOR_DISABLED, "true");
            p.setProperty(INITIAL_LEASE_SYNC, SYNC_EAGER);
            OutputStream out = new FileOutputStream(file);
            try {
                p.store(out, "kclpy-local self-check");
            } finally {
                out.close();
            }
            Prepared prepared = prepare(file.getAbsolutePath());
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

    /**
     * Rewrites legacy conditions {Value, ComparisonOperator} to the equivalent
     * {AttributeValueList: [Value], ComparisonOperator}. DynamoDB treats both alike;
     * some emulators ignore the operator in the first form (the KCL's checkpoint
     * update uses it with NE, so every checkpoint would fail there).
     */
    static final class ExpectedValueRewriter extends com.amazonaws.handlers.RequestHandler2 {
        @Override
        public com.amazonaws.AmazonWebServiceRequest beforeExecution(com.amazonaws.AmazonWebServiceRequest request) {
            java.util.Map<String, com.amazonaws.services.dynamodbv2.model.ExpectedAttributeValue> expected = null;
            if (request instanceof com.amazonaws.services.dynamodbv2.model.UpdateItemRequest) {
                expected = ((com.amazonaws.services.dynamodbv2.model.UpdateItemRequest) request).getExpected();
            } else if (request instanceof com.amazonaws.services.dynamodbv2.model.PutItemRequest) {
                expected = ((com.amazonaws.services.dynamodbv2.model.PutItemRequest) request).getExpected();
            } else if (request instanceof com.amazonaws.services.dynamodbv2.model.DeleteItemRequest) {
                expected = ((com.amazonaws.services.dynamodbv2.model.DeleteItemRequest) request).getExpected();
            }
            if (expected != null) {
                for (com.amazonaws.services.dynamodbv2.model.ExpectedAttributeValue e : expected.values()) {
                    if (e.getValue() != null && e.getComparisonOperator() != null
                            && e.getAttributeValueList() == null) {
                        e.setAttributeValueList(java.util.Collections.singletonList(e.getValue()));
                        e.setValue(null);
                    }
                }
            }
            return request;
        }
    }
}
