"""Processor runtime throughput: kclpy-local vs amazon-kclpy vs a bare loop.

Generates a stream like the daemon's (initialize, then processRecords messages
of 1,000 records of about 1 KB, each followed by the reply to the processor's
checkpoint), feeds it to each contender as a separate process over a real pipe,
and prints records per second side by side with ratios, plus peak memory at two
stream lengths (flat memory: the peak does not grow with the stream).

    python bench/bench_runtime.py [--messages 200] [--records 1000] [--size 1024]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONTENDERS = {
    "kclpy-local (default checks)": "native",
    "kclpy-local (strict: full JSON Schema)": "native-strict",
    "amazon-kclpy KCLProcess": "kclpy",
    "floor: json.loads + b64decode": "floor",
}

CHILD = r'''
import sys, json, base64
mode = sys.argv[1]
total = 0
if mode.startswith("native"):
    from kclpy_local import KCLProcess, RecordProcessor
    class P(RecordProcessor):
        def process_records(self, batch, checkpointer):
            global total
            for r in batch.records:
                total += len(r.data)
            checkpointer.checkpoint()
        def lease_lost(self): pass
        def shard_ended(self, c): c.checkpoint()
        def shutdown_requested(self, c): c.checkpoint()
    out = open(sys.argv[2], "w")
    KCLProcess(P(), sys.stdin, out, sys.stderr, strict=(mode == "native-strict")).run()
elif mode == "kclpy":
    from amazon_kclpy import kcl
    from amazon_kclpy.v3 import processor
    class P(processor.RecordProcessorBase):
        def initialize(self, i): pass
        def process_records(self, i):
            global total
            for r in i.records:
                total += len(r.binary_data)
            i.checkpointer.checkpoint()
        def lease_lost(self, i): pass
        def shard_ended(self, i): i.checkpointer.checkpoint()
        def shutdown_requested(self, i): i.checkpointer.checkpoint()
    out = open(sys.argv[2], "w")
    kcl.KCLProcess(P(), sys.stdin, out, sys.stderr).run()
else:
    for line in sys.stdin:
        obj = json.loads(line)
        if obj.get("action") == "processRecords":
            for r in obj["records"]:
                total += len(base64.b64decode(r["data"]))
print(total, file=sys.stderr)
'''


def make_stream(path: Path, messages: int, records: int, size: int) -> int:
    payload = base64.b64encode(os.urandom(size)).decode()
    seq = 0
    with path.open("w") as f:
        f.write(json.dumps({"action": "initialize", "shardId": "shardId-000000000000",
                            "sequenceNumber": "TRIM_HORIZON", "subSequenceNumber": None}) + "\n")
        for _ in range(messages):
            batch = []
            for _ in range(records):
                seq += 1
                batch.append({"action": "record", "data": payload, "partitionKey": f"pk-{seq % 97}",
                              "sequenceNumber": str(49_600_000_000_000_000_000 + seq),
                              "approximateArrivalTimestamp": 1_700_000_000_000 + seq, "subSequenceNumber": None})
            f.write(json.dumps({"action": "processRecords", "records": batch, "millisBehindLatest": 0}) + "\n")
            f.write(json.dumps({"action": "checkpoint", "sequenceNumber": str(49_600_000_000_000_000_000 + seq),
                                "subSequenceNumber": None, "error": None}) + "\n")
    return messages * records


def run_one(mode: str, stream: Path, workdir: Path) -> tuple[float, int]:
    """Seconds and peak RSS (KiB) of one contender over the whole stream."""
    with stream.open("rb") as stdin:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", CHILD, mode, str(workdir / f"out-{mode}")],
                                stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed ({proc.returncode}): {err[-2000:]}")
    return elapsed, usage.ru_maxrss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--records", type=int, default=1000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        full, quarter = work / "full.jsonl", work / "quarter.jsonl"
        n = make_stream(full, args.messages, args.records, args.size)
        make_stream(quarter, max(1, args.messages // 4), args.records, args.size)
        print(f"stream: {args.messages} processRecords x {args.records} records x {args.size} B "
              f"= {n} records, {full.stat().st_size / 1e6:.0f} MB")
        results: dict[str, tuple[float, int, int]] = {}
        best = dict.fromkeys(CONTENDERS, float("inf"))
        for _ in range(args.repeat):  # interleaved, so drift in machine load hits all alike
            for label, mode in CONTENDERS.items():
                best[label] = min(best[label], run_one(mode, full, work)[0])
        for label, mode in CONTENDERS.items():
            rss_full = run_one(mode, full, work)[1]
            rss_quarter = run_one(mode, quarter, work)[1]
            results[label] = (n / best[label], rss_quarter, rss_full)
        base = results["amazon-kclpy KCLProcess"][0]
        floor = results["floor: json.loads + b64decode"][0]
        print(f"\n{'contender':42} {'records/s':>11} {'vs kclpy':>9} {'vs floor':>9} "
              f"{'peak RSS 1/4':>13} {'peak RSS full':>14}")
        for label, (rate, rq, rf) in results.items():
            print(f"{label:42} {rate:11,.0f} {rate / base:8.2f}x {rate / floor:8.2f}x "
                  f"{rq / 1024:10.1f} MB {rf / 1024:11.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
