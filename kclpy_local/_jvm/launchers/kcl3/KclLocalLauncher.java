/*
 * kclpy-local launcher for the KCL 3.x MultiLangDaemon.
 * SPDX-License-Identifier: Apache-2.0
 */
package dev.kclpylocal.kcl3;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.turbo.TurboFilter;
import ch.qos.logback.core.spi.FilterReply;

import org.slf4j.ILoggerFactory;
import org.slf4j.LoggerFactory;
import org.slf4j.Marker;
import org.slf4j.spi.LocationAwareLogger;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.annotation.JsonAppend;

import software.amazon.awssdk.arns.Arn;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.core.interceptor.Context;
import software.amazon.awssdk.core.interceptor.ExecutionAttributes;
import software.amazon.awssdk.core.interceptor.ExecutionInterceptor;
import software.amazon.awssdk.http.Protocol;
import software.amazon.awssdk.http.ProtocolNegotiation;
import software.amazon.awssdk.http.SdkHttpConfigurationOption;
import software.amazon.awssdk.http.async.SdkAsyncHttpClient;
import software.amazon.awssdk.http.nio.netty.NettyNioAsyncHttpClient;
import software.amazon.awssdk.services.cloudwatch.CloudWatchAsyncClient;
import software.amazon.awssdk.services.cloudwatch.CloudWatchAsyncClientBuilder;
import software.amazon.awssdk.services.dynamodb.DynamoDbAsyncClient;
import software.amazon.awssdk.services.kinesis.KinesisAsyncClient;
import software.amazon.awssdk.services.kinesis.KinesisAsyncClientBuilder;
import software.amazon.awssdk.services.kinesis.model.DescribeStreamSummaryResponse;
import software.amazon.awssdk.services.kinesis.model.ResourceNotFoundException;
import software.amazon.awssdk.services.kinesis.model.StreamDescriptionSummary;
import software.amazon.awssdk.utils.AttributeMap;
import software.amazon.kinesis.checkpoint.CheckpointConfig;
import software.amazon.kinesis.common.ConfigsBuilder;
import software.amazon.kinesis.common.InitialPositionInStream;
import software.amazon.kinesis.common.InitialPositionInStreamExtended;
import software.amazon.kinesis.common.KinesisClientUtil;
import software.amazon.kinesis.common.StreamConfig;
import software.amazon.kinesis.common.StreamIdentifier;
import software.amazon.kinesis.coordinator.CoordinatorConfig;
import software.amazon.kinesis.coordinator.Scheduler;
import software.amazon.kinesis.coordinator.WorkerStateChangeListener;
import software.amazon.kinesis.coordinator.streamInfo.StreamIdCache;
import software.amazon.kinesis.leases.Lease;
import software.amazon.kinesis.leases.LeaseManagementConfig;
import software.amazon.kinesis.leases.LeaseRefresher;
import software.amazon.kinesis.leases.MultiStreamLease;
import software.amazon.kinesis.leases.ShardSyncTask;
import software.amazon.kinesis.leases.ShardSyncTaskManager;
import software.amazon.kinesis.lifecycle.LifecycleConfig;
import software.amazon.kinesis.lifecycle.TaskResult;
import software.amazon.kinesis.metrics.MetricsConfig;
import software.amazon.kinesis.metrics.NullMetricsFactory;
import software.amazon.kinesis.multilang.MultiLangDaemonConfig;
import software.amazon.kinesis.multilang.MultiLangRecordProcessorFactory;
import software.amazon.kinesis.multilang.config.BuilderDynaBean;
import software.amazon.kinesis.multilang.config.ConfigurationSettableUtils;
import software.amazon.kinesis.multilang.config.FanoutConfigBean;
import software.amazon.kinesis.multilang.config.KinesisClientLibConfigurator;
import software.amazon.kinesis.multilang.config.MultiLangDaemonConfiguration;
import software.amazon.kinesis.multilang.config.RetrievalConfigBuilder;
import software.amazon.kinesis.multilang.messages.InitializeMessage;
import software.amazon.kinesis.processor.FormerStreamsLeasesDeletionStrategy;
import software.amazon.kinesis.processor.MultiStreamTracker;
import software.amazon.kinesis.processor.ProcessorConfig;
import software.amazon.kinesis.processor.ShardRecordProcessor;
import software.amazon.kinesis.processor.ShardRecordProcessorFactory;
import software.amazon.kinesis.retrieval.RetrievalConfig;
import software.amazon.kinesis.retrieval.polling.PollingConfig;

import dev.kclpylocal.common.ChildLogLevels;
import dev.kclpylocal.common.Generation;
import dev.kclpylocal.common.Launch;
import dev.kclpylocal.common.Lifeline;
import dev.kclpylocal.common.Prepared;
import dev.kclpylocal.common.Settings;
import dev.kclpylocal.common.StartupException;
import dev.kclpylocal.common.WorkerStatus;

import java.io.IOException;
import java.net.InetAddress;
import java.net.URI;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;
import java.util.regex.Pattern;

import static dev.kclpylocal.common.Launch.EAGER_LINE;
import static dev.kclpylocal.common.Launch.PREFIX;
import static dev.kclpylocal.common.Launch.STREAM_NAMES;
import static dev.kclpylocal.common.Launch.oneLine;
import static dev.kclpylocal.common.Launch.rootCause;
import static dev.kclpylocal.common.Launch.say;
import static dev.kclpylocal.common.Settings.parseBoolean;
import static dev.kclpylocal.common.Settings.parsePositiveLong;
import static dev.kclpylocal.common.Settings.trimmedOrNull;

/**
 * Runs the KCL 3.x MultiLangDaemon from one properties file, by composition of
 * its public classes: {@code MultiLangDaemonConfig} reads the file (every key the
 * stock 3.x daemon knows, through its {@code MultiLangDaemonConfiguration}; keys
 * it does not know are skipped silently), {@code MultiLangRecordProcessorFactory}
 * runs the record processors, {@code ConfigsBuilder} and
 * {@code ConfigurationSettableUtils.resolveFields} turn the configuration into the
 * KCL's configuration objects as the stock daemon does, and a {@code Scheduler}
 * runs them.
 *
 * <p>Additions to the stock daemon:
 * <ul>
 *   <li>{@code cloudWatchEndpoint} (String): endpoint of the CloudWatch client
 *       (the stock daemon has no such setting). See "CloudWatch" below;</li>
 *   <li>{@code isCBORProtocolDisabled} (boolean): sets the system property
 *       {@code aws.cborEnabled=false} before any client is built, so the Kinesis
 *       client sends JSON instead of CBOR (the SDK reads the setting when a client
 *       is built; the environment variable {@code CBOR_ENABLED=false} does the
 *       same);</li>
 *   <li>the Kinesis client on a local {@code kinesisEndpoint} (an {@code http://}
 *       URL or a loopback host) speaks HTTP/1.1 when the worker polls: the stock
 *       daemon always builds it for HTTP/2, which emulators such as moto cannot
 *       serve. When the worker reads by enhanced fan-out ({@code retrievalMode =
 *       FANOUT}, or {@code DEFAULT} with no polling key) it gets the stock HTTP/2
 *       client there too: over {@code http://} that is HTTP/2 without TLS with prior
 *       knowledge (h2c), over {@code https://} to a loopback host HTTP/2 negotiated
 *       by ALPN (local engines such as kinesis-mock's TLS port choose HTTP/2 only
 *       by ALPN). Other endpoints get the stock HTTP/2 client. See "Enhanced
 *       fan-out" below;</li>
 *   <li>{@code kinesisHttpProtocol} ({@code HTTP1_1} or {@code HTTP2}, any case; absent:
 *       as above): the protocol of the Kinesis client on a local {@code kinesisEndpoint},
 *       whatever the retrieval mode (an engine whose SubscribeToShard is quicker or only
 *       served over HTTP/1.1: kinesis-mock's SubscribeToShard delivers each record about a
 *       second later over HTTP/2 than over HTTP/1.1). With any other endpoint the key is a
 *       usage error;</li>
 *   <li>{@code kinesisTrustLoopbackCertificates} (boolean, default false): the
 *       Kinesis client accepts any certificate (and any host name in it) from an
 *       {@code https://} {@code kinesisEndpoint} whose host is a loopback address
 *       or {@code localhost}, for engines with a self-signed certificate. With any
 *       other endpoint the key is a usage error: TLS to anything else is never
 *       weakened;</li>
 *   <li>{@code initialLeaseSync} ({@code worker} or {@code eager}, any case;
 *       default {@code worker}): see below;</li>
 *   <li>{@code dynamoDbLockBasedLeaderLeaseDurationInMillis} and
 *       {@code dynamoDbLockBasedLeaderHeartbeatPeriodInMillis} (positive longs;
 *       KCL defaults 120000 and 30000): the lease of the leader lock (the item
 *       {@code Leader} of the lease table). The leader assigns leases to workers;
 *       a graceful shutdown releases the lock, but a worker killed while holding
 *       it leaves it to expire first, and until then no lease is assigned to
 *       anyone. The heartbeat must be shorter than the lease. These are fields of
 *       the KCL's
 *       {@code LeaseManagementConfig} that the stock daemon does not read;</li>
 *   <li>{@code maxInitializationAttempts} (positive int; KCL default 20): how
 *       often the scheduler tries to initialize before it gives up, a field of the
 *       KCL's {@code CoordinatorConfig} that the stock daemon does not read;</li>
 *   <li>{@code shardConsumerDispatchPollIntervalMillis} (positive long; KCL
 *       default 1000): how often the scheduler's loop looks at its leases (new
 *       leases are picked up, finished consumers cleaned up), a field of the KCL's
 *       {@code CoordinatorConfig} that the stock daemon does not read;</li>
 *   <li>{@code streamNames} (a comma list of stream names, instead of {@code streamName}
 *       and {@code streamArn}): one application consumes several streams, the KCL's
 *       multi-stream mode, which the stock daemon cannot be configured for. See
 *       "Several streams" below;</li>
 *   <li>the initialize message names the shard's stream: {@code "streamName": "<name>"}
 *       after the stock fields (in either mode). See "Several streams" below;</li>
 *   <li>the line {@value Launch#READY_LINE} on stderr when the scheduler reaches
 *       STARTED;</li>
 *   <li>a record processor's stderr line is logged at the level it starts with
 *       ({@code INFO name: message} at INFO, {@code WARNING} at WARN, {@code DEBUG}
 *       at DEBUG, see {@code ChildLogLevels}); the stock daemon logs every such line
 *       at ERROR, as lines without a level still are. The message stays the same;</li>
 *   <li>when {@code KCLPY_LOCAL_LIFELINE} names an inherited pipe, the end of the
 *       process that holds its write end stops the scheduler as SIGTERM does (see
 *       {@code Lifeline});</li>
 *   <li>on SIGTERM/SIGINT a graceful shutdown (record processors receive
 *       shutdownRequested and may checkpoint), bounded by {@code shutdownGraceMillis},
 *       then exit with 128 + the signal number; a second signal exits at once (a second
 *       SIGTERM not while the lifeline is watched, see {@code StopSignals}).
 *       When the KCL exits by itself (a record processor failed), nothing waits;
 *       When the key is absent the launcher waits {@value Launch#DEFAULT_GRACE_MILLIS} ms,
 *       not the KCL 3.x default of 0 ms (with which the stock daemon gives up at
 *       once): processors that checkpoint on shutdownRequested need the time. A
 *       value in the file is used as it is.</li>
 * </ul>
 * The key names {@code cloudWatchEndpoint} and {@code isCBORProtocolDisabled} are
 * those of the KCL 1.x launcher (and of the unmerged upstream pull request #785),
 * so files stay portable; the stock 3.x daemon ignores all of the launcher's keys.
 *
 * <p><b>Endpoints and region.</b> {@code kinesisEndpoint} and
 * {@code dynamoDBEndpoint} are read by the stock configuration (as the clients'
 * {@code endpointOverride}), {@code regionName} sets the region of all three
 * clients. Credentials: {@code AwsCredentialsProvider} (any case of the prefix,
 * so a 1.x file's {@code AWSCredentialsProvider} is read too), with
 * {@code AwsCredentialsProviderDynamoDB} and {@code AwsCredentialsProviderCloudWatch}
 * defaulting to it; names are resolved by the stock daemon (AWS SDK v2 classes,
 * short names looked up in {@code software.amazon.awssdk.auth.credentials}). The
 * launcher asks the Kinesis credentials once before it starts, so missing
 * credentials are a one-line error instead of a scheduler that retries forever.
 *
 * <p><b>Enhanced fan-out.</b> The retrieval mode is the stock daemon's
 * ({@code retrievalMode}, decided once: the same builder makes the retrieval
 * configuration). With enhanced fan-out the KCL registers a stream consumer (named
 * {@code fanoutConfig.consumerName}, else {@code applicationName}) with
 * RegisterStreamConsumer, waits until it is ACTIVE and reads each shard with
 * SubscribeToShard over an HTTP/2 event stream (or HTTP/1.1, with
 * {@code kinesisHttpProtocol = HTTP1_1}); the launcher says which in one line
 * ({@value #FANOUT_LINE} or {@value #POLLING_LINE}). The engine must serve
 * SubscribeToShard (moto does not).
 *
 * <p><b>CloudWatch.</b> The AWS SDK this KCL runs on sends CloudWatch requests only
 * in the Smithy RPC v2 CBOR protocol (the SDK's CloudWatch client has no other;
 * {@code aws.cborEnabled} does not apply to it). kclpy-local's embedded moto server
 * answers it; endpoints that do not, such as a moto server started
 * otherwise, reject every {@code PutMetricData}: set {@code metricsLevel = NONE}
 * there (kclpy-local's translation of a {@code local} file does so when the endpoint
 * does not answer). The launcher names the protocol on its CloudWatch endpoint line,
 * and says once why the first failed CloudWatch call failed.
 *
 * <p><b>Several streams.</b> With {@code streamNames = a, b} the launcher gives the
 * scheduler a {@code MultiStreamTracker} of its own: a fixed list with one
 * {@code StreamConfig} per name, each with the file's initial position, and no
 * deletion of former streams' leases. The KCL then keys each lease
 * {@code account:stream:creationEpoch:shardId}, so the streams' shards, leases and
 * checkpoints stay apart in one lease table. Each stream's identifier is built from its
 * ARN (account and region) and its creation time in epoch seconds, both read with one
 * {@code DescribeStreamSummary} per stream before the scheduler is built (a missing
 * stream stops the start with one line). On an emulator these are its own values (moto:
 * the account 123456789012, the time it created the stream). The names must be
 * distinct and non-empty; {@code streamName} or {@code streamArn} beside
 * {@code streamNames} is a usage error, and so is {@code fanoutConfig.consumerArn} (one
 * consumer belongs to one stream). The stock configuration, which requires a stream
 * name, is read with the first name; the polling (or fan-out) configuration is then built
 * with none, as the KCL requires in multi-stream mode, and the initial position goes to
 * each stream's configuration instead of the retrieval configuration, which refuses it
 * in that mode.
 *
 * <p>Each record processor is the stock multilang processor, made by the stock factory
 * with a JSON mapper of the launcher's: it writes the stock messages, and appends the
 * name of the shard's stream to the initialize message, so one processor command can
 * tell the streams apart. Processors that do not know the field ignore it.
 *
 * <p><b>{@code initialLeaseSync}.</b> On an empty lease table (a new application)
 * the KCL 3.x scheduler waits a random 1 to 30 s, checking every 3 s whether
 * another worker has filled the table ("Lease table is still empty. Checking again
 * in 3000 ms"), before its leader creates the leases; the constants are private to
 * the KCL. With {@code worker} (the default) the launcher leaves this as it is.
 * With {@code eager} the launcher, before the scheduler runs, initializes the
 * scheduler's own lease coordinator (which creates the lease table as the
 * scheduler would, and waits until it is active) and, <em>only if the table is
 * empty</em> (with {@code streamNames}: for each stream that has no lease yet, so a
 * stream added to an application is not left to the scheduler's stream sync, once a
 * minute), runs the scheduler's own one-off shard sync (what its
 * {@code PeriodicShardSyncManager.syncShardsOnce()} does: a KCL {@code ShardSyncTask}
 * per stream, made of the parts of the scheduler's own {@code ShardSyncTaskManager},
 * with the configured initial position), without the task's sleep of
 * {@code shardSyncIntervalMillis} after creating leases and without metrics. The
 * scheduler then finds the table filled and skips its wait. Leases are created
 * with the KCL's conditional put (only if absent), so workers that start together
 * each create the missing leases and none is written twice. If the eager sync
 * fails, the launcher says so in one line and the scheduler does its own initial
 * sync, as with {@code worker}. A value other than {@code worker} or {@code eager}
 * is a usage error.
 *
 * <p><b>Start-up on a local endpoint.</b> With the KCL's defaults a new application
 * takes over a minute to process its first record: besides the random wait above,
 * the scheduler's own initial shard sync sleeps {@code shardSyncIntervalMillis}
 * (60 s) after creating leases, before it reports STARTED. Leases are then assigned
 * by the leader every {@code leaseAssignmentIntervalMillis} (2 x
 * {@code failoverTimeMillis}), only to workers that have reported their metrics
 * ({@code workerMetricsReporterFreqInMillis}, 30 s; a stopped worker counts as alive
 * for two periods, and leases are handed to it meanwhile), and a restarted worker
 * with a new {@code workerId} waits for the old worker's leases to expire
 * ({@code failoverTimeMillis}). All of these are keys the stock daemon reads; a
 * stable {@code workerId} lets a restarted worker keep its leases at once.
 *
 * <p>Exit codes: 0 when the scheduler's loop ends by itself (after SIGTERM or SIGINT
 * the JVM exits with 128 + the signal's number, as any JVM); {@value Launch#EXIT_FAILED}
 * on a usage error (no or unreadable file, a value the launcher rejects), on a
 * failure while preparing the configuration, the clients and the scheduler (for
 * instance no AWS credentials: one line on stderr names the problem) or when the
 * scheduler fails; {@value Launch#EXIT_CHARSET} when the JVM's default charset is not
 * UTF-8; {@value Launch#EXIT_NEVER_STARTED} when the scheduler never reaches STARTED
 * (initialization failed; the stock daemon exits 0 then).
 *
 * <p>{@code --self-check} builds a configuration, clients and a scheduler from a
 * throw-away properties file without touching the network, proving the class path
 * is complete.
 *
 * <p>What both launchers do alike (the arguments, the ready line, the signals, the
 * exit codes, the self-check) is in {@code dev.kclpylocal.common}.
 */
public final class KclLocalLauncher implements Generation {

    static final String LEADER_LEASE = "dynamoDbLockBasedLeaderLeaseDurationInMillis";
    static final String LEADER_HEARTBEAT = "dynamoDbLockBasedLeaderHeartbeatPeriodInMillis";
    static final String MAX_INIT_ATTEMPTS = "maxInitializationAttempts";
    static final String DISPATCH_POLL = "shardConsumerDispatchPollIntervalMillis";
    static final String CBOR_SYSTEM_PROPERTY = "aws.cborEnabled";
    static final String STREAM_NAME_FIELD = "streamName";
    static final String CONSUMER_ARN = "fanoutConfig.consumerArn";
    /** Kinesis stream names: 1 to 128 of these characters. */
    static final Pattern STREAM_NAME = Pattern.compile("[a-zA-Z0-9_.-]{1,128}");
    static final long DESCRIBE_TIMEOUT_SECONDS = 60L;
    static final String TRUST_LOOPBACK = "kinesisTrustLoopbackCertificates";
    static final String HTTP_PROTOCOL = "kinesisHttpProtocol";
    static final String FANOUT_LINE = "records by enhanced fan-out (SubscribeToShard)";
    static final String POLLING_LINE = "records by polling (GetRecords)";
    static final String USAGE = "usage: java -cp <class path> " + KclLocalLauncher.class.getName()
            + " <properties file> | --self-check";

    private KclLocalLauncher() {
    }

    public static void main(String[] args) {
        Launch.main(args, new KclLocalLauncher());
    }

    @Override
    public void usage(String message) {
        System.err.println(PREFIX + message);
        System.err.println(USAGE);
        System.err.flush();
    }

    @Override
    public void usageError(String propertiesPath, Exception e) {
        if (e instanceof IOException) {
            usage("cannot read " + propertiesPath + ": " + oneLine(e));
        } else {
            usage(String.valueOf(e.getMessage()).replaceAll("\\s*[\\r\\n]+\\s*", " ").trim());
        }
    }

    @Override
    public String startFailure(RuntimeException e) {
        return oneLine(rootCause(e));
    }

    @Override
    public void selfCheckSetUp(Properties p) {
        System.setProperty("aws.secretAccessKey", "self-check");
        p.setProperty("AwsCredentialsProvider", "SystemPropertyCredentialsProvider");
        p.setProperty("retrievalMode", "POLLING");
        p.setProperty("metricsLevel", "NONE");
        p.setProperty(LEADER_LEASE, "10000");
        p.setProperty(LEADER_HEARTBEAT, "2000");
        p.setProperty(MAX_INIT_ATTEMPTS, "1");
        p.setProperty(DISPATCH_POLL, "250");
    }

    @Override
    public void disableCbor() {
        System.setProperty(CBOR_SYSTEM_PROPERTY, "false");
    }

    @Override
    public Prepared prepare(String propertiesPath, Settings settings) throws IOException {
        ChildLevelFilter.install();
        Properties extra = settings.properties;
        String cloudWatchEndpoint = settings.cloudWatchEndpoint;
        Long leaderLease = parsePositiveLong(extra, LEADER_LEASE);
        Long leaderHeartbeat = parsePositiveLong(extra, LEADER_HEARTBEAT);
        Long maxInitAttempts = parsePositiveLong(extra, MAX_INIT_ATTEMPTS);
        Long dispatchPoll = parsePositiveLong(extra, DISPATCH_POLL);
        if (maxInitAttempts != null && maxInitAttempts > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(MAX_INIT_ATTEMPTS + " must be at most " + Integer.MAX_VALUE);
        }
        long effectiveLease = leaderLease != null ? leaderLease : 120000L;
        long effectiveHeartbeat = leaderHeartbeat != null ? leaderHeartbeat : 30000L;
        if ((leaderLease != null || leaderHeartbeat != null) && effectiveHeartbeat >= effectiveLease) {
            throw new IllegalArgumentException(LEADER_HEARTBEAT + " (" + effectiveHeartbeat
                    + ") must be shorter than " + LEADER_LEASE + " (" + effectiveLease + ")");
        }

        final List<String> streamNames = parseStreamNames(extra);
        final MultiLangDaemonConfig config;
        try {
            config = streamNames == null ? new MultiLangDaemonConfig(propertiesPath)
                    : new MultiLangDaemonConfig(propertiesPath, Thread.currentThread().getContextClassLoader(),
                            multiStreamConfigurator(streamNames.get(0)));
        } catch (IllegalArgumentException | NullPointerException e) {
            throw new IllegalArgumentException(propertiesPath + ": " + e.getMessage(), e);
        }
        MultiLangDaemonConfiguration c = config.getMultiLangDaemonConfiguration();
        InitialPositionInStreamExtended position = null;
        if (streamNames != null) {
            // Each stream's configuration carries the initial position: the retrieval configuration
            // refuses one in multi-stream mode, and the polling (fan-out) one must name no stream.
            position = orElse(c.getInitialPositionInStreamExtended(),
                    InitialPositionInStreamExtended.newInitialPosition(InitialPositionInStream.LATEST));
            c.setInitialPositionInStreamExtended(null);
            c.setStreamName(null);
        }

        AwsCredentialsProvider kinesisCredentials = credentials(c.getKinesisCredentialsProvider());
        AwsCredentialsProvider dynamoCredentials = orElse(credentials(c.getDynamoDBCredentialsProvider()),
                kinesisCredentials);
        AwsCredentialsProvider cloudWatchCredentials = orElse(credentials(c.getCloudWatchCredentialsProvider()),
                kinesisCredentials);
        checkCredentials(kinesisCredentials, extra);
        setBeanProperty(c, c.getKinesisClient(), "credentialsProvider", kinesisCredentials);
        setBeanProperty(c, c.getDynamoDbClient(), "credentialsProvider", dynamoCredentials);
        setBeanProperty(c, c.getCloudWatchClient(), "credentialsProvider", cloudWatchCredentials);
        if (cloudWatchEndpoint != null) {
            setBeanProperty(c, c.getCloudWatchClient(), "endpointOverride", cloudWatchEndpoint);
        }

        String region = trimmedOrNull(extra.getProperty("regionName"));
        String kinesisEndpoint = endpointKey(extra, "kinesisEndpoint", "kinesisClient.endpointOverride");
        String dynamoEndpoint = endpointKey(extra, "dynamoDBEndpoint", "dynamoDbClient.endpointOverride");
        final boolean localKinesis = isLocal(kinesisEndpoint);
        // Decided once: the same builder makes the retrieval configuration below.
        RetrievalConfigBuilder retrievalBuilder = c.getRetrievalMode().builder(c);
        final boolean fanout = retrievalBuilder instanceof FanoutConfigBean;
        final KinesisHttp http = KinesisHttp.of(kinesisEndpoint, localKinesis, fanout,
                parseBoolean(extra, TRUST_LOOPBACK, false), httpProtocol(extra));
        final KinesisAsyncClient kinesis;
        final DynamoDbAsyncClient dynamoDB;
        final CloudWatchAsyncClient cloudWatch;
        final CloudWatchReporter cloudWatchReporter = new CloudWatchReporter(cloudWatchEndpoint);
        try {
            kinesis = c.getKinesisClient().build(KinesisAsyncClient.class, new Function<Object, Object>() {
                @Override
                public Object apply(Object builder) {
                    return http.adjust((KinesisAsyncClientBuilder) builder);
                }
            });
            dynamoDB = c.getDynamoDbClient().build(DynamoDbAsyncClient.class);
            cloudWatch = c.getCloudWatchClient().build(CloudWatchAsyncClient.class, new Function<Object, Object>() {
                @Override
                public Object apply(Object builder) {
                    return ((CloudWatchAsyncClientBuilder) builder).overrideConfiguration(
                            o -> o.addExecutionInterceptor(cloudWatchReporter));
                }
            });
        } catch (RuntimeException e) {
            throw new StartupException("cannot build the AWS clients (" + oneLine(rootCause(e))
                    + "); check regionName and the endpoints", e);
        }
        describeEndpoint("Kinesis", kinesisEndpoint, region, http.label);
        describeEndpoint("DynamoDB", dynamoEndpoint, region, null);
        describeEndpoint("CloudWatch", cloudWatchEndpoint, region, "Smithy RPC v2 CBOR");

        StreamNamingFactory factory = new StreamNamingFactory(extra.getProperty("executableName"),
                config.getExecutorService(), c,
                streamNames != null ? streamNames : Collections.singletonList(c.getStreamName()));
        final ConfigsBuilder configsBuilder;
        final String streams;
        if (streamNames == null) {
            configsBuilder = new ConfigsBuilder(c.getStreamName(), c.getApplicationName(), kinesis, dynamoDB,
                    cloudWatch, c.getWorkerIdentifier(), factory);
            streams = "stream " + c.getStreamName();
        } else {
            List<StreamConfig> configs = describeStreams(kinesis, kinesisEndpoint, streamNames, position);
            configsBuilder = new ConfigsBuilder(new FixedStreams(configs), c.getApplicationName(), kinesis,
                    dynamoDB, cloudWatch, c.getWorkerIdentifier(), factory);
            streams = "streams " + String.join(", ", streamNames);
        }
        // As the stock MultiLangDaemonConfiguration resolves its fields: ConfigsBuilder first, then the
        // configuration objects it makes, the nested beans, the retrieval mode, and everything else.
        Map<Class<?>, Object> configObjects = new HashMap<>();
        configObjects.put(ConfigsBuilder.class, configsBuilder);
        ConfigurationSettableUtils.resolveFields(c, configObjects,
                Collections.<Class<?>>singleton(ConfigsBuilder.class),
                Collections.<Class<?>>singleton(PollingConfig.class));
        CoordinatorConfig coordinator = configsBuilder.coordinatorConfig();
        CheckpointConfig checkpoint = configsBuilder.checkpointConfig();
        LeaseManagementConfig leaseManagement = configsBuilder.leaseManagementConfig();
        LifecycleConfig lifecycle = configsBuilder.lifecycleConfig();
        MetricsConfig metrics = configsBuilder.metricsConfig();
        ProcessorConfig processor = configsBuilder.processorConfig();
        RetrievalConfig retrieval = configsBuilder.retrievalConfig();
        for (Object o : Arrays.asList(coordinator, checkpoint, leaseManagement, lifecycle, metrics, processor,
                retrieval)) {
            configObjects.put(o.getClass(), o);
        }
        ConfigurationSettableUtils.resolveFields(c.getCoordinatorStateTableConfigBean(),
                coordinator.coordinatorStateTableConfig());
        ConfigurationSettableUtils.resolveFields(c.getGracefulLeaseHandoffConfigBean(),
                leaseManagement.gracefulLeaseHandoffConfig());
        ConfigurationSettableUtils.resolveFields(c.getWorkerUtilizationAwareAssignmentConfigBean(),
                leaseManagement.workerUtilizationAwareAssignmentConfig());
        ConfigurationSettableUtils.resolveFields(c.getWorkerMetricStatsTableConfigBean(),
                leaseManagement.workerUtilizationAwareAssignmentConfig().workerMetricsTableConfig());
        retrieval.retrievalSpecificConfig(retrievalBuilder.build(kinesis, c));
        if (fanout) {
            String consumer = ((FanoutConfigBean) retrievalBuilder).getConsumerName();
            String arn = ((FanoutConfigBean) retrievalBuilder).getConsumerArn();
            say(FANOUT_LINE + ", stream consumer " + (arn != null ? arn
                    : (consumer != null ? consumer : c.getApplicationName())));
        } else {
            say(POLLING_LINE);
        }
        ConfigurationSettableUtils.resolveFields(c, configObjects, null,
                new HashSet<Class<?>>(Arrays.<Class<?>>asList(ConfigsBuilder.class, PollingConfig.class)));

        // The launcher's own keys: fields of the KCL's configuration objects the stock daemon does not read.
        if (leaderLease != null) {
            leaseManagement.dynamoDbLockBasedLeaderLeaseDurationInMillis(leaderLease);
        }
        if (leaderHeartbeat != null) {
            leaseManagement.dynamoDbLockBasedLeaderHeartbeatPeriodInMillis(leaderHeartbeat);
        }
        if (maxInitAttempts != null) {
            coordinator.maxInitializationAttempts(maxInitAttempts.intValue());
        }
        if (dispatchPoll != null) {
            coordinator.shardConsumerDispatchPollIntervalMillis(dispatchPoll);
        }
        WorkerStatus status = new WorkerStatus(c.getApplicationName(), streams, c.getWorkerIdentifier());
        coordinator.workerStateChangeListener(new StateListener(status));

        Scheduler scheduler = new Scheduler(checkpoint, coordinator, leaseManagement, lifecycle, metrics,
                processor, retrieval);
        long grace = settings.graceMillis(c.getShutdownGraceMillis());
        final boolean eager = settings.eager;
        final boolean multiStream = streamNames != null;
        return new Prepared(scheduler, scheduler::shutdown, scheduler::startGracefulShutdown, status,
                config.getExecutorService(), grace) {
            @Override
            protected void beforeStart() {
                if (eager) {
                    eagerLeaseSync(scheduler, status.streams, multiStream);
                }
            }
        };
    }

    /** The credentials provider a bean describes, or {@code null} when the key was not given. */
    static AwsCredentialsProvider credentials(BuilderDynaBean bean) {
        if (!bean.isDirty()) {
            return null;
        }
        return bean.build(AwsCredentialsProvider.class);
    }

    static <T> T orElse(T value, T fallback) {
        return value != null ? value : fallback;
    }

    /**
     * {@code streamNames} as a list, or {@code null} when the key is absent (one stream). The
     * names are trimmed; an empty name, one that is not a stream name, a name given twice, and
     * the key beside {@code streamName}, {@code streamArn} or {@code fanoutConfig.consumerArn}
     * are usage errors.
     */
    static List<String> parseStreamNames(Properties properties) {
        String value = properties.getProperty(STREAM_NAMES);
        if (value == null) {
            return null;
        }
        for (String key : new String[] {"streamName", "streamArn", CONSUMER_ARN}) {
            if (properties.getProperty(key) != null) {
                throw new IllegalArgumentException(STREAM_NAMES + " and " + key + " are both set: "
                        + (key.equals(CONSUMER_ARN) ? "a consumer belongs to one stream"
                                : "name the streams in " + STREAM_NAMES + " alone"));
            }
        }
        Set<String> names = new LinkedHashSet<>();
        for (String part : value.split(",", -1)) {
            String name = part.trim();
            if (name.isEmpty()) {
                throw new IllegalArgumentException(STREAM_NAMES + " has an empty name in '" + value.trim()
                        + "': give stream names separated by commas");
            }
            if (!STREAM_NAME.matcher(name).matches()) {
                throw new IllegalArgumentException(STREAM_NAMES + ": '" + name + "' is not a stream name (1 to "
                        + "128 letters, digits, '_', '.' or '-')");
            }
            if (!names.add(name)) {
                throw new IllegalArgumentException(STREAM_NAMES + " names " + name + " twice");
            }
        }
        return new ArrayList<>(names);
    }

    /**
     * One configuration per stream of {@code streamNames}: its multi-stream identifier (the
     * account and region of its ARN, its creation time in epoch seconds, from
     * {@code DescribeStreamSummary}) with the initial position {@code position}.
     */
    static List<StreamConfig> describeStreams(KinesisAsyncClient kinesis, String endpoint, List<String> names,
            InitialPositionInStreamExtended position) {
        List<StreamConfig> configs = new ArrayList<>();
        String where = endpoint != null ? " at " + endpoint : "";
        for (final String name : names) {
            final StreamDescriptionSummary summary;
            try {
                DescribeStreamSummaryResponse response = kinesis.describeStreamSummary(b -> b.streamName(name))
                        .get(DESCRIBE_TIMEOUT_SECONDS, TimeUnit.SECONDS);
                summary = response.streamDescriptionSummary();
            } catch (ExecutionException e) {
                for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
                    if (t instanceof ResourceNotFoundException) {
                        throw new StartupException("stream " + name + " (of " + STREAM_NAMES + ") does not exist"
                                + where, e);
                    }
                }
                throw new StartupException("cannot describe stream " + name + where + " (" + oneLine(rootCause(e))
                        + "); multi-stream mode reads each stream's ARN and creation time at start", e);
            } catch (TimeoutException e) {
                throw new StartupException("no answer" + where + " to DescribeStreamSummary of stream " + name
                        + " within " + DESCRIBE_TIMEOUT_SECONDS + " s", e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new StartupException("interrupted while describing stream " + name, e);
            }
            final StreamIdentifier identifier;
            try {
                long epoch = summary.streamCreationTimestamp() == null ? 0L
                        : summary.streamCreationTimestamp().getEpochSecond();
                identifier = StreamIdentifier.multiStreamInstance(Arn.fromString(summary.streamARN()), epoch);
            } catch (RuntimeException e) {
                throw new StartupException("stream " + name + ": no multi-stream identifier from its ARN "
                        + summary.streamARN() + " and creation time " + summary.streamCreationTimestamp() + " ("
                        + oneLine(e) + ")", e);
            }
            say("stream " + name + ": lease keys " + identifier.serialize() + ":<shard id> ("
                    + summary.streamARN() + ")");
            configs.add(new StreamConfig(identifier, position));
        }
        return configs;
    }

    /** Resolves the credentials once, as the KCL 1.x daemon does at start, for a one-line error. */
    static void checkCredentials(AwsCredentialsProvider provider, Properties extra) {
        try {
            provider.resolveCredentials();
        } catch (RuntimeException e) {
            String key = "AwsCredentialsProvider";
            for (String name : extra.stringPropertyNames()) {
                if (name.equalsIgnoreCase(key)) {
                    key = name;
                }
            }
            throw new StartupException("no AWS credentials: " + key + " = "
                    + trimmedOrNull(extra.getProperty(key)) + " found none (" + oneLine(rootCause(e))
                    + "); for a local emulator any non-empty values will do", e);
        }
    }

    static void setBeanProperty(MultiLangDaemonConfiguration c, BuilderDynaBean bean, String name, Object value) {
        try {
            c.getUtilsBean().setProperty(bean, name, value);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot set " + name + " on a client builder: " + oneLine(e), e);
        }
    }

    /** The endpoint from the first of {@code keys} that is set, trimmed; {@code null} when none is. */
    static String endpointKey(Properties properties, String... keys) {
        for (String key : keys) {
            String value = trimmedOrNull(properties.getProperty(key));
            if (value != null) {
                return value;
            }
        }
        return null;
    }

    /** An {@code http://} URL, or any URL whose host is a loopback address or {@code localhost}. */
    static boolean isLocal(String endpoint) {
        if (endpoint == null) {
            return false;
        }
        final URI uri;
        try {
            uri = URI.create(endpoint);
        } catch (IllegalArgumentException e) {
            return false;
        }
        if ("http".equalsIgnoreCase(uri.getScheme())) {
            return true;
        }
        String host = uri.getHost();
        if (host == null) {
            return false;
        }
        if ("localhost".equalsIgnoreCase(host) || host.toLowerCase(Locale.ROOT).endsWith(".localhost")) {
            return true;
        }
        if (!host.matches("[0-9.]+|\\[?[0-9a-fA-F:]+\\]?")) {
            return false;  // a name: never resolved here
        }
        try {
            return InetAddress.getByName(host).isLoopbackAddress();
        } catch (UnknownHostException e) {
            return false;
        }
    }

    /** {@code kinesisHttpProtocol} ({@code HTTP1_1} or {@code HTTP2}, any case); {@code null} when absent. */
    static Protocol httpProtocol(Properties properties) {
        String value = trimmedOrNull(properties.getProperty(HTTP_PROTOCOL));
        if (value == null) {
            return null;
        }
        for (Protocol protocol : new Protocol[] {Protocol.HTTP1_1, Protocol.HTTP2}) {
            if (protocol.name().equalsIgnoreCase(value)) {
                return protocol;
            }
        }
        throw new IllegalArgumentException(HTTP_PROTOCOL + " must be HTTP1_1 or HTTP2, not '" + value + "'");
    }

    /** An {@code https://} URL whose host is a loopback address or {@code localhost} (names are not resolved). */
    static boolean isLoopbackTls(String endpoint) {
        // isLocal parses the URL and checks its host; an https:// one is local only by its host.
        return endpoint != null && endpoint.regionMatches(true, 0, "https://", 0, 8) && isLocal(endpoint);
    }

    /**
     * How the Kinesis client speaks to its endpoint: HTTP/1.1 to a local endpoint when
     * the worker polls, the KCL's own HTTP/2 client otherwise (h2c over {@code http://},
     * ALPN over TLS to a loopback host), and any certificate trusted only when asked
     * for and only on a loopback {@code https://} endpoint.
     */
    static final class KinesisHttp {
        final String label;
        private final Protocol protocol;
        private final boolean stock;
        private final boolean alpn;
        private final boolean trustAll;

        private KinesisHttp(String label, Protocol protocol, boolean stock, boolean alpn, boolean trustAll) {
            this.label = label;
            this.protocol = protocol;
            this.stock = stock;
            this.alpn = alpn;
            this.trustAll = trustAll;
        }

        /**
         * {@code protocol}: {@code kinesisHttpProtocol} ({@code null} when absent: HTTP/2 with
         * enhanced fan-out, HTTP/1.1 with polling).
         */
        static KinesisHttp of(String endpoint, boolean local, boolean fanout, boolean trustLoopback,
                Protocol protocol) {
            boolean loopbackTls = isLoopbackTls(endpoint);
            String where = endpoint != null ? endpoint : "the AWS endpoint";
            if (trustLoopback && !loopbackTls) {
                throw new IllegalArgumentException(TRUST_LOOPBACK + " = true is only for an https:// "
                        + "kinesisEndpoint on a loopback address or localhost, not " + where
                        + ": certificates are checked everywhere else");
            }
            if (protocol != null && !local) {
                throw new IllegalArgumentException(HTTP_PROTOCOL + " is only for a local kinesisEndpoint "
                        + "(http://, or a loopback host), not " + where
                        + ": the KCL's own HTTP/2 client is used there");
            }
            String trusted = trustLoopback ? ", any certificate trusted (" + TRUST_LOOPBACK + ")" : "";
            String forced = protocol != null ? " (" + HTTP_PROTOCOL + " = " + protocol.name() + ")" : "";
            if (!local) {
                return new KinesisHttp("HTTP/2", Protocol.HTTP2, true, false, false);
            }
            if (protocol == Protocol.HTTP1_1 || (protocol == null && !fanout)) {
                return new KinesisHttp("HTTP/1.1" + forced + trusted, Protocol.HTTP1_1, false, false,
                        trustLoopback);
            }
            trusted = forced + trusted;
            if (loopbackTls) {
                return new KinesisHttp("HTTP/2 over TLS by ALPN" + trusted, Protocol.HTTP2, false, true,
                        trustLoopback);
            }
            return new KinesisHttp("HTTP/2 without TLS (h2c, prior knowledge)" + forced, Protocol.HTTP2, true,
                    false, false);
        }

        KinesisAsyncClientBuilder adjust(KinesisAsyncClientBuilder builder) {
            if (stock) {
                return KinesisClientUtil.adjustKinesisClientBuilder(builder);
            }
            NettyNioAsyncHttpClient.Builder netty = NettyNioAsyncHttpClient.builder()
                    .maxConcurrency(Integer.MAX_VALUE)
                    .protocol(protocol);
            if (alpn) {
                netty.protocolNegotiation(ProtocolNegotiation.ALPN);
            }
            return builder.httpClientBuilder(trustAll ? new TrustingBuilder(netty) : netty);
        }
    }

    /** A Netty client builder whose clients trust any certificate (loopback endpoints only, see above). */
    static final class TrustingBuilder implements SdkAsyncHttpClient.Builder<TrustingBuilder> {
        private final NettyNioAsyncHttpClient.Builder netty;

        TrustingBuilder(NettyNioAsyncHttpClient.Builder netty) {
            this.netty = netty;
        }

        @Override
        public SdkAsyncHttpClient buildWithDefaults(AttributeMap serviceDefaults) {
            return netty.buildWithDefaults(AttributeMap.builder()
                    .put(SdkHttpConfigurationOption.TRUST_ALL_CERTIFICATES, Boolean.TRUE)
                    .build()
                    .merge(serviceDefaults));
        }
    }

    static void describeEndpoint(String service, String endpoint, String region, String protocol) {
        String where = endpoint != null ? "endpoint " + endpoint : "AWS endpoint";
        String detail = "region " + (region != null ? region : "from the environment")
                + (protocol != null ? ", " + protocol : "");
        say(service + " " + where + " (" + detail + ")");
    }

    /** Says once why a CloudWatch call failed (metrics are best effort in the KCL, and logged per batch). */
    static final class CloudWatchReporter implements ExecutionInterceptor {
        private final String endpoint;
        private final AtomicBoolean reported = new AtomicBoolean(false);

        CloudWatchReporter(String endpoint) {
            this.endpoint = endpoint;
        }

        @Override
        public void onExecutionFailure(Context.FailedExecution context, ExecutionAttributes executionAttributes) {
            if (!reported.compareAndSet(false, true)) {
                return;
            }
            say("CloudWatch metrics cannot be delivered to " + (endpoint != null ? endpoint : "AWS") + " ("
                    + oneLine(rootCause(context.exception())) + "); the KCL's AWS SDK sends them in the Smithy"
                    + " RPC v2 CBOR protocol only, which this endpoint may not speak (kclpy-local's embedded"
                    + " moto does); set metricsLevel = NONE to turn them off (said once)");
        }
    }

    /** Creates the lease table and the leases before the scheduler runs (see the class comment). */
    static void eagerLeaseSync(Scheduler scheduler, String streams, boolean multi) {
        long start = System.currentTimeMillis();
        String table = scheduler.leaseManagementConfig().tableName();
        try {
            LeaseRefresher refresher = scheduler.leaseRefresher();
            boolean existed = refresher.leaseTableExists();
            scheduler.leaseCoordinator().initialize();
            // As Scheduler.initialize() does before its own sync (idempotent; the shard syncer reads it).
            StreamIdCache.initialize(scheduler.streamIdCacheManager(),
                    scheduler.leaseManagementConfig().streamIdOnboardingState());
            if (!existed) {
                say(EAGER_LINE + ": created the lease table " + table);
            }
            List<StreamConfig> configs = new ArrayList<>(scheduler.currentStreamConfigMap().values());
            List<StreamConfig> missing = new ArrayList<>();
            if (!multi) {
                if (refresher.isLeaseTableEmpty()) {
                    missing.addAll(configs);
                }
            } else {
                // Several streams: those without a lease yet (a new application, or a stream added to one).
                Set<String> leased = new HashSet<>();
                for (Lease lease : refresher.listLeases()) {
                    if (lease instanceof MultiStreamLease) {
                        leased.add(((MultiStreamLease) lease).streamIdentifier());
                    }
                }
                for (StreamConfig stream : configs) {
                    if (!leased.contains(stream.streamIdentifier().serialize())) {
                        missing.add(stream);
                    }
                }
            }
            if (missing.isEmpty()) {
                say(EAGER_LINE + " not needed: the lease table " + table + " already has leases"
                        + (multi ? " of every stream" : ""));
                return;
            }
            // What the scheduler's PeriodicShardSyncManager.syncShardsOnce() does (the class is not public),
            // with the task's idle time after a sync (shardSyncIntervalMillis) left out and no metrics.
            for (StreamConfig stream : missing) {
                ShardSyncTaskManager manager = scheduler.shardSyncTaskManagerProvider().apply(stream);
                TaskResult result = new ShardSyncTask(manager.shardDetector(), manager.leaseRefresher(),
                        manager.initialPositionInStream(), manager.cleanupLeasesUponShardCompletion(),
                        manager.garbageCollectLeases(), manager.ignoreUnexpectedChildShards(), 0L,
                        manager.hierarchicalShardSyncer(), new NullMetricsFactory()).call();
                if (result.getException() != null) {
                    throw result.getException();
                }
            }
            int leases = refresher.listLeases().size();
            String synced = streams;
            if (missing.size() < configs.size()) {
                List<String> names = new ArrayList<>();
                for (StreamConfig stream : missing) {
                    names.add(stream.streamIdentifier().streamName());
                }
                synced = "streams " + String.join(", ", names) + " (new to the application)";
            }
            say(EAGER_LINE + ": " + leases + " lease(s) in " + table + " for "
                    + synced + " in " + (System.currentTimeMillis() - start)
                    + " ms; the worker will not wait " + (missing.size() < configs.size()
                            ? "for its next stream sync (every minute)" : "for an empty lease table"));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Exception e) {
            say(EAGER_LINE + " failed (" + oneLine(rootCause(e)) + "); the worker will sync itself");
        }
    }

    /**
     * Logs a record processor's stderr line at the level the line starts with: a
     * logback turbo filter that, for the ERROR "Received error line from subprocess"
     * events of the KCL's {@code DrainChildSTDERRTask}, logs the same message at the
     * line's level on the same logger instead (levels, appenders and the MDC apply as
     * to any event). The KCL echoes the line itself on stderr in any case. Without
     * logback (another SLF4J binding on the class path) nothing changes.
     */
    static final class ChildLevelFilter extends TurboFilter {
        static final String LOGGER = "software.amazon.kinesis.multilang.DrainChildSTDERRTask";
        static final String FQCN = ChildLevelFilter.class.getName();

        static synchronized void install() {
            ILoggerFactory factory = LoggerFactory.getILoggerFactory();
            if (!(factory instanceof LoggerContext)) {
                return;
            }
            LoggerContext context = (LoggerContext) factory;
            for (TurboFilter filter : context.getTurboFilterList()) {
                if (filter instanceof ChildLevelFilter) {
                    return;
                }
            }
            ChildLevelFilter filter = new ChildLevelFilter();
            filter.setName("kclpy-local child log levels");
            filter.setContext(context);
            filter.start();
            context.addTurboFilter(filter);
        }

        static int slf4jLevel(ChildLogLevels.Level level) {
            return level.in(LocationAwareLogger.DEBUG_INT, LocationAwareLogger.INFO_INT,
                    LocationAwareLogger.WARN_INT, LocationAwareLogger.ERROR_INT);
        }

        @Override
        public FilterReply decide(Marker marker, Logger logger, Level level, String format, Object[] params,
                Throwable t) {
            if (level != Level.ERROR || format == null || !format.startsWith(ChildLogLevels.MESSAGE_START)
                    || params == null || params.length == 0 || !(params[0] instanceof String)
                    || !LOGGER.equals(logger.getName())) {
                return FilterReply.NEUTRAL;
            }
            ChildLogLevels.Level child = ChildLogLevels.of((String) params[0]);
            if (child == ChildLogLevels.Level.ERROR) {
                return FilterReply.NEUTRAL;
            }
            // Logged again at the child's level: this filter lets that event through (not ERROR).
            logger.log(marker, FQCN, slf4jLevel(child), format, params, t);
            return FilterReply.DENY;
        }
    }

    /**
     * The stock multilang record processors, made by the stock factory with a JSON mapper of
     * the launcher's per stream, which appends the name of the shard's stream to the initialize
     * message; {@code KCLPY_LOCAL_LIFELINE} is kept from the processors' environment.
     */
    static final class StreamNamingFactory implements ShardRecordProcessorFactory {
        private final String command;
        private final ExecutorService executor;
        private final MultiLangDaemonConfiguration configuration;
        private final ConcurrentMap<String, ObjectMapper> mappers = new ConcurrentHashMap<>();

        /** {@code streams}: the names known at start, whose mappers are made at once. */
        StreamNamingFactory(String command, ExecutorService executor, MultiLangDaemonConfiguration configuration,
                List<String> streams) {
            this.command = command;
            this.executor = executor;
            this.configuration = configuration;
            for (String stream : streams) {
                mapper(stream);
            }
        }

        private ObjectMapper mapper(String stream) {
            return mappers.computeIfAbsent(stream, StreamNamingFactory::namingMapper);
        }

        /** A mapper as the stock factory's ({@code new ObjectMapper()}), naming {@code stream} on initialize. */
        static ObjectMapper namingMapper(String stream) {
            ObjectMapper mapper = new ObjectMapper().addMixIn(InitializeMessage.class, InitializeNamingStream.class);
            mapper.setConfig(mapper.getSerializationConfig().withAttribute(STREAM_NAME_FIELD, stream));
            return mapper;
        }

        @Override
        public ShardRecordProcessor shardRecordProcessor() {
            return Lifeline.keepFromProcessor(new MultiLangRecordProcessorFactory(command, executor,
                    new ObjectMapper(), configuration).shardRecordProcessor());
        }

        @Override
        public ShardRecordProcessor shardRecordProcessor(StreamIdentifier streamIdentifier) {
            return Lifeline.keepFromProcessor(new MultiLangRecordProcessorFactory(command, executor,
                    mapper(streamIdentifier.streamName()), configuration).shardRecordProcessor());
        }
    }

    /** On the initialize message: the attribute {@value #STREAM_NAME_FIELD} of the mapper, as a last field. */
    @JsonAppend(attrs = @JsonAppend.Attr(STREAM_NAME_FIELD))
    abstract static class InitializeNamingStream {
    }

    /** The streams of {@code streamNames}, fixed for the run; no former stream's leases are deleted. */
    static final class FixedStreams implements MultiStreamTracker {
        private final List<StreamConfig> streams;

        FixedStreams(List<StreamConfig> streams) {
            this.streams = Collections.unmodifiableList(new ArrayList<>(streams));
        }

        @Override
        public List<StreamConfig> streamConfigList() {
            return streams;
        }

        @Override
        public FormerStreamsLeasesDeletionStrategy formerStreamsLeasesDeletionStrategy() {
            return new FormerStreamsLeasesDeletionStrategy.NoLeaseDeletionStrategy();
        }
    }

    /**
     * The stock configurator, for a file that names its streams in {@code streamNames}: it
     * requires a stream name, and is given the first (the launcher removes it afterwards).
     */
    static KinesisClientLibConfigurator multiStreamConfigurator(final String firstStream) {
        return new KinesisClientLibConfigurator() {
            @Override
            public MultiLangDaemonConfiguration getConfiguration(Properties properties) {
                Properties withStream = new Properties();
                withStream.putAll(properties);
                withStream.setProperty("streamName", firstStream);
                return super.getConfiguration(withStream);
            }
        };
    }

    /** Feeds the scheduler's states to the shared status (which prints the ready line). */
    static final class StateListener implements WorkerStateChangeListener {
        private final WorkerStatus status;

        StateListener(WorkerStatus status) {
            this.status = status;
        }

        @Override
        public void onWorkerStateChange(WorkerState state) {
            status.changed(state, state == WorkerState.STARTED);
        }

        @Override
        public void onAllInitializationAttemptsFailed(Throwable e) {
            status.failed(e);
        }
    }
}
