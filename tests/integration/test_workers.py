"""Several KCL 1.x workers on one application: lease balancing, failover after
``kill -9``, and the lease handoff on a graceful shutdown.

Every worker is a real JVM running KCL 1.15.3 through the launcher, with its own
``workerId`` and ``processors/recorder.py`` writing its own ledger (every record
processed) and checkpoint log (where each shard starts, every accepted
checkpoint). The workers share a stream and a lease table on one local AWS,
given to the tests as endpoint URLs only (the ``endpoints`` fixture).

Timings of KCL 1.x's lease coordinator (``LeaseCoordinator``, ``LeaseTaker``)
that bound the waits, with F = ``failoverTimeMillis``:

- the lease taker runs every 2 x (F + 25 ms); it counts a lease as expired when
  the lease's counter has not changed between two of its scans, so a dead
  worker's leases are taken one to two taker intervals after its last renewal;
- each pass takes what the worker lacks to reach its share (leases / workers,
  rounded up) from expired leases, or else steals at most
  ``maxLeasesToStealAtOneTime`` (default 1) from the most loaded worker, so
  balancing takes about one pass per stolen lease.

Timings are asserted with generous bounds; the benchmark bench/bench_failover.py
measures them.
"""

from __future__ import annotations

import collections
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import pytest

from kclpy_local import _aws
from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._jvm.bootstrap import Installation
from kclpy_local._jvm.daemon import LOCAL_PROFILE, Daemon

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RECORDER = ROOT / "processors" / "recorder.py"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
FAILOVER_MS = 5000
#: LeaseCoordinator: takerIntervalMillis = (leaseDurationMillis + epsilonMillis) * 2, epsilon 25 ms.
TAKER_INTERVAL = 2 * (FAILOVER_MS + 25) / 1000
SHARDS = 4
RELEASED = "kclpy-local: released lease "
TOOK_RELEASED = "kclpy-local: took released lease "

Key = tuple[str, int]  # (shard id, sequence number): one record of the stream


@dataclass(frozen=True)
class Endpoints:
    """Where the workers' Kinesis, DynamoDB and CloudWatch are."""

    kinesis: str
    dynamodb: str
    cloudwatch: str

    @classmethod
    def single(cls, url: str) -> Endpoints:
        return cls(url, url, url)


@pytest.fixture
def endpoints(fresh_emulator: EmbeddedEmulator) -> Endpoints:
    """The local AWS the workers share (the embedded moto, wiped before the test)."""
    return Endpoints.single(fresh_emulator.endpoint_url)


def read_jsonl(path: Path) -> list[dict[str, object]]:
    """The complete lines of a JSON-lines file that may be being written."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    complete = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line.strip()]


@dataclass
class Worker:
    """One daemon of the application, its ledger, checkpoint log and timestamped log."""

    worker_id: str
    daemon: Daemon
    ledger: Path
    checkpoints: Path
    lines: list[tuple[float, str]] = field(default_factory=list)
    #: Set when the test stops or kills it: its exit is no failure.
    stopped: bool = False

    def records(self) -> list[dict[str, object]]:
        return read_jsonl(self.ledger)

    def processed(self) -> list[Key]:
        return [(str(e["shard"]), int(str(e["sequence_number"]))) for e in self.records()]

    def events(self, event: str) -> list[dict[str, object]]:
        return [e for e in read_jsonl(self.checkpoints) if e["event"] == event]

    def last_checkpoints(self) -> dict[str, int]:
        """Per shard, the last checkpoint the daemon accepted from this worker's processors."""
        last: dict[str, int] = {}
        for e in self.events("checkpoint"):
            seq = str(e["sequence_number"])
            if seq.isdigit():
                last[str(e["shard"])] = int(seq)
        return last

    def tail(self, count: int = 40) -> str:
        return "\n".join(f"  {line}" for _, line in self.lines[-count:])


class Cluster:
    """Workers of one application on one stream; stops every daemon it started."""

    def __init__(
        self, endpoints: Endpoints, kcl1: Installation, tmp: Path, shards: int = SHARDS
    ) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.endpoints = endpoints
        self.kcl1 = kcl1
        self.tmp = tmp
        self.app = f"app-workers-{suffix}"
        self.stream = f"stream-workers-{suffix}"
        self.kinesis = _aws.client("kinesis", endpoints.kinesis)
        self.dynamodb = _aws.client("dynamodb", endpoints.dynamodb)
        self.shard_ids = _aws.ensure_stream(self.kinesis, self.stream, shards).shard_ids
        self.workers: dict[str, Worker] = {}

    def add(self, worker_id: str, **overrides: str) -> Worker:
        ledger = self.tmp / f"ledger-{worker_id}.jsonl"
        checkpoints = self.tmp / f"checkpoints-{worker_id}.jsonl"
        env = {
            **DUMMY_CREDENTIALS,
            "KCLPY_LOCAL_ENDPOINT": self.endpoints.kinesis,
            "KCLPY_LOCAL_LEDGER": str(ledger),
            "KCLPY_LOCAL_CHECKPOINTS": str(checkpoints),
        }
        settings = {
            "applicationName": self.app,
            "streamName": self.stream,
            "workerId": worker_id,
            "executableName": f"{sys.executable} {RECORDER}",
            "kinesisEndpoint": self.endpoints.kinesis,
            "dynamoDBEndpoint": self.endpoints.dynamodb,
            "cloudWatchEndpoint": self.endpoints.cloudwatch,
            "failoverTimeMillis": str(FAILOVER_MS),
            **overrides,
        }
        lines: list[tuple[float, str]] = []
        daemon = Daemon(
            LOCAL_PROFILE,
            installation=self.kcl1,
            env=env,
            cwd=ROOT,
            log=lambda line: lines.append((time.time(), line)),
            overrides=settings,
            ready_timeout=180,
        )
        worker = Worker(worker_id, daemon, ledger, checkpoints, lines)
        self.workers[worker_id] = worker
        return worker

    def start(self) -> None:
        """Start every worker at once, then wait for each to report STARTED."""
        for worker in self.workers.values():
            worker.daemon.start(wait_ready=False)
        for worker in self.workers.values():
            worker.daemon.wait_ready(180)

    def stop(self) -> None:
        """Stop every daemon; their logs stay in the test's directory for a failure's reader."""
        for worker in self.workers.values():
            worker.daemon.stop()
            log = self.tmp / f"log-{worker.worker_id}.txt"
            log.write_text(
                "".join(f"{at:.3f} {line}\n" for at, line in worker.lines), encoding="utf-8"
            )

    def __enter__(self) -> Cluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- observation ----------------------------------------------------------

    def owners(self) -> dict[str, str | None]:
        return {lease.lease_key: lease.owner for lease in _aws.read_leases(self.dynamodb, self.app)}

    def counts(self) -> dict[str | None, int]:
        return dict(collections.Counter(self.owners().values()))

    def check_alive(self) -> None:
        for worker in self.workers.values():
            code = worker.daemon.returncode
            if code is not None and not worker.stopped:
                raise AssertionError(
                    f"worker {worker.worker_id} exited with {code}:\n{worker.tail()}"
                )

    def wait_balanced(self, timeout: float) -> dict[str | None, int]:
        """Until every lease has a live owner, each worker at least one, none two more than
        another, and no lease has changed owner for ``failoverTimeMillis``: by then a
        worker whose lease was stolen has seen it fail to renew (every F / 3) and stopped
        processing that shard."""
        deadline = time.monotonic() + timeout
        counts: dict[str | None, int] = {}
        owners: dict[str, str | None] = {}
        steady_since = time.monotonic()
        while time.monotonic() < deadline:
            self.check_alive()
            now, latest = time.monotonic(), self.owners()
            if latest != owners:
                owners, steady_since = latest, now
            counts = dict(collections.Counter(owners.values()))
            mine = [counts.get(w, 0) for w in self.workers]
            balanced = (
                sum(mine) == len(self.shard_ids) and min(mine) >= 1 and max(mine) - min(mine) <= 1
            )
            if balanced and now - steady_since >= FAILOVER_MS / 1000:
                return counts
            time.sleep(0.25)
        raise AssertionError(
            f"leases not spread over {list(self.workers)} within {timeout:.0f}s: {counts}"
        )

    def wait_processing(self, since: float, timeout: float = 60) -> None:
        """Until every worker has processed a record processed after ``since``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if all(
                any(float(str(e["processed_at"])) > since for e in w.records())
                for w in self.workers.values()
                if not w.stopped
            ):
                return
            time.sleep(0.25)
        raise AssertionError("not every worker processed records")

    def wait_all_processed(self, put: list[_aws.PutResult], timeout: float = 90) -> None:
        wanted = {(r.shard_id, int(r.sequence_number)) for r in put}
        deadline = time.monotonic() + timeout
        missing = wanted
        while time.monotonic() < deadline:
            seen = {key for w in self.workers.values() for key in w.processed()}
            missing = wanted - seen
            if not missing:
                return
            time.sleep(0.5)
        raise AssertionError(
            f"{len(missing)} of {len(wanted)} records never processed: {sorted(missing)[:10]}"
        )


class Putter(threading.Thread):
    """Puts small batches continuously until stopped; keeps where each record landed."""

    def __init__(self, cluster: Cluster, batch: int = 10, pause: float = 0.1) -> None:
        super().__init__(name="putter", daemon=True)
        self.kinesis = _aws.client("kinesis", cluster.endpoints.kinesis)
        self.stream = cluster.stream
        self.batch = batch
        self.pause = pause
        self.results: list[_aws.PutResult] = []
        self.error: BaseException | None = None
        self._halt = threading.Event()
        self._count = 0

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                records = [
                    (f"r-{self._count + i}".encode(), uuid.uuid4().hex) for i in range(self.batch)
                ]
                self._count += self.batch
                self.results.extend(_aws.put_records(self.kinesis, self.stream, records))
                self._halt.wait(self.pause)
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def finish(self) -> list[_aws.PutResult]:
        self._halt.set()
        self.join(30)
        if self.error is not None:
            raise AssertionError(f"putting records failed: {self.error!r}")
        return list(self.results)


@contextlib.contextmanager
def putting(cluster: Cluster) -> Iterator[Putter]:
    """A running :class:`Putter`, stopped on the way out whatever happens."""
    putter = Putter(cluster)
    putter.start()
    try:
        yield putter
    finally:
        putter._halt.set()
        putter.join(30)


@dataclass
class Takeover:
    """When the killed worker's shards got a new owner and a record processed by it."""

    owner_at: dict[str, float] = field(default_factory=dict)
    record_at: dict[str, float] = field(default_factory=dict)


def wait_takeover(
    cluster: Cluster, dead: str, shards: set[str], since: float, timeout: float
) -> Takeover:
    """Poll the lease table and the survivors' ledgers until each of ``shards`` has
    a live owner and a record processed by it after ``since``."""
    found = Takeover()
    survivors = [w for w in cluster.workers.values() if w.worker_id != dead]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = time.time()
        for shard, owner in cluster.owners().items():
            if shard in shards and owner not in (None, dead) and shard not in found.owner_at:
                found.owner_at[shard] = now - since
        for worker in survivors:
            for entry in worker.records():
                shard, at = str(entry["shard"]), float(str(entry["processed_at"]))
                if shard in shards and at > since:
                    found.record_at[shard] = min(found.record_at.get(shard, math.inf), at - since)
        if set(found.owner_at) == shards and set(found.record_at) == shards:
            return found
        time.sleep(0.1)
    raise AssertionError(
        f"shards {sorted(shards)} of {dead} not taken over within {timeout:.0f}s "
        f"(owners {cluster.owners()}, records seen for {sorted(found.record_at)})"
    )


def duplicates(cluster: Cluster) -> dict[Key, list[str]]:
    """Records processed more than once, with the workers that processed them."""
    by_key: dict[Key, list[str]] = collections.defaultdict(list)
    for worker in cluster.workers.values():
        for key in worker.processed():
            by_key[key].append(worker.worker_id)
    return {key: ids for key, ids in by_key.items() if len(ids) > 1}


def start_sequence(worker: Worker, shard: str, after: float) -> int | None:
    """Where ``worker`` started ``shard`` the first time after ``after``: the checkpoint it was given."""
    for e in worker.events("initialize"):
        if e["shard"] == shard and float(str(e["at"])) > after:
            seq = str(e["sequence_number"])
            return int(seq) if seq.isdigit() else None
    return None


@pytest.mark.parametrize("count", [2, 3])
def test_leases_spread_and_kill_9_loses_no_record(
    count: int, endpoints: Endpoints, kcl1: Installation, tmp_path: Path
) -> None:
    with Cluster(endpoints, kcl1, tmp_path) as cluster:
        for i in range(count):
            cluster.add(f"worker-{i}")
        cluster.start()
        # Every worker's first taker pass runs at its start; then one lease is stolen per pass.
        counts = cluster.wait_balanced(timeout=(SHARDS + 1) * TAKER_INTERVAL + 30)
        assert set(counts) == set(cluster.workers), counts

        with putting(cluster) as putter:
            started = time.time()
            cluster.wait_processing(since=started)
            time.sleep(2)  # a few batches checkpointed by every worker
            owners = cluster.owners()
            dead = max(cluster.workers, key=lambda w: sum(o == w for o in owners.values()))
            shards = {s for s, o in owners.items() if o == dead}
            killed = cluster.workers[dead]
            killed.stopped = True
            killed_at = time.time()
            os.killpg(killed.daemon.pid or 0, signal.SIGKILL)  # the JVM and its processors
            assert killed.daemon.wait(10) == -signal.SIGKILL
            # KCL 1.x: taken at the second taker scan after the last renewal, 1 to 2 taker intervals.
            takeover = wait_takeover(
                cluster, dead, shards, killed_at, timeout=2 * TAKER_INTERVAL + 40
            )
            time.sleep(1)
            put = putter.finish()
        cluster.wait_all_processed(put)
    survivors = [w for w in cluster.workers.values() if w is not killed]

    # None lost.
    seen = {key for w in cluster.workers.values() for key in w.processed()}
    wanted = {(r.shard_id, int(r.sequence_number)) for r in put}
    assert wanted <= seen, f"{len(wanted - seen)} records lost"

    # Duplicates only from the killed worker's last records after its last checkpoint.
    checkpoints = killed.last_checkpoints()
    dups = duplicates(cluster)
    for (shard, seq), ids in dups.items():
        assert shard in shards, f"record {shard}/{seq} of a live worker's shard processed by {ids}"
        assert dead in ids and len(ids) == 2, f"record {shard}/{seq} processed by {ids}"
        assert seq > checkpoints.get(shard, 0), (
            f"record {shard}/{seq} processed again although {dead} checkpointed {checkpoints.get(shard)}"
        )
    # The new owner starts at the killed worker's last checkpoint in the lease table: exactly
    # the killed worker's records after it are processed twice.
    for shard in shards:
        starts = [s for w in survivors if (s := start_sequence(w, shard, killed_at)) is not None]
        assert len(starts) == 1, f"{shard} started {starts} times after the kill"
        start = starts[0]
        assert start >= checkpoints.get(shard, 0)
        after_checkpoint = {k for k in killed.processed() if k[0] == shard and k[1] > start}
        assert after_checkpoint == {k for k in dups if k[0] == shard}

    print(
        f"\n{count} workers, {len(shards)} shard(s) of {dead} killed: new owner after "
        f"{max(takeover.owner_at.values()):.1f}s, first record after {max(takeover.record_at.values()):.1f}s "
        f"(failoverTimeMillis {FAILOVER_MS}, taker interval {TAKER_INTERVAL:.2f}s); "
        f"{len(put)} records, {len(dups)} duplicate(s)"
    )


def test_sigterm_hands_the_leases_over_at_the_next_taker_pass(
    endpoints: Endpoints, kcl1: Installation, tmp_path: Path
) -> None:
    with Cluster(endpoints, kcl1, tmp_path) as cluster:
        stopping, staying = cluster.add("worker-stopping"), cluster.add("worker-staying")
        cluster.start()
        cluster.wait_balanced(timeout=(SHARDS + 1) * TAKER_INTERVAL + 30)
        with putting(cluster) as putter:
            cluster.wait_processing(since=time.time())
            shards = {s for s, o in cluster.owners().items() if o == stopping.worker_id}
            stopping.stopped = True
            stopped_at = time.time()
            stopping.daemon.terminate()
            deadline = time.monotonic() + 2 * TAKER_INTERVAL + 40
            while set(cluster.owners().values()) != {staying.worker_id}:
                cluster.check_alive()
                assert time.monotonic() < deadline, f"not handed over: {cluster.owners()}"
                time.sleep(0.1)
            taken_at = time.time()
            time.sleep(1)
            put = putter.finish()
        assert stopping.daemon.wait(30) == 128 + signal.SIGTERM, stopping.tail()
        cluster.wait_all_processed(put)

    released = {
        line[len(RELEASED) :].split(" ")[0]: at
        for at, line in stopping.lines
        if line.startswith(RELEASED)
    }
    took = {
        line[len(TOOK_RELEASED) :].split(" ")[0]
        for _, line in staying.lines
        if line.startswith(TOOK_RELEASED)
    }
    assert set(released) == shards, stopping.tail()
    assert took == shards, staying.tail()
    # Released after the processors' shutdownRequested checkpoints, taken at the next taker pass.
    assert taken_at - max(released.values()) <= TAKER_INTERVAL + 5
    assert taken_at - stopped_at < FAILOVER_MS / 1000 + TAKER_INTERVAL + 10

    # Graceful: every record once; the new owner starts where the stopping worker checkpointed.
    assert not duplicates(cluster)
    seen = {key for w in cluster.workers.values() for key in w.processed()}
    assert {(r.shard_id, int(r.sequence_number)) for r in put} <= seen
    checkpoints = stopping.last_checkpoints()
    for shard in shards:
        assert start_sequence(staying, shard, stopped_at) == checkpoints.get(shard)
    print(
        f"\nSIGTERM: {len(shards)} lease(s) released {max(released.values()) - stopped_at:.1f}s after "
        f"the signal, all taken {taken_at - stopped_at:.1f}s after it (failoverTimeMillis {FAILOVER_MS}, "
        f"taker interval {TAKER_INTERVAL:.2f}s); {len(put)} records, no duplicate"
    )


def test_sigterm_hands_over_more_released_leases_than_the_share(
    endpoints: Endpoints, kcl1: Installation, tmp_path: Path
) -> None:
    """Three of four leases released to a worker holding one: KCL 1.x's own taker pass
    fails then (its steal path meets the owner-less leases as a worker named null), the
    launcher's look for released leases still takes them at that pass."""
    with Cluster(endpoints, kcl1, tmp_path) as cluster:
        first = cluster.add("worker-first")
        first.daemon.start()
        deadline = time.monotonic() + 60
        while cluster.counts() != {first.worker_id: SHARDS}:
            assert time.monotonic() < deadline, cluster.owners()
            time.sleep(0.25)
        second = cluster.add("worker-second")
        second.daemon.start()
        # Its first taker pass, at its start, steals one lease (maxLeasesToStealAtOneTime = 1).
        deadline = time.monotonic() + TAKER_INTERVAL + 30
        while cluster.counts().get(second.worker_id) != 1:
            assert time.monotonic() < deadline, cluster.owners()
            time.sleep(0.1)
        first.stopped = True
        stopped_at = time.time()
        first.daemon.terminate()
        deadline = time.monotonic() + 2 * TAKER_INTERVAL + 40
        while cluster.counts() != {second.worker_id: SHARDS}:
            cluster.check_alive()
            assert time.monotonic() < deadline, f"not handed over: {cluster.owners()}"
            time.sleep(0.1)
        taken_at = time.time()
    released = [at for at, line in first.lines if line.startswith(RELEASED)]
    took = [line for _, line in second.lines if line.startswith(TOOK_RELEASED)]
    assert len(released) == SHARDS - 1, first.tail()
    assert len(took) == SHARDS - 1, second.tail()
    assert taken_at - max(released) <= TAKER_INTERVAL + 5
    print(
        f"\nSIGTERM, {len(released)} leases released to a worker holding 1: all taken "
        f"{taken_at - stopped_at:.1f}s after the signal"
    )


@pytest.mark.parametrize("handoff", ["false", "true"])
def test_graceful_shutdown_releases_leases_only_with_handoff(
    handoff: str, endpoints: Endpoints, kcl1: Installation, tmp_path: Path
) -> None:
    """KCL 1.x itself leaves a stopped worker's leases to expire; the launcher clears the owner."""
    with Cluster(endpoints, kcl1, tmp_path, shards=2) as cluster:
        worker = cluster.add("worker-only", gracefulLeaseHandoff=handoff)
        cluster.start()
        cluster.wait_balanced(timeout=60)
        worker.stopped = True
        worker.daemon.terminate()
        assert worker.daemon.wait(40) == 128 + signal.SIGTERM, worker.tail()
        owners = cluster.owners()
    lines = [line for _, line in worker.lines]
    if handoff == "true":
        assert set(owners.values()) == {None}, owners
        assert sorted(line.split(" ")[3] for line in lines if line.startswith(RELEASED)) == sorted(
            owners
        )
    else:
        assert set(owners.values()) == {worker.worker_id}, owners
        assert not [line for line in lines if line.startswith(RELEASED)]


def test_bad_handoff_value_is_a_usage_error(
    java_bin: str, kcl1: Installation, unreachable_properties: Callable[..., Path]
) -> None:
    props = unreachable_properties(gracefulLeaseHandoff="sometimes")
    argv = [java_bin, "-Dfile.encoding=UTF-8", "-Daws.accessKeyId=it", "-Daws.secretKey=it"]
    argv += ["-cp", kcl1.classpath(), kcl1.main_class, str(props)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1
    assert "gracefulLeaseHandoff must be true or false, not 'sometimes'" in proc.stderr
