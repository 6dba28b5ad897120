"""Processor runtime throughput: kclpy-local vs amazon-kclpy vs a bare loop.

Each contender runs as a child process on real pipes, driven the way the
MultiLangDaemon drives a processor. This process plays the daemon: it writes
``initialize``, then processRecords messages of ``--records`` records of
``--size`` bytes, then ``shutdownRequested``, one line each, and after every
message it reads the child's stdout line by line. It answers each checkpoint
request with a checkpoint reply echoing the position asked, skips blank and
non-JSON lines, and sends the next message only after the status line for
this one.

Contenders (every processor reads every record's bytes and checkpoints once
per batch):

* amazon-kclpy ``KCLProcess`` with an amazon-kclpy v3 processor reading
  ``binary_data`` (the baseline, 1.00x);
* ``kclpy_local.KCLProcess`` with the same processor, unchanged (the drop-in);
* ``kclpy_local.run`` with a native ``RecordProcessor`` reading ``record.data``;
* the same in strict mode (every message checked against the JSON Schemas);
* the floor: ``json.loads`` and ``base64.b64decode`` of every record, with the
  same exchange written by hand.

Rounds are interleaved (each round runs every contender once), so drift in
the machine's load hits all alike; the tables give medians and ranges, and
ratios to amazon-kclpy measured in the same round. Two measures: wall-clock
records per second (from the first processRecords written to the status for
the last one read) and records per CPU-second of the child (its CPU time from
``initialize`` to its end, which a loaded machine disturbs much less). Peak
RSS is the child's own high-water mark (``VmHWM``), over the full stream and
over a quarter of it (flat memory: the peak does not grow with the stream).

Every run is verified: the child must exit 0, answer one status line per
message for the right action, checkpoint once per batch, and print at the end
exactly the number of record bytes that were sent. A contender that fails
quietly (amazon-kclpy logs a processor exception and acknowledges the batch)
is marked FAILED and the bench exits 1. ``--inject-failure N`` makes every
processor raise on batch N, which shows that check at work.

    python bench/bench_runtime.py [--messages 100] [--records 1000] [--size 1024] [--rounds 5]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO

BASELINE = "amazon-kclpy KCLProcess"
FLOOR = "floor: json.loads + b64decode"
CONTENDERS = {
    BASELINE: "kclpy",
    "kclpy_local.KCLProcess (drop-in)": "dropin",
    "kclpy_local.run (native)": "native",
    "kclpy_local.run (native, strict)": "strict",
    FLOOR: "floor",
}
#: Targets from the issue: records/s ratio to amazon-kclpy (or records/s for strict).
TARGETS = {
    "kclpy_local.KCLProcess (drop-in)": ("ratio", 1.3),
    "kclpy_local.run (native)": ("ratio", 2.0),
    "kclpy_local.run (native, strict)": ("rate", 50_000.0),
}
TOTAL_LINE = "bench-total-bytes "
PEAK_LINE = "bench-peak-rss-kib "
CPU_LINE = "bench-cpu-seconds "

CHILD = r'''
import base64, json, os, sys, time
mode = sys.argv[1]
fail_batch = int(os.environ.get("BENCH_FAIL_BATCH") or 0)
total = 0
batches = 0
cpu_start = None

def mark():  # once initialized: the CPU time from here on is the records' (and shutdown's)
    global cpu_start
    cpu_start = time.process_time()

def count(n):
    global total, batches
    batches += 1
    if batches == fail_batch:
        raise ValueError(f"injected failure in batch {batches}")
    total += n

try:
    if mode in ("kclpy", "dropin"):
        from amazon_kclpy.v3 import processor
        if mode == "kclpy":
            from amazon_kclpy.kcl import KCLProcess
        else:
            from kclpy_local import KCLProcess

        class P(processor.RecordProcessorBase):
            def initialize(self, initialize_input):
                mark()

            def process_records(self, process_records_input):
                n = 0
                for record in process_records_input.records:
                    n += len(record.binary_data)
                count(n)
                process_records_input.checkpointer.checkpoint()

            def lease_lost(self, lease_lost_input):
                pass

            def shard_ended(self, shard_ended_input):
                shard_ended_input.checkpointer.checkpoint()

            def shutdown_requested(self, shutdown_requested_input):
                shutdown_requested_input.checkpointer.checkpoint()

        KCLProcess(P()).run()
    elif mode in ("native", "strict"):
        from kclpy_local import RecordProcessor, run

        class N(RecordProcessor):
            def initialize(self, shard):
                mark()

            def process_records(self, batch, checkpointer):
                n = 0
                for record in batch.records:
                    n += len(record.data)
                count(n)
                checkpointer.checkpoint()

            def lease_lost(self):
                pass

            def shard_ended(self, checkpointer):
                checkpointer.checkpoint()

            def shutdown_requested(self, checkpointer):
                checkpointer.checkpoint()

        run(N(), strict=(mode == "strict"))
    else:  # the floor: the same exchange with nothing but json.loads and b64decode
        read, out = sys.stdin.readline, sys.stdout
        b64decode, loads = base64.b64decode, json.loads
        ask = '{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}\n'
        while line := read():
            if line.isspace():
                continue
            obj = loads(line)
            action = obj["action"]
            if action == "initialize":
                mark()
            elif action == "processRecords":
                n = 0
                for record in obj["records"]:
                    n += len(b64decode(record["data"]))
                total += n
            if action in ("processRecords", "shutdownRequested"):
                out.write(ask)
                out.flush()
                loads(read())
            out.write('{"action":"status","responseFor":"%s"}\n' % action)
            out.flush()
finally:
    peak = 0
    try:  # this process image's own peak (ru_maxrss would count the parent's pages before exec)
        with open("/proc/self/status") as status:
            peak = next(int(t.split()[1]) for t in status if t.startswith("VmHWM:"))
    except (OSError, StopIteration):
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu = -1.0 if cpu_start is None else time.process_time() - cpu_start
    sys.stderr.write(f"\nbench-total-bytes {total}\nbench-peak-rss-kib {peak}\nbench-cpu-seconds {cpu}\n")
    sys.stderr.flush()
'''


def make_stream(messages: int, records: int, size: int) -> list[tuple[str, bytes]]:
    """The daemon's lines (action, line with newline), as the daemon writes them."""
    payload = base64.b64encode(os.urandom(size)).decode()
    lines = [("initialize", _line({"action": "initialize", "shardId": "shardId-000000000000",
                                   "sequenceNumber": "TRIM_HORIZON", "subSequenceNumber": None}))]
    seq = 0
    for _ in range(messages):
        batch = []
        for _ in range(records):
            seq += 1
            batch.append({"action": "record", "data": payload, "partitionKey": f"pk-{seq % 97}",
                          "sequenceNumber": str(49_600_000_000_000_000_000 + seq),
                          "approximateArrivalTimestamp": 1_700_000_000_000 + seq,
                          "subSequenceNumber": None})
        lines.append(("processRecords", _line({"action": "processRecords", "records": batch,
                                               "millisBehindLatest": 0})))
    lines.append(("shutdownRequested", _line({"action": "shutdownRequested"})))
    return lines


def _line(obj: object) -> bytes:
    return (json.dumps(obj) + "\n").encode()


@dataclass
class Result:
    seconds: float = 0.0  # first processRecords written to its last status read
    startup: float = 0.0  # spawn to the status for initialize
    cpu: float = 0.0  # the child's CPU seconds from initialize to its end
    rss_kib: int = 0
    statuses: int = 0
    checkpoints: int = 0
    total_bytes: int | None = None
    exit_code: int | None = None
    problems: list[str] = field(default_factory=list)


class Failed(Exception):
    pass


def _answer(stdout: IO[bytes], stdin: IO[bytes], action: str, result: Result) -> None:
    """Read the child's lines until the status for ``action``, answering checkpoints."""
    while True:
        raw = stdout.readline()
        if not raw:
            raise Failed(f"the child closed stdout before the status for {action}")
        try:
            obj = json.loads(raw)
        except ValueError:
            continue  # the daemon skips blank and non-JSON lines ("Skipping unexpected line")
        if not isinstance(obj, dict):
            continue
        kind = obj.get("action")
        if kind == "checkpoint":
            reply = {"action": "checkpoint", "sequenceNumber": obj.get("sequenceNumber"),
                     "subSequenceNumber": obj.get("subSequenceNumber"), "error": None}
            stdin.write(_line(reply))
            stdin.flush()
            result.checkpoints += 1
        elif kind == "status":
            if obj.get("responseFor") != action:  # the daemon exits on a status for another action
                raise Failed(f"status for {obj.get('responseFor')!r} while {action!r} was due")
            result.statuses += 1
            return


def run_one(mode: str, stream: list[tuple[str, bytes]], env: dict[str, str]) -> Result:
    result = Result()
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdin and proc.stdout and proc.stderr
    err: list[bytes] = []
    drain = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
    drain.start()
    records_started = records_done = 0.0
    try:
        for index, (action, line) in enumerate(stream):
            if action == "processRecords" and not records_started:
                records_started = time.perf_counter()
            proc.stdin.write(line)
            proc.stdin.flush()
            _answer(proc.stdout, proc.stdin, action, result)
            if index == 0:
                result.startup = time.perf_counter() - start
            if action == "processRecords":
                records_done = time.perf_counter()
    except (Failed, BrokenPipeError) as exc:
        result.problems.append(str(exc) if isinstance(exc, Failed) else "the child closed stdin")
    try:
        proc.stdin.close()
    except BrokenPipeError:
        pass
    result.exit_code = proc.wait()
    drain.join()
    result.seconds = records_done - records_started
    stderr = b"".join(err).decode(errors="replace")
    for text in stderr.splitlines():
        if text.startswith(TOTAL_LINE):
            result.total_bytes = int(text[len(TOTAL_LINE):])
        elif text.startswith(PEAK_LINE):
            result.rss_kib = int(text[len(PEAK_LINE):])
        elif text.startswith(CPU_LINE):
            result.cpu = float(text[len(CPU_LINE):])
    if result.exit_code != 0:
        result.problems.append(f"exit status {result.exit_code}")
    if result.problems or "Traceback" in stderr:
        said = [t for t in stderr.splitlines() if t.strip() and not t.startswith("bench-")]
        result.problems.append("stderr ends: " + (said[-1] if said else "(nothing)"))
    return result


def verify(result: Result, stream: list[tuple[str, bytes]], records: int, size: int) -> None:
    batches = sum(1 for action, _ in stream if action == "processRecords")
    sent = batches * records * size
    if result.statuses != len(stream):
        result.problems.append(f"{result.statuses} status lines for {len(stream)} messages")
    if result.checkpoints != batches + 1:
        result.problems.append(f"{result.checkpoints} checkpoints for {batches + 1} expected")
    if result.total_bytes != sent:
        result.problems.append(f"read {result.total_bytes} record bytes of {sent} sent")


def _fmt_range(values: list[float], spec: str) -> str:
    return f"{format(min(values), spec)}-{format(max(values), spec)}"


def _ratio(value: float) -> str:
    return "-" if value != value else f"{value:.2f}x"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=100, help="processRecords messages per run")
    ap.add_argument("--records", type=int, default=1000, help="records per message")
    ap.add_argument("--size", type=int, default=1024, help="bytes per record")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (every contender once each)")
    ap.add_argument("--only", action="append", choices=sorted(CONTENDERS.values()),
                    help="run only these contenders (the baseline always runs)")
    ap.add_argument("--inject-failure", type=int, metavar="N", default=0,
                    help="every processor raises on batch N (shows that quiet failures are caught)")
    args = ap.parse_args()
    contenders = {label: mode for label, mode in CONTENDERS.items()
                  if not args.only or mode in args.only or label == BASELINE}
    env = dict(os.environ)
    env.pop("KCLPY_LOCAL_ON_ERROR", None)
    env.pop("KCLPY_LOCAL_STRICT", None)
    if args.inject_failure:
        env["BENCH_FAIL_BATCH"] = str(args.inject_failure)
    full = make_stream(args.messages, args.records, args.size)
    quarter = full[: 1 + max(1, args.messages // 4)] + full[-1:]
    n = args.messages * args.records
    print(f"stream: {args.messages} processRecords x {args.records} records x {args.size} B = "
          f"{n:,} records, {sum(len(line) for _, line in full) / 1e6:.0f} MB; "
          f"{args.rounds} interleaved rounds")
    runs: dict[str, list[Result]] = {label: [] for label in contenders}
    for _ in range(args.rounds):
        for label, mode in contenders.items():
            result = run_one(mode, full, env)
            verify(result, full, args.records, args.size)
            runs[label].append(result)
    quarter_rss: dict[str, int] = {}
    for label, mode in contenders.items():
        result = run_one(mode, quarter, env)
        verify(result, quarter, args.records, args.size)
        quarter_rss[label] = result.rss_kib
        if result.problems:
            runs[label].append(result)  # reported with the others

    return report(runs, quarter_rss, n, args.rounds, contenders)


def report(runs: dict[str, list[Result]], quarter_rss: dict[str, int], n: int, rounds: int,
           contenders: dict[str, str]) -> int:
    failed = {label: [p for r in rs for p in r.problems] for label, rs in runs.items()}
    ok = [i for i in range(rounds) if not runs[BASELINE][i].problems]
    base_rss = statistics.median(r.rss_kib for r in runs[BASELINE][:rounds])
    figures: dict[str, dict[str, tuple[float, float]]] = {}
    for title, key, measure in (
        ("wall clock: records/s, first processRecords sent to its last status read", "wall",
         lambda r: r.seconds),
        ("CPU: records per CPU-second of the child (steadier on a loaded machine)", "cpu",
         lambda r: r.cpu),
    ):
        print(f"\n{title}\n{'contender':34} {'median':>9} {'range':>17} {'vs kclpy':>9} {'range':>12}")
        for label, rs in runs.items():
            if failed[label]:
                if key == "wall":
                    print(f"{label:34} FAILED: {'; '.join(dict.fromkeys(failed[label]))[:400]}")
                continue
            timed = rs[:rounds]
            rates = [n / measure(r) for r in timed]
            ratios = [rates[i] / (n / measure(runs[BASELINE][i])) for i in ok]
            ratio = statistics.median(ratios) if ratios else float("nan")
            figures.setdefault(label, {})[key] = (statistics.median(rates), ratio)
            print(f"{label:34} {statistics.median(rates):>9,.0f} {_fmt_range(rates, ',.0f'):>17} "
                  f"{_ratio(ratio):>9} {_fmt_range(ratios, '.2f') + 'x' if ratios else '-':>12}")
    print(f"\n{'contender':34} {'startup':>8} {'peak RSS 1/4':>13} {'peak RSS full':>14} {'vs kclpy':>9}")
    for label in figures:
        timed = runs[label][:rounds]
        rss = statistics.median(r.rss_kib for r in timed)
        print(f"{label:34} {statistics.median(r.startup for r in timed) * 1000:>6.0f}ms "
              f"{quarter_rss[label] / 1024:>10.1f} MB {rss / 1024:>11.1f} MB {rss / base_rss:>8.2f}x")
    print("\ntargets (wall clock; CPU in brackets):")
    for label, (kind, want) in TARGETS.items():
        if label not in contenders:
            continue
        if label not in figures:
            print(f"  {label}: FAILED")
            continue
        (wall_rate, wall_ratio), (cpu_rate, cpu_ratio) = figures[label]["wall"], figures[label]["cpu"]
        if kind == "ratio":
            got, cpu, text = wall_ratio, cpu_ratio, f"{wall_ratio:.2f}x [{cpu_ratio:.2f}x] amazon-kclpy"
        else:
            got, cpu, text = wall_rate, cpu_rate, f"{wall_rate:,.0f} [{cpu_rate:,.0f}] records/s"
        verdict = "met" if got >= want else ("met on CPU only" if cpu >= want else "NOT met")
        print(f"  {label}: {text} (target >= {want:,}): {verdict}")
    for label in figures:
        rss = statistics.median(r.rss_kib for r in runs[label][:rounds])
        flat = rss <= quarter_rss[label] * 1.1
        print(f"  {label}: peak RSS {'flat' if flat else 'GROWS'} over the stream "
              f"({quarter_rss[label] / 1024:.1f} -> {rss / 1024:.1f} MB), {rss / base_rss:.2f}x amazon-kclpy"
              f" (target <= 1.5x): {'met' if flat and rss <= 1.5 * base_rss else 'NOT met'}")
    return 1 if any(failed.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
