"""Local start-up: cold start to the first record on KCL 1.x and 3.x, from the
built-in local profile and from a user's own file, side by side.

    python bench/bench_startup.py [--runs 3] [--shards 2] [--cache DIR]

Both generations run the real JVM (KCL 1.15.3 through the 1.x launcher, KCL
3.5.1 through the 3.x launcher) against one embedded emulator, on one stream
whose records were put before any daemon starts, with the same processor
(``processors/recorder.py``). Each start is a new application (an empty lease
table, created by that start) reading from TRIM_HORIZON, so each one processes
the stream from its first record. Four contenders take turns, the order
rotating from run to run: each generation with the built-in local profile, and
with a user's file (:data:`USER_FILE`: the stock keys a production file has,
plus the local endpoints and the CBOR switch, no start-up tuning), each 3.x
file translated by kclpy-local from the 1.x form.

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
from kclpy_local._config.generations import GENERATIONS
from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._jvm.bootstrap import Installation, installation
from kclpy_local._jvm.daemon import LOCAL_PROFILE, Daemon

ROOT = Path(__file__).resolve().parents[1]
RECORDER = ROOT / "processors" / "recorder.py"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
STREAM = "bench-startup"
#: A user's own file: what people bring from production, pointed at local endpoints.
USER_FILE = """\
applicationName = {app}
streamName = {stream}
executableName = {executable}
processingLanguage = python/3
initialPositionInStream = TRIM_HORIZON
AWSCredentialsProvider = DefaultAWSCredentialsProviderChain
regionName = us-east-1
maxRecords = 10000
idleTimeBetweenReadsInMillis = 1000
kinesisEndpoint = {endpoint}
dynamoDBEndpoint = {endpoint}
cloudWatchEndpoint = {endpoint}
isCBORProtocolDisabled = true
"""
FILES = ("local profile", "user's file", "stock start-up")
JVM_ARGS: list[str] = []  # --jvm-arg


@dataclass(frozen=True)
class Start:
    generation: int
    file: str
    ready: float
    first: float
    every_shard: float


def read_ledger(ledger: Path) -> list[dict[str, object]]:
    if not ledger.exists():
        return []
    return [json.loads(line) for line in ledger.read_text(encoding="utf-8").splitlines() if line.strip()]


def make_daemon(generation: int, file: str, inst: Installation, *, endpoint: str, app: str,
                ledger: Path, lines: list[str], workdir: Path, kcl3_extra: dict[str, str]) -> Daemon:
    """The built-in local profile or a user's file on ``generation`` (translated for 3.x)."""
    env = {**CREDENTIALS, "KCLPY_LOCAL_ENDPOINT": endpoint, "KCLPY_LOCAL_LEDGER": str(ledger)}
    executable = f"{sys.executable} {RECORDER}"
    extra = kcl3_extra if generation == 3 else {}
    if file in FILES[1:]:
        path = workdir / f"{app}.properties"
        text = USER_FILE.format(app=app, stream=STREAM, executable=executable, endpoint=endpoint)
        if file == "stock start-up":  # the baseline: the user's file with the KCL's own start-up
            text += "".join(f"{spec.key} = {spec.stock}\n" for spec in GENERATIONS[generation].startup)
        path.write_text(text)
        overrides = dict(extra)
    else:
        path = Path(LOCAL_PROFILE)
        overrides = {"applicationName": app, "streamName": STREAM, "executableName": executable, **extra}
    return Daemon(path, generation=generation, installation=inst, env=env, cwd=ROOT,
                  log=lines.append, overrides=overrides, ready_timeout=180, jvm_args=JVM_ARGS)


def cold_start(generation: int, file: str, inst: Installation, *, endpoint: str, shards: set[str],
               workdir: Path, index: int, kcl3_extra: dict[str, str]) -> Start:
    app = f"bench-kcl{generation}-{FILES.index(file)}-{index}"
    ledger = workdir / f"ledger-{app}.jsonl"
    lines: list[str] = []
    daemon = make_daemon(generation, file, inst, endpoint=endpoint, app=app, ledger=ledger, lines=lines,
                         workdir=workdir, kcl3_extra=kcl3_extra)
    start = time.time()
    with daemon:
        ready = time.time() - start
        deadline = time.time() + 180
        while True:
            entries = read_ledger(ledger)
            if {e["shard"] for e in entries} >= shards:
                break
            if time.time() > deadline or daemon.returncode is not None:
                raise SystemExit(f"KCL {generation}.x, {file}: not every shard processed within 180 s:\n"
                                 + "\n".join(lines[-40:]))
            time.sleep(0.05)
    times = [float(str(e["processed_at"])) - start for e in entries]
    firsts: dict[str, float] = {}
    for e, at in zip(entries, times, strict=True):
        firsts.setdefault(str(e["shard"]), at)
    return Start(generation, file, ready, min(times), max(firsts.values()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="cold starts per contender")
    ap.add_argument("--shards", type=int, default=2, help="shards of the stream")
    ap.add_argument("--cache", type=Path, default=os.environ.get("KCLPY_LOCAL_TEST_CACHE"),
                    help="an installed cache with both generations")
    ap.add_argument("--kcl3-set", action="append", default=[], metavar="KEY=VALUE",
                    help="one more property for the 3.x daemon (repeatable), e.g. "
                         "shardConsumerDispatchPollIntervalMillis=250")
    ap.add_argument("--jvm-arg", action="append", default=[], metavar="ARG",
                    help="one more JVM argument for every daemon (repeatable), e.g. -XX:TieredStopAtLevel=1")
    ap.add_argument("--kcl", type=int, action="append", choices=(1, 3), default=None,
                    help="only this generation (repeatable; default both)")
    args = ap.parse_args()
    kcl3_extra = dict(item.split("=", 1) for item in args.kcl3_set)
    JVM_ARGS.extend(args.jvm_arg)
    generations = tuple(args.kcl or (1, 3))
    insts = {generation: installation(generation, args.cache) for generation in generations}
    starts: list[Start] = []
    contenders = [(generation, file) for generation in generations for file in FILES]
    with tempfile.TemporaryDirectory() as tmp, EmbeddedEmulator(port=0) as emu:
        kinesis = _aws.client("kinesis", emu.endpoint_url)
        shards = set(_aws.ensure_stream(kinesis, STREAM, args.shards).shard_ids)
        _aws.put_records(kinesis, STREAM, [(f"r{i}".encode(), f"pk-{i}") for i in range(20 * args.shards)])
        for index in range(args.runs):
            turn = index % len(contenders)
            for generation, file in contenders[turn:] + contenders[:turn]:
                run = cold_start(generation, file, insts[generation], endpoint=emu.endpoint_url,
                                 shards=shards, workdir=Path(tmp), index=index, kcl3_extra=kcl3_extra)
                starts.append(run)
                print(f"run {index + 1}/{args.runs} KCL {generation}.x, {file:13}: STARTED {run.ready:6.2f} s, "
                      f"1st record {run.first:6.2f} s, every shard {run.every_shard:6.2f} s", flush=True)

    def median(generation: int, file: str, field: str) -> float:
        return float(statistics.median(getattr(s, field) for s in starts
                                       if s.generation == generation and s.file == file))

    extra = "".join(f", {k} = {v}" for k, v in kcl3_extra.items())
    print(f"\nmedians over {args.runs} cold start(s) each, {args.shards} shard(s), same emulator and "
          f"stream{' (3.x' + extra + ')' if extra else ''}; seconds from daemon start:")
    header = "".join(f"{f'{g}.x {f}':>22}" for g, f in contenders)
    print(f"{'':26}{header}")
    for label, field in (("worker STARTED", "ready"), ("first record", "first"),
                         ("a record on every shard", "every_shard")):
        cells = "".join(f"{median(g, f, field):>21.2f}s" for g, f in contenders)
        print(f"{label:<26}{cells}")
    for generation in generations:
        stock = median(generation, FILES[2], "first")
        print(f"KCL {generation}.x first record, stock start-up / kclpy-local's: "
              f"user's file {stock / median(generation, FILES[1], 'first'):.1f}x, "
              f"local profile {stock / median(generation, FILES[0], 'first'):.1f}x")
    print("targets: first record <= 5 s (1.x) and <= 10 s (3.x) from a user's file; "
          "<= 3 s (1.x) and <= 5 s (3.x) from the local profile")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
