"""Daemon figures on the local profile: bootstrap cold and warm, daemon start to
the first record processed, and put-to-process latency (median, p99).

    python bench/bench_daemon.py [--records 200]

Runs the real JVM with the KCL 1.15.3 jars against the embedded emulator.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kclpy_local import _aws
from kclpy_local._bootstrap import bootstrap
from kclpy_local._daemon import Daemon
from kclpy_local._emulator import EmbeddedEmulator

ROOT = Path(__file__).resolve().parents[1]


def timed_bootstrap(cache: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kclpy_local", "bootstrap", "--cache-dir", str(cache)],
                   check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        cold = timed_bootstrap(cache)
        warm = timed_bootstrap(cache)
        inst = bootstrap(1, cache_dir=cache)
        ledger = Path(tmp) / "ledger.jsonl"
        with EmbeddedEmulator(port=0) as emu:
            kinesis = _aws.client("kinesis", emu.endpoint_url)
            _aws.ensure_stream(kinesis, "bench", 2)
            _aws.put_records(kinesis, "bench", [(b"first", "k")])
            env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                   "KCLPY_LOCAL_ENDPOINT": emu.endpoint_url, "KCLPY_LOCAL_STREAM": "bench",
                   "KCLPY_LOCAL_APP": "bench", "KCLPY_LOCAL_LEDGER": str(ledger)}
            start = time.time()
            with Daemon(ROOT / "properties" / "local.properties", installation=inst, env=env, cwd=ROOT,
                        overrides={"executableName": f"{sys.executable} processors/recorder.py"},
                        ready_timeout=120):
                ready = time.time() - start
                while not ledger.exists() or not ledger.read_text().strip():
                    time.sleep(0.05)
                first = json.loads(ledger.read_text().splitlines()[0])["processed_at"] - start
                put_at: dict[str, float] = {}
                for i in range(args.records):
                    tag = f"lat-{i}"
                    put_at[tag] = time.time()
                    _aws.put_records(kinesis, "bench", [(tag.encode(), tag)])
                    time.sleep(0.02)
                deadline = time.time() + 60
                lat: list[float] = []
                while time.time() < deadline:
                    entries = [json.loads(x) for x in ledger.read_text().splitlines()]
                    lat = [e["processed_at"] - put_at[e["partition_key"]] for e in entries
                           if e["partition_key"] in put_at]
                    if len(lat) >= args.records:
                        break
                    time.sleep(0.5)
        lat.sort()
        print(f"bootstrap cold              {cold:8.2f} s")
        print(f"bootstrap warm              {warm:8.2f} s   ({warm / cold:.3f}x of cold)")
        print(f"daemon start to STARTED     {ready:8.2f} s")
        print(f"daemon start to 1st record  {first:8.2f} s")
        print(f"put-to-process latency      p50 {statistics.median(lat) * 1000:6.0f} ms   "
              f"p99 {lat[int(len(lat) * 0.99) - 1] * 1000:6.0f} ms   ({len(lat)} records; "
              f"idleTimeBetweenReadsInMillis = 250)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
