"""Moving an application from KCL 1.x to KCL 3.x: the cutover, and the generation guard.

Real JVMs on the embedded emulator (moto): KCL 1.15.3 workers through the 1.x
launcher, then a KCL 3.5.1 worker through the 3.x launcher, with the same
application name (the same lease table), the same stream and the same processor
(``processors/recorder.py``: a ledger line per record, fsynced before each
checkpoint, and a checkpoint log). Records keep flowing through the cutover.

The supported move is: stop every 1.x worker, then start 3.x. A 3.x worker in
its default mode takes the 1.x table over: it adds the index
``LeaseOwnerToLeaseKeyIndex`` and items of its own (``Migration3.0``, the leader
lock, worker metrics) and starts each shard at its 1.x checkpoint. The guard
(``kclpy_local._jvm.guard``) refuses a start while workers of the other
generation hold live leases.

Both generations run the same properties file (the built-in local profile
with the same overrides): ``Daemon(generation=3)`` translates it for KCL 3.x.
"""

from __future__ import annotations

import collections
import logging
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from _helpers import (
    DUMMY_CREDENTIALS,
    RECORDER,
    ROOT,
    Cluster,
    Endpoints,
    key_order_violations,
    keys_in,
    producing,
    read_jsonl,
    shards,
    wait_for,
)

from kclpy_local import _aws
from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._jvm.bootstrap import Installation
from kclpy_local._jvm.daemon import LOCAL_PROFILE, Daemon
from kclpy_local._jvm.guard import GenerationConflictError

pytestmark = pytest.mark.integration

GSI = "LeaseOwnerToLeaseKeyIndex"
KCL3_WORKER = "w3"
Key = tuple[str, int]

class Kcl3Worker:
    """One KCL 3.x daemon of the cluster's application, with its own ledger and checkpoint
    log, on the file the 1.x workers run (translated by kclpy-local)."""

    def __init__(self, cluster: Cluster, kcl3: Installation, worker_id: str = KCL3_WORKER) -> None:
        self.worker_id = worker_id
        self.ledger = cluster.tmp / f"ledger-{worker_id}.jsonl"
        self.checkpoints = cluster.tmp / f"checkpoints-{worker_id}.jsonl"
        self.lines: list[str] = []
        settings = {
            "applicationName": cluster.app,
            "streamName": cluster.stream,
            "workerId": worker_id,
            "executableName": f"{sys.executable} {RECORDER}",
            "kinesisEndpoint": cluster.endpoints.kinesis,
            "dynamoDBEndpoint": cluster.endpoints.dynamodb,
            "cloudWatchEndpoint": cluster.endpoints.cloudwatch,
        }
        self.daemon = Daemon(
            LOCAL_PROFILE,
            generation=3,
            installation=kcl3,
            env={**DUMMY_CREDENTIALS, "KCLPY_LOCAL_ENDPOINT": cluster.endpoints.dynamodb,
                 "KCLPY_LOCAL_LEDGER": str(self.ledger), "KCLPY_LOCAL_CHECKPOINTS": str(self.checkpoints)},
            cwd=ROOT,
            log=self.lines.append,
            overrides=settings,
            ready_timeout=180,
        )

    def processed(self) -> list[Key]:
        return [(str(e["shard"]), int(str(e["sequence_number"]))) for e in read_jsonl(self.ledger)]

    def initialized(self) -> dict[str, str]:
        """Per shard, the sequence number its processor was initialized with (the first time)."""
        found: dict[str, str] = {}
        for e in read_jsonl(self.checkpoints):
            if e["event"] == "initialize":
                found.setdefault(str(e["shard"]), str(e["sequence_number"]))
        return found

    def save_log(self, tmp: Path) -> None:
        (tmp / f"log-{self.worker_id}.txt").write_text("\n".join(self.lines) + "\n", encoding="utf-8")


def shard_leases(cluster: Cluster) -> dict[str, _aws.Lease]:
    """The shard leases (items without entityType, as 1.x writes them, or LEASE)."""
    return {key: lease for key, lease in cluster.leases().items()
            if lease.raw.get("entityType") in (None, "LEASE")}


def other_items(cluster: Cluster) -> dict[str, str]:
    """The items that are not shard leases: leaseKey -> entityType."""
    return {key: str(lease.raw["entityType"]) for key, lease in cluster.leases().items()
            if lease.raw.get("entityType") not in (None, "LEASE")}


def indexes(cluster: Cluster) -> list[str]:
    table = cluster.dynamodb.describe_table(TableName=cluster.app)["Table"]
    return [index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])]


def partition_keys(cluster: Cluster, per_shard: int) -> list[str]:
    """Partition keys that land ``per_shard`` in each shard of the stream."""
    found: list[str] = []
    for shard_id, shard in sorted(shards(cluster.kinesis, cluster.stream).items()):
        r = shard["HashKeyRange"]
        found += keys_in(int(r["StartingHashKey"]), int(r["EndingHashKey"]), per_shard, f"{shard_id[-2:]}-")
    return found


def numeric_checkpoints(leases: Mapping[str, _aws.Lease]) -> dict[str, int]:
    return {key: int(lease.checkpoint) for key, lease in leases.items()
            if lease.checkpoint is not None and lease.checkpoint.isdigit()}


# -- the cutover ----------------------------------------------------------------------


def test_cutover_from_1x_to_3x(
    kcl1: Installation, kcl3: Installation, fresh_emulator: EmbeddedEmulator, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two 1.x workers process part of a stream and stop; 3.x continues from their checkpoints.

    ``w1-a`` stops with the launcher's lease handoff (its leases are released),
    ``w1-b`` without it, as stock KCL 1.x does (its leases keep their owner until
    they expire): the guard sees ``w1-b`` renew nothing and lets 3.x start, and
    3.x takes those leases after failoverTimeMillis.
    """
    caplog.set_level(logging.INFO, logger="kclpy_local._jvm.guard")
    endpoints = Endpoints.single(fresh_emulator.endpoint_url)
    with Cluster(endpoints, kcl1, tmp_path, shards=4, name="cutover") as cluster:
        keys = partition_keys(cluster, 2)
        cluster.add("w1-a")
        cluster.add("w1-b", gracefulLeaseHandoff="false")
        kcl3_worker = Kcl3Worker(cluster, kcl3)
        try:
            with producing(endpoints.kinesis, cluster.stream, keys, pause=0.1) as producer:
                # -- KCL 1.x processes part of the stream ----------------------------
                cluster.start()

                def checkpointed_everywhere() -> bool:
                    cluster.check_alive()
                    producer.check()
                    leases = shard_leases(cluster)
                    done = numeric_checkpoints(leases)
                    owners = {lease.owner for lease in leases.values()}
                    both_working = all(w.records() for w in cluster.workers.values())
                    return (len(done) == len(cluster.shard_ids) and owners == {"w1-a", "w1-b"}
                            and both_working and len(cluster.processed()) >= 300)

                wait_for(checkpointed_everywhere, 180,
                         "1.x checkpoints on every shard, both workers processing", poll=0.5)
                assert indexes(cluster) == []

                # -- every 1.x worker stops (gracefully); records keep arriving ------
                # One SIGTERM each (a second one makes the launcher exit at once).
                for worker in cluster.workers.values():
                    worker.daemon.terminate()
                for worker in cluster.workers.values():
                    assert worker.daemon.wait(60) is not None, f"{worker.worker_id} did not stop"
                    assert "kclpy-local: graceful shutdown complete" in [line for _, line in worker.lines]
                cluster.stop()
                put_at_stop = len(producer.put_so_far())
                before = shard_leases(cluster)
                checkpoint_before = numeric_checkpoints(before)
                assert set(checkpoint_before) == set(cluster.shard_ids), before
                assert other_items(cluster) == {} and indexes(cluster) == []
                released = {k for k, lease in before.items() if lease.owner is None}
                kept = {k for k, lease in before.items() if lease.owner == "w1-b"}
                assert released | kept == set(cluster.shard_ids), before
                assert kept, "w1-b (no handoff) kept its leases"
                # The last checkpoint each shard's processors logged is the table's.
                events = sorted((e for w in cluster.workers.values() for e in w.events("checkpoint")),
                                key=lambda e: float(e["at"]))
                logged = {str(e["shard"]): int(e["sequence_number"]) for e in events
                          if str(e["sequence_number"]).isdigit()}
                assert logged == checkpoint_before
                processed_1x = cluster.processed()
                time.sleep(1.0)  # a few more records land while no worker runs

                # -- the same application starts on KCL 3.x --------------------------
                started = time.monotonic()
                kcl3_worker.daemon.start()
                ready = time.monotonic() - started
                idle_line = [r.getMessage() for r in caplog.records
                             if "worker w1-b holds" in r.getMessage()]
                assert idle_line and "without renewing them (stopped)" in idle_line[0], caplog.text

                def caught_up() -> bool:
                    producer.check()
                    assert kcl3_worker.daemon.returncode is None, "\n".join(kcl3_worker.lines[-40:])
                    done = {shard for shard, _ in kcl3_worker.processed()}
                    return done == set(cluster.shard_ids)

                wait_for(caught_up, 180, "3.x processing every shard", poll=0.5)
                first_all = time.monotonic() - started
                put = producer.finish()
            wanted = {(r.shard_id, int(r.sequence_number)) for r in put}

            def all_processed() -> bool:
                assert kcl3_worker.daemon.returncode is None, "\n".join(kcl3_worker.lines[-40:])
                return wanted <= processed_1x | set(kcl3_worker.processed())

            wait_for(all_processed, 120, "every record put in some ledger", poll=0.5)
            after_processing = shard_leases(cluster)
            kcl3_worker.daemon.stop()
        finally:
            kcl3_worker.daemon.stop()
            kcl3_worker.save_log(tmp_path)

    # -- what 3.x started from, and what it left -----------------------------------------
    assert any(line.startswith("kclpy-local: translated for KCL 3.x: ") for line in kcl3_worker.lines)
    initialized = kcl3_worker.initialized()
    assert initialized == {shard: str(seq) for shard, seq in checkpoint_before.items()}, (
        "3.x did not start each shard at its 1.x checkpoint"
    )
    after = shard_leases(cluster)
    assert {lease.owner for lease in after_processing.values()} == {KCL3_WORKER}
    checkpoint_after = numeric_checkpoints(after)
    assert set(checkpoint_after) == set(cluster.shard_ids)
    assert all(checkpoint_after[s] >= checkpoint_before[s] for s in cluster.shard_ids)
    assert indexes(cluster) == [GSI]
    items = other_items(cluster)
    assert items.get("Migration3.0") == "CLIENT_VERSION_MIGRATION", items
    assert items.get(KCL3_WORKER) == "WORKER_METRIC_STATS", items
    # KCL 3.5 keeps its metadata in the lease table (single table format): no other table.
    assert cluster.dynamodb.list_tables()["TableNames"] == [cluster.app]

    # -- accounting ----------------------------------------------------------------------
    processed_3x = kcl3_worker.processed()
    union = processed_1x | set(processed_3x)
    assert wanted <= union, f"{len(wanted - union)} records lost"
    again = [(s, q) for s, q in processed_3x if q <= checkpoint_before[s]]
    assert again == [], f"3.x processed {len(again)} records at or before a 1.x checkpoint"
    counts_1x = collections.Counter(k for w in cluster.workers.values() for k in w.processed())
    counts_3x = collections.Counter(processed_3x)
    duplicates_1x = sum(n - 1 for n in counts_1x.values() if n > 1)
    duplicates_3x = sum(n - 1 for n in counts_3x.values() if n > 1)
    across = len(processed_1x & set(processed_3x))
    entries = sorted(
        (e for path in [*(w.ledger for w in cluster.workers.values()), kcl3_worker.ledger]
         for e in read_jsonl(path)),
        key=lambda e: float(e["processed_at"]),
    )
    assert key_order_violations(entries) == {}
    print(
        f"\ncutover: {len(wanted)} records put ({put_at_stop} before 1.x stopped), "
        f"{len(processed_1x)} processed by KCL 1.x, {len(set(processed_3x))} by KCL 3.x; "
        f"duplicates: {duplicates_1x} among 1.x workers, {duplicates_3x} in 3.x, {across} processed "
        f"by 1.x after its last checkpoint and again by 3.x; 3.x worker STARTED {ready:.1f}s after start, "
        f"every shard processing after {first_all:.1f}s "
        f"(leases released: {len(released)}, left to expire: {len(kept)})"
    )


# -- the generation guard ---------------------------------------------------------------


def test_guard_refuses_a_generation_while_the_other_is_live(
    kcl1: Installation, kcl3: Installation, fresh_emulator: EmbeddedEmulator, tmp_path: Path
) -> None:
    """3.x is refused while a 1.x worker runs (and writes nothing to the table); after
    the cutover 1.x is refused while 3.x runs, and after it stopped."""
    endpoints = Endpoints.single(fresh_emulator.endpoint_url)
    with Cluster(endpoints, kcl1, tmp_path, shards=2, name="guard") as cluster:
        kcl3_worker = Kcl3Worker(cluster, kcl3)
        try:
            first = cluster.add("w1")
            cluster.start()
            put = _aws.put_records(cluster.kinesis, cluster.stream, [(b"1.x", f"pk-{i}") for i in range(20)])
            cluster.wait_all_processed(put, 120)
            before = cluster.leases()

            with pytest.raises(GenerationConflictError) as info:
                kcl3_worker.daemon.start()
            s0, s1 = sorted(cluster.shard_ids)
            assert str(info.value) == (
                f"refusing to start KCL 3.x: KCL 1.x worker w1 holds live leases on table {cluster.app} "
                f"(shards {s0}, {s1}); stop every 1.x worker first, then start 3.x"
            )
            assert kcl3_worker.daemon.pid is None
            after = cluster.leases()
            assert set(after) == set(before) == set(cluster.shard_ids)
            assert all("entityType" not in lease.raw for lease in after.values())
            assert indexes(cluster) == []
            assert {lease.owner for lease in after.values()} == {"w1"}
            print(f"\nrefused: {info.value}\nhint: {info.value.hint}")

            # The supported move: stop every 1.x worker, then start 3.x.
            first.stopped = True
            first.daemon.stop()
            kcl3_worker.daemon.start()
            put = _aws.put_records(cluster.kinesis, cluster.stream, [(b"3.x", f"pk-{i}") for i in range(20)])
            wanted = {(r.shard_id, int(r.sequence_number)) for r in put}
            wait_for(lambda: wanted <= set(kcl3_worker.processed()), 180, "3.x processing")

            # The reverse: 1.x is refused while 3.x runs...
            rollback = cluster.add("w1-again")
            with pytest.raises(GenerationConflictError) as info:
                rollback.daemon.start()
            assert str(info.value) == (
                f"refusing to start KCL 1.x: KCL 3.x worker {KCL3_WORKER} holds live leases on table "
                f"{cluster.app} (shards {s0}, {s1}); stop every 3.x worker first, then start 1.x"
            )
            assert rollback.daemon.pid is None
            print(f"refused: {info.value}")
            kcl3_worker.daemon.stop()

            # ... and after it stopped, since 1.x cannot read what 3.x left in the table.
            rollback = cluster.add("w1-later")
            with pytest.raises(GenerationConflictError) as info:
                rollback.daemon.start()
            assert str(info.value) == (
                f"refusing to start KCL 1.x: table {cluster.app} holds KCL 3.x items that KCL 1.x "
                f"cannot read (Migration3.0, worker metrics of {KCL3_WORKER}): its worker would never "
                "initialize"
            )
            print(f"refused: {info.value}\nhint: {info.value.hint}")
            rollback.stopped = True
        finally:
            kcl3_worker.daemon.stop()
            kcl3_worker.save_log(tmp_path)
