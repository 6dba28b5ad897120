"""Helpers for tests with several KCL 1.x workers on one stream, records flowing
continuously and the stream being resharded under them.

- :class:`Cluster`: workers of one application (each a real JVM through the
  launcher, with its own ``workerId``, running ``processors/recorder.py`` with its
  own ledger and checkpoint log); stops every daemon it started.
- :class:`KeyedProducer`: a thread putting records with a few partition keys, each
  record's data carrying a per-key counter (``key:counter``), so the order per key
  can be checked after processing.
- resharding through boto3 (:func:`split_shard`, :func:`merge_shards`, waiting for
  ACTIVE), partition keys chosen by hash key range (:func:`keys_in`).
- :func:`key_order_violations`: per key, the counters in the order processed.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from kclpy_local import _aws
from kclpy_local._jvm.bootstrap import Installation
from kclpy_local._jvm.daemon import LOCAL_PROFILE, Daemon

ROOT = Path(__file__).resolve().parents[2]
RECORDER = ROOT / "processors" / "recorder.py"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
SHARD_END = "SHARD_END"

Key = tuple[str, int]  # (shard id, sequence number): one record of the stream


def wait_for(check: Callable[[], bool], timeout: float, what: str, poll: float = 0.25) -> float:
    """Poll ``check`` until it is true; the seconds it took. AssertionError on timeout."""
    start = time.monotonic()
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() - start >= timeout:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(poll)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


@dataclass(frozen=True)
class Endpoints:
    """Where the workers' Kinesis, DynamoDB and CloudWatch are."""

    kinesis: str
    dynamodb: str
    cloudwatch: str

    @classmethod
    def single(cls, url: str) -> Endpoints:
        return cls(url, url, url)


# -- workers ------------------------------------------------------------------------


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
    killed: bool = False

    def records(self) -> list[dict[str, Any]]:
        """The ledger: one entry per record processed, in the order written."""
        return read_jsonl(self.ledger)

    def processed(self) -> list[Key]:
        return [(str(e["shard"]), int(str(e["sequence_number"]))) for e in self.records()]

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        """The checkpoint log's ``initialize`` / ``checkpoint`` entries (all with ``None``)."""
        return [e for e in read_jsonl(self.checkpoints) if event is None or e["event"] == event]

    def shard_ends(self) -> dict[str, float]:
        """Per shard, when this worker's processor checkpointed SHARD_END (the first time)."""
        ends: dict[str, float] = {}
        for e in self.events("checkpoint"):
            if e["sequence_number"] == SHARD_END:
                ends.setdefault(str(e["shard"]), float(e["at"]))
        return ends

    def kill(self) -> None:
        """``kill -9`` of the JVM and its record processors (one process group)."""
        self.stopped = self.killed = True
        pid = self.daemon.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.daemon.wait(30)

    def tail(self, count: int = 40) -> str:
        return "\n".join(f"  {line}" for _, line in self.lines[-count:])


class Cluster:
    """Workers of one application on one new stream; stops every daemon it started.

    ``settings`` are properties on top of the local profile for every worker
    (each :meth:`add` may add more).
    """

    def __init__(
        self,
        endpoints: Endpoints,
        kcl1: Installation,
        tmp: Path,
        *,
        shards: int,
        name: str,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.kcl1 = kcl1
        self.tmp = tmp
        self.app = f"app-{name}"
        self.stream = f"stream-{name}"
        self.settings = dict(settings or {})
        self.kinesis = _aws.client("kinesis", endpoints.kinesis)
        self.dynamodb = _aws.client("dynamodb", endpoints.dynamodb)
        self.shard_ids = _aws.ensure_stream(self.kinesis, self.stream, shards).shard_ids
        self.workers: dict[str, Worker] = {}

    def add(self, worker_id: str, **overrides: str) -> Worker:
        ledger = self.tmp / f"ledger-{worker_id}.jsonl"
        checkpoints = self.tmp / f"checkpoints-{worker_id}.jsonl"
        env = {
            **DUMMY_CREDENTIALS,
            "KCLPY_LOCAL_ENDPOINT": self.endpoints.dynamodb,
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
            **self.settings,
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
            # The launcher's graceful shutdown takes up to 20 s; leave it room on busy cores.
            stop_timeout=60,
        )
        worker = Worker(worker_id, daemon, ledger, checkpoints, lines)
        self.workers[worker_id] = worker
        return worker

    def start(self, *workers: Worker, wait_ready: bool = True) -> None:
        """Start the given workers (default: all not started yet) at once, then wait
        for each to report STARTED."""
        chosen = workers or tuple(w for w in self.workers.values() if w.daemon.pid is None)
        for worker in chosen:
            worker.daemon.start(wait_ready=False)
        if wait_ready:
            for worker in chosen:
                worker.daemon.wait_ready(180)

    def live(self) -> list[Worker]:
        return [w for w in self.workers.values() if not w.stopped]

    def stop(self) -> None:
        """Stop every daemon gracefully (all signalled first, then each awaited); their
        logs stay in the test's directory for a failure's reader."""
        for worker in self.workers.values():
            worker.daemon.terminate()
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

    def leases(self) -> dict[str, _aws.Lease]:
        return {lease.lease_key: lease for lease in _aws.read_leases(self.dynamodb, self.app)}

    def owners(self) -> dict[str, str | None]:
        return {key: lease.owner for key, lease in self.leases().items()}

    def check_alive(self) -> None:
        for worker in self.workers.values():
            code = worker.daemon.returncode
            if code is not None and not worker.stopped:
                raise AssertionError(
                    f"worker {worker.worker_id} exited with {code}:\n{worker.tail()}"
                )

    def records(self) -> list[dict[str, Any]]:
        """Every worker's ledger entries, each with the worker's id under ``worker``."""
        return [{**e, "worker": w.worker_id} for w in self.workers.values() for e in w.records()]

    def processed(self) -> set[Key]:
        return {key for w in self.workers.values() for key in w.processed()}

    def shard_ends(self) -> dict[str, float]:
        """Per shard, the first SHARD_END checkpoint any worker's processor logged."""
        ends: dict[str, float] = {}
        for worker in self.workers.values():
            for shard, at in worker.shard_ends().items():
                ends[shard] = min(ends.get(shard, at), at)
        return ends

    def first_processed(self) -> dict[str, float]:
        """Per shard, when its first record was processed (by any worker)."""
        first: dict[str, float] = {}
        for entry in self.records():
            shard, at = str(entry["shard"]), float(entry["processed_at"])
            first[shard] = min(first.get(shard, at), at)
        return first

    def duplicates(self) -> dict[Key, int]:
        """Records processed more than once, with how many times."""
        counts = collections.Counter(key for w in self.workers.values() for key in w.processed())
        return {key: n for key, n in counts.items() if n > 1}

    def wait_all_processed(self, put: Iterable[_aws.PutResult], timeout: float) -> float:
        """Until every record put is in some ledger; the seconds it took."""
        wanted = {(r.shard_id, int(r.sequence_number)) for r in put}
        missing: set[Key] = set()

        def done() -> bool:
            nonlocal missing
            self.check_alive()
            missing = wanted - self.processed()
            return not missing

        try:
            return wait_for(done, timeout, "every record put in some ledger", poll=0.5)
        except AssertionError:
            by_shard = collections.Counter(shard for shard, _ in missing)
            raise AssertionError(
                f"{len(missing)} of {len(wanted)} records never processed within {timeout:.0f}s "
                f"(per shard: {dict(by_shard)}; leases: {self.leases_summary()})"
            ) from None

    def leases_summary(self) -> dict[str, tuple[str | None, str | None]]:
        return {key: (lease.owner, lease.checkpoint) for key, lease in self.leases().items()}


# -- producing --------------------------------------------------------------------


class KeyedProducer(threading.Thread):
    """Puts one record per partition key every ``pause`` seconds (one PutRecords
    call), until stopped; each record's data is ``key:counter`` with a counter per
    key counting from 0. The thread is the only writer, so each key's counters are
    in the order its records were put."""

    def __init__(self, endpoint: str, stream: str, keys: Sequence[str], pause: float = 0.1) -> None:
        super().__init__(name="keyed-producer", daemon=True)
        self.kinesis = _aws.client("kinesis", endpoint)
        self.stream = stream
        self.keys = list(keys)
        self.pause = pause
        self.counters = dict.fromkeys(self.keys, 0)
        self.results: list[_aws.PutResult] = []
        self.error: BaseException | None = None
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                batch = [(f"{k}:{self.counters[k]}".encode(), k) for k in self.keys]
                put = _aws.put_records(self.kinesis, self.stream, batch)
                with self._lock:
                    self.results.extend(put)
                for k in self.keys:
                    self.counters[k] += 1
                self._halt.wait(self.pause)
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def put_so_far(self) -> list[_aws.PutResult]:
        with self._lock:
            return list(self.results)

    def landed_in(self, shard: str, since: int = 0) -> bool:
        """Whether a record put after the first ``since`` ones landed in ``shard``."""
        with self._lock:
            return any(r.shard_id == shard for r in self.results[since:])

    def check(self) -> None:
        if self.error is not None:
            raise AssertionError(f"putting records failed: {self.error!r}")

    def finish(self) -> list[_aws.PutResult]:
        self._halt.set()
        self.join(60)
        self.check()
        return self.put_so_far()


@contextlib.contextmanager
def producing(
    endpoint: str, stream: str, keys: Sequence[str], pause: float = 0.1
) -> Iterator[KeyedProducer]:
    """A running :class:`KeyedProducer`, stopped on the way out whatever happens."""
    producer = KeyedProducer(endpoint, stream, keys, pause)
    producer.start()
    try:
        yield producer
    finally:
        producer._halt.set()
        producer.join(60)


def key_counter(entry: Mapping[str, Any]) -> tuple[str, int]:
    """A ledger entry's partition key and the counter in its data."""
    key, counter = base64.b64decode(str(entry["data"])).decode().rsplit(":", 1)
    assert key == entry["partition_key"], entry
    return key, int(counter)


def key_order_violations(entries: Iterable[Mapping[str, Any]]) -> dict[str, list[int]]:
    """Per partition key, the counters in the order processed with repeats removed
    (first occurrences), for the keys where that order is not increasing."""
    firsts: dict[str, list[int]] = collections.defaultdict(list)
    seen: set[tuple[str, int]] = set()
    for entry in entries:
        key, counter = key_counter(entry)
        if (key, counter) not in seen:
            seen.add((key, counter))
            firsts[key].append(counter)
    return {k: cs for k, cs in firsts.items() if cs != sorted(cs)}


# -- resharding -----------------------------------------------------------------------


def shards(kinesis: Any, stream: str) -> dict[str, dict[str, Any]]:
    """Every shard of the stream (open and closed), by id."""
    found: dict[str, dict[str, Any]] = {}
    for page in kinesis.get_paginator("list_shards").paginate(StreamName=stream):
        found.update({s["ShardId"]: s for s in page["Shards"]})
    return found


def is_open(shard: Mapping[str, Any]) -> bool:
    return "EndingSequenceNumber" not in shard["SequenceNumberRange"]


def hash_range(shard: Mapping[str, Any]) -> tuple[int, int]:
    r = shard["HashKeyRange"]
    return int(r["StartingHashKey"]), int(r["EndingHashKey"])


def wait_active(kinesis: Any, stream: str, timeout: float = 60) -> float:
    def active() -> bool:
        summary = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
        return bool(summary["StreamStatus"] == "ACTIVE")

    return wait_for(active, timeout, f"stream {stream} to be ACTIVE", poll=0.05)


def split_shard(kinesis: Any, stream: str, shard_id: str) -> tuple[str, str]:
    """Split ``shard_id`` in the middle of its hash key range; wait until ACTIVE.
    The two children, lower hash keys first."""
    low, high = hash_range(shards(kinesis, stream)[shard_id])
    kinesis.split_shard(
        StreamName=stream, ShardToSplit=shard_id, NewStartingHashKey=str((low + high) // 2 + 1)
    )
    wait_active(kinesis, stream)
    children = [s for s in shards(kinesis, stream).values() if s.get("ParentShardId") == shard_id]
    assert len(children) == 2, children
    lower, upper = sorted(children, key=lambda s: hash_range(s)[0])
    return lower["ShardId"], upper["ShardId"]


def merge_shards(kinesis: Any, stream: str, lower: str, upper: str) -> str:
    """Merge two adjacent shards (``lower``'s hash keys just below ``upper``'s);
    wait until ACTIVE. The merged child."""
    kinesis.merge_shards(StreamName=stream, ShardToMerge=lower, AdjacentShardToMerge=upper)
    wait_active(kinesis, stream)
    merged = [
        s
        for s in shards(kinesis, stream).values()
        if {s.get("ParentShardId"), s.get("AdjacentParentShardId")} == {lower, upper}
    ]
    assert len(merged) == 1, merged
    return str(merged[0]["ShardId"])


def hash_key(partition_key: str) -> int:
    """Where Kinesis puts a partition key: the MD5 of its UTF-8 bytes as a 128-bit number."""
    return int(hashlib.md5(partition_key.encode()).hexdigest(), 16)


def keys_in(low: int, high: int, count: int, prefix: str) -> list[str]:
    """``count`` partition keys whose hash keys fall in [low, high]."""
    found: list[str] = []
    for i in range(100_000):
        key = f"{prefix}{i}"
        if low <= hash_key(key) <= high:
            found.append(key)
            if len(found) == count:
                return found
    raise AssertionError(f"fewer than {count} keys in [{low}, {high}]")


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its reaper is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): os.kill said it exists
