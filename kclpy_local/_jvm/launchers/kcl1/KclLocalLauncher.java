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
import com.amazonaws.services.kinesis.clientlibrary.interfaces.v2.IRecordProcessorFactory;
import com.amazonaws.services.kinesis.clientlibrary.lib.worker.DataFetchingStrategy;
import com.amazonaws.services.kinesis.clientlibrary.lib.worker.GetRecordsCache;
import com.amazonaws.services.kinesis.clientlibrary.lib.worker.GetRecordsRetrievalStrategy;
import com.amazonaws.services.kinesis.clientlibrary.lib.worker.IDataFetcher;
import com.amazonaws.services.kinesis.clientlibrary.lib.worker.KinesisClientLibConfiguration;
import com.amazonaws.services.kinesis.clientlibrary.lib.worker.KinesisDataFetcher;
import com.amazonaws.services.kinesis.clientlibrary.lib.worker.RecordsFetcherFactory;
import com.amazonaws.services.kinesis.clientlibrary.lib.worker.ShardSyncTask;
import com.amazonaws.services.kinesis.clientlibrary.lib.worker.ShardSyncer;
import com.amazonaws.services.kinesis.clientlibrary.lib.worker.TaskResult;
import com.amazonaws.services.kinesis.clientlibrary.lib.worker.Worker;
import com.amazonaws.services.kinesis.clientlibrary.lib.worker.WorkerStateChangeListener;
import com.amazonaws.services.kinesis.clientlibrary.proxies.KinesisProxy;
import com.amazonaws.services.kinesis.clientlibrary.types.ExtendedSequenceNumber;
import com.amazonaws.services.kinesis.clientlibrary.types.ProcessRecordsInput;
import com.amazonaws.services.kinesis.leases.exceptions.DependencyException;
import com.amazonaws.services.kinesis.leases.exceptions.InvalidStateException;
import com.amazonaws.services.kinesis.leases.exceptions.ProvisionedThroughputException;
import com.amazonaws.services.kinesis.leases.impl.KinesisClientLease;
import com.amazonaws.services.kinesis.leases.impl.KinesisClientLeaseManager;
import com.amazonaws.services.kinesis.leases.impl.LeaseTaker;
import com.amazonaws.services.kinesis.leases.interfaces.ILeaseTaker;
import com.amazonaws.services.kinesis.metrics.impl.MetricsHelper;
import com.amazonaws.services.kinesis.metrics.impl.NullMetricsFactory;
import com.amazonaws.services.kinesis.metrics.interfaces.IMetricsFactory;
import com.amazonaws.services.kinesis.model.GetRecordsResult;
import com.amazonaws.services.kinesis.model.ListShardsRequest;
import com.amazonaws.services.kinesis.model.ListShardsResult;
import com.amazonaws.services.kinesis.model.Record;
import com.amazonaws.services.kinesis.multilang.EarlyStart;
import com.amazonaws.services.kinesis.multilang.MultiLangDaemon;
import com.amazonaws.services.kinesis.multilang.MultiLangDaemonConfig;

import dev.kclpylocal.common.ChildLogLevels;
import dev.kclpylocal.common.Generation;
import dev.kclpylocal.common.Launch;
import dev.kclpylocal.common.Lifeline;
import dev.kclpylocal.common.Prepared;
import dev.kclpylocal.common.Settings;
import dev.kclpylocal.common.StartupException;
import dev.kclpylocal.common.WorkerStatus;

import java.io.IOException;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.logging.Filter;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

import static dev.kclpylocal.common.Launch.EAGER_LINE;
import static dev.kclpylocal.common.Launch.INITIAL_LEASE_SYNC;
import static dev.kclpylocal.common.Launch.STREAM_NAMES;
import static dev.kclpylocal.common.Launch.SYNC_EAGER;
import static dev.kclpylocal.common.Launch.oneLine;
import static dev.kclpylocal.common.Launch.say;
import static dev.kclpylocal.common.Settings.parseBoolean;
import static dev.kclpylocal.common.Settings.parseChoice;
import static dev.kclpylocal.common.Settings.trimmedOrNull;

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
 *   <li>{@code readPause} ({@code always} or {@code empty}, any case; default
 *       {@code always}): see below;</li>
 *   <li>{@code processorStart} ({@code initialize} or {@code early}, any case; default
 *       {@code initialize}): with {@code early} the record processors' child processes
 *       are started while the worker initializes, one per shard of the stream (at most
 *       {@code maxLeasesForWorker}, at most {@value EarlyProcessors#MAX_EARLY}), and each
 *       shard consumer takes one instead of starting its own; those no shard took
 *       {@value EarlyProcessors#LEFTOVER_MILLIS} ms after STARTED are stopped (see
 *       {@code EarlyStart});</li>
 *   <li>the three AWS clients are built with the SDK's client builders, with an
 *       {@code EndpointConfiguration(endpoint, regionName)} when an endpoint is
 *       set, and injected into the Worker;</li>
 *   <li>{@code streamNames}, the KCL 3.x launcher's key for several streams, is a usage
 *       error: KCL 1.x consumes one stream, and would skip the key silently;</li>
 *   <li>the line {@value Launch#READY_LINE} on stderr when the worker reaches STARTED;</li>
 *   <li>a record processor's stderr line is logged at the level it starts with
 *       ({@code INFO name: message} at INFO, {@code WARNING} at WARNING, {@code DEBUG}
 *       at FINE, see {@code ChildLogLevels}); the stock daemon logs every such line at
 *       SEVERE, as lines without a level still are. The message stays the same;</li>
 *   <li>when {@code KCLPY_LOCAL_LIFELINE} names an inherited pipe, the end of the
 *       process that holds its write end stops the worker as SIGTERM does (see
 *       {@code Lifeline});</li>
 *   <li>on SIGTERM/SIGINT a graceful shutdown (record processors receive
 *       shutdownRequested and may checkpoint), bounded by {@code shutdownGraceMillis},
 *       then exit with 128 + the signal number; a second signal exits at once (a second
 *       SIGTERM not while the lifeline is watched, see {@code StopSignals}).
 *       When the KCL exits by itself (a record processor failed), nothing waits;
 *       When the key is absent the launcher waits {@value Launch#DEFAULT_GRACE_MILLIS} ms,
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
 * <p><b>{@code readPause}.</b> With {@code dataFetchingStrategy = PREFETCH_CACHED},
 * KCL 1.15's prefetch cache ({@code PrefetchGetRecordsCache}) waits
 * {@code idleMillisBetweenCalls} (default 1500 ms) before every GetRecords call
 * of a shard, whether the last call returned a full batch or nothing, so a
 * backlog is read at most one batch per pause. With {@code always} (the default)
 * the launcher leaves this as it is. With {@code empty} the cache itself does not
 * wait; the launcher wraps each shard's GetRecords strategy so that a call waits
 * until {@code idleMillisBetweenCalls} have passed since the previous call only
 * when that call returned no records: a backlog is read as fast as the engine
 * answers, and a shard that is caught up is polled no more often than with
 * {@code always}. With {@code empty} a closed shard also ends only once the processor
 * has been given its last batch: KCL 1.15's own prefetch ends it as soon as that batch
 * is read, and the batches still in the cache are lost. It changes nothing with the
 * {@code DEFAULT} strategy. A value
 * other than {@code always} or {@code empty} is a usage error.
 *
 * <p>Exit codes: 0 when the worker's loop ends by itself (after SIGTERM or SIGINT the
 * JVM exits with 128 + the signal's number, as any JVM); {@value Launch#EXIT_FAILED} on a usage
 * error (no or unreadable file, a value the launcher rejects), on a failure while
 * preparing the configuration, the clients and the worker (for instance no AWS
 * credentials: one line on stderr names the problem) or when the worker fails;
 * {@value Launch#EXIT_CHARSET} when the JVM's default charset is not UTF-8;
 * {@value Launch#EXIT_NEVER_STARTED} when the worker never reaches STARTED
 * (initialization failed; the stock daemon exits 0 then).
 *
 * <p>{@code --self-check} builds a configuration, clients and a Worker (with the
 * eager sync's objects) from a throw-away properties file without touching the
 * network, proving the class path is complete.
 *
 * <p>What both launchers do alike (the arguments, the ready line, the signals, the
 * exit codes, the self-check) is in {@code dev.kclpylocal.common}.
 */
public final class KclLocalLauncher implements Generation {

    static final String LEASE_HANDOFF = "gracefulLeaseHandoff";
    static final String READ_PAUSE = "readPause";
    static final String PAUSE_ALWAYS = "always";
    static final String PAUSE_EMPTY = "empty";
    static final String RELEASED_LINE = "released lease ";
    static final String TOOK_RELEASED_LINE = "took released lease ";
    static final String KCL_WORKER_PACKAGE = "com.amazonaws.services.kinesis.clientlibrary.lib.worker";
    /** As {@code KinesisClientLibLeaseCoordinator.initialize()} waits, but polled every second. */
    static final long TABLE_POLL_SECONDS = 1L;
    static final long TABLE_TIMEOUT_SECONDS = 600L;
    static final String CBOR_SYSTEM_PROPERTY = "com.amazonaws.sdk.disableCbor";

    private KclLocalLauncher() {
    }

    public static void main(String[] args) {
        Launch.main(args, new KclLocalLauncher());
    }

    @Override
    public void usage(String message) {
        MultiLangDaemon.printUsage(System.err, message);
    }

    @Override
    public void usageError(String propertiesPath, Exception e) {
        usage(e.getMessage());
    }

    @Override
    public String startFailure(RuntimeException e) {
        return oneLine(e);
    }

    @Override
    public void selfCheckSetUp(Properties p) {
        System.setProperty("aws.secretKey", "self-check");
        p.setProperty("AWSCredentialsProvider", "SystemPropertiesCredentialsProvider");
    }

    @Override
    public void disableCbor() {
        System.setProperty(CBOR_SYSTEM_PROPERTY, "true");
    }

    /** The worker, with the eager sync and the lease release it may need. */
    static final class PreparedWorker extends Prepared {
        final Worker worker;
        /** {@code null} unless {@code initialLeaseSync = eager}. */
        final EagerLeaseSync eagerSync;
        /** {@code null} unless {@code gracefulLeaseHandoff = true}. */
        final LeaseRelease release;

        /** {@code null} unless {@code processorStart = early}. */
        final EarlyProcessors early;

        PreparedWorker(Worker worker, WorkerStatus status, ExecutorService executor, long graceMillis,
                EagerLeaseSync eagerSync, LeaseRelease release, EarlyProcessors early) {
            super(worker, worker::shutdown, worker::startGracefulShutdown, status, executor, graceMillis);
            this.worker = worker;
            this.eagerSync = eagerSync;
            this.release = release;
            this.early = early;
        }

        @Override
        protected void beforeStart() {
            if (early != null) {
                early.start();
            }
            if (eagerSync != null) {
                eagerSync.run();
            }
        }

        @Override
        protected void afterGracefulShutdown(boolean complete, long deadline) {
            if (release != null) {
                if (complete) {
                    release.run(deadline);
                } else {
                    say("leases not released (the record processors did not all finish); they will expire");
                }
            }
        }

        @Override
        protected String unfinishedShutdownNote() {
            return release != null ? "; leases not released, they will expire" : "";
        }
    }

    @Override
    public Prepared prepare(String propertiesPath, Settings settings) throws IOException {
        ChildLevelFilter.install();
        Properties extra = settings.properties;
        boolean handoff = parseBoolean(extra, LEASE_HANDOFF, true);
        boolean pauseOnlyWhenEmpty = PAUSE_EMPTY.equals(parseChoice(extra, READ_PAUSE, PAUSE_ALWAYS, PAUSE_EMPTY));
        if (extra.getProperty(STREAM_NAMES) != null) {
            throw new IllegalArgumentException(STREAM_NAMES + " (several streams, the KCL's multi-stream mode) is "
                    + "read by the KCL 3.x launcher only; KCL 1.x consumes the one stream of streamName");
        }

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
                settings.cloudWatchEndpoint, region, "CloudWatch");

        if (pauseOnlyWhenEmpty && EmptyReadPause.prefetching(extra)) {
            EmptyReadPause.install(kcl, extra);
        }
        WorkerStatus status = new WorkerStatus(kcl.getApplicationName(), "stream " + kcl.getStreamName(),
                kcl.getWorkerIdentifier());
        ExecutorService executor = config.getExecutorService();
        final EarlyStart early = EarlyStart.EARLY.equals(
                parseChoice(extra, EarlyStart.KEY, EarlyStart.ON_INITIALIZE, EarlyStart.EARLY))
                ? new EarlyStart(config.getRecordProcessorFactory(), executor, kcl) : null;
        // The worker's states feed the shared status (which prints the ready line).
        WorkerStateChangeListener listener = state -> {
            boolean started = state == WorkerStateChangeListener.WorkerState.STARTED;
            if (started && early != null) {
                EarlyProcessors.stopLeftoversLater(early);
            }
            status.changed(state, started);
        };
        // The stock factory, with KCLPY_LOCAL_LIFELINE kept from the processors' environment.
        IRecordProcessorFactory stock = config.getRecordProcessorFactory();
        Worker.Builder builder = new Worker.Builder()
                .recordProcessorFactory(early != null ? early
                        : () -> Lifeline.keepFromProcessor(stock.createProcessor()))
                .config(kcl)
                .execService(executor)
                .kinesisClient(kinesis)
                .dynamoDBClient(dynamoDB)
                .cloudWatchClient(cloudWatch)
                .workerStateChangeListener(listener);
        EagerLeaseSync eagerSync = null;
        KinesisClientLeaseManager leaseManager = null;
        if (settings.eager) {
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
        long grace = settings.graceMillis(kcl.getShutdownGraceMillis());
        EarlyProcessors earlyProcessors = early != null ? new EarlyProcessors(early, kcl, kinesis) : null;
        return new PreparedWorker(worker, status, executor, grace, eagerSync, release, earlyProcessors);
    }

    /**
     * {@code processorStart = early}: as many record processors as this worker may take
     * shards are started while the worker initializes (see {@code EarlyStart}).
     */
    static final class EarlyProcessors implements Runnable {
        /** How long after STARTED the children no shard took are stopped. */
        static final long LEFTOVER_MILLIS = 10000L;
        /** At most this many children are started early, whatever the shard count. */
        static final int MAX_EARLY = 64;

        final EarlyStart early;
        final KinesisClientLibConfiguration kcl;
        final AmazonKinesis kinesis;

        EarlyProcessors(EarlyStart early, KinesisClientLibConfiguration kcl, AmazonKinesis kinesis) {
            this.early = early;
            this.kcl = kcl;
            this.kinesis = kinesis;
        }

        /** Starts the thread that lists the shards and starts the children, and stops them at exit. */
        void start() {
            Runtime.getRuntime().addShutdownHook(new Thread(early::stopLeftovers, "kclpy-local-early-stop"));
            Thread thread = new Thread(this, "kclpy-local-early-start");
            thread.setDaemon(true);
            thread.start();
        }

        @Override
        public void run() {
            int shards = 0;
            try {
                String token = null;
                do {
                    ListShardsRequest request = token == null
                            ? new ListShardsRequest().withStreamName(kcl.getStreamName())
                            : new ListShardsRequest().withNextToken(token);
                    ListShardsResult result = kinesis.listShards(request);
                    shards += result.getShards().size();
                    token = result.getNextToken();
                } while (token != null);
            } catch (RuntimeException e) {
                say("record processors not started early: the shards of " + kcl.getStreamName()
                        + " could not be listed (" + oneLine(e) + "); each starts when its shard initializes");
                return;
            }
            int count = Math.min(Math.min(shards, kcl.getMaxLeasesForWorker()), MAX_EARLY);
            int started = early.start(count);
            say("record processors started early: " + started + " (" + EarlyStart.KEY + " = "
                    + EarlyStart.EARLY + ")");
        }

        /** Stops the children no shard took, {@link #LEFTOVER_MILLIS} ms from now, on a thread of its own. */
        static void stopLeftoversLater(final EarlyStart early) {
            Thread thread = new Thread(() -> {
                try {
                    Thread.sleep(LEFTOVER_MILLIS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                int stopped = early.stopLeftovers();
                if (stopped > 0) {
                    say("stopped " + stopped + " record processor(s) started early that no shard took");
                }
            }, "kclpy-local-early-leftovers");
            thread.setDaemon(true);
            thread.start();
        }
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

    /**
     * Logs a record processor's stderr line at the level the line starts with: a
     * filter on the {@code java.util.logging} logger of the KCL's
     * {@code DrainChildSTDERRTask} (commons-logging logs through it) that changes the
     * level of its SEVERE "Received error line from subprocess" records. A record
     * below the logger's level is dropped, as any record at that level would be; the
     * KCL echoes the line itself on stderr in any case.
     */
    /**
     * {@code readPause = empty}: the prefetch cache does not wait between calls, and
     * each shard's GetRecords waits {@code idleMillisBetweenCalls} after a call that
     * returned no records only (see the class comment).
     */
    static final class EmptyReadPause implements RecordsFetcherFactory {
        static final String STRATEGY = "dataFetchingStrategy";
        static final String IDLE = "idleMillisBetweenCalls";
        static final long STOCK_IDLE_MILLIS = 1500L;
        static final String FACTORY_FIELD = "recordsFetcherFactory";

        private final RecordsFetcherFactory stock;
        private final long pauseMillis;

        EmptyReadPause(RecordsFetcherFactory stock, long pauseMillis) {
            this.stock = stock;
            this.pauseMillis = pauseMillis;
        }

        static boolean prefetching(Properties properties) {
            String value = trimmedOrNull(properties.getProperty(STRATEGY));
            return value != null && DataFetchingStrategy.PREFETCH_CACHED.name().equalsIgnoreCase(value);
        }

        /** Puts the wrapper around the configuration's factory (already configured from the file). */
        static void install(KinesisClientLibConfiguration kcl, Properties properties) {
            String value = trimmedOrNull(properties.getProperty(IDLE));
            // The stock configurator has accepted the value (a long of at least 1) by now.
            long pause = value == null ? STOCK_IDLE_MILLIS : Long.parseLong(value);
            RecordsFetcherFactory stock = kcl.getRecordsFetcherFactory();
            try {
                // Without a hold on the shard-end flag the prefetch would lose a closed
                // shard's last batches (see EndAfterDrain): then the KCL's reading stays.
                Paced.shardEndFlag();
                // The configuration has no setter for its factory (a private field).
                Field field = KinesisClientLibConfiguration.class.getDeclaredField(FACTORY_FIELD);
                field.setAccessible(true);
                field.set(kcl, new EmptyReadPause(stock, pause));
            } catch (ReflectiveOperationException | RuntimeException e) {
                say("prefetch reads keep the KCL's pause after every call (" + READ_PAUSE + " = " + PAUSE_EMPTY
                        + " could not be applied: " + oneLine(e) + ")");
                return;
            }
            stock.setIdleMillisBetweenCalls(0L);
            say("prefetch reads pause " + pause + " ms after an empty GetRecords only (" + READ_PAUSE + " = "
                    + PAUSE_EMPTY + ")");
        }

        @Override
        public GetRecordsCache createRecordsFetcher(GetRecordsRetrievalStrategy strategy, String shardId,
                IMetricsFactory metricsFactory, int maxRecords) {
            Paced paced = new Paced(strategy, pauseMillis);
            return new EndAfterDrain(stock.createRecordsFetcher(paced, shardId, metricsFactory, maxRecords), paced);
        }

        @Override
        public void setMaxPendingProcessRecordsInput(int value) {
            stock.setMaxPendingProcessRecordsInput(value);
        }

        @Override
        public void setMaxByteSize(int value) {
            stock.setMaxByteSize(value);
        }

        @Override
        public void setMaxRecordsCount(int value) {
            stock.setMaxRecordsCount(value);
        }

        @Override
        public void setDataFetchingStrategy(DataFetchingStrategy value) {
            stock.setDataFetchingStrategy(value);
        }

        @Override
        public void setIdleMillisBetweenCalls(long value) {
            // The pause after an empty call; the cache itself keeps none.
            throw new UnsupportedOperationException("set " + IDLE + " in the properties file");
        }

        /**
         * One shard's strategy: after a call that returned nothing, the next one waits out
         * the pause. It also holds back the shard-end flag: KCL 1.15's data fetcher raises
         * it as soon as the prefetch thread reads a closed shard's last batch, and the
         * next ProcessTask, seeing it, ends the shard while that batch and the ones before
         * it still wait in the cache: those records would never reach the processor. So
         * the flag is lowered again here and raised by {@link EndAfterDrain} when the
         * processor's side takes the last batch out of the cache.
         */
        static final class Paced implements GetRecordsRetrievalStrategy {
            static final String SHARD_END_FIELD = "isShardEndReached";
            private final GetRecordsRetrievalStrategy inner;
            private final long pauseMillis;
            private long lastCallNanos;
            private boolean lastEmpty;
            /** The records list of the closed shard's last batch, once read. */
            private volatile List<Record> lastBatch;
            private volatile boolean ended;

            Paced(GetRecordsRetrievalStrategy inner, long pauseMillis) {
                this.inner = inner;
                this.pauseMillis = pauseMillis;
            }

            /** KCL 1.15's data fetcher's private shard-end flag. */
            static Field shardEndFlag() throws NoSuchFieldException {
                Field field = KinesisDataFetcher.class.getDeclaredField(SHARD_END_FIELD);
                field.setAccessible(true);
                return field;
            }

            private void pause(long millis) {
                if (millis > 0) {
                    try {
                        Thread.sleep(millis);
                    } catch (InterruptedException e) {
                        // The cache's thread is being stopped: let it see the flag.
                        Thread.currentThread().interrupt();
                    }
                }
            }

            private boolean shardEnd() {
                return inner.getDataFetcher().isShardEndReached();
            }

            private void setShardEnd(boolean value) {
                try {
                    shardEndFlag().setBoolean(inner.getDataFetcher(), value);
                } catch (ReflectiveOperationException | RuntimeException e) {
                    // Checked at install time; a failure here is a bug to see, not to hide.
                    throw new IllegalStateException("cannot set the data fetcher's shard-end flag", e);
                }
            }

            @Override
            public GetRecordsResult getRecords(int maxRecords) {
                if (ended) {
                    // Nothing more to read; the consumer ends the shard once it has taken
                    // the last batch. Calling on would make the fetcher raise the flag.
                    pause(pauseMillis);
                    return new GetRecordsResult().withRecords(new ArrayList<>()).withNextShardIterator(null)
                            .withChildShards(Collections.emptyList());
                }
                if (lastEmpty) {
                    pause(pauseMillis - (System.nanoTime() - lastCallNanos) / 1_000_000L);
                }
                boolean endedBefore = shardEnd();
                GetRecordsResult result = inner.getRecords(maxRecords);
                lastCallNanos = System.nanoTime();
                lastEmpty = result == null || result.getRecords() == null || result.getRecords().isEmpty();
                if (result != null && !endedBefore && shardEnd()) {
                    lastBatch = result.getRecords();
                    ended = true;
                    setShardEnd(false);
                }
                return result;
            }

            /** Called by the consumer's side with each batch it takes from the cache. */
            void taken(ProcessRecordsInput input) {
                if (ended && input != null && input.getRecords() == lastBatch) {
                    setShardEnd(true);
                }
            }

            @Override
            public void shutdown() {
                inner.shutdown();
            }

            @Override
            public boolean isShutdown() {
                return inner.isShutdown();
            }

            @Override
            public IDataFetcher getDataFetcher() {
                return inner.getDataFetcher();
            }
        }
    }

    /**
     * The cache around one shard's {@link EmptyReadPause.Paced} strategy: the batch it
     * hands to the consumer's side tells the strategy when a closed shard's last batch
     * has been taken, and only then is the shard's end visible to the next ProcessTask.
     */
    static final class EndAfterDrain implements GetRecordsCache {
        private final GetRecordsCache inner;
        private final EmptyReadPause.Paced paced;

        EndAfterDrain(GetRecordsCache inner, EmptyReadPause.Paced paced) {
            this.inner = inner;
            this.paced = paced;
        }

        @Override
        public void start() {
            inner.start();
        }

        @Override
        public ProcessRecordsInput getNextResult() {
            ProcessRecordsInput input = inner.getNextResult();
            paced.taken(input);
            return input;
        }

        @Override
        public GetRecordsRetrievalStrategy getGetRecordsRetrievalStrategy() {
            return inner.getGetRecordsRetrievalStrategy();
        }

        @Override
        public void shutdown() {
            inner.shutdown();
        }
    }

    static final class ChildLevelFilter implements Filter {
        static final String LOGGER = "com.amazonaws.services.kinesis.multilang.DrainChildSTDERRTask";
        /** Held here: {@code java.util.logging} keeps its loggers only weakly. */
        private static Logger logger;
        private final Filter previous;

        private ChildLevelFilter(Filter previous) {
            this.previous = previous;
        }

        static synchronized void install() {
            if (logger != null) {
                return;
            }
            logger = Logger.getLogger(LOGGER);
            logger.setFilter(new ChildLevelFilter(logger.getFilter()));
        }

        static Level julLevel(ChildLogLevels.Level level) {
            return level.in(Level.FINE, Level.INFO, Level.WARNING, Level.SEVERE);
        }

        @Override
        public boolean isLoggable(LogRecord record) {
            if (record.getLevel() == Level.SEVERE) {
                String line = ChildLogLevels.lineOf(record.getMessage());
                if (line != null) {
                    Level level = julLevel(ChildLogLevels.of(line));
                    if (level != Level.SEVERE) {
                        record.setLevel(level);
                        if (!logger.isLoggable(level)) {
                            return false;
                        }
                    }
                }
            }
            return previous == null || previous.isLoggable(record);
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
