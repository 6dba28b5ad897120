"""Chaos on the fidelity engine: workers killed and shards split while records flow.

Two KCL 1.x workers (distinct ``workerId``, each a JVM through the launcher running
``processors/recorder.py`` with its own ledger) share a 3-shard stream on
kinesis-mock, with DynamoDB and CloudWatch on moto. A producer puts records
continuously. A loop of at most :data:`MAX_EVENTS` events, within
:data:`LOOP_SECONDS`, chosen with a seeded random (printed; set
``KCLPY_LOCAL_CHAOS_SEED`` to replay one), does one of:

- ``kill``: ``kill -9`` of a live worker (its JVM and its record processors) and
  the start of a replacement with a new worker id;
- ``split``: a split of an open shard through boto3, waiting until ACTIVE.

The first two events are one of each, in random order. Then the producer stops,
the test waits (bounded) until every record put is in some ledger and every
split parent's lease is at SHARD_END, and stops the workers gracefully.

Asserted: every record put was processed at least once, no worker exited unless
killed, every split parent ended with SHARD_END. Reported: records, duplicates,
events. No timing is asserted: waits are bounded generously for 2 busy cores.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from _helpers import (
    SHARD_END,
    Cluster,
    Endpoints,
    KeyedProducer,
    Worker,
    is_open,
    key_order_violations,
    producing,
    shards,
    split_shard,
    wait_for,
)

from kclpy_local._jvm.bootstrap import Installation

pytestmark = pytest.mark.integration

SEED_ENV = "KCLPY_LOCAL_CHAOS_SEED"
MAX_EVENTS = 6
LOOP_SECONDS = 80
#: Seconds between two events (uniformly drawn).
PAUSE = (4.0, 10.0)
SHARDS = 3
WORKERS = 2
MAX_OPEN_SHARDS = 6
KEYS = [f"key-{i}" for i in range(8)]
DRAIN_TIMEOUT = 180

CHAOS_SETTINGS = {
    # A dead worker's leases expire after 5 s; the survivors' lease takers (every ~10 s)
    # take them one to two passes later, and take new child leases at their next pass.
    "failoverTimeMillis": "5000",
    # A child waiting for its parents re-reads their leases every 0.5 s.
    "parentShardPollIntervalMillis": "500",
    # Keep the split parents' leases, to check that each ended at SHARD_END.
    "cleanupLeasesUponShardCompletion": "false",
}


def _pause(seconds: float, cluster: Cluster, producer: KeyedProducer) -> None:
    """Sleep, checking that no worker died unasked and the producer still puts."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        cluster.check_alive()
        producer.check()
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


@pytest.mark.parametrize("engine_target", ["kinesis-mock"], indirect=True)
def test_kills_and_splits_lose_no_record(
    engine_target: Any, kcl1: Installation, tmp_path: Path
) -> None:
    seed = int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(2**32))
    print(f"\nchaos seed {seed} (replay with {SEED_ENV}={seed})")
    rng = random.Random(seed)
    target = engine_target
    endpoints = Endpoints(target.kinesis_url, target.aws_url, target.aws_url)
    settings = {**target.overrides(), **CHAOS_SETTINGS}
    events: list[tuple[float, str]] = []
    split_parents: set[str] = set()
    begin = time.monotonic()

    with Cluster(
        endpoints, kcl1, tmp_path, shards=SHARDS, name=target.name("chaos"), settings=settings
    ) as cluster:
        for i in range(WORKERS):
            cluster.add(f"worker-{i}")
        cluster.start()
        started = time.monotonic() - begin

        with producing(endpoints.kinesis, cluster.stream, KEYS, pause=0.2) as producer:

            def all_shards_processing() -> bool:
                cluster.check_alive()
                producer.check()
                return set(cluster.shard_ids) <= set(cluster.first_processed())

            wait_for(all_shards_processing, 120, "every shard processing")
            loop_start = time.monotonic()
            kinds = rng.sample(["kill", "split"], 2)
            while len(events) < MAX_EVENTS:
                _pause(rng.uniform(*PAUSE), cluster, producer)
                if time.monotonic() - loop_start > LOOP_SECONDS:
                    break
                open_shards = sorted(
                    s for s, d in shards(cluster.kinesis, cluster.stream).items() if is_open(d)
                )
                kind = (
                    kinds[len(events)]
                    if len(events) < len(kinds)
                    else rng.choice(["kill", "split"])
                )
                if kind == "split" and len(open_shards) >= MAX_OPEN_SHARDS:
                    kind = "kill"
                at = time.monotonic() - begin
                if kind == "kill":
                    victim = rng.choice(sorted(cluster.live(), key=lambda w: w.worker_id))
                    victim.kill()
                    replacement = cluster.add(f"worker-{len(cluster.workers)}")
                    cluster.start(replacement, wait_ready=False)
                    events.append(
                        (at, f"kill -9 {victim.worker_id}, start {replacement.worker_id}")
                    )
                else:
                    parent = rng.choice(open_shards)
                    children = split_shard(cluster.kinesis, cluster.stream, parent)
                    split_parents.add(parent)
                    events.append((at, f"split {parent} -> {', '.join(children)}"))
                print(f"  {at:6.1f}s  {events[-1][1]}")
            put = producer.finish()
        loop_seconds = time.monotonic() - loop_start

        drain = cluster.wait_all_processed(put, DRAIN_TIMEOUT)

        def parents_ended() -> bool:
            cluster.check_alive()
            leases = cluster.leases()
            return all(leases.get(p) and leases[p].checkpoint == SHARD_END for p in split_parents)

        wait_for(parents_ended, 120, f"SHARD_END in the leases of {sorted(split_parents)}")
        leases = cluster.leases_summary()
        live: list[Worker] = cluster.live()
    # Stopped gracefully: SIGTERM, the launcher's graceful shutdown, exit 128 + SIGTERM.
    for worker in live:
        assert worker.daemon.returncode == 128 + signal.SIGTERM, (
            worker.worker_id,
            worker.daemon.returncode,
            worker.tail(),
        )

    put_keys = {(r.shard_id, int(r.sequence_number)) for r in put}
    seen = cluster.processed()
    assert put_keys <= seen, f"{len(put_keys - seen)} of {len(put_keys)} records lost"
    assert {kind for _, text in events for kind in ("kill", "split") if text.startswith(kind)} == {
        "kill",
        "split",
    }, events
    for parent in split_parents:
        assert leases[parent][1] == SHARD_END, (parent, leases[parent])

    # Counts for the report.
    deliveries = collections.Counter(
        (str(e["shard"]), int(str(e["sequence_number"]))) for e in cluster.records()
    )
    duplicated = {k: n for k, n in deliveries.items() if n > 1}
    per_worker = {w.worker_id: len(w.records()) for w in cluster.workers.values()}
    ordered = sorted(cluster.records(), key=lambda e: float(e["processed_at"]))
    out_of_order = key_order_violations(ordered)
    kills = sum(text.startswith("kill") for _, text in events)
    print(
        f"chaos seed {seed}: {len(events)} events ({kills} kill(s), {len(events) - kills} split(s)) "
        f"in {loop_seconds:.0f}s; {len(put)} records put, all processed; "
        f"{len(duplicated)} processed more than once ({sum(duplicated.values()) - len(duplicated)} "
        f"extra deliveries); per worker {per_worker}; keys out of order (by processing time, "
        f"not asserted): {len(out_of_order)}; workers STARTED after {started:.1f}s, drained "
        f"{drain:.1f}s after the producer stopped; {len(leases)} leases at the end"
    )
