"""The property keys a KCL daemon reads, as data.

``KCL1_KEYS`` lists every key that KCL 1.15.3's ``KinesisClientLibConfigurator``
turns into a ``with<Key>`` call on ``KinesisClientLibConfiguration``, the keys the
configurator reads itself (application, stream, credentials, worker id), the
keys of ``MultiLangDaemonConfig`` and the extra keys of the kclpy-local launcher.
Each entry is a :class:`KeySpec`; the table is derived from the public method
signatures and ``DEFAULT_*`` constants of the 1.15.3 jar.

``KCL1_UNSETTABLE`` names the ``with*`` methods that exist but cannot be reached
from a properties file (their parameter type has no decoder, or the decoder
always fails), with the reason.

How the configurator decodes a value (what :func:`check_value` mirrors):

- ``int``/``long``: ``Integer.parseInt`` / ``Long.parseLong`` on the raw value: no
  trimming, so ``"100 "`` is rejected (KCL logs a warning and keeps the default);
- ``boolean``: ``Boolean.parseBoolean``: only ``true`` (any case) is true, every
  other text, ``"true "`` included, silently means false;
- ``String``: trimmed; ``Set``: split on ``,``, each item trimmed, empties dropped;
- ``Date``: ``Long.parseLong`` seconds since the epoch;
- ``InitialPositionInStream``: upper-cased, then ``valueOf`` (no trimming).

Both tables are made of :class:`~kclpy_local._config.keyspec.KeySpec` entries.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .keyspec import KeySpec, KeyType, check_epoch_seconds, check_providers, java_integer, java_trim
from .keyspec import kcl_bool as _bool
from .keyspec import kcl_int as _int
from .keyspec import kcl_key as _kcl
from .keyspec import kcl_long as _long

__all__ = [
    "KCL1_KEYS",
    "KCL1_KEYS_BY_NAME",
    "KCL1_UNSETTABLE",
    "SDK2_ONLY_PROVIDERS",
    "check_value",
    "lookup",
]


def _cfg(name: str, type_: KeyType, description: str, *, required: bool = False) -> KeySpec:
    return KeySpec(name, type_, None, description, required, "configurator")


_I, _B, _S = KeyType.INT, KeyType.BOOLEAN, KeyType.STRING

KCL1_KEYS: tuple[KeySpec, ...] = (
    # Read by name by KinesisClientLibConfigurator itself.
    _cfg("applicationName", _S, "Application name; also the lease table name.", required=True),
    _cfg("streamName", _S, "Kinesis stream to consume.", required=True),
    _cfg(
        "AWSCredentialsProvider",
        KeyType.CREDENTIALS_PROVIDER,
        "Comma list of provider classes (prefix com.amazonaws.auth. optional); "
        "'Class|arg1|arg2' calls a String constructor; classes that fail to load are skipped.",
        required=True,
    ),
    _cfg(
        "AWSCredentialsProviderDynamoDB",
        KeyType.CREDENTIALS_PROVIDER,
        "Credentials for DynamoDB; defaults to AWSCredentialsProvider.",
    ),
    _cfg(
        "AWSCredentialsProviderCloudWatch",
        KeyType.CREDENTIALS_PROVIDER,
        "Credentials for CloudWatch; defaults to AWSCredentialsProvider.",
    ),
    _cfg("workerId", _S, "Worker identity in the lease table; a random UUID when unset."),
    # with<Key> setters of KinesisClientLibConfiguration.
    _kcl("tableName", _S, None, "Lease table name; defaults to applicationName."),
    _kcl(
        "kinesisEndpoint", _S, None, "Kinesis endpoint URL; unset means the region's AWS endpoint."
    ),
    _kcl(
        "dynamoDBEndpoint",
        _S,
        None,
        "DynamoDB endpoint URL; unset means the region's AWS endpoint.",
    ),
    _kcl("regionName", _S, None, "AWS region of the clients (and signing region for endpoints)."),
    _kcl(
        "initialPositionInStream",
        KeyType.INITIAL_POSITION,
        "LATEST",
        "Where a shard without checkpoint starts: LATEST or TRIM_HORIZON "
        "(AT_TIMESTAMP only through timestampAtInitialPositionInStream).",
        choices=("LATEST", "TRIM_HORIZON", "AT_TIMESTAMP"),
    ),
    _kcl(
        "timestampAtInitialPositionInStream",
        KeyType.DATE,
        None,
        "Start at this time (epoch seconds); sets the initial position to AT_TIMESTAMP.",
    ),
    _long(
        "failoverTimeMillis",
        "10000",
        "Lease duration: a lease not renewed for this long is taken over.",
    ),
    _long("shardSyncIntervalMillis", "60000", "Interval between shard syncs (new shards, leases)."),
    _int("maxRecords", "10000", "Maximum records per GetRecords call."),
    _long("idleTimeBetweenReadsInMillis", "1000", "Pause between GetRecords calls on a shard."),
    _bool(
        "callProcessRecordsEvenForEmptyRecordList",
        "false",
        "Send processRecords even when GetRecords returned nothing.",
    ),
    _long(
        "parentShardPollIntervalMillis", "10000", "Wait between checks that parent shards are done."
    ),
    _bool(
        "cleanupLeasesUponShardCompletion",
        "true",
        "Delete a shard's lease once it is fully processed.",
    ),
    _bool(
        "ignoreUnexpectedChildShards", "false", "Ignore child shards whose parents have no lease."
    ),
    _kcl("userAgent", _S, None, "Text appended to the SDK user agent."),
    _long("taskBackoffTimeMillis", "500", "Back-off after a failed task."),
    _long("metricsBufferTimeMillis", "10000", "How long metrics are buffered before a publish."),
    _int("metricsMaxQueueSize", "10000", "Maximum buffered metrics before a publish."),
    _kcl(
        "metricsLevel",
        _S,
        "DETAILED",
        "CloudWatch metrics level; NONE makes no CloudWatch calls.",
        choices=("NONE", "SUMMARY", "DETAILED"),
    ),
    _kcl(
        "metricsEnabledDimensions",
        KeyType.STRING_SET,
        "Operation,ShardId",
        "Metric dimensions to publish (Operation is always on); ALL for every one.",
    ),
    _bool(
        "validateSequenceNumberBeforeCheckpointing",
        "true",
        "Check a checkpoint's sequence number with GetShardIterator first.",
    ),
    _bool(
        "skipShardSyncAtStartupIfLeasesExist",
        "false",
        "Skip the start-up shard sync when the lease table has leases.",
    ),
    _long(
        "leasesRecoveryAuditorExecutionFrequencyMillis",
        "120000",
        "Interval of the lease/shard consistency auditor.",
        minimum=None,
    ),
    _int(
        "leasesRecoveryAuditorInconsistencyConfidenceThreshold",
        "3",
        "Audits in a row that must find a hole before a shard sync.",
        minimum=None,
    ),
    _int("maxLeasesForWorker", "2147483647", "Maximum leases one worker holds."),
    _int("maxLeasesToStealAtOneTime", "1", "Leases taken from other workers per round."),
    _int("initialLeaseTableReadCapacity", "10", "Read capacity of a new lease table."),
    _int("initialLeaseTableWriteCapacity", "10", "Write capacity of a new lease table."),
    _int("maxLeaseRenewalThreads", "20", "Threads renewing leases.", minimum=2),
    _int("retryGetRecordsInSeconds", None, "Start a second GetRecords after this many seconds."),
    _int("maxGetRecordsThreadPool", None, "Threads for asynchronous GetRecords retries."),
    _int("maxPendingProcessRecordsInput", "3", "Prefetch cache: pending batches."),
    _int("maxCacheByteSize", "8388608", "Prefetch cache: bytes."),
    _kcl(
        "dataFetchingStrategy",
        _S,
        "DEFAULT",
        "DEFAULT or PREFETCH_CACHED.",
        choices=("DEFAULT", "PREFETCH_CACHED"),
    ),
    _int("maxRecordsCount", "30000", "Prefetch cache: records."),
    _int(
        "timeoutInSeconds",
        None,
        "Time limit for a child's answer; on expiry the JVM halts. Unset: wait forever.",
        minimum=None,
    ),
    _long(
        "shutdownGraceMillis",
        "5000",
        "Grace period for a graceful shutdown (KCL's default; when the key is absent the "
        "kclpy-local launcher waits up to 20000 ms for a graceful shutdown on SIGTERM).",
    ),
    _long("idleMillisBetweenCalls", "1500", "Prefetch cache: pause between calls."),
    _long("logWarningForTaskAfterMillis", None, "Log a warning when a task runs longer."),
    _long("listShardsBackoffTimeInMillis", "1500", "Back-off between ListShards retries."),
    _int("maxListShardsRetryAttempts", "50", "ListShards retries."),
    _int("maxInitializationAttempts", "20", "Worker initialization attempts before giving up."),
    _long("leaseCleanupIntervalMillis", "60000", "Interval of the lease cleanup."),
    _long(
        "completedLeaseCleanupThresholdMillis",
        "300000",
        "Age after which a completed lease is cleaned up.",
    ),
    _long(
        "garbageLeaseCleanupThresholdMillis",
        "1800000",
        "Age after which a lease for a deleted shard is cleaned up.",
    ),
    # MultiLangDaemonConfig.
    KeySpec(
        "executableName",
        _S,
        None,
        "Command of the record processor child, split on spaces into argv.",
        required=True,
        source="multilang",
    ),
    KeySpec(
        "processingLanguage",
        _S,
        None,
        "Language name reported in the user agent.",
        source="multilang",
    ),
    KeySpec(
        "maxActiveThreads",
        _I,
        "0",
        "Threads for child processes; 0 or less means an unbounded pool.",
        source="multilang",
    ),
    KeySpec("http.proxyHost", _S, None, "HTTP proxy host for the AWS clients.", source="multilang"),
    KeySpec(
        "http.proxyPort", _I, None, "HTTP proxy port (with http.proxyHost).", source="multilang"
    ),
    # The kclpy-local launcher (names of upstream PR #785).
    KeySpec(
        "cloudWatchEndpoint",
        _S,
        None,
        "CloudWatch endpoint URL (kclpy-local launcher); unset means the region's AWS endpoint.",
        source="launcher",
    ),
    KeySpec(
        "isCBORProtocolDisabled",
        _B,
        "false",
        "Turn the AWS SDK's CBOR encoding off for Kinesis (kclpy-local launcher).",
        source="launcher",
    ),
    KeySpec(
        "initialLeaseSync",
        _S,
        "worker",
        "eager: on an empty lease table the launcher creates the leases before the worker "
        "starts, skipping the worker's random 1-30 s wait; worker: the KCL's own behaviour "
        "(kclpy-local launcher).",
        source="launcher",
        choices=("WORKER", "EAGER"),
    ),
    KeySpec(
        "readPause",
        _S,
        "always",
        "With dataFetchingStrategy = PREFETCH_CACHED: empty: a shard's next GetRecords "
        "waits idleMillisBetweenCalls only after a call that returned no records, so a "
        "backlog is read as fast as the engine answers, and a closed shard ends only once "
        "its last batch reached the processor (KCL 1.15's prefetch ends it when that batch "
        "is read, losing the batches still cached); always: the KCL's own behaviour, the "
        "pause before every call (kclpy-local launcher).",
        source="launcher",
        choices=("ALWAYS", "EMPTY"),
    ),
    KeySpec(
        "processorStart",
        _S,
        "initialize",
        "early: the record processors' child processes are started while the worker "
        "initializes, one per shard of the stream (at most maxLeasesForWorker, at most 64), "
        "and each shard consumer that initializes takes one instead of starting its own, "
        "so a shard's first batch does not wait for the processor's interpreter to start; "
        "those no shard took 10 s after the worker started are stopped; initialize: the "
        "KCL's own behaviour, each child started when its shard consumer initializes "
        "(kclpy-local launcher).",
        source="launcher",
        choices=("EARLY", "INITIALIZE"),
    ),
    KeySpec(
        "gracefulLeaseHandoff",
        _B,
        "true",
        "true: after a complete graceful shutdown the worker clears the owner of the leases "
        "it still holds, and takes leases without owner at its next lease-taker pass (up to "
        "its share) instead of waiting for them to expire; false: the KCL's own behaviour "
        "(kclpy-local launcher).",
        source="launcher",
    ),
)

KCL1_KEYS_BY_NAME: Mapping[str, KeySpec] = MappingProxyType({spec.name: spec for spec in KCL1_KEYS})

KCL1_UNSETTABLE: Mapping[str, str] = MappingProxyType(
    {
        "streamArn": "its parameter type (Arn) has no decoder in KCL 1.x",
        "billingMode": "its parameter type (BillingMode) has no decoder: the lease table is PROVISIONED",
        "shardSyncStrategyType": "its parameter type (ShardSyncStrategyType) has no decoder",
        "shardPrioritizationStrategy": "its parameter type (ShardPrioritization) has no decoder",
        "commonClientConfig": "ClientConfiguration values are not supported by the decoder",
        "kinesisClientConfig": "ClientConfiguration values are not supported by the decoder",
        "dynamoDBClientConfig": "ClientConfiguration values are not supported by the decoder",
        "cloudWatchClientConfig": "ClientConfiguration values are not supported by the decoder",
    }
)

# SDK v1 providers that can never be built from a properties file.
_UNBUILDABLE_PROVIDERS = {
    "AWSStaticCredentialsProvider": "its only constructor takes an AWSCredentials object",
}

#: Credentials providers of the AWS SDK for Java v2 (what KCL 2.x/3.x files name)
#: that do not exist in SDK v1, which KCL 1.x uses, with the v1 class to name instead.
SDK2_ONLY_PROVIDERS: dict[str, str | None] = {
    "DefaultCredentialsProvider": "DefaultAWSCredentialsProviderChain",
    "SystemPropertyCredentialsProvider": "SystemPropertiesCredentialsProvider",
    "StaticCredentialsProvider": None,
    "AnonymousCredentialsProvider": None,
    "AwsCredentialsProviderChain": None,
    "WebIdentityTokenFileCredentialsProvider": "WebIdentityTokenCredentialsProvider",
}
_SDK2_PACKAGE = "software.amazon.awssdk."


def lookup(key: str) -> KeySpec | None:
    """The 1.x key table's entry for ``key`` as written (the spelling the checks expect), or ``None``."""
    return KCL1_KEYS_BY_NAME.get(key)


def check_value(spec: KeySpec, value: str) -> str | None:
    """Return why KCL would reject or misread ``value`` for ``spec``, or ``None``.

    The check mirrors the decoder of the key's type; it does not report
    surrounding whitespace that the decoder trims (the validator warns about it).
    """
    kind = spec.type
    if kind in (KeyType.INT, KeyType.LONG, KeyType.DATE):
        number = java_integer(value, kind)
        if number is None:
            java = "int" if kind is KeyType.INT else "long"
            return f"{value!r} is not a Java {java}; KCL ignores it and keeps the default"
        if spec.minimum is not None and number < spec.minimum:
            return f"{number} is below the minimum {spec.minimum}; KCL ignores it and keeps the default"
        return check_epoch_seconds(number) if kind is KeyType.DATE else None
    if kind is KeyType.BOOLEAN:
        if value.lower() not in ("true", "false"):
            return f"{value!r} is not true or false; Java's Boolean.parseBoolean reads it as false"
        return None
    if kind is KeyType.INITIAL_POSITION:
        if value.upper() not in spec.choices:
            return f"{value!r} is not one of {', '.join(spec.choices)}; KCL ignores it"
        return None
    if kind is KeyType.CREDENTIALS_PROVIDER:
        return check_providers(value, _check_provider)
    trimmed = java_trim(value)
    if spec.choices and trimmed.upper() not in spec.choices:
        return f"{trimmed!r} is not one of {', '.join(spec.choices)}; KCL ignores it"
    return None


def _check_provider(cls: str) -> str | None:
    """Why KCL 1.x cannot build the provider class ``cls``, or ``None``."""
    simple = cls.rsplit(".", 1)[-1]
    reason = _UNBUILDABLE_PROVIDERS.get(simple)
    if reason:
        return f"{cls} cannot be built from a properties file: {reason}"
    if cls.startswith(_SDK2_PACKAGE) or simple in SDK2_ONLY_PROVIDERS:
        instead = SDK2_ONLY_PROVIDERS.get(simple)
        suggestion = f"; name {instead} instead" if instead else ""
        return (
            f"{cls} is an AWS SDK for Java v2 class (KCL 2.x/3.x); KCL 1.x builds SDK v1 "
            f"providers (com.amazonaws.auth){suggestion}"
        )
    return None
