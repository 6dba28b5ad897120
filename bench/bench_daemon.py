"""Daemon figures on the local profile: bootstrap cold and warm, cold start
(daemon start to STARTED and to the first record processed, over several fresh
applications: median and max), and put-to-process latency (median, p99).

    python bench/bench_daemon.py [--records 200] [--cold-runs 5] [--cache DIR]

Runs the real JVM with the KCL 1.15.3 jars against the embedded emulator.
Each cold run starts from a wiped emulator, with a new stream (2 shards, one
record put before the daemon starts) and a new application, so the lease table
is created and filled by that run. ``--cache`` reuses an installed cache (and
skips the bootstrap figures) instead of bootstrapping into a temporary one.
The last cold run also measures the put-to-process latency.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kclpy_local import _aws
from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._jvm.bootstrap import Installation, bootstrap
from kclpy_local._jvm.daemon import Daemon

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "properties" / "local.properties"
WAIT_LINE = "Lease table is still empty"
EAGER_LINE = "kclpy-local: eager initial lease sync"


def timed_bootstrap(cache: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kclpy_local", "bootstrap", "--cache-dir", str(cache)],
                   check=True, capture_output=True)
    return time.perf_counter() - start


@dataclass
class ColdRun:
    ready: float
    first: float
    empty_table_waits: int
    eager: bool


def read_ledger(ledger: Path) -> list[dict[str, object]]:
    if not ledger.exists():
        return []
    return [json.loads(line) for line in ledger.read_text().splitlines() if line.strip()]


def cold_run(emu: EmbeddedEmulator, inst: Installation, workdir: Path, index: int,
             records: int) -> tuple[ColdRun, list[float]]:
    """One daemon start on a wiped emulator and a new application; latency if ``records``."""
    emu.reset()
    kinesis = _aws.client("kinesis", emu.endpoint_url)
    name = f"bench-cold-{index}"
    _aws.ensure_stream(kinesis, name, 2)
    _aws.put_records(kinesis, name, [(b"first", "k")])
    ledger = workdir / f"ledger-{index}.jsonl"
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "KCLPY_LOCAL_ENDPOINT": emu.endpoint_url, "KCLPY_LOCAL_STREAM": name,
           "KCLPY_LOCAL_APP": name, "KCLPY_LOCAL_LEDGER": str(ledger)}
    lines: list[str] = []
    lat: list[float] = []
    start = time.time()
    with Daemon(PROFILE, installation=inst, env=env, cwd=ROOT, log=lines.append,
                overrides={"executableName": f"{sys.executable} processors/recorder.py"},
                ready_timeout=120):
        ready = time.time() - start
        deadline = time.time() + 120
        while not read_ledger(ledger):
            if time.time() > deadline:
                raise SystemExit("no record processed within 120 s:\n" + "\n".join(lines[-40:]))
            time.sleep(0.05)
        processed_at = read_ledger(ledger)[0]["processed_at"]
        assert isinstance(processed_at, float)
        first = processed_at - start
        if records:
            put_at: dict[str, float] = {}
            for i in range(records):
                tag = f"lat-{i}"
                put_at[tag] = time.time()
                _aws.put_records(kinesis, name, [(tag.encode(), tag)])
                time.sleep(0.02)
            deadline = time.time() + 60
            while time.time() < deadline:
                entries = read_ledger(ledger)
                lat = [float(e["processed_at"]) - put_at[str(e["partition_key"])]  # type: ignore[arg-type]
                       for e in entries if e["partition_key"] in put_at]
                if len(lat) >= records:
                    break
                time.sleep(0.5)
    run = ColdRun(ready, first, sum(WAIT_LINE in line for line in lines),
                  any(line.startswith(EAGER_LINE) for line in lines))
    return run, sorted(lat)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=200, help="records for the latency figure")
    ap.add_argument("--cold-runs", type=int, default=5, help="fresh applications to start")
    ap.add_argument("--cache", type=Path, help="an installed cache to use (no bootstrap figures)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cold = warm = None
        if args.cache is not None:
            inst = bootstrap(1, cache_dir=args.cache, offline=True)
        else:
            cache = Path(tmp) / "cache"
            cold = timed_bootstrap(cache)
            warm = timed_bootstrap(cache)
            inst = bootstrap(1, cache_dir=cache)
        runs: list[ColdRun] = []
        lat: list[float] = []
        with EmbeddedEmulator(port=0) as emu:
            for index in range(args.cold_runs):
                last = index == args.cold_runs - 1
                run, measured = cold_run(emu, inst, Path(tmp), index, args.records if last else 0)
                runs.append(run)
                if last:
                    lat = measured
                print(f"cold run {index + 1}/{args.cold_runs}: STARTED {run.ready:6.2f} s, "
                      f"1st record {run.first:6.2f} s, 'lease table is still empty' waits "
                      f"{run.empty_table_waits}, eager sync {'yes' if run.eager else 'no'}", flush=True)
        if cold is not None and warm is not None:
            print(f"bootstrap cold              {cold:8.2f} s")
            print(f"bootstrap warm              {warm:8.2f} s   ({warm / cold:.3f}x of cold)")
        ready = [r.ready for r in runs]
        first = [r.first for r in runs]
        print(f"daemon start to STARTED     median {statistics.median(ready):6.2f} s   "
              f"max {max(ready):6.2f} s   ({len(runs)} fresh applications)")
        print(f"daemon start to 1st record  median {statistics.median(first):6.2f} s   "
              f"max {max(first):6.2f} s   ({len(runs)} fresh applications)")
        if lat:
            print(f"put-to-process latency      p50 {statistics.median(lat) * 1000:6.0f} ms   "
                  f"p99 {lat[max(int(len(lat) * 0.99) - 1, 0)] * 1000:6.0f} ms   ({len(lat)} records; "
                  f"idleTimeBetweenReadsInMillis = 250)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
