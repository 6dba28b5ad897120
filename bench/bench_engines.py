"""Distributed-behaviour figures on both Kinesis engines, side by side in one run.

    python bench/bench_engines.py [--records 12000] [--rounds 3] [--latency 100] [--cold-runs 3]

For each engine (moto alone; kinesis-mock for Kinesis with DynamoDB and
CloudWatch on moto), with the real KCL 1.15.3 daemon and processors/recorder.py
(which writes and fsyncs a ledger line per record and checkpoints each batch):

- end-to-end records/s through daemon and processor on a four-shard stream
  (records put first, at most 1,000 per GetRecords; from the worker's STARTED
  to the last batch's acknowledgement), beside the
  engine's raw GetRecords rate measured in the same run as the daemon reads:
  four concurrent readers, one per shard, from TRIM_HORIZON, at most 1,000
  records per call (the daemon's ``maxRecords`` here). On moto it runs three
  times: with the local profile and the daemon's JVM as shipped (the prefetch
  cache, ``readPause = empty``; C1 only), with the KCL's own reading
  (``dataFetchingStrategy = DEFAULT``, one GetRecords per 250 ms worker loop, the
  profile's setting before the cache), and with the JVM's own compilers
  (``KCLPY_LOCAL_JVM_OPTIONS`` empty: C1 then C2);
- where that time goes, from the daemon's log lines (stamped as they arrive) and
  the processors' own stamps: STARTED to the processors' initialize answers
  (their start), from there to the first batch, and per batch the JVM writing
  it to the processor starting on it, the processor's work to the checkpoint
  the KCL validated, the checkpoint's write to the lease table, and the hand-over
  to the next batch of the shard (medians, ms);
- put-to-process latency p50/p99 (one record at a time, 50 ms apart), with the
  number of records not processed within the window;
- cold start to the first record (new application, eager lease sync), median
  and max over ``--cold-runs``, each with a deadline.

The phases are interleaved: each phase runs on every engine before the next
phase, and the cold starts alternate between the engines. The end-to-end phase
runs ``--rounds`` times (the order of the contenders reversed every other
round), each with its raw rate measured right after it on the same stream; the
table gives the medians, with the range of the ratio, as the machine's noise
moves one run's ratio by a tenth.

Failover after ``kill -9`` is measured by bench/bench_failover.py. Needs a
bootstrapped cache (``kclpy-local bootstrap``), moto, and Node.js for
kinesis-mock (installed on first use).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kclpy_local import _aws
from kclpy_local._emulators.kinesis_mock import KinesisMock
from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._jvm.bootstrap import installation
from kclpy_local._jvm.daemon import LOCAL_PROFILE, READY_MARKER, Daemon, processor_command

ROOT = Path(__file__).resolve().parents[1]
RECORDER = ROOT / "processors" / "recorder.py"
SHARDS = 4
MAX_RECORDS = 1000  # the daemon's maxRecords in these runs, and the raw readers' Limit
COLD_DEADLINE = 120.0  # seconds a cold start may take before the bench gives up on it
LATENCY_WINDOW = 120.0  # seconds after the last put for the latency records to arrive


@dataclass(frozen=True)
class Engine:
    name: str
    kinesis_url: str
    aws_url: str
    #: Properties over the local profile (the end-to-end contenders).
    overrides: tuple[tuple[str, str], ...] = ()
    #: Variables for the daemon (the end-to-end contenders).
    env: tuple[tuple[str, str], ...] = ()


#: The local profile's reading before the prefetch cache, in the same run.
KCL_OWN_READING = (("dataFetchingStrategy", "DEFAULT"), ("idleTimeBetweenReadsInMillis", "250"))
#: The JVM's own compilers (C1 then C2) instead of the daemon's default C1 only.
JVM_OWN_JIT = (("KCLPY_LOCAL_JVM_OPTIONS", ""),)


@contextlib.contextmanager
def engines() -> Iterator[list[Engine]]:
    with EmbeddedEmulator(port=0) as moto, KinesisMock() as mock:
        yield [
            Engine("moto", moto.endpoint_url, moto.endpoint_url),
            Engine("kinesis-mock", mock.endpoint_url, moto.endpoint_url),
        ]


def ledger(path: Path) -> list[dict[str, object]]:
    """The ledger's complete lines (a line being written is read the next time)."""
    if not path.exists():
        return []
    text = path.read_text()
    complete = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line.strip()]


def ledger_count(path: Path) -> int:
    """How many complete lines the ledger holds, without parsing them: the wait for
    the last record must not take the CPU the daemon, the processors and the engine
    share (this machine's cores are what the end-to-end figure measures)."""
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def daemon(
    engine: Engine,
    stream: str,
    app: str,
    ledger_path: Path,
    progress: Path | None = None,
    *,
    log: Callable[[str], None] | None = None,
) -> Daemon:
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "KCLPY_LOCAL_LEDGER": str(ledger_path),
        **dict(engine.env),
    }
    if progress is not None:
        env["KCLPY_LOCAL_PROGRESS"] = str(progress)
    overrides = {
        "executableName": processor_command(RECORDER),
        "streamName": stream,
        "applicationName": app,
        "kinesisEndpoint": engine.kinesis_url,
        "dynamoDBEndpoint": engine.aws_url,
        "cloudWatchEndpoint": engine.aws_url,
        "isCBORProtocolDisabled": "true",
        "maxRecords": str(MAX_RECORDS),
        **dict(engine.overrides),
    }
    return Daemon(
        LOCAL_PROFILE,
        env=env,
        overrides=overrides,
        ready_timeout=120,
        log=log or (lambda line: None),
        installation=installation(1),
    )


def put(engine: Engine, stream: str, count: int, shards: int = SHARDS) -> None:
    kinesis = _aws.client("kinesis", engine.kinesis_url)
    _aws.ensure_stream(kinesis, stream, shards)
    _aws.put_records(
        kinesis, stream, [(b"x" * 100 + str(i).encode(), f"k{i}") for i in range(count)]
    )


def raw_get_records(engine: Engine, stream: str, count: int) -> float:
    """The engine's GetRecords rate as the daemon reads: one reader per shard, all
    at once, ``MAX_RECORDS`` per call, until each shard is read to its end."""
    shards = [
        s["ShardId"]
        for s in _aws.client("kinesis", engine.kinesis_url).list_shards(StreamName=stream)["Shards"]
    ]
    got = [0] * len(shards)
    errors: list[BaseException] = []
    start_line = threading.Barrier(len(shards) + 1)

    def read(index: int, shard: str) -> None:
        try:
            kinesis = _aws.client("kinesis", engine.kinesis_url)
            iterator = kinesis.get_shard_iterator(
                StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            start_line.wait()
            while iterator:
                out = kinesis.get_records(ShardIterator=iterator, Limit=MAX_RECORDS)
                got[index] += len(out["Records"])
                if not out["Records"] and out.get("MillisBehindLatest", 0) == 0:
                    break
                iterator = out.get("NextShardIterator")
        except BaseException as exc:  # reported below
            errors.append(exc)
            start_line.abort()

    readers = [threading.Thread(target=read, args=(i, shard)) for i, shard in enumerate(shards)]
    for reader in readers:
        reader.start()
    start_line.wait()
    start = time.perf_counter()
    for reader in readers:
        reader.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"{engine.name}: raw GetRecords failed: {errors[0]!r}")
    assert sum(got) == count, (got, count)
    return count / elapsed


#: Stages of the end-to-end time, in the order of the table.
STAGES = ("start", "first", "to child", "work", "checkpoint", "hand-over")
_SHARD = re.compile(r"(shardId-\d+)")


@dataclass(frozen=True)
class EndToEnd:
    rate: float  # records/s from STARTED
    steady: float  # records/s from the first batch's start
    stages: dict[str, float]  # median seconds of each of STAGES
    raw: float = float("nan")  # the engine's raw GetRecords rate, measured right after


@dataclass(frozen=True)
class Rounds:
    """The medians of the rounds' figures, and of their ratios to raw (each round's
    own), with the range of the ratio from STARTED."""

    medians: EndToEnd
    ratio: float
    steady_ratio: float
    ratio_range: tuple[float, float]


def median_of(rounds: list[EndToEnd]) -> Rounds:
    ratios = [r.rate / r.raw for r in rounds]
    return Rounds(
        EndToEnd(
            statistics.median(r.rate for r in rounds),
            statistics.median(r.steady for r in rounds),
            {stage: statistics.median(r.stages[stage] for r in rounds) for stage in STAGES},
            statistics.median(r.raw for r in rounds),
        ),
        statistics.median(ratios),
        statistics.median(r.steady / r.raw for r in rounds),
        (min(ratios), max(ratios)),
    )


def _stages(
    lines: list[tuple[float, str]], ready: float, batches: list[tuple[str, float]]
) -> dict[str, float]:
    """Medians of each stage, from the daemon's lines as they arrived and each batch's
    (shard, start) from the recorder's stamps."""
    events: dict[str, list[tuple[float, str]]] = {}
    for at, line in lines:
        found = _SHARD.search(line)
        if found is None:
            continue
        for marker, name in (
            ("Writing ProcessRecordsMessage", "write"),
            ("Validated sequence number", "validated"),
            ("Writing CheckpointMessage", "checkpointed"),
            ('"responseFor":"processRecords"', "done"),
            ('"responseFor":"initialize"', "initialized"),
        ):
            if marker in line:
                events.setdefault(found.group(1), []).append((at, name))
    spans: dict[str, list[float]] = {stage: [] for stage in STAGES}
    starts_by_shard: dict[str, list[float]] = {}
    for shard, start in sorted(batches, key=lambda batch: batch[1]):
        starts_by_shard.setdefault(shard, []).append(start)
    for shard, seen in events.items():
        initialized = [at for at, name in seen if name == "initialized"]
        if initialized:
            spans["start"].append(initialized[0] - ready)
            if starts_by_shard.get(shard):
                spans["first"].append(starts_by_shard[shard][0] - initialized[0])
        writes = [at for at, name in seen if name == "write"]
        for index, write in enumerate(writes):
            after = [(at, name) for at, name in seen if at >= write]
            start = next((t for t in starts_by_shard.get(shard, []) if t >= write - 0.05), None)
            validated = next((at for at, name in after if name == "validated"), None)
            checkpointed = next((at for at, name in after if name == "checkpointed"), None)
            done = next((at for at, name in after if name == "done"), None)
            if start is None or validated is None or checkpointed is None or done is None:
                continue
            spans["to child"].append(max(start - write, 0.0))
            spans["work"].append(validated - start)
            spans["checkpoint"].append(checkpointed - validated)
            if index + 1 < len(writes):
                spans["hand-over"].append(writes[index + 1] - done)
    return {
        stage: statistics.median(values) if values else float("nan")
        for stage, values in spans.items()
    }


def end_to_end(engine: Engine, workdir: Path, count: int, round_: int = 0) -> EndToEnd:
    """Records/s to the acknowledgement of the last batch (the runtime's progress
    event, written after the processor returned), the records put first: from the
    worker's STARTED (counting the KCL's lease taking and first reads), and from
    the start of the first batch (the recorder's stamp; its GetRecords not counted),
    with the stages of that time."""
    name = f"{engine.name}-{round_}"
    stream, path = f"e2e-{name}", workdir / f"e2e-{name}.jsonl"
    progress = workdir / f"e2e-{name}.progress"
    put(engine, stream, count)
    lines: list[tuple[float, str]] = []
    with daemon(
        engine,
        stream,
        f"e2e-app-{name}",
        path,
        progress,
        log=lambda line: lines.append((time.time(), line)),
    ):
        ready = next((at for at, line in lines if line.startswith(READY_MARKER)), time.time())
        deadline = time.time() + 600
        while (seen := ledger_count(path)) < count:
            if time.time() > deadline:
                raise SystemExit(f"{engine.name}: {seen}/{count} processed after 600 s")
            time.sleep(0.2)
        time.sleep(0.5)  # the last acknowledgement
    entries = ledger(path)
    done = max(float(e["t"]) for e in ledger(progress) if e.get("event") == "records")  # type: ignore[arg-type]
    first = min(float(e["processed_at"]) for e in entries)  # type: ignore[arg-type]
    batches = sorted({(str(e["shard"]), float(e["processed_at"])) for e in entries})  # type: ignore[arg-type]
    return EndToEnd(
        count / (done - ready),
        count / (done - first),
        _stages(lines, ready, batches),
        raw_get_records(engine, stream, count),
    )


def latency(engine: Engine, workdir: Path, count: int) -> tuple[list[float], int]:
    """Put-to-process seconds of the records processed within the window, sorted,
    and how many were not."""
    stream, path = f"lat-{engine.name}", workdir / f"lat-{engine.name}.jsonl"
    kinesis = _aws.client("kinesis", engine.kinesis_url)
    _aws.ensure_stream(kinesis, stream, 1)
    with daemon(engine, stream, f"lat-app-{engine.name}", path):
        put_at: dict[str, float] = {}
        for i in range(count):
            key = f"lat-{i}"
            put_at[key] = time.time()
            _aws.put_records(kinesis, stream, [(key.encode(), key)])
            time.sleep(0.05)
        deadline = time.time() + LATENCY_WINDOW
        while len(entries := ledger(path)) < count and time.time() < deadline:
            time.sleep(0.2)
    seen = {str(e["partition_key"]): float(e["processed_at"]) for e in entries}  # type: ignore[arg-type]
    return sorted(seen[key] - put_at[key] for key in seen if key in put_at), count - len(
        seen.keys() & put_at.keys()
    )


def cold_start(engine: Engine, workdir: Path, index: int) -> float | None:
    """Seconds from the daemon's start to the first record processed; ``None`` when
    none was processed within ``COLD_DEADLINE``."""
    stream, path = f"cold-{engine.name}-{index}", workdir / f"cold-{engine.name}-{index}.jsonl"
    put(engine, stream, 1, shards=2)
    start = time.time()
    with daemon(engine, stream, f"cold-app-{engine.name}-{index}", path):
        while not ledger(path):
            if time.time() - start > COLD_DEADLINE:
                return None
            time.sleep(0.05)
    return float(ledger(path)[0]["processed_at"]) - start  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=12000)
    parser.add_argument("--rounds", type=int, default=3, help="end-to-end rounds per contender")
    parser.add_argument("--latency", type=int, default=100)
    parser.add_argument("--cold-runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp, engines() as found:
        workdir = Path(tmp)
        moto = found[0]
        contenders = [
            *found,
            Engine("moto-kcl-reading", moto.kinesis_url, moto.aws_url, KCL_OWN_READING),
            Engine("moto-jvm-own-jit", moto.kinesis_url, moto.aws_url, env=JVM_OWN_JIT),
        ]
        rounds: dict[str, list[EndToEnd]] = {engine.name: [] for engine in contenders}
        lat: dict[str, tuple[list[float], int]] = {}
        cold: dict[str, list[float | None]] = {engine.name: [] for engine in found}
        for i in range(args.rounds):
            for engine in contenders if i % 2 == 0 else reversed(contenders):
                print(f"{engine.name}: end to end {i + 1} ...", file=sys.stderr, flush=True)
                rounds[engine.name].append(end_to_end(engine, workdir, args.records, i))
        for engine in contenders:
            print(f"{engine.name}: latency ...", file=sys.stderr, flush=True)
            lat[engine.name] = latency(engine, workdir, args.latency)
        for i in range(args.cold_runs):
            for engine in found if i % 2 == 0 else reversed(found):
                print(f"{engine.name}: cold start {i + 1} ...", file=sys.stderr, flush=True)
                cold[engine.name].append(cold_start(engine, workdir, i))
    print(
        f"{'contender':18} {'e2e rec/s':>10} {'(1st batch)':>11} {'raw GetRecords':>15} {'ratio':>6} "
        f"{'(range)':>11} {'(1st b.)':>8}   " + " ".join(f"{stage:>10}" for stage in STAGES)
    )
    for engine in contenders:
        summary = median_of(rounds[engine.name])
        result, (low, high) = summary.medians, summary.ratio_range
        print(
            f"{engine.name:18} {result.rate:10,.0f} {result.steady:11,.0f} {result.raw:15,.0f} "
            f"{summary.ratio:5.2f}x {f'{low:.2f}-{high:.2f}':>11} {summary.steady_ratio:7.2f}x   "
            + " ".join(f"{result.stages[stage] * 1000:10.0f}" for stage in STAGES)
        )
    print(
        f"(medians of {args.rounds} round(s); the ratios are each round's e2e over its raw rate; "
        f"{args.records} records of ~100 B on {SHARDS} shards, {MAX_RECORDS} per GetRecords; raw: {SHARDS} "
        "concurrent readers, as the daemon. Stages, median ms: start = STARTED to a processor's initialize "
        "answer; first = that to its first batch; per batch: to child = the JVM writing it to the processor "
        "starting on it; work = the processor's work to the checkpoint the KCL validated; checkpoint = its "
        "write to the lease table; hand-over = the processor's answer to the next batch's write)"
    )
    print()
    print(
        f"{'contender':18} {'p50 ms':>7} {'p99 ms':>7} {'late':>5} {'cold median s':>14} {'cold max s':>11}"
    )
    failed = False
    for engine in contenders:
        name = engine.name
        times, missing = lat[name]
        p50 = f"{statistics.median(times) * 1000:7.0f}" if times else f"{'-':>7}"
        p99 = f"{times[max(int(len(times) * 0.99) - 1, 0)] * 1000:7.0f}" if times else f"{'-':>7}"
        done = [c for c in cold.get(name, []) if c is not None]
        timed_out = len(cold.get(name, [])) - len(done)
        cold_median = f"{statistics.median(done):14.2f}" if done else f"{'-':>14}"
        cold_max = f"{max(done):11.2f}" if done else f"{'-':>11}"
        print(
            f"{name:18} {p50} {p99} {missing:5d} {cold_median} {cold_max}"
            + (f"  ({timed_out} cold start(s) past {COLD_DEADLINE:.0f} s)" if timed_out else "")
        )
        failed = failed or bool(missing) or bool(timed_out)
    print(
        f"(late: latency records not processed within {LATENCY_WINDOW:.0f} s; targets: e2e from STARTED "
        ">= 0.6x raw on moto, p50 <= 300 ms, cold start <= 10 s)"
    )
    if failed:
        raise SystemExit("some records or cold starts did not complete in time (see above)")


if __name__ == "__main__":
    main()
