"""The generation guard: never run KCL 1.x and KCL 3.x workers on one lease table at once.

KCL 1.x and 3.x share the lease schema (``leaseKey``, ``leaseOwner``,
``leaseCounter``, ``checkpoint``...), and a 3.x worker takes over a 1.x
application's table: it adds the global secondary index
``LeaseOwnerToLeaseKeyIndex`` and items of its own, and keeps the checkpoints.
Running both generations side by side is not safe, so before a daemon starts,
:func:`check_generations` looks at the table (read-only: consistent scans) for
workers of the *other* generation that hold live leases.

How the generations are told apart, in the table alone:

- a KCL 3.x worker reports its metrics in an item of the lease table whose
  ``leaseKey`` is the worker's id and whose ``entityType`` is
  ``WORKER_METRIC_STATS``; the leader assigns leases only to workers that have
  reported, so the owner of every 3.x lease has such an item;
- a KCL 1.x worker writes nothing but leases: a lease whose owner has no
  worker-metrics item is held by a 1.x worker;
- applications that ran KCL 3.0 to 3.4 keep worker metrics in a table of their
  own, ``<applicationName>-WorkerMetricStats`` (partition key ``wid``), which
  KCL 3.5 goes on using: when it exists, its workers count as 3.x workers too;
- KCL 3.x also leaves items that are not leases: ``Leader`` (the leader lock,
  ``entityType`` ``LEADER``, deleted on a graceful shutdown) and ``Migration3.0``
  (the client version state, ``CLIENT_VERSION_MIGRATION``). KCL 1.x cannot read
  any of these items: its lease serializer refuses an item without
  ``leaseCounter``, so a 1.x worker on such a table never initializes.

Liveness: a worker renews each lease it holds every ``failoverTimeMillis / 3``
(less 25 ms, in both generations), and each renewal increments the lease's
``leaseCounter``. The guard scans the table, and when leases are held by the
other generation it scans again every ``poll`` seconds for half of
``failoverTimeMillis`` (by default): a lease whose counter moved, still held by
the other generation, is live; the wait ends early once every such lease has
moved. A worker that was stopped or killed renews nothing: its leases are taken
over after ``failoverTimeMillis``, and the guard lets the new generation start.
The window assumes both generations run with about the same failover time (the
same properties file); a renewal interval longer than the window can go unseen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from .. import _aws
from .._config.generations import GENERATIONS, worker_generation
from .._config.generations import generation as _generation
from .._exceptions import DaemonError

__all__ = [
    "DEFAULT_FAILOVER_MS",
    "GenerationConflictError",
    "GuardResult",
    "OtherWorker",
    "TableView",
    "check_before_start",
    "check_generations",
    "classify",
]

log = logging.getLogger(__name__)

#: ``failoverTimeMillis`` when the properties do not set it (both generations).
DEFAULT_FAILOVER_MS = 10_000
#: ``entityType`` of the items KCL 3.x writes besides leases.
WORKER_METRICS = "WORKER_METRIC_STATS"
#: The worker metrics table of KCL 3.0-3.4 (``<table>`` + suffix), keyed by ``wid``.
LEGACY_METRICS_SUFFIX = "-WorkerMetricStats"
LEASE = "LEASE"
#: How many lease keys a message names before "and N more".
SHOWN_LEASES = 6
#: Short timeouts and one retry: the guard must not hold a start up for long.
_CONFIG = Config(
    retries={"total_max_attempts": 2, "mode": "standard"}, connect_timeout=3, read_timeout=10
)

Clock = Callable[[], float]
Sleep = Callable[[float], None]


def _label(number: int) -> str:
    return _generation(number).label


@dataclass(frozen=True, slots=True)
class TableView:
    """One scan of a lease table, sorted out by generation.

    ``leases``: every shard lease (items without ``entityType`` as KCL 1.x
    writes them, or with ``LEASE`` as KCL 3.x writes them), by lease key, as
    ``(owner, leaseCounter)``; ``metric_workers``: the workers with a 3.x
    worker-metrics item; ``kcl3_items``: the items that are not leases
    (``Leader``, ``Migration3.0``, worker metrics), each as ``(leaseKey,
    entityType)``.
    """

    leases: Mapping[str, tuple[str | None, int]]
    metric_workers: frozenset[str]
    kcl3_items: tuple[tuple[str, str], ...]

    def generation_of(self, owner: str) -> int:
        """The generation of a lease owner: the one that reports worker metrics (3)
        when it does, else the one that does not (1)."""
        return worker_generation(owner in self.metric_workers).number

    def held_by(self, generation: int) -> dict[str, tuple[str, int]]:
        """The leases held by workers of ``generation``: lease key -> (owner, counter)."""
        return {
            key: (owner, counter)
            for key, (owner, counter) in self.leases.items()
            if owner is not None and self.generation_of(owner) == generation
        }


def classify(items: Iterable[Mapping[str, Any]]) -> TableView:
    """Sort the items of a lease table (plain values, as :func:`_aws.read_leases`
    gives them in ``Lease.raw``) into leases and KCL 3.x items."""
    leases: dict[str, tuple[str | None, int]] = {}
    metric_workers: set[str] = set()
    others: list[tuple[str, str]] = []
    for item in items:
        key = str(item["leaseKey"])
        kind = item.get("entityType")
        if kind is None or kind == LEASE:
            owner = item.get("leaseOwner")
            leases[key] = (
                str(owner) if owner is not None else None,
                int(item.get("leaseCounter", 0)),
            )
        else:
            if kind == WORKER_METRICS:
                metric_workers.add(key)
            others.append((key, str(kind)))
    return TableView(leases, frozenset(metric_workers), tuple(sorted(others)))


@dataclass(frozen=True, slots=True)
class OtherWorker:
    """A worker of the other generation and the leases it holds (lease keys, sorted)."""

    worker_id: str
    leases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GuardResult:
    """What the guard found on ``table`` before starting ``generation``.

    ``live``: workers of the other generation whose leases were renewed while
    the guard watched; ``idle``: workers of the other generation that hold
    leases but renewed none of them (stopped or killed: their leases expire);
    ``kcl3_items``: with ``generation`` 1, the KCL 3.x items that KCL 1.x
    cannot read (``(leaseKey, entityType)``); ``watched``: seconds spent
    watching the counters (0 when no lease was held by the other generation).
    """

    table: str
    generation: int
    table_exists: bool = True
    live: tuple[OtherWorker, ...] = ()
    idle: tuple[OtherWorker, ...] = ()
    kcl3_items: tuple[tuple[str, str], ...] = ()
    watched: float = 0.0
    scans: int = field(default=0, compare=False)

    @property
    def other(self) -> int:
        return _generation(self.generation).other

    @property
    def refused(self) -> bool:
        """Whether the generation must not start on this table."""
        return bool(self.live) or bool(
            self.kcl3_items and _generation(self.generation).blocked_by_kcl3_items
        )

    def message(self) -> str:
        """One line saying why the start is refused ("" when it is not)."""
        if not self.refused:
            return ""
        start, other = _label(self.generation), _label(self.other)
        if self.live:
            ids = ", ".join(w.worker_id for w in self.live)
            keys = sorted(key for w in self.live for key in w.leases)
            shown = ", ".join(keys[:SHOWN_LEASES])
            if len(keys) > SHOWN_LEASES:
                shown += f" and {len(keys) - SHOWN_LEASES} more"
            who = f"KCL {other} worker{'s' if len(self.live) > 1 else ''} {ids}"
            verb = "hold" if len(self.live) > 1 else "holds"
            return (
                f"refusing to start KCL {start}: {who} {verb} live leases on table {self.table} "
                f"(shard{'s' if len(keys) > 1 else ''} {shown}); stop every {other} worker first, "
                f"then start {start}"
            )
        names = ", ".join(
            f"worker metrics of {key}" if kind == WORKER_METRICS else key
            for key, kind in self.kcl3_items
        )
        return (
            f"refusing to start KCL {start}: table {self.table} holds KCL 3.x items that KCL 1.x "
            f"cannot read ({names}): its worker would never initialize"
        )

    def hint(self) -> str:
        if self.live:
            return (
                f"a stopped or killed {_label(self.other)} worker stops renewing: its leases are "
                "taken over after failoverTimeMillis; running both generations on one table is "
                "unsafe (to start anyway: --no-generation-guard, or Daemon(guard=False))"
            )
        return (
            "keep the application on KCL 3.x; to go back to 1.x, stop every 3.x worker and delete "
            "those items (the leases and their checkpoints stay readable by 1.x), or start "
            "another applicationName"
        )


class GenerationConflictError(DaemonError):
    """Workers (or items) of the other KCL generation are on the lease table."""

    def __init__(self, result: GuardResult) -> None:
        self.result = result
        super().__init__(result.message())
        self.hint = result.hint()


def _scan(dynamodb: Any, table: str, legacy_workers: frozenset[str] = frozenset()) -> TableView:
    view = classify(lease.raw for lease in _aws.read_leases(dynamodb, table))
    if legacy_workers:
        view = replace(view, metric_workers=view.metric_workers | legacy_workers)
    return view


def _legacy_metric_workers(dynamodb: Any, table: str) -> frozenset[str]:
    """The workers in the KCL 3.0-3.4 worker metrics table, if there is one (and it can be read)."""
    workers: set[str] = set()
    try:
        pages = dynamodb.get_paginator("scan").paginate(
            TableName=table + LEGACY_METRICS_SUFFIX, ProjectionExpression="wid", ConsistentRead=True
        )
        for page in pages:
            workers.update(
                str(item["wid"]["S"]) for item in page["Items"] if "S" in item.get("wid", {})
            )
    except ClientError as exc:
        log.debug("no legacy worker metrics table for %s: %s", table, _aws.error_code(exc))
    return frozenset(workers)


def check_generations(
    dynamodb: Any,
    table: str,
    generation: int,
    *,
    failover_ms: int = DEFAULT_FAILOVER_MS,
    window: float | None = None,
    poll: float = 0.5,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> GuardResult:
    """Look at lease table ``table`` before starting KCL ``generation`` (1 or 3).

    Read-only. When leases are held by workers of the other generation, their
    counters are watched for ``window`` seconds (default: half of
    ``failover_ms``), scanning every ``poll`` seconds, and at least twice in all.
    A missing table is an empty result. Other errors (botocore's) propagate.
    """
    if generation not in GENERATIONS:
        known = " or ".join(str(n) for n in GENERATIONS)
        raise ValueError(f"generation must be {known}, not {generation!r}")
    kcl = _generation(generation)
    other = kcl.other
    try:
        first = _scan(dynamodb, table)
    except ClientError as exc:
        if _aws.error_code(exc) == "ResourceNotFoundException":
            return GuardResult(table, generation, table_exists=False, scans=1)
        raise
    kcl3_items = first.kcl3_items if kcl.blocked_by_kcl3_items else ()
    legacy = frozenset[str]()
    if first.held_by(1):  # owners without metrics in the lease table: 1.x, or 3.0-3.4 workers
        legacy = _legacy_metric_workers(dynamodb, table)
        first = replace(first, metric_workers=first.metric_workers | legacy)
    watched = first.held_by(other)
    if not watched:
        return GuardResult(table, generation, kcl3_items=kcl3_items, scans=1)

    span = failover_ms / 2000 if window is None else window
    started = clock()
    deadline = started + span
    renewed: dict[str, str] = {}  # lease key -> owner (of the other generation) that renewed it
    settled: set[str] = set()  # renewed, released, deleted or taken by this generation
    scans = 1
    while True:
        now = clock()
        if scans > 1 and (now >= deadline or len(settled) == len(watched)):
            break
        sleep(max(0.0, min(poll, deadline - now)))
        view = _scan(dynamodb, table, legacy)
        scans += 1
        for key, (_, counter) in watched.items():
            if key in settled:
                continue
            current = view.leases.get(key)
            if current is None:
                settled.add(key)
                continue
            owner, now_counter = current
            if now_counter == counter:
                continue
            settled.add(key)
            if owner is not None and view.generation_of(owner) == other:
                renewed[key] = owner
    live = _workers(renewed)
    idle = _workers({k: o for k, (o, _) in watched.items() if k not in settled})
    result = GuardResult(
        table,
        generation,
        live=live,
        idle=idle,
        kcl3_items=kcl3_items,
        watched=clock() - started,
        scans=scans,
    )
    log.debug("generation guard on %s: %s", table, result)
    return result


def _workers(owners: Mapping[str, str]) -> tuple[OtherWorker, ...]:
    by_worker: dict[str, list[str]] = {}
    for key, owner in owners.items():
        by_worker.setdefault(owner, []).append(key)
    return tuple(OtherWorker(w, tuple(sorted(keys))) for w, keys in sorted(by_worker.items()))


def _failover_ms(values: Mapping[str, str]) -> int:
    raw = values.get("failoverTimeMillis", "").strip()
    try:
        value = int(raw)
    except ValueError:
        return DEFAULT_FAILOVER_MS
    return value if value > 0 else DEFAULT_FAILOVER_MS


def check_before_start(
    values: Mapping[str, str], generation: int, **options: Any
) -> GuardResult | None:
    """The guard for a daemon about to start on resolved properties ``values``.

    Reads ``applicationName`` (the table), ``dynamoDBEndpoint``, ``regionName``
    and ``failoverTimeMillis``. Raises :class:`GenerationConflictError` when the
    start must be refused. When the table cannot be read (endpoint unreachable,
    no credentials, access denied) the guard is skipped with a log line and
    ``None`` is returned: the daemon reports such problems itself.
    """
    table = values.get("applicationName", "").strip()
    if not table or "${" in table or generation not in GENERATIONS:
        return None
    endpoint = values.get("dynamoDBEndpoint", "").strip() or None
    region = values.get("regionName", "").strip() or "us-east-1"
    try:
        dynamodb = _aws.session(endpoint, region).client(
            "dynamodb", endpoint_url=endpoint, region_name=region, config=_CONFIG
        )
        result = check_generations(
            dynamodb, table, generation, failover_ms=_failover_ms(values), **options
        )
    except (ClientError, BotoCoreError, NoCredentialsError, ValueError) as exc:
        log.warning(
            "generation guard skipped: cannot read lease table %s at %s: %s",
            table,
            endpoint or "AWS",
            exc,
        )
        return None
    if result.refused:
        raise GenerationConflictError(result)
    if result.idle:
        log.info(
            "generation guard: %s",
            ", ".join(
                f"KCL {_label(result.other)} worker {w.worker_id} holds {len(w.leases)} lease(s) on "
                f"{table} without renewing them (stopped): they are taken over after failoverTimeMillis"
                for w in result.idle
            ),
        )
    return result
