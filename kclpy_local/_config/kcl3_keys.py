"""The property keys the KCL 3.x daemon reads, as data.

``KCL3_KEYS`` lists every property the 3.x multilang daemon takes from a file:
the bean properties of ``MultiLangDaemonConfiguration`` (amazon-kinesis-client-
multilang 3.1.3, run on KCL 3.5.1), including those it delegates to its nested
beans (polling, graceful lease handoff, worker utilization aware assignment,
worker metrics table, coordinator state table), the properties of its
``fanoutConfig`` bean (reachable only as ``fanoutConfig.<name>``), the keys of
``MultiLangDaemonConfig`` and the extra keys of the kclpy-local 3.x launcher.
The table is derived from the public setters and the field types of those
classes (``javap``); the defaults are the KCL 3.5.1 configuration objects' own
(``LeaseManagementConfig``, ``CoordinatorConfig``, ``PollingConfig``...), since
the multilang daemon only passes on what a file sets.

How ``KinesisClientLibConfigurator`` reads a file (what :func:`check_value`
mirrors): every key is handed to commons-beanutils' ``setProperty`` as a bean
property name, so

- names are case-sensitive, and an unknown name is skipped silently; the only
  exception is the credentials prefix, read in any case
  (``AWSCredentialsProvider`` becomes ``awsCredentialsProvider``);
- ``a.b`` sets property ``b`` of the nested bean ``a`` (``fanoutConfig.consumerArn``);
  the AWS SDK client builders are beans too (``kinesisClient.endpointOverride``),
  where an unknown name stops the daemon at start;
- ``int``/``long``: trimmed, then ``Integer.valueOf``/``Long.valueOf``; a value that
  does not parse becomes 0, and 0 (or ``false``) in a primitive field is never
  passed on to the KCL, so the KCL's default stays, silently;
- ``boolean``: not trimmed, any case: ``true``, ``yes``, ``y``, ``on``, ``1`` are true,
  everything else (``"true "`` included) is false;
- ``double``: trimmed, ``Double.valueOf``; ``Duration``: trimmed ISO-8601
  (``Duration.parse``), not negative; tags: ``key=value`` pairs separated by commas;
- enumerations (``metricsLevel``, ``retrievalMode``, ``initialPositionInStream``,
  billing modes, ``clientVersionConfig``): upper-cased, not trimmed; an unknown
  value stops the daemon at start;
- ``initialPositionInStreamExtended``: ``Long.parseLong`` (not trimmed) seconds since
  the epoch, the initial position AT_TIMESTAMP; ``initialPositionInStream =
  AT_TIMESTAMP`` alone stops the daemon at start;
- ``String``: taken as it is (not trimmed); ``String[]``: a comma list, items trimmed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from .._names import stream_name_problem
from .kcl1_keys import KCL1_KEYS, KCL1_KEYS_BY_NAME, KCL1_UNSETTABLE, SDK2_ONLY_PROVIDERS
from .keyspec import KeySpec, KeyType, check_epoch_seconds, check_providers, java_integer, java_trim
from .keyspec import kcl_bool as _bool
from .keyspec import kcl_int as _int
from .keyspec import kcl_key as _kcl
from .keyspec import kcl_long as _long

__all__ = [
    "CLIENT_BUILDER_PREFIXES",
    "CREDENTIALS_PREFIX",
    "KCL1_ONLY_KEYS",
    "KCL3_BEANS",
    "KCL3_KEYS",
    "KCL3_KEYS_BY_NAME",
    "KCL3_PRIMITIVE",
    "KCL3_UNSETTABLE",
    "SDK1_TO_SDK2_PROVIDERS",
    "STREAM_NAMES",
    "bean_property",
    "check_value",
    "lookup",
    "sdk2_provider",
    "stream_names",
]

_I, _L, _S, _D = KeyType.INT, KeyType.LONG, KeyType.STRING, KeyType.DOUBLE

#: The launcher's key for several streams (the KCL's multi-stream mode).
STREAM_NAMES = "streamNames"
#: The key prefix the configurator reads in any case.
CREDENTIALS_PREFIX = "awscredentialsprovider"
#: Keys under these prefixes are properties of the AWS SDK client builders.
CLIENT_BUILDER_PREFIXES: tuple[str, ...] = (
    "kinesisClient.",
    "dynamoDbClient.",
    "cloudWatchClient.",
)
_BILLING_MODES = ("PROVISIONED", "PAY_PER_REQUEST")
_STATE_TABLE_NOTE = (
    "KCL 3.5 keeps this state in the lease table for a new application; the separate table "
    "serves applications that started on an earlier 3.x"
)


def _fanout(name: str, type_: KeyType, default: str | None, description: str) -> KeySpec:
    minimum = 1 if type_ in (_I, _L) else None
    return KeySpec(
        f"fanoutConfig.{name}", type_, default, description, False, "fanout", (), minimum
    )


def _launcher(
    name: str,
    type_: KeyType,
    default: str | None,
    description: str,
    *,
    choices: tuple[str, ...] = (),
    minimum: int | None = None,
) -> KeySpec:
    return KeySpec(name, type_, default, description, False, "launcher", choices, minimum)


def _as_in_kcl1(*names: str) -> tuple[KeySpec, ...]:
    """KCL 1.x's entries for ``names``: keys KCL 3.x reads with the same type, default and meaning."""
    return tuple(KCL1_KEYS_BY_NAME[name] for name in names)


def _kcl1_but(name: str, **changes: Any) -> KeySpec:
    """KCL 1.x's entry for ``name`` with the fields (``description``, ``default``...) that
    differ in KCL 3.x."""
    return replace(KCL1_KEYS_BY_NAME[name], **changes)


_TABLE_SUFFIXES = (
    "TableName",
    "BillingMode",
    "ReadCapacity",
    "WriteCapacity",
    "PointInTimeRecoveryEnabled",
    "DeletionProtectionEnabled",
    "Tags",
)


def _table_keys(prefix: str, table: str) -> tuple[KeySpec, ...]:
    """The six keys of one of KCL 3.x's own DynamoDB tables."""
    what = f"the {table} table"
    return (
        _kcl(
            f"{prefix}TableName",
            _S,
            None,
            f"Name of {what}; defaults to <applicationName>-{table}. {_STATE_TABLE_NOTE}.",
        ),
        _kcl(
            f"{prefix}BillingMode",
            _S,
            "PAY_PER_REQUEST",
            f"Billing mode of {what} when it is created.",
            choices=_BILLING_MODES,
        ),
        _long(
            f"{prefix}ReadCapacity", None, f"Read capacity of {what} (billing mode PROVISIONED)."
        ),
        _long(
            f"{prefix}WriteCapacity", None, f"Write capacity of {what} (billing mode PROVISIONED)."
        ),
        _bool(f"{prefix}PointInTimeRecoveryEnabled", "false", f"Point-in-time recovery of {what}."),
        _bool(f"{prefix}DeletionProtectionEnabled", "false", f"Deletion protection of {what}."),
        _kcl(f"{prefix}Tags", KeyType.TAGS, None, f"Tags of {what} when it is created."),
    )


KCL3_KEYS: tuple[KeySpec, ...] = (
    # The credentials keys: the configurator maps the prefix in any case.
    KeySpec(
        "AwsCredentialsProvider",
        KeyType.CREDENTIALS_PROVIDER,
        None,
        "Comma list of AWS SDK v2 credentials providers; short names are looked up in "
        "software.amazon.kinesis.multilang.auth and software.amazon.awssdk.auth.credentials; "
        "'Class|arg1|arg2' calls a String constructor or create(...); names that do not resolve "
        "are skipped. The prefix is read in any case (AWSCredentialsProvider too).",
        required=True,
        source="configurator",
    ),
    KeySpec(
        "AwsCredentialsProviderDynamoDB",
        KeyType.CREDENTIALS_PROVIDER,
        None,
        "Credentials for DynamoDB; defaults to AwsCredentialsProvider.",
        source="configurator",
    ),
    KeySpec(
        "AwsCredentialsProviderCloudWatch",
        KeyType.CREDENTIALS_PROVIDER,
        None,
        "Credentials for CloudWatch; defaults to AwsCredentialsProvider.",
        source="configurator",
    ),
    # Properties of MultiLangDaemonConfiguration. Keys KCL 3.x reads as KCL 1.x does
    # are KCL 1.x's entries; _kcl1_but names what is different.
    _kcl1_but("applicationName", source="kcl"),
    _kcl1_but("streamName", description="Kinesis stream to consume (or streamArn).", source="kcl"),
    _kcl("streamArn", _S, None, "ARN of the stream; wins over streamName, whose value it sets."),
    *_as_in_kcl1("tableName"),
    _kcl1_but("workerId", source="kcl"),
    _kcl(
        "workerIdentifier", _S, None, "The same as workerId (the name of the underlying property)."
    ),
    _kcl1_but(
        "regionName",
        description="AWS region of the three clients (and signing region for endpoints).",
    ),
    *_as_in_kcl1("kinesisEndpoint", "dynamoDBEndpoint"),
    _kcl1_but(
        "initialPositionInStream",
        description="Where a shard without checkpoint starts: LATEST or TRIM_HORIZON (AT_TIMESTAMP "
        "only through initialPositionInStreamExtended; here it stops the daemon at start).",
    ),
    _kcl(
        "initialPositionInStreamExtended",
        KeyType.DATE,
        None,
        "Start at this time (epoch seconds, not trimmed): the initial position AT_TIMESTAMP.",
    ),
    *_as_in_kcl1("failoverTimeMillis"),
    _long(
        "leaseAssignmentIntervalMillis",
        None,
        "How often the leader assigns leases to workers; unset: 2 x failoverTimeMillis.",
    ),
    _bool(
        "enablePriorityLeaseAssignment",
        "true",
        "Assign expired and unassigned leases before balancing the others.",
    ),
    _bool(
        "leaseTableDeletionProtectionEnabled", "false", "Deletion protection of a new lease table."
    ),
    _bool("leaseTablePitrEnabled", "false", "Point-in-time recovery of a new lease table."),
    *_as_in_kcl1("shardSyncIntervalMillis"),
    _kcl1_but(
        "cleanupLeasesUponShardCompletion",
        description="Delete a shard's lease once it is fully processed. false is never applied by "
        "the 3.x multilang daemon (it skips a primitive field's zero value): the KCL default stays.",
    ),
    *_as_in_kcl1("ignoreUnexpectedChildShards", "maxLeasesForWorker", "maxLeasesToStealAtOneTime"),
    _kcl1_but(
        "initialLeaseTableReadCapacity",
        description="Read capacity of a new lease table (billing mode PROVISIONED; KCL 3.x creates "
        "PAY_PER_REQUEST tables).",
    ),
    _kcl1_but(
        "initialLeaseTableWriteCapacity",
        description="Write capacity of a new lease table (billing mode PROVISIONED; KCL 3.x creates "
        "PAY_PER_REQUEST tables).",
    ),
    _kcl1_but("maxLeaseRenewalThreads", minimum=1),
    *_as_in_kcl1(
        "listShardsBackoffTimeInMillis",
        "maxListShardsRetryAttempts",
        "callProcessRecordsEvenForEmptyRecordList",
        "parentShardPollIntervalMillis",
    ),
    _bool(
        "skipShardSyncAtWorkerInitializationIfLeasesExist",
        "false",
        "Skip the start-up shard sync when the lease table has leases.",
    ),
    _long(
        "schedulerInitializationBackoffTimeMillis", "1000", "Wait between initialization attempts."
    ),
    _kcl(
        "clientVersionConfig",
        _S,
        "CLIENT_VERSION_CONFIG_3X",
        "CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X while migrating an application from KCL 2.x.",
        choices=("CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X", "CLIENT_VERSION_CONFIG_3X"),
    ),
    *_as_in_kcl1("taskBackoffTimeMillis", "metricsBufferTimeMillis", "metricsMaxQueueSize"),
    _kcl1_but(
        "metricsLevel",
        description="CloudWatch metrics level; NONE makes no CloudWatch calls (the SDK's CloudWatch "
        "client speaks Smithy RPC v2 CBOR only: the embedded moto answers it, a moto server of "
        "its own does not).",
    ),
    _kcl1_but("metricsEnabledDimensions", default="Operation"),
    *_as_in_kcl1("logWarningForTaskAfterMillis"),
    _kcl(
        "retrievalMode",
        _S,
        "DEFAULT",
        "POLLING (GetRecords, as KCL 1.x), FANOUT (enhanced fan-out, SubscribeToShard) or DEFAULT: "
        "polling when a polling key (maxRecords, idleTimeBetweenReadsInMillis, ...) is set, else fan-out.",
        choices=("FANOUT", "POLLING", "DEFAULT"),
    ),
    _bool(
        "validateSequenceNumberBeforeCheckpointing",
        None,
        "Accepted for compatibility; the 3.x daemon does not use it.",
    ),
    _long(
        "shutdownGraceMillis",
        "0",
        "Grace period for a graceful shutdown (KCL 3.x's default 0 gives up at once; when the key "
        "is absent the kclpy-local launcher waits up to 20000 ms on SIGTERM).",
    ),
    _kcl1_but("timeoutInSeconds", minimum=1),
    # Polling (PollingConfigBean, delegated).
    *_as_in_kcl1("retryGetRecordsInSeconds", "maxGetRecordsThreadPool"),
    _long(
        "idleTimeBetweenReadsInMillis",
        "1500",
        "Pause between GetRecords calls on a shard (polling); the KCL raises values below 200 to 200.",
        minimum=200,
    ),
    _long(
        "millisBehindLatestThresholdForReducedTps",
        "0",
        "Slow polling down while a shard is less than this far behind; 0: off.",
        minimum=None,
    ),
    _kcl1_but(
        "maxRecords", description="Maximum records per GetRecords call (polling; at most 10000)."
    ),
    # Graceful lease handoff (GracefulLeaseHandoffConfigBean, delegated).
    _long(
        "gracefulLeaseHandoffTimeoutMillis",
        "30000",
        "How long a shutting-down worker waits for its processor's checkpoint before handing a lease over.",
    ),
    _bool(
        "isGracefulLeaseHandoffEnabled",
        "true",
        "On shutdown, hand leases over to the next owner after a final checkpoint.",
    ),
    # Worker utilization aware assignment (WorkerUtilizationAwareAssignmentConfigBean, delegated).
    _long(
        "inMemoryWorkerMetricsCaptureFrequencyMillis",
        "1000",
        "How often a worker samples its own metrics (CPU).",
    ),
    _long(
        "workerMetricsReporterFreqInMillis",
        "30000",
        "How often a worker reports its metrics; lease assignment waits for a worker's first report.",
    ),
    _int("noOfPersistedMetricsPerWorkerMetrics", "10", "Metric values kept per worker."),
    _bool("disableWorkerMetrics", "false", "Balance leases by throughput only, not by CPU."),
    _kcl("maxThroughputPerHostKBps", _D, None, "Throughput limit per worker; unset: no limit."),
    _int("dampeningPercentage", "60", "Share of the load moved in one rebalancing."),
    _int(
        "reBalanceThresholdPercentage",
        "10",
        "Deviation from the average load that triggers a rebalancing.",
    ),
    _bool(
        "allowThroughputOvershoot", "true", "Let the last lease a worker takes exceed its share."
    ),
    _int("varianceBalancingFrequency", "3", "Rebalance by variance every N assignment rounds."),
    _kcl(
        "workerMetricsEMAAlpha",
        _D,
        "0.5",
        "Smoothing factor of the worker metrics' moving average.",
    ),
    _kcl(
        "staleWorkerMetricsEntryCleanupDuration",
        KeyType.DURATION,
        "PT24H",
        "Age after which a silent worker's metrics are deleted.",
    ),
    # Worker metrics table (WorkerMetricStatsTableConfigBean, delegated).
    *_table_keys("workerMetrics", "WorkerMetricStats"),
    # Coordinator state table (CoordinatorStateTableConfigBean, delegated).
    *_table_keys("coordinatorState", "CoordinatorState"),
    # Enhanced fan-out (the fanoutConfig bean; not delegated).
    _fanout("consumerArn", _S, None, "ARN of an existing stream consumer to use."),
    _fanout(
        "consumerName",
        _S,
        None,
        "Name of the stream consumer to register; defaults to applicationName.",
    ),
    _fanout("maxDescribeStreamSummaryRetries", _I, "10", "DescribeStreamSummary retries."),
    _fanout("maxDescribeStreamConsumerRetries", _I, "10", "DescribeStreamConsumer retries."),
    _fanout("registerStreamConsumerRetries", _I, "10", "RegisterStreamConsumer retries."),
    _fanout("retryBackoffMillis", _L, "1000", "Back-off between those retries."),
    # MultiLangDaemonConfig.
    *_as_in_kcl1("executableName"),
    _kcl1_but("processingLanguage", description="Language name logged with the user agent."),
    *_as_in_kcl1("maxActiveThreads"),
    # The kclpy-local 3.x launcher.
    _launcher(
        STREAM_NAMES,
        KeyType.STREAM_NAMES,
        None,
        "Several streams for one application, the KCL's multi-stream mode (kclpy-local launcher): "
        "distinct stream names separated by commas, instead of streamName and streamArn. Leases "
        "are keyed account:stream:creationEpoch:shardId (from each stream's ARN and creation "
        "time), and each record processor is told its shard's stream.",
    ),
    *_as_in_kcl1("cloudWatchEndpoint"),
    _kcl1_but(
        "isCBORProtocolDisabled",
        description="Turn the AWS SDK's CBOR encoding off for Kinesis (kclpy-local launcher; true "
        "or false only).",
    ),
    _kcl1_but(
        "initialLeaseSync",
        description="eager: on an empty lease table the launcher creates the leases before the "
        "scheduler runs, skipping its random 1-30 s wait; worker: the KCL's own behaviour "
        "(kclpy-local launcher).",
    ),
    _launcher(
        "dynamoDbLockBasedLeaderLeaseDurationInMillis",
        _L,
        "120000",
        "Lease of the leader lock (the Leader item of the lease table); a killed leader blocks "
        "lease assignment this long (kclpy-local launcher).",
        minimum=1,
    ),
    _launcher(
        "dynamoDbLockBasedLeaderHeartbeatPeriodInMillis",
        _L,
        "30000",
        "Heartbeat of the leader lock; shorter than its lease (kclpy-local launcher).",
        minimum=1,
    ),
    _launcher(
        "maxInitializationAttempts",
        _I,
        "20",
        "Scheduler initialization attempts before giving up (kclpy-local launcher).",
        minimum=1,
    ),
    _launcher(
        "shardConsumerDispatchPollIntervalMillis",
        _L,
        "1000",
        "How often the scheduler's loop looks at its leases (kclpy-local launcher).",
        minimum=1,
    ),
    _launcher(
        "kinesisHttpProtocol",
        _S,
        None,
        "HTTP1_1 or HTTP2: the protocol of the Kinesis client on a local kinesisEndpoint "
        "(http://, or a loopback host); unset: HTTP2 when the worker reads by enhanced fan-out, "
        "HTTP1_1 when it polls. An error with any other endpoint (kclpy-local launcher).",
        choices=("HTTP1_1", "HTTP2"),
    ),
    _launcher(
        "kinesisTrustLoopbackCertificates",
        KeyType.BOOLEAN,
        "false",
        "true: the Kinesis client accepts any certificate from an https:// kinesisEndpoint on a "
        "loopback host (an engine with a self-signed certificate, such as kinesis-mock's TLS "
        "port); an error with any other endpoint (kclpy-local launcher; true or false only).",
    ),
)

KCL3_KEYS_BY_NAME: Mapping[str, KeySpec] = MappingProxyType({spec.name: spec for spec in KCL3_KEYS})

#: Setters of ``MultiLangDaemonConfiguration`` a file cannot use, with the reason.
KCL3_UNSETTABLE: Mapping[str, str] = MappingProxyType(
    {
        "shardPrioritization": (
            "its type (ShardPrioritization, an interface) has no converter: the daemon stops at start"
        ),
    }
)

#: Nested beans whose properties ``MultiLangDaemonConfiguration`` delegates: the
#: key ``<bean>.<name>`` sets the same property as ``<name>``.
KCL3_BEANS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "pollingConfig": frozenset(
            {
                "retryGetRecordsInSeconds",
                "maxGetRecordsThreadPool",
                "idleTimeBetweenReadsInMillis",
                "millisBehindLatestThresholdForReducedTps",
                "maxRecords",
            }
        ),
        "gracefulLeaseHandoffConfigBean": frozenset(
            {"gracefulLeaseHandoffTimeoutMillis", "isGracefulLeaseHandoffEnabled"}
        ),
        "workerUtilizationAwareAssignmentConfigBean": frozenset(
            {
                "inMemoryWorkerMetricsCaptureFrequencyMillis",
                "workerMetricsReporterFreqInMillis",
                "noOfPersistedMetricsPerWorkerMetrics",
                "disableWorkerMetrics",
                "maxThroughputPerHostKBps",
                "dampeningPercentage",
                "reBalanceThresholdPercentage",
                "allowThroughputOvershoot",
                "varianceBalancingFrequency",
                "workerMetricsEMAAlpha",
                "staleWorkerMetricsEntryCleanupDuration",
            }
        ),
        "workerMetricStatsTableConfigBean": frozenset(
            f"workerMetrics{suffix}" for suffix in _TABLE_SUFFIXES
        ),
        "coordinatorStateTableConfigBean": frozenset(
            f"coordinatorState{suffix}" for suffix in _TABLE_SUFFIXES
        ),
    }
)

#: Keys whose field is a Java primitive: a value that does not parse becomes 0
#: (false), and 0 (false) is never passed on to the KCL.
KCL3_PRIMITIVE: frozenset[str] = frozenset(
    {
        "failoverTimeMillis",
        "leaseAssignmentIntervalMillis",
        "shardSyncIntervalMillis",
        "cleanupLeasesUponShardCompletion",
        "ignoreUnexpectedChildShards",
        "maxLeasesForWorker",
        "maxLeasesToStealAtOneTime",
        "initialLeaseTableReadCapacity",
        "initialLeaseTableWriteCapacity",
        "maxLeaseRenewalThreads",
        "listShardsBackoffTimeInMillis",
        "maxListShardsRetryAttempts",
        "callProcessRecordsEvenForEmptyRecordList",
        "parentShardPollIntervalMillis",
        "skipShardSyncAtWorkerInitializationIfLeasesExist",
        "schedulerInitializationBackoffTimeMillis",
        "taskBackoffTimeMillis",
        "metricsBufferTimeMillis",
        "metricsMaxQueueSize",
        "validateSequenceNumberBeforeCheckpointing",
        "shutdownGraceMillis",
        "idleTimeBetweenReadsInMillis",
        "millisBehindLatestThresholdForReducedTps",
        "maxRecords",
        "inMemoryWorkerMetricsCaptureFrequencyMillis",
        "workerMetricsReporterFreqInMillis",
        "noOfPersistedMetricsPerWorkerMetrics",
        "maxThroughputPerHostKBps",
        "dampeningPercentage",
        "reBalanceThresholdPercentage",
        "varianceBalancingFrequency",
        "workerMetricsEMAAlpha",
        "workerMetricsReadCapacity",
        "workerMetricsWriteCapacity",
        "coordinatorStateReadCapacity",
        "coordinatorStateWriteCapacity",
        "fanoutConfig.maxDescribeStreamSummaryRetries",
        "fanoutConfig.maxDescribeStreamConsumerRetries",
        "fanoutConfig.registerStreamConsumerRetries",
        "fanoutConfig.retryBackoffMillis",
    }
)

_KCL3_NAMES = frozenset(KCL3_KEYS_BY_NAME)
_CREDENTIAL_NAMES = frozenset(
    spec.name.lower() for spec in KCL3_KEYS if spec.source == "configurator"
)


def _kcl1_only_reason(name: str) -> str:
    reasons = {
        "timestampAtInitialPositionInStream": "KCL 3.x reads initialPositionInStreamExtended = <epoch seconds>",
        "skipShardSyncAtStartupIfLeasesExist": (
            "KCL 3.x's name for it is skipShardSyncAtWorkerInitializationIfLeasesExist"
        ),
        "gracefulLeaseHandoff": (
            "a key of the kclpy-local 1.x launcher; KCL 3.x hands leases over itself "
            "(isGracefulLeaseHandoffEnabled, default true)"
        ),
        "processorStart": (
            "a key of the kclpy-local 1.x launcher; the 3.x launcher starts each record "
            "processor when its shard consumer initializes"
        ),
        "http.proxyHost": "the 3.x multilang daemon has no proxy key",
        "http.proxyPort": "the 3.x multilang daemon has no proxy key",
        "userAgent": "the 3.x multilang daemon has no user agent key",
        "billingMode": "KCL 3.x creates PAY_PER_REQUEST lease tables; the file cannot change that",
    }
    if name in reasons:
        return reasons[name]
    if name in (
        "leaseCleanupIntervalMillis",
        "completedLeaseCleanupThresholdMillis",
        "garbageLeaseCleanupThresholdMillis",
    ):
        return "KCL 3.x cleans leases up on its own schedule, which the file cannot change"
    if name in (
        "maxPendingProcessRecordsInput",
        "maxCacheByteSize",
        "dataFetchingStrategy",
        "maxRecordsCount",
        "idleMillisBetweenCalls",
    ):
        return "the 3.x multilang daemon does not read the KCL's prefetch settings"
    if name.startswith("leasesRecoveryAuditor"):
        return "the 3.x multilang daemon does not read the lease recovery auditor's settings"
    return "the 3.x multilang daemon does not read it"


#: Keys KCL 1.x (or the kclpy-local 1.x launcher) reads and KCL 3.x ignores, with why.
KCL1_ONLY_KEYS: Mapping[str, str] = MappingProxyType(
    {
        name: _kcl1_only_reason(name)
        for name in [spec.name for spec in KCL1_KEYS]
        + [k for k in KCL1_UNSETTABLE if k != "streamArn"]
        if name not in _KCL3_NAMES and name.lower() not in _CREDENTIAL_NAMES
    }
)

#: SDK v1 credentials providers (what KCL 1.x files name) and the SDK v2 class that
#: does the same, for those that have one. The reverse of the named entries of
#: :data:`~kclpy_local._config.kcl1_keys.SDK2_ONLY_PROVIDERS`, plus v1 classes whose v2
#: counterpart has the same name or lives in the multilang daemon.
SDK1_TO_SDK2_PROVIDERS: Mapping[str, str | None] = MappingProxyType(
    {
        **{v1: v2 for v2, v1 in SDK2_ONLY_PROVIDERS.items() if v1 is not None},
        "EC2ContainerCredentialsProviderWrapper": "ContainerCredentialsProvider",
        "STSAssumeRoleSessionCredentialsProvider": "StsAssumeRoleCredentialsProvider",
        "AWSStaticCredentialsProvider": None,
        "ClasspathPropertiesFileCredentialsProvider": None,
        "PropertiesFileCredentialsProvider": None,
        "AWSCredentialsProviderChain": None,
    }
)
_SDK1_PACKAGES = ("com.amazonaws.auth.profile.", "com.amazonaws.auth.")
#: SDK v2 providers (and the multilang daemon's) that a file can build.
_SDK2_BUILDABLE = frozenset(
    {
        "DefaultCredentialsProvider",
        "EnvironmentVariableCredentialsProvider",
        "SystemPropertyCredentialsProvider",
        "ProfileCredentialsProvider",
        "InstanceProfileCredentialsProvider",
        "ContainerCredentialsProvider",
        "WebIdentityTokenFileCredentialsProvider",
        "AnonymousCredentialsProvider",
        "StsAssumeRoleCredentialsProvider",
        "KclStsAssumeRoleCredentialsProvider",
    }
)
_SDK2_UNBUILDABLE = {
    "StaticCredentialsProvider": "it is made from an AwsCredentials object",
    "ProcessCredentialsProvider": "it is made with a builder only",
    "AwsCredentialsProviderChain": "it is made from other providers",
}
_BEAN_TRUE = ("true", "yes", "y", "on", "1")
_BEAN_FALSE = ("false", "no", "n", "off", "0")
_JAVA_DOUBLE = re.compile(r"[+-]?(NaN|Infinity|((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)[fFdD]?)")
_JAVA_DURATION = re.compile(
    r"[-+]?P(?:[-+]?\d+D)?(?:T(?=[-+]?\d)(?:[-+]?\d+H)?(?:[-+]?\d+M)?(?:[-+]?\d+(?:[.,]\d{0,9})?S)?)?",
    re.IGNORECASE,
)
_MAXIMUM = {"maxRecords": 10000}


def stream_names(value: str) -> list[str]:
    """The names of a ``streamNames`` value, trimmed as the launcher trims them."""
    return [java_trim(part) for part in value.split(",")]


def _check_stream_names(value: str) -> str | None:
    names = stream_names(value)
    if not any(names):
        return "no stream is named; the launcher stops at start"
    seen: set[str] = set()
    for name in names:
        if not name:
            return f"{java_trim(value)!r} has an empty name; the launcher stops at start"
        problem = stream_name_problem(name)
        if problem is not None:
            return f"{name!r} is not a stream name ({problem}); the launcher stops at start"
        if name in seen:
            return f"{name} is named twice; the launcher stops at start"
        seen.add(name)
    return None


def bean_property(key: str) -> str:
    """The property the 3.x configurator sets for ``key``, spelled as in the key table:
    the credentials prefix in any case becomes ``AwsCredentialsProvider`` (the rest of
    the key stays case-sensitive), a delegated ``<bean>.<name>`` becomes ``<name>``,
    anything else stays as it is."""
    if key.lower().startswith(CREDENTIALS_PREFIX):
        return "AwsCredentialsProvider" + key[len(CREDENTIALS_PREFIX) :]
    bean, dot, name = key.partition(".")
    if dot and name in KCL3_BEANS.get(bean, ()):
        return name
    return key


def lookup(key: str) -> KeySpec | None:
    """The 3.x key table's entry for ``key`` as the daemon reads it, or ``None``."""
    return KCL3_KEYS_BY_NAME.get(bean_property(key))


def check_value(spec: KeySpec, value: str) -> str | None:
    """Return why the KCL 3.x daemon would reject or misread ``value`` for ``spec``, or ``None``."""
    kind = spec.type
    if kind in (KeyType.INT, KeyType.LONG):
        number = java_integer(java_trim(value), kind)
        if number is None:
            java = "int" if kind is KeyType.INT else "long"
            return f"{value!r} is not a Java {java}; KCL 3.x ignores it and keeps its default"
        if spec.minimum is not None and number < spec.minimum:
            return f"{number} is below the minimum {spec.minimum}"
        maximum = _MAXIMUM.get(spec.name)
        if maximum is not None and number > maximum:
            return f"{number} is above the maximum {maximum}; the daemon stops at start"
        return None
    if kind is KeyType.DOUBLE:
        if not _JAVA_DOUBLE.fullmatch(java_trim(value)):
            return f"{value!r} is not a number; KCL 3.x ignores it and keeps its default"
        return None
    if kind is KeyType.DATE:
        number = java_integer(value, kind)
        if number is None:
            return f"{value!r} is not a whole number of seconds; the daemon stops at start"
        return check_epoch_seconds(number)
    if kind is KeyType.BOOLEAN:
        if value.lower() not in _BEAN_TRUE + _BEAN_FALSE:
            return f"{value!r} is not true or false; KCL 3.x reads it as false"
        return None
    if kind is KeyType.DURATION:
        text = java_trim(value)
        if not _JAVA_DURATION.fullmatch(text) or text.upper() in ("P", "PT"):
            return (
                f"{value!r} is not an ISO-8601 duration (such as PT24H); the daemon stops at start"
            )
        if text.startswith("-"):
            return f"{value!r} is negative; the daemon stops at start"
        return None
    if kind is KeyType.TAGS:
        for pair in java_trim(value).split(","):
            tokens = java_trim(pair).split("=")
            while tokens and not tokens[-1]:
                tokens.pop()  # Java's split drops trailing empty strings
            if len(tokens) != 2:
                return f"{pair!r} is not key=value; KCL 3.x skips it"
        return None
    if kind is KeyType.CREDENTIALS_PROVIDER:
        return check_providers(value, _check_provider)
    if kind is KeyType.STREAM_NAMES:
        return _check_stream_names(value)
    if spec.choices and value.upper() not in spec.choices:
        padded = " (the value is not trimmed)" if java_trim(value).upper() in spec.choices else ""
        return (
            f"{value!r} is not one of {', '.join(spec.choices)}{padded}; the daemon stops at start"
        )
    if kind is KeyType.INITIAL_POSITION and value.upper() == "AT_TIMESTAMP":
        return "AT_TIMESTAMP alone stops the daemon at start"
    return None


def sdk2_provider(name: str) -> tuple[str, str | None] | None:
    """For an SDK v1 provider class ``name`` (short or in ``com.amazonaws.auth``):
    its simple name and the SDK v2 class to name instead (``None``: there is none).
    ``None`` when ``name`` is not an SDK v1 provider."""
    simple = name
    for package in _SDK1_PACKAGES:
        if name.startswith(package):
            simple = name[len(package) :]
            break
    else:
        if "." in name:
            return None
    if simple in SDK1_TO_SDK2_PROVIDERS:
        return simple, SDK1_TO_SDK2_PROVIDERS[simple]
    if name != simple:  # com.amazonaws.auth.X whose v2 class has the same name
        return simple, simple if simple in _SDK2_BUILDABLE else None
    return None


def _check_provider(cls: str) -> str | None:
    """Why KCL 3.x cannot build the provider class ``cls``, or ``None``."""
    v1 = sdk2_provider(cls)
    if v1 is not None:
        instead = f"; name {v1[1]} instead" if v1[1] else "; it has no AWS SDK v2 counterpart"
        return (
            f"{cls} is an AWS SDK for Java v1 class (KCL 1.x); KCL 3.x builds SDK v2 providers, "
            f"finds none and stops with 'no AWS credentials'{instead}"
        )
    simple = cls.rsplit(".", 1)[-1]
    reason = _SDK2_UNBUILDABLE.get(simple)
    if reason and (cls == simple or cls.startswith("software.amazon.awssdk.")):
        return f"{cls} cannot be built from a properties file: {reason}"
    return None
