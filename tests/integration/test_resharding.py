"""Resharding under a running KCL 1.x worker, on the fidelity engines.

Kinesis is kinesis-mock or ferrokinesis (each closes a split or merged parent,
returns its records, then a null iterator with ``ChildShards``), DynamoDB and
CloudWatch are moto; the daemon reads kinesis-mock over JSON, ferrokinesis over
CBOR. One worker runs ``processors/recorder.py`` while a
producer puts records continuously with a few partition keys, each record's data
carrying a per-key counter.

The stream starts with two shards, S0 (lower hash keys) and S1. Two rounds:

1. split S0 into A and B; once both process records, merge B with S1 into C;
2. split A into A1 and A2; as soon as A has ended, merge A2 with C into D. D's
   lease is created when C ends, typically before A2 has even started, so D's
   consumer has to wait for A2.

What KCL 1.15.3 does at a shard's end, and the settings that shape it:

- the parent's consumer reads its shard up to the null iterator; its shutdown
  task creates the children's leases from that last answer's ``ChildShards`` (no
  owner, checkpoint TRIM_HORIZON; a merge's child only once both parents have a
  lease), then calls the processor's shutdown with TERMINATE, which must checkpoint
  SHARD_END (the recorder's ``shard_ended``);
- the worker's lease taker takes the new leases at its next pass, every
  2 x (``failoverTimeMillis`` + 25 ms): this is most of a child's start delay;
- a child's consumer first blocks until every parent lease in the table is at
  SHARD_END, re-reading them every ``parentShardPollIntervalMillis``.
"""

from __future__ import annotations

import collections
import time
from pathlib import Path
from typing import Any

import pytest
from _helpers import (
    SHARD_END,
    Cluster,
    Endpoints,
    KeyedProducer,
    hash_range,
    key_counter,
    key_order_violations,
    keys_in,
    merge_shards,
    producing,
    shards,
    split_shard,
    wait_for,
)

from kclpy_local._jvm.bootstrap import Installation

pytestmark = pytest.mark.integration

#: The KCL 1.x settings that matter for resharding, on top of the local profile.
RESHARD_SETTINGS = {
    # How often a blocked child re-reads its parents' leases: the delay between the last
    # parent's SHARD_END checkpoint and a waiting child's start (KCL default 10 s).
    "parentShardPollIntervalMillis": "500",
    # Keep the finished parents' leases (checkpoint SHARD_END) for the test to read. With
    # true (the default) the KCL's LeaseCleanupManager deletes a parent's lease once all its
    # children have checkpointed; it does so only after completedLeaseCleanupThresholdMillis
    # (5 min from the worker's start), but false rules the race out.
    "cleanupLeasesUponShardCompletion": "false",
    # Strict, as by default: a shard listing in which an open shard already has children is
    # refused rather than silently skipped. KCL 1.15.3 lists shards only at its initial sync
    # and in its hash-range auditor; at a shard end it creates the children's leases from
    # ChildShards, which this setting does not affect.
    "ignoreUnexpectedChildShards": "false",
    # Only the sleep of a shard sync task after it ran: with the default (and, from a
    # properties file, only) shardSyncStrategyType SHARD_END, KCL 1.15.3 does not list shards
    # on a timer, so this does not pace the discovery of children. Kept short all the same.
    "shardSyncIntervalMillis": "1000",
    # As in the local profile: the lease taker runs every ~10 s and takes new child leases at
    # its next pass.
    "failoverTimeMillis": "5000",
}
STEP_TIMEOUT = 90
UNBLOCKED = "No need to block on parents "


@pytest.mark.parametrize("engine_target", ["kinesis-mock", "ferrokinesis"], indirect=True)
def test_split_and_merge_under_a_running_worker(
    engine_target: Any, kcl1: Installation, tmp_path: Path
) -> None:
    target = engine_target
    endpoints = Endpoints(target.kinesis_url, target.aws_url, target.aws_url)
    settings = {**target.overrides(), **RESHARD_SETTINGS}
    assert settings["isCBORProtocolDisabled"] == ("false" if target.cbor else "true")
    assert target.cbor == (target.kind == "ferrokinesis")
    timings: dict[str, float] = {}
    #: Every closed shard's children, and every child's parents, as the test made them.
    parents_of: dict[str, tuple[str, ...]] = {}
    blocked_seen: set[str] = set()

    with Cluster(
        endpoints, kcl1, tmp_path, shards=2, name=target.name("reshard"), settings=settings
    ) as cluster:
        kinesis = cluster.kinesis
        initial = shards(kinesis, cluster.stream)
        s0, s1 = sorted(initial, key=lambda s: hash_range(initial[s])[0])
        low, high = hash_range(initial[s0])
        mid = (low + high) // 2 + 1  # where S0 is split
        quarter = (low + mid - 1) // 2 + 1  # where A, S0's lower child, is split
        keys = (
            keys_in(low, quarter - 1, 2, "a")
            + keys_in(quarter, mid - 1, 2, "b")
            + keys_in(mid, high, 2, "c")
            + keys_in(*hash_range(initial[s1]), 2, "d")
        )

        worker = cluster.add("worker-reshard")
        started = time.monotonic()
        cluster.start()
        timings["worker STARTED"] = time.monotonic() - started

        def reached(
            producer: KeyedProducer, starts: tuple[str, ...], ends: tuple[str, ...]
        ) -> bool:
            cluster.check_alive()
            producer.check()
            leases = cluster.leases()
            for child, its_parents in parents_of.items():  # a child leased before its parents ended
                if (
                    leases.get(child)
                    and leases[child].owner
                    and any(
                        leases.get(p) and leases[p].checkpoint != SHARD_END for p in its_parents
                    )
                ):
                    blocked_seen.add(child)
            firsts, shard_ends = cluster.first_processed(), cluster.shard_ends()
            return all(s in firsts for s in starts) and all(s in shard_ends for s in ends)

        def step(
            producer: KeyedProducer,
            what: str,
            starts: tuple[str, ...] = (),
            ends: tuple[str, ...] = (),
        ) -> None:
            wait_for(lambda: reached(producer, starts, ends), STEP_TIMEOUT, what)

        with producing(endpoints.kinesis, cluster.stream, keys, pause=0.15) as producer:
            step(producer, "both shards processing", starts=(s0, s1))

            # Round 1: split S0; once its children process records, merge B with S1.
            split_at = time.time()
            a, b = split_shard(kinesis, cluster.stream, s0)
            parents_of.update({a: (s0,), b: (s0,)})
            timings["1. split S0: ACTIVE"] = time.time() - split_at
            step(producer, f"{s0} to end, {a} and {b} to start", starts=(a, b), ends=(s0,))
            ends, firsts = cluster.shard_ends(), cluster.first_processed()
            timings["1. split S0: S0 SHARD_END"] = ends[s0] - split_at
            timings["1. split S0: A, B first record after S0's end"] = (
                max(firsts[a], firsts[b]) - ends[s0]
            )

            merge_at = time.time()
            c = merge_shards(kinesis, cluster.stream, b, s1)
            parents_of[c] = (b, s1)
            timings["1. merge B+S1: ACTIVE"] = time.time() - merge_at
            step(producer, f"{b} and {s1} to end, {c} to start", starts=(c,), ends=(b, s1))
            ends, firsts = cluster.shard_ends(), cluster.first_processed()
            timings["1. merge B+S1: both SHARD_END"] = max(ends[b], ends[s1]) - merge_at
            timings["1. merge B+S1: C first record after their end"] = firsts[c] - max(
                ends[b], ends[s1]
            )

            # Round 2: split A, and merge its upper child with C as soon as A has ended.
            split_at = time.time()
            a1, a2 = split_shard(kinesis, cluster.stream, a)
            parents_of.update({a1: (a,), a2: (a,)})
            timings["2. split A: ACTIVE"] = time.time() - split_at
            step(producer, f"{a} to end", ends=(a,))
            timings["2. split A: A SHARD_END"] = cluster.shard_ends()[a] - split_at

            merge_at = time.time()
            d = merge_shards(kinesis, cluster.stream, a2, c)
            parents_of[d] = (a2, c)
            timings["2. merge A2+C: ACTIVE"] = time.time() - merge_at
            step(
                producer,
                f"{a2} and {c} to end, {a1} and {d} to start",
                starts=(a1, a2, d),
                ends=(a2, c),
            )
            ends, firsts = cluster.shard_ends(), cluster.first_processed()
            timings["2. merge A2+C: both SHARD_END"] = max(ends[a2], ends[c]) - merge_at
            timings["2. merge A2+C: D first record after their end"] = firsts[d] - max(
                ends[a2], ends[c]
            )
            time.sleep(2)  # a few batches into the last shards
            put = producer.finish()

        timings["drain after the producer stopped"] = cluster.wait_all_processed(put, STEP_TIMEOUT)
        open_shards = {a1: 0, d: 0}
        for r in put:
            if r.shard_id in open_shards:
                open_shards[r.shard_id] = max(open_shards[r.shard_id], int(r.sequence_number))

        def open_checkpointed() -> bool:
            leases = cluster.leases()
            return all(
                s in leases and leases[s].checkpoint == str(n) for s, n in open_shards.items()
            )

        wait_for(open_checkpointed, 30, f"the last records of {sorted(open_shards)} checkpointed")
        leases = cluster.leases()

    closed = {s0, s1, a, b, c, a2}
    assert set(leases) == closed | set(open_shards) == {s0, s1, *parents_of}

    # The processor of each closed parent got shard end and checkpointed SHARD_END, once;
    # the lease table says SHARD_END for them, a sequence number for the open shards.
    ends = worker.shard_ends()
    assert set(ends) == closed, f"SHARD_END checkpoints logged for {sorted(ends)}"
    logged = collections.Counter(
        e["shard"] for e in worker.events("checkpoint") if e["sequence_number"] == SHARD_END
    )
    assert set(logged.values()) == {1}, logged
    for shard in closed:
        assert leases[shard].checkpoint == SHARD_END, (shard, leases[shard])
    for shard in open_shards:
        assert str(leases[shard].checkpoint).isdigit(), (shard, leases[shard])
    for child, its_parents in parents_of.items():
        assert sorted(leases[child].parent_shard_ids) == sorted(its_parents), leases[child]

    # Children start only after their parents are done: their processors' initialize and
    # first record come after the parents' SHARD_END checkpoints; a parent's records all
    # come before its own.
    records = worker.records()
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for e in records:
        shard, at = str(e["shard"]), float(e["processed_at"])
        first[shard] = min(first.get(shard, at), at)
        last[shard] = max(last.get(shard, at), at)
    initialized: dict[str, float] = {}
    for e in worker.events("initialize"):
        initialized.setdefault(str(e["shard"]), float(e["at"]))
    for child, its_parents in parents_of.items():
        done = max(ends[p] for p in its_parents)
        assert initialized[child] >= done, (child, initialized[child], its_parents, done)
        assert first[child] >= done, (child, first[child], its_parents, done)
    for shard in closed:
        assert last[shard] <= ends[shard], (shard, last[shard], ends[shard])

    # Every record put was processed at least once.
    wanted = {(r.shard_id, int(r.sequence_number)) for r in put}
    seen = {(str(e["shard"]), int(str(e["sequence_number"]))) for e in records}
    assert wanted <= seen, f"{len(wanted - seen)} of {len(wanted)} records lost"
    assert {r.shard_id for r in put} == set(leases)

    # Per partition key: the counters in the order processed, first occurrences only, are
    # in the order the records were put, and none is missing.
    violations = key_order_violations(records)
    assert not violations, {k: v[:20] for k, v in violations.items()}
    per_key: dict[str, set[int]] = collections.defaultdict(set)
    for e in records:
        key, counter = key_counter(e)
        per_key[key].add(counter)
    put_per_key = collections.Counter(r.partition_key for r in put)
    assert all(per_key[k] == set(range(n)) for k, n in put_per_key.items())
    assert set(put_per_key) == set(keys)

    unblocked = {
        line.split(" of shard ")[-1]: at
        for at, line in worker.lines
        if UNBLOCKED in line and " of shard " in line
    }
    names = {s0: "S0", s1: "S1", a: "A", b: "B", c: "C", a1: "A1", a2: "A2", d: "D"}
    print(
        f"\nresharding: {len(put)} records over {len(keys)} keys, "
        f"{len(records) - len(seen)} duplicate(s); shards "
        + ", ".join(f"{n}={s.rsplit('-', 1)[-1].lstrip('0') or '0'}" for s, n in names.items())
    )
    for name, seconds in timings.items():
        print(f"  {name}: {seconds:.2f}s")
    for child, its_parents in parents_of.items():
        done = max(ends[p] for p in its_parents)
        print(
            f"  {names[child]}: started {first[child] - done:.2f}s after its parents' end; "
            f"consumer unblocked {unblocked.get(child, float('nan')) - done:.2f}s after it"
            + ("; leased while a parent was unfinished" if child in blocked_seen else "")
        )
