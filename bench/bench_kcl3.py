"""Local start-up, KCL 1.x against KCL 3.x: cold start to the first record, side by side.

    python bench/bench_kcl3.py [--runs 3] [--shards 2] [--cache DIR]

Both generations run the real JVM (KCL 1.15.3 through the 1.x launcher, KCL
3.5.1 through the 3.x launcher) against one embedded emulator, on one stream
whose records were put before any daemon starts, with the same processor
(``processors/recorder.py``). Each start is a new application (an empty lease
table, created by that start) reading from TRIM_HORIZON, so each one processes
the stream from its first record. The generations take turns (1.x first in
even runs, 3.x first in odd ones). Both run the built-in local profile (for
3.x translated by kclpy-local, which adds the local start-up keys of 3.x).

Figures per start: daemon start to the worker STARTED line, to the first record
processed, and to a record processed on every shard; medians per generation and
the ratio 3.x / 1.x. ``--kcl3-set KEY=VALUE`` adds a property to the 3.x
file (to try a timing). ``--cache`` names an installed cache (default: the usual
one, or ``$KCLPY_LOCAL_TEST_CACHE``); both generations must be bootstrapped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kclpy_local import _aws
from kclpy_local._jvm.bootstrap import Installation, installation
from kclpy_local._jvm.daemon import LOCAL_PROFILE, Daemon
from kclpy_local._emulators.moto import EmbeddedEmulator

ROOT = Path(__file__).resolve().parents[1]
RECORDER = ROOT / "processors" / "recorder.py"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
STREAM = "bench-kcl3"


@dataclass(frozen=True)
class Start:
    generation: int
    ready: float
    first: float
    every_shard: float


def read_ledger(ledger: Path) -> list[dict[str, object]]:
    if not ledger.exists():
        return []
    return [json.loads(line) for line in ledger.read_text(encoding="utf-8").splitlines() if line.strip()]


def make_daemon(generation: int, inst: Installation, *, endpoint: str, app: str, ledger: Path,
                lines: list[str], kcl3_extra: dict[str, str]) -> Daemon:
    """The built-in local profile on ``generation`` (translated for 3.x by kclpy-local)."""
    env = {**CREDENTIALS, "KCLPY_LOCAL_ENDPOINT": endpoint, "KCLPY_LOCAL_LEDGER": str(ledger)}
    overrides = {"applicationName": app, "streamName": STREAM,
                 "executableName": f"{sys.executable} {RECORDER}",
                 **(kcl3_extra if generation == 3 else {})}
    return Daemon(LOCAL_PROFILE, generation=generation, installation=inst, env=env, cwd=ROOT,
                  log=lines.append, overrides=overrides, ready_timeout=180)


def cold_start(generation: int, inst: Installation, *, endpoint: str, shards: set[str],
               workdir: Path, index: int, kcl3_extra: dict[str, str]) -> Start:
    app = f"bench-kcl{generation}-{index}"
    ledger = workdir / f"ledger-{app}.jsonl"
    lines: list[str] = []
    daemon = make_daemon(generation, inst, endpoint=endpoint, app=app, ledger=ledger, lines=lines,
                         kcl3_extra=kcl3_extra)
    start = time.time()
    with daemon:
        ready = time.time() - start
        deadline = time.time() + 180
        while True:
            entries = read_ledger(ledger)
            if {e["shard"] for e in entries} >= shards:
                break
            if time.time() > deadline or daemon.returncode is not None:
                raise SystemExit(f"KCL {generation}.x: not every shard processed within 180 s:\n"
                                 + "\n".join(lines[-40:]))
            time.sleep(0.05)
    times = [float(str(e["processed_at"])) - start for e in entries]
    firsts: dict[str, float] = {}
    for e, at in zip(entries, times, strict=True):
        firsts.setdefault(str(e["shard"]), at)
    return Start(generation, ready, min(times), max(firsts.values()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="cold starts per generation")
    ap.add_argument("--shards", type=int, default=2, help="shards of the stream")
    ap.add_argument("--cache", type=Path, default=os.environ.get("KCLPY_LOCAL_TEST_CACHE"),
                    help="an installed cache with both generations")
    ap.add_argument("--kcl3-set", action="append", default=[], metavar="KEY=VALUE",
                    help="one more property for the 3.x daemon (repeatable), e.g. "
                         "shardConsumerDispatchPollIntervalMillis=250")
    args = ap.parse_args()
    kcl3_extra = dict(item.split("=", 1) for item in args.kcl3_set)
    insts = {generation: installation(generation, args.cache) for generation in (1, 3)}
    starts: list[Start] = []
    with tempfile.TemporaryDirectory() as tmp, EmbeddedEmulator(port=0) as emu:
        kinesis = _aws.client("kinesis", emu.endpoint_url)
        shards = set(_aws.ensure_stream(kinesis, STREAM, args.shards).shard_ids)
        _aws.put_records(kinesis, STREAM, [(f"r{i}".encode(), f"pk-{i}") for i in range(20 * args.shards)])
        for index in range(args.runs):
            for generation in (1, 3) if index % 2 == 0 else (3, 1):
                run = cold_start(generation, insts[generation], endpoint=emu.endpoint_url, shards=shards,
                                 workdir=Path(tmp), index=index, kcl3_extra=kcl3_extra)
                starts.append(run)
                print(f"run {index + 1}/{args.runs} KCL {generation}.x: STARTED {run.ready:6.2f} s, "
                      f"1st record {run.first:6.2f} s, every shard {run.every_shard:6.2f} s", flush=True)

    def median(generation: int, field: str) -> float:
        return float(statistics.median(getattr(s, field) for s in starts if s.generation == generation))

    extra = "".join(f", {k} = {v}" for k, v in kcl3_extra.items())
    print(f"\nmedians over {args.runs} cold start(s) each, {args.shards} shard(s), same emulator and "
          f"stream{' (3.x' + extra + ')' if extra else ''}:")
    print(f"{'daemon start to':<26}{'KCL 1.x':>10}{'KCL 3.x':>10}{'3.x / 1.x':>11}")
    for label, field in (("worker STARTED", "ready"), ("first record", "first"),
                         ("a record on every shard", "every_shard")):
        one, three = median(1, field), median(3, field)
        print(f"{label:<26}{one:>9.2f}s{three:>9.2f}s{three / one:>10.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
