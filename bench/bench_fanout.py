"""KCL 3.x enhanced fan-out against polling on a local engine, side by side.

    python bench/bench_fanout.py [--runs 3] [--records 100] [--interval 0.1] [--shards 2]
                                 [--engine kinesis-mock|ministack] [--http1] [--cache DIR]

One engine, started once by ``kclpy-local up`` (``--kinesis kinesis-mock``, the
default, with moto for DynamoDB and CloudWatch; or ``--engine ministack``), serves
every start. Each start is the real command a user types, ``kclpy-local run
processors/recorder.py --kcl 3 --set retrievalMode=MODE``, for a new application (an
empty lease table; for FANOUT a new stream consumer) on a stream of its own whose
first records were put before the command started. The two modes take turns, the
order alternating from run to run.

Figures per start:

- cold start: from the command's start to the first record processed (the
  processor's ledger time), and to a record processed on every shard;
- latency: once every record put before the start is processed, ``--records``
  records are put one at a time, ``--interval`` seconds apart, each from just
  before its PutRecord call to the time the processor handled it; median and p95
  per mode over every run.

The summary prints each figure for POLLING and FANOUT and the ratio FANOUT /
POLLING. POLLING runs with the built-in local profile's idleTimeBetweenReadsInMillis
(250 ms), FANOUT with the KCL's defaults over the launcher's HTTP/2 (h2c);
``--http1`` adds a third contender, FANOUT with ``kinesisHttpProtocol = HTTP1_1``
(kinesis-mock delivers subscription events later over HTTP/2). ``--polling-set`` and
``--fanout-set`` add a property to the polling or the fan-out starts (repeatable).
Each start's daemon log must say how it read records and over which protocol (the
launcher's lines), or the benchmark stops.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kclpy_local import _aws
from kclpy_local._emulators.registry import read_record

ROOT = Path(__file__).resolve().parents[1]
RECORDER = ROOT / "processors" / "recorder.py"
POLLING, FANOUT, HTTP1 = "POLLING", "FANOUT", "FANOUT/HTTP1.1"
_FANOUT_LINE = "kclpy-local: records by enhanced fan-out (SubscribeToShard)"


@dataclass(frozen=True)
class Contender:
    """A way to read: the retrieval mode, the properties it adds, the launcher's lines that prove it."""

    mode: str
    sets: tuple[str, ...]
    proof: tuple[str, ...]


CONTENDERS = {
    POLLING: Contender(
        "POLLING", (), ("kclpy-local: records by polling (GetRecords)", "HTTP/1.1)")
    ),
    FANOUT: Contender("FANOUT", (), (_FANOUT_LINE, "HTTP/2 without TLS (h2c, prior knowledge)")),
    HTTP1: Contender(
        "FANOUT",
        ("kinesisHttpProtocol=HTTP1_1",),
        (_FANOUT_LINE, "HTTP/1.1 (kinesisHttpProtocol = HTTP1_1)"),
    ),
}
PRE_PUT = 10  # records per shard put before each start
DEADLINE = 180.0


@dataclass(frozen=True)
class Start:
    contender: str
    first: float
    every_shard: float
    latencies: tuple[float, ...]


def read_ledger(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def cli(
    env: Mapping[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kclpy_local", *args],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def engines(env: Mapping[str, str], engine: str) -> Iterator[tuple[str, str]]:
    """``kclpy-local up`` with the engine; (Kinesis endpoint, DynamoDB endpoint); ``down`` after."""
    flags = ["--kinesis", "kinesis-mock"] if engine == "kinesis-mock" else ["--engine", engine]
    up = cli(env, "up", "--port", "0", *flags)
    if up.returncode != 0:
        raise SystemExit(f"kclpy-local up failed:\n{up.stderr}")
    try:
        record = read_record(Path(env["KCLPY_LOCAL_STATE"]))
        assert record is not None
        yield record.kinesis_endpoint, record.endpoint
    finally:
        cli(env, "down")


def wait_until(check: Any, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace").splitlines()[-40:] if log.exists() else []
            raise SystemExit(f"{what}: not within {DEADLINE:.0f} s\n" + "\n".join(tail))
        time.sleep(0.02)


def one_start(
    label: str,
    index: int,
    *,
    env: Mapping[str, str],
    kinesis_url: str,
    workdir: Path,
    shards: int,
    records: int,
    interval: float,
    extra: Sequence[str],
    cache: Path | None,
) -> Start:
    contender = CONTENDERS[label]
    name = f"bench-{label.lower().replace('/', '-').replace('.', '')}-{index}"
    kinesis = _aws.client("kinesis", kinesis_url)
    shard_ids = set(_aws.ensure_stream(kinesis, name, shards).shard_ids)
    _aws.put_records(
        kinesis, name, [(f"pre-{i}".encode(), f"pk-{i}") for i in range(PRE_PUT * shards)]
    )
    run_dir = workdir / name
    ledger = run_dir / "ledger.jsonl"
    argv = [
        sys.executable,
        "-m",
        "kclpy_local",
        "run",
        str(RECORDER),
        "--stream",
        name,
        "--app",
        name,
        "--kcl",
        "3",
        "--set",
        f"retrievalMode={contender.mode}",
        "--no-progress",
        "--run-dir",
        str(run_dir),
    ]
    for item in (*contender.sets, *extra):
        argv += ["--set", item]
    if cache is not None:
        argv += ["--cache-dir", str(cache)]
    run_dir.mkdir(parents=True)
    stderr = workdir / f"{name}.stderr"
    with stderr.open("w") as out:
        start = time.time()
        proc = subprocess.Popen(
            argv,
            env={**env, "KCLPY_LOCAL_LEDGER": str(ledger)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    try:
        wait_until(
            lambda: {e["shard"] for e in read_ledger(ledger)} >= shard_ids,
            proc,
            f"{label}: a record on every shard",
            stderr,
        )
        entries = read_ledger(ledger)
        times = [float(e["processed_at"]) - start for e in entries]
        firsts: dict[str, float] = {}
        for e, at in zip(entries, times, strict=True):
            firsts.setdefault(str(e["shard"]), at)
        wait_until(
            lambda: len(read_ledger(ledger)) >= PRE_PUT * shards,
            proc,
            f"{label}: the records put before the start",
            stderr,
        )
        log = (run_dir / "daemon.log").read_text(errors="replace")
        for line in contender.proof:
            if line not in log:
                raise SystemExit(f"{label}: the daemon log does not say {line!r}")
        put_at: dict[str, float] = {}
        for i in range(records):
            key = f"lat-{index}-{i}"
            put_at[key] = time.time()
            kinesis.put_record(StreamName=name, Data=key.encode(), PartitionKey=key)
            time.sleep(interval)
        wait_until(
            lambda: put_at.keys() <= {e["partition_key"] for e in read_ledger(ledger)},
            proc,
            f"{label}: the latency records",
            stderr,
        )
        seen = {e["partition_key"]: float(e["processed_at"]) for e in read_ledger(ledger)}
        latencies = tuple(sorted(seen[key] - at for key, at in put_at.items()))
        proc.send_signal(signal.SIGINT)
        proc.wait(120)
        return Start(label, min(times), max(firsts.values()), latencies)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=3, help="starts per contender")
    ap.add_argument("--records", type=int, default=100, help="latency records per start")
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between latency records")
    ap.add_argument("--shards", type=int, default=2, help="shards of each stream")
    ap.add_argument("--engine", choices=("kinesis-mock", "ministack"), default="kinesis-mock")
    ap.add_argument(
        "--http1", action="store_true", help="also FANOUT with kinesisHttpProtocol = HTTP1_1"
    )
    ap.add_argument(
        "--cache",
        type=Path,
        default=os.environ.get("KCLPY_LOCAL_TEST_CACHE"),
        help="an installed cache with KCL 3.x (default: the usual one)",
    )
    ap.add_argument(
        "--polling-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one more property for POLLING (repeatable)",
    )
    ap.add_argument(
        "--fanout-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one more property for FANOUT (repeatable), e.g. fanoutConfig.retryBackoffMillis=100",
    )
    args = ap.parse_args()
    labels = [POLLING, FANOUT, HTTP1] if args.http1 else [POLLING, FANOUT]
    extra = {
        label: args.polling_set if CONTENDERS[label].mode == "POLLING" else args.fanout_set
        for label in labels
    }
    starts: list[Start] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KCLPY_LOCAL_"))}
        env["KCLPY_LOCAL_STATE"] = str(workdir / "state")
        if args.cache is not None:
            env["KCLPY_LOCAL_CACHE"] = str(args.cache)
        with engines(env, args.engine) as (kinesis_url, _):
            for index in range(args.runs):
                turn = index % len(labels)
                for label in labels[turn:] + labels[:turn]:
                    start = one_start(
                        label,
                        index,
                        env=env,
                        kinesis_url=kinesis_url,
                        workdir=workdir,
                        shards=args.shards,
                        records=args.records,
                        interval=args.interval,
                        extra=extra[label],
                        cache=args.cache,
                    )
                    starts.append(start)
                    print(
                        f"run {index + 1}/{args.runs} {label:14}: first record {start.first:6.2f} s, "
                        f"every shard {start.every_shard:6.2f} s, latency median "
                        f"{statistics.median(start.latencies) * 1000:5.0f} ms, p95 "
                        f"{percentile(start.latencies, 0.95) * 1000:5.0f} ms",
                        flush=True,
                    )

    def of(label: str) -> list[Start]:
        return [s for s in starts if s.contender == label]

    def latencies(label: str) -> list[float]:
        return [x for s in of(label) for x in s.latencies]

    rows = [
        ("latency median (ms)", {c: statistics.median(latencies(c)) * 1000 for c in labels}),
        ("latency p95 (ms)", {c: percentile(latencies(c), 0.95) * 1000 for c in labels}),
        (
            "cold start to 1st record (s)",
            {c: statistics.median(s.first for s in of(c)) for c in labels},
        ),
        (
            "cold start, every shard (s)",
            {c: statistics.median(s.every_shard for s in of(c)) for c in labels},
        ),
    ]
    settings = "; ".join(f"{c}: {', '.join(extra[c])}" for c in labels if extra[c])
    print(
        f"\nKCL 3.x on {args.engine}, {args.shards} shard(s), {args.runs} start(s) each, "
        f"{args.records} latency records per start {args.interval:g} s apart"
        + (f" ({settings})" if settings else "")
        + "; cold starts are medians, from the command's start:"
    )
    others = labels[1:]
    header = "".join(f"{c:>16}" for c in labels) + "".join(
        f"{c + ' / POLLING':>26}" for c in others
    )
    print(f"{'':30}{header}")
    for name, values in rows:
        cells = "".join(f"{values[c]:>16.2f}" for c in labels)
        ratios = "".join(f"{values[c] / values[POLLING]:>25.2f}x" for c in others)
        print(f"{name:<30}{cells}{ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
