"""Start-up and reading on local endpoints: the fast paths, on by default where they are safe.

A KCL worker's stock start-up is tuned for fleets on AWS: on an empty lease table a
KCL 1.x worker waits a random 1-30 s before it creates the leases, and a KCL 3.x
worker gets its first lease only after it has reported its metrics (every 30 s),
the leader has taken its lock and assigned leases (every 2 x failoverTimeMillis).
On local endpoints (every endpoint a loopback host: an emulator on this machine)
no fleet shares the table, so :func:`local_startup` adds, for each of these keys
the file leaves unset, the value that starts a worker within seconds, one note
each. Setting the key, to any value, keeps the file's (e.g.
``initialLeaseSync = worker`` for the KCL's own start-up). Nothing is added for a
file whose endpoints reach anything else.

A KCL 1.x worker also reads a backlog slowly by default: one GetRecords per shard
per loop of the worker (``idleTimeBetweenReadsInMillis``, 1 s), the processor
idle while the next batch is fetched. On local endpoints the 1.x keys add the
prefetch cache (the next batch is read while the processor handles this one),
paced by the launcher's ``readPause = empty`` (a shard that is caught up is polled
four times a second; a backlog is read as fast as the engine answers), and a
worker loop that hands the next prefetched batch over within 5 ms. The loop's
interval is added only where the file prefetches: without the cache each loop
reads from the engine. They also start the record processors while the worker
initializes (the launcher's ``processorStart = early``), so a shard's first
batch does not wait for its processor's interpreter to start.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .endpoints import ENDPOINT_KEYS, is_loopback_url
from .keyspec import LONG_RANGE, java_trim, parse_java_integer

__all__ = ["KCL1_STARTUP", "KCL3_STARTUP", "StartupKey", "local_endpoints", "local_startup"]


@dataclass(frozen=True, slots=True)
class StartupKey:
    """A key added on local endpoints when absent: its value, what it changes, and
    the stock value that brings the KCL's own behaviour back."""

    key: str
    value: str
    why: str
    stock: str
    #: When set, the key is added only where the values (with the keys added
    #: before it) satisfy it.
    when: Callable[[Mapping[str, str]], bool] | None = None


_EAGER = StartupKey(
    "initialLeaseSync",
    "eager",
    "a new application's leases are created before the worker starts, without its random 1-30 s wait",
    "worker",
)


def _prefetching(values: Mapping[str, str]) -> bool:
    return java_trim(values.get("dataFetchingStrategy", "")).upper() == "PREFETCH_CACHED"


#: KCL 1.x: the eager initial lease sync of the launcher, the worker's pause at
#: the end of its initialization, the processors started early, and the prefetch
#: cache with its pacing.
KCL1_STARTUP: tuple[StartupKey, ...] = (
    _EAGER,
    StartupKey(
        "parentShardPollIntervalMillis",
        "500",
        "the worker sleeps this long once initialized before it starts (and a child "
        "shard polls for its parents' end as often): 0.5 s instead of 10 s",
        "10000",
    ),
    StartupKey(
        "processorStart",
        "early",
        "the record processors start while the worker initializes, one per shard, so a "
        "shard's first batch does not wait for its processor's interpreter (those no shard "
        "took are stopped 10 s after the worker started)",
        "initialize",
    ),
    StartupKey(
        "dataFetchingStrategy",
        "PREFETCH_CACHED",
        "each shard's next batch is read while its processor handles this one",
        "DEFAULT",
    ),
    StartupKey(
        "readPause",
        "empty",
        "the prefetch cache pauses only after a GetRecords that returned no records, "
        "so a backlog is read as fast as the engine answers",
        "always",
        when=_prefetching,
    ),
    StartupKey(
        "idleMillisBetweenCalls",
        "250",
        "a shard that is caught up is polled every 0.25 s instead of every 1.5 s",
        "1500",
        when=_prefetching,
    ),
    StartupKey(
        "idleTimeBetweenReadsInMillis",
        "5",
        "the worker hands each shard's next prefetched batch to its processor within "
        "5 ms instead of 1 s (added only with the prefetch cache)",
        "1000",
        when=_prefetching,
    ),
)
_LEADER_LEASE = "dynamoDbLockBasedLeaderLeaseDurationInMillis"
_LEADER_HEARTBEAT = "dynamoDbLockBasedLeaderHeartbeatPeriodInMillis"
#: KCL 3.x: a worker's metrics samples and first report, lease assignment, a
#: consumer's start-up steps, lease duration, the leader lock, the eager initial
#: lease sync.
KCL3_STARTUP: tuple[StartupKey, ...] = (
    StartupKey(
        "inMemoryWorkerMetricsCaptureFrequencyMillis",
        "100",
        "a worker's first metrics report waits for samples of its CPU, taken every 1 s by default",
        "1000",
    ),
    StartupKey(
        "workerMetricsReporterFreqInMillis",
        "500",
        "leases go only to workers that have reported their metrics, every 30 s by default",
        "30000",
    ),
    StartupKey(
        "leaseAssignmentIntervalMillis",
        "500",
        "the leader assigns leases every 0.5 s instead of every 2 x failoverTimeMillis",
        "20000",
    ),
    StartupKey(
        "shardConsumerDispatchPollIntervalMillis",
        "100",
        "a new lease's consumer moves through its start-up states every 0.1 s instead of every 1 s",
        "1000",
    ),
    StartupKey(
        "failoverTimeMillis",
        "5000",
        "a stopped worker's leases expire after 5 s instead of 10 s",
        "10000",
    ),
    StartupKey(
        _LEADER_LEASE,
        "10000",
        "a killed leader blocks lease assignment for 10 s instead of 120 s",
        "120000",
    ),
    StartupKey(
        _LEADER_HEARTBEAT,
        "2000",
        "the leader renews its lock every 2 s instead of every 30 s",
        "30000",
    ),
    _EAGER,
)


def local_endpoints(values: Mapping[str, str]) -> bool:
    """Whether every endpoint key is set to a loopback URL."""
    urls = [java_trim(values.get(key, "")) for key in ENDPOINT_KEYS]
    return all(url and is_loopback_url(url) for url in urls)


def _long(value: str | None) -> int | None:
    return None if value is None else parse_java_integer(java_trim(value), *LONG_RANGE)


def _adjusted(spec: StartupKey, values: Mapping[str, str]) -> str:
    """The value to add, kept consistent with what the file sets: the launcher
    refuses a leader heartbeat that is not shorter than the leader lease."""
    heartbeat, lease = _long(values.get(_LEADER_HEARTBEAT)), _long(values.get(_LEADER_LEASE))
    if spec.key == _LEADER_LEASE and heartbeat is not None and heartbeat >= int(spec.value):
        return str(heartbeat * 5)
    if spec.key == _LEADER_HEARTBEAT and lease is not None and lease <= int(spec.value):
        return str(max(1, lease // 5))
    return spec.value


def local_startup(
    keys: tuple[StartupKey, ...],
    values: Mapping[str, str],
    endpoint_values: Callable[[Mapping[str, str]], Mapping[str, str]] = dict,
) -> tuple[dict[str, str], tuple[str, ...]]:
    """``values`` with the start-up ``keys`` it leaves unset added, when its endpoints
    (as ``endpoint_values`` reads them) are all local; and one note per key added."""
    out = dict(values)
    if not local_endpoints(endpoint_values(values)):
        return out, ()
    notes = []
    for spec in keys:
        if spec.key in values or (spec.when is not None and not spec.when(out)):
            continue
        out[spec.key] = _adjusted(spec, values)
        notes.append(
            f"added {spec.key} = {out[spec.key]}: {spec.why} "
            f"(set {spec.key} = {spec.stock} for the KCL's own)"
        )
    return out, tuple(notes)
