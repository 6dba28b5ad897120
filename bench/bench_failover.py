"""Failover figures of two KCL 1.x workers on the local profile: how long the
surviving worker takes to own, and to process records of, the shards of a worker
that was killed (``kill -9``) or stopped (SIGTERM), against ``failoverTimeMillis``
and the lease-taker interval, 2 x (failoverTimeMillis + 25 ms).

    python bench/bench_failover.py [--runs 3] [--shards 4] [--cache DIR]

Each run starts from a wiped embedded emulator with a new stream and a new
application: two workers (distinct ``workerId``) run processors/recorder.py,
each with its own ledger, until the leases are spread and steady (with
``maxLeasesToStealAtOneTime = 2`` the spreading takes one lease-taker pass; the
takeovers measured take expired or released leases and never steal); records are
put continuously; then one of the workers is

- killed: SIGKILL to its process group (the JVM and its record processors);
- stopped with SIGTERM with ``gracefulLeaseHandoff = false``: KCL 1.x's own
  graceful shutdown, which leaves the leases to expire;
- stopped with SIGTERM with ``gracefulLeaseHandoff = true`` (the default): the
  launcher releases the leases after the processors' shutdownRequested
  checkpoints and the survivor takes them at its next lease-taker pass.

Measured from the signal, for the slowest of the stopped worker's shards: the
survivor named owner in the lease table, and its first record processed. Every
record put is then waited for; records never processed (lost) and processed
twice (duplicates) are counted.

The figures depend on where the signal falls in the survivor's lease-taker
schedule (a pass every taker interval), which waiting for steady leases would
lock: run i of n sends it (i + 0.5) / n of a taker interval later than the
others, so the runs sample the whole interval.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from kclpy_local import _aws
from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._jvm.bootstrap import Installation, bootstrap, default_cache_dir
from kclpy_local._jvm.daemon import LOCAL_PROFILE, Daemon

ROOT = Path(__file__).resolve().parents[1]
RECORDER = ROOT / "processors" / "recorder.py"
FAILOVER_MS = 5000
TAKER_INTERVAL = 2 * (FAILOVER_MS + 25) / 1000
RELEASED = "kclpy-local: released lease "
SCENARIOS = (
    ("kill", "kill -9"),
    ("term-expire", "SIGTERM, leases left to expire (KCL 1.x)"),
    ("term-handoff", "SIGTERM, leases released (handoff)"),
)


def read_jsonl(path: Path) -> list[dict[str, object]]:
    """The complete lines of a JSON-lines file that may be being written."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    complete = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line.strip()]


@dataclass
class Node:
    worker_id: str
    daemon: Daemon
    ledger: Path
    lines: list[tuple[float, str]]


@dataclass
class Outcome:
    owner: float
    first_record: float
    released: float | None
    records: int
    lost: int
    duplicates: int


@dataclass
class Putter:
    kinesis: object
    stream: str
    results: list[_aws.PutResult] = field(default_factory=list)
    halt: threading.Event = field(default_factory=threading.Event)
    error: list[BaseException] = field(default_factory=list)

    def run(self) -> None:
        count = 0
        try:
            while not self.halt.is_set():
                batch = [(f"r-{count + i}".encode(), uuid.uuid4().hex) for i in range(10)]
                count += len(batch)
                self.results.extend(_aws.put_records(self.kinesis, self.stream, batch))
                self.halt.wait(0.1)
        except BaseException as exc:
            self.error.append(exc)


def node(inst: Installation, endpoint: str, *, app: str, work: Path, worker_id: str, handoff: bool) -> Node:
    stream = app
    ledger = work / f"{app}-{worker_id}.jsonl"
    lines: list[tuple[float, str]] = []
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "KCLPY_LOCAL_ENDPOINT": endpoint,
           "KCLPY_LOCAL_LEDGER": str(ledger)}
    overrides = {"applicationName": app, "streamName": stream, "workerId": worker_id,
                 "executableName": f"{sys.executable} {RECORDER}", "failoverTimeMillis": str(FAILOVER_MS),
                 "gracefulLeaseHandoff": "true" if handoff else "false",
                 # Spreads the leases in one taker pass; takeovers (expired or released leases) never steal.
                 "maxLeasesToStealAtOneTime": "2"}
    daemon = Daemon(LOCAL_PROFILE, installation=inst, env=env, cwd=ROOT, overrides=overrides,
                    log=lambda line: lines.append((time.time(), line)), ready_timeout=180)
    return Node(worker_id, daemon, ledger, lines)


def owners(dynamodb: object, app: str) -> dict[str, str | None]:
    return {lease.lease_key: lease.owner for lease in _aws.read_leases(dynamodb, app)}


def wait_steady(dynamodb: object, app: str, ids: list[str], shards: int, timeout: float = 120) -> None:
    """Every lease owned, spread (none holds two more than another), no owner change for
    failoverTimeMillis: a worker whose lease was stolen has stopped processing it by then."""
    deadline = time.monotonic() + timeout
    seen: dict[str, str | None] = {}
    since = time.monotonic()
    while time.monotonic() < deadline:
        now, latest = time.monotonic(), owners(dynamodb, app)
        if latest != seen:
            seen, since = latest, now
        counts = collections.Counter(seen.values())
        mine = [counts[i] for i in ids]
        if sum(mine) == shards and max(mine) - min(mine) <= 1 and now - since >= FAILOVER_MS / 1000:
            return
        time.sleep(0.25)
    raise SystemExit(f"leases not spread within {timeout:.0f} s: {seen}")


def one_run(emu: EmbeddedEmulator, inst: Installation, work: Path, *, scenario: str, index: int,
            shards: int, offset: float) -> Outcome:
    emu.reset()
    app = stream = f"bench-failover-{scenario}-{index}"
    kinesis = _aws.client("kinesis", emu.endpoint_url)
    dynamodb = _aws.client("dynamodb", emu.endpoint_url)
    _aws.ensure_stream(kinesis, stream, shards)
    handoff = scenario != "term-expire"
    nodes = [node(inst, emu.endpoint_url, app=app, work=work, worker_id=w, handoff=handoff)
             for w in ("worker-a", "worker-b")]
    putter = Putter(_aws.client("kinesis", emu.endpoint_url), stream)
    thread = threading.Thread(target=putter.run, daemon=True)
    try:
        for n in nodes:
            n.daemon.start(wait_ready=False)
        for n in nodes:
            n.daemon.wait_ready(180)
        wait_steady(dynamodb, app, [n.worker_id for n in nodes], shards)
        thread.start()
        time.sleep(1 + offset)
        held = owners(dynamodb, app)
        victim, survivor = nodes
        gone = {s for s, o in held.items() if o == victim.worker_id}
        at = time.time()
        if scenario == "kill":
            os.killpg(victim.daemon.pid or 0, signal.SIGKILL)
        else:
            victim.daemon.terminate()
        owner_at: dict[str, float] = {}
        record_at: dict[str, float] = {}
        deadline = time.monotonic() + 4 * TAKER_INTERVAL + 30
        while set(owner_at) != gone or set(record_at) != gone:
            if time.monotonic() > deadline:
                raise SystemExit(f"{scenario}: shards {sorted(gone)} not taken over: {owners(dynamodb, app)}")
            now = time.time()
            for s, o in owners(dynamodb, app).items():
                if s in gone and o == survivor.worker_id:
                    owner_at.setdefault(s, now - at)
            for e in read_jsonl(survivor.ledger):
                s, t = str(e["shard"]), float(str(e["processed_at"]))
                if s in gone and t > at:
                    record_at[s] = min(record_at.get(s, t - at), t - at)
            time.sleep(0.1)
        time.sleep(1)
        putter.halt.set()
        thread.join(30)
        if putter.error:
            raise SystemExit(f"putting records failed: {putter.error[0]!r}")
        wanted = collections.Counter((r.shard_id, r.sequence_number) for r in putter.results)
        deadline = time.monotonic() + 90
        while True:
            processed = collections.Counter((str(e["shard"]), str(e["sequence_number"]))
                                            for n in nodes for e in read_jsonl(n.ledger))
            lost = sum(1 for k in wanted if k not in processed)
            if not lost or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        released = [t - at for t, line in victim.lines if line.startswith(RELEASED)]
        return Outcome(max(owner_at.values()), max(record_at.values()), max(released) if released else None,
                       len(wanted), lost, sum(c - 1 for k, c in processed.items() if c > 1 and k in wanted))
    finally:
        putter.halt.set()
        for n in nodes:
            n.daemon.terminate()
        for n in nodes:
            n.daemon.stop(timeout=5)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):5.1f} s ({min(values):4.1f}-{max(values):4.1f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per scenario")
    ap.add_argument("--shards", type=int, default=4, help="shards of the stream")
    ap.add_argument("--cache", type=Path, default=None, help="the installation cache (default: the user's)")
    args = ap.parse_args()
    inst = bootstrap(1, cache_dir=args.cache or default_cache_dir())
    results: dict[str, list[Outcome]] = {s: [] for s, _ in SCENARIOS}
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedEmulator(port=0) as emu:
        for index in range(args.runs):
            for scenario, label in SCENARIOS:
                offset = (index + 0.5) / args.runs * TAKER_INTERVAL
                out = one_run(emu, inst, Path(tmp), scenario=scenario, index=index, shards=args.shards,
                              offset=offset)
                results[scenario].append(out)
                released = "" if out.released is None else f", released {out.released:4.1f} s"
                print(f"run {index + 1}/{args.runs} {label:42} owner {out.owner:5.1f} s, 1st record "
                      f"{out.first_record:5.1f} s{released}; {out.records} records, {out.lost} lost, "
                      f"{out.duplicates} duplicate(s)", flush=True)
    failover = FAILOVER_MS / 1000
    print(f"\nfailoverTimeMillis {FAILOVER_MS} ms, lease-taker interval {TAKER_INTERVAL:.2f} s; "
          f"{args.runs} run(s) each, {args.shards} shards, 2 workers; from the signal, slowest shard; "
          "median (min-max)")
    print(f"{'':42} {'new owner':>22} {'1st record':>22} {'owner / F':>10} {'owner / taker':>14} "
          f"{'lost':>5} {'dups':>5}")
    for scenario, label in SCENARIOS:
        outs = results[scenario]
        owner = [o.owner for o in outs]
        median = statistics.median(owner)
        print(f"{label:42} {spread(owner):>22} {spread([o.first_record for o in outs]):>22} "
              f"{median / failover:9.2f}x {median / TAKER_INTERVAL:13.2f}x "
              f"{sum(o.lost for o in outs):5d} {sum(o.duplicates for o in outs):5d}")
    before = statistics.median(o.owner for o in results["term-expire"])
    after = statistics.median(o.owner for o in results["term-handoff"])
    print(f"SIGTERM takeover with the handoff: {after:.1f} s instead of {before:.1f} s ({after / before:.2f}x); "
          f"total {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
