"""``kclpy-local run`` end to end: the real CLI in a subprocess, the real JVM and
jars, moto on loopback (embedded, or named with ``--endpoint``), real pipes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kclpy_local import _aws
from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._jvm.bootstrap import Installation

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RECORDER = ROOT / "processors" / "recorder.py"


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class RunProcess:
    """``python -m kclpy_local run ...`` (or another ``command``) with its stderr collected."""

    def __init__(self, argv: list[str], env: dict[str, str], tmp: Path, name: str = "run",
                 cwd: Path | None = None, command: str = "run") -> None:
        self.stderr_path = tmp / f"{name}.stderr"
        self._stderr = self.stderr_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kclpy_local", command, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            cwd=cwd or tmp,
            text=True,
        )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def interrupt(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


@pytest.fixture
def start_run(kcl1: Installation, kcl_cache: Path, tmp_path: Path) -> Iterator[Callable[..., RunProcess]]:
    runs: list[RunProcess] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KCLPY_LOCAL_"))}
    env["KCLPY_LOCAL_LEDGER"] = str(tmp_path / "ledger.jsonl")
    env["KCLPY_LOCAL_STATE"] = str(tmp_path / "state")

    def start(*argv: str) -> RunProcess:
        run = RunProcess([*argv, "--cache-dir", str(kcl_cache), "--run-dir", str(tmp_path / "run")], env, tmp_path)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.close()


def ledger(tmp: Path) -> list[dict[str, object]]:
    path = tmp / "ledger.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _exercise(run: RunProcess, endpoint: str, tmp: Path, *, app: str, stream: str, shards: int) -> None:
    wait_for(lambda: "worker started after" in run.stderr or run.proc.poll() is not None, 120,
             "the worker to start")
    assert run.proc.poll() is None, run.stderr
    kinesis = _aws.client("kinesis", endpoint)
    assert len(_aws.ensure_stream(kinesis, stream).shard_ids) == shards  # created by `run`
    put = _aws.put_records(kinesis, stream, [(f"r{i}".encode(), f"pk{i}") for i in range(40)])
    wanted = {(p.shard_id, p.sequence_number) for p in put}
    wait_for(lambda: wanted <= {(e["shard"], e["sequence_number"]) for e in ledger(tmp)}, 60,
             "the records in the ledger")
    per_shard: dict[str, int] = {}
    for p in put:
        per_shard[p.shard_id] = per_shard.get(p.shard_id, 0) + 1
    # Live progress names each shard with its record count.
    wait_for(lambda: all(f"{shard} {n} records" in run.stderr for shard, n in per_shard.items()), 30,
             f"progress lines for {per_shard}")
    last: dict[str, int] = {}
    for p in put:
        last[p.shard_id] = max(last.get(p.shard_id, 0), int(p.sequence_number))
    expected = {s: str(n) for s, n in last.items()}
    dynamodb = _aws.client("dynamodb", endpoint)

    def checkpoints() -> dict[str, str | None]:
        leases = {lease.lease_key: lease.checkpoint for lease in _aws.read_leases(dynamodb, app)}
        return {shard: leases.get(shard) for shard in last}

    # The progress view's checkpoints are the lease table's.
    wait_for(lambda: checkpoints() == expected, 30, f"checkpoints {expected}")
    for shard, sequence in expected.items():
        assert f"{shard} {per_shard[shard]} records, lag 0ms, checkpoint {sequence}" in run.stderr
    # Ctrl-C: a graceful stop, told in words; the daemon's 143 is no failure of the run.
    assert run.interrupt() == 0, run.stderr
    assert run.stderr.splitlines()[-1] == (
        f"kclpy-local: stopped gracefully: {shards} lease(s) released for another worker to take "
        "(daemon exit status 143 = SIGTERM, as asked)"), run.stderr
    assert re.search(r"first record processed [0-9.]+s after start", run.stderr), run.stderr


def test_run_against_a_plain_endpoint(start_run: Callable[..., RunProcess], fresh_emulator: EmbeddedEmulator,
                                      tmp_path: Path) -> None:
    endpoint = fresh_emulator.endpoint_url
    run = start_run(str(RECORDER), "--stream", "run-ep", "--shards", "2", "--app", "run-ep-app",
                    "--endpoint", endpoint)
    _exercise(run, endpoint, tmp_path, app="run-ep-app", stream="run-ep", shards=2)
    assert "embedded emulator" not in run.stderr
    # The endpoint outlives the run: both leases are there, checkpointed past TRIM_HORIZON.
    leases = _aws.read_leases(_aws.client("dynamodb", endpoint), "run-ep-app")
    assert len(leases) == 2 and all(lease.checkpoint not in (None, "TRIM_HORIZON") for lease in leases), leases


def test_run_starts_the_embedded_emulator(start_run: Callable[..., RunProcess], tmp_path: Path) -> None:
    run = start_run(str(RECORDER), "--stream", "run-emb", "--shards", "3")
    wait_for(lambda: "(embedded emulator started" in run.stderr or run.proc.poll() is not None, 60,
             "the emulator")
    match = re.search(r"kclpy-local: endpoint (http://127\.0\.0\.1:\d+) \(embedded emulator started for this "
                      r"run, pid \d+: no emulator recorded in the state dir ", run.stderr)
    assert match, run.stderr
    # The application name defaults to the processor's file name.
    _exercise(run, match.group(1), tmp_path, app="recorder", stream="run-emb", shards=3)
    # The emulator was the run's own: it is gone now.
    with pytest.raises(Exception):  # noqa: B017 - any connection error
        _aws.client("kinesis", match.group(1)).list_streams()


#: A record processor that raises on its first batch.
FAILING_PROCESSOR = (
    "from kclpy_local import RecordProcessor, run\n"
    "class P(RecordProcessor):\n"
    "    def process_records(self, batch, checkpointer):\n"
    "        raise RuntimeError('boom')\n"
    "    def lease_lost(self): pass\n"
    "    def shard_ended(self, checkpointer): checkpointer.checkpoint()\n"
    "    def shutdown_requested(self, checkpointer): pass\n"
    "run(P())\n"
)


def test_run_exits_4_when_the_processor_fails(
    start_run: Callable[..., RunProcess], fresh_emulator: EmbeddedEmulator, tmp_path: Path
) -> None:
    failing = tmp_path / "failing.py"
    failing.write_text(FAILING_PROCESSOR)
    endpoint = fresh_emulator.endpoint_url
    run = start_run(str(failing), "--stream", "run-fail", "--endpoint", endpoint, "--log", "-")
    wait_for(lambda: "worker started after" in run.stderr or run.proc.poll() is not None, 120, "start")
    _aws.put_records(_aws.client("kinesis", endpoint), "run-fail", [(b"x", "k")])
    # The processor exits with 4 on the exception; the KCL 1.x worker then shuts down
    # (the JVM exits with 1), and run reports a processor failure: 4, as the README says.
    code = run.proc.wait(120)
    assert code == 4, run.stderr
    assert "RuntimeError: boom" in run.stderr
    # The error names the reason the KCL logged (MultiLangRecordProcessor.stopProcessing).
    assert ("kclpy-local: error: the daemon exited with code 1: the record processor for shardId-000000000000 "
            "failed while processing records (exit status 4; RuntimeError: boom); the KCL stopped the daemon"
            ) in run.stderr
    leases = _aws.read_leases(_aws.client("dynamodb", endpoint), "failing")
    assert all(lease.checkpoint in ("TRIM_HORIZON", None) for lease in leases), leases


def test_daemon_exits_4_when_the_processor_fails(
    fresh_emulator: EmbeddedEmulator, kcl_cache: Path, tmp_path: Path
) -> None:
    """`kclpy-local daemon` exits as `run` does when a record processor failed: 4, not
    the KCL daemon's own 1."""
    failing = tmp_path / "failing.py"
    failing.write_text(FAILING_PROCESSOR)
    endpoint = fresh_emulator.endpoint_url
    kinesis = _aws.client("kinesis", endpoint)
    _aws.ensure_stream(kinesis, "daemon-fail", 1)
    properties = tmp_path / "failing.properties"
    properties.write_text(
        "applicationName = daemon-failing\n"
        "streamName = daemon-fail\n"
        f"executableName = {sys.executable} {failing}\n"
        "initialPositionInStream = TRIM_HORIZON\n"
        "AWSCredentialsProvider = EnvironmentVariableCredentialsProvider\n"
        "regionName = us-east-1\n"
        f"kinesisEndpoint = {endpoint}\n"
        f"dynamoDBEndpoint = {endpoint}\n"
        f"cloudWatchEndpoint = {endpoint}\n"
        "isCBORProtocolDisabled = true\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KCLPY_LOCAL_"))}
    env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
    daemon = RunProcess([str(properties), "--cache-dir", str(kcl_cache)], env, tmp_path, "daemon",
                        command="daemon")
    try:
        wait_for(lambda: "worker STARTED" in daemon.stderr or daemon.proc.poll() is not None, 120, "start")
        _aws.put_records(kinesis, "daemon-fail", [(b"x", "k")])
        code = daemon.proc.wait(120)
    finally:
        daemon.close()
    assert code == 4, daemon.stderr[-3000:]
    assert "RuntimeError: boom" in daemon.stderr


#: Records to the ledger and checkpoints each batch; raises on the record "poison"
#: unless the marker file next to it exists, which it creates: fails once.
FAILS_ONCE = '''
import base64, json, os
from pathlib import Path
from kclpy_local import RecordProcessor, run

MARKER = Path(__file__).with_name("failed-once")


class FailsOnce(RecordProcessor):
    def initialize(self, shard):
        self.shard = shard.shard_id

    def process_records(self, batch, checkpointer):
        with open(os.environ["KCLPY_LOCAL_LEDGER"], "a", encoding="utf-8") as ledger:
            for record in batch.records:
                if record.data == b"poison" and not MARKER.exists():
                    MARKER.touch()
                    raise RuntimeError(f"poison record {record.sequence_number}")
                ledger.write(json.dumps({"shard": self.shard, "sequence_number": record.sequence_number,
                                         "data": base64.b64encode(record.data).decode()}) + "\\n")
        if batch.records:
            checkpointer.checkpoint(batch.records[-1])

    def lease_lost(self):
        pass

    def shard_ended(self, checkpointer):
        checkpointer.checkpoint()

    def shutdown_requested(self, checkpointer):
        checkpointer.checkpoint()


run(FailsOnce())
'''


def test_run_restart_resumes_after_a_processor_failure(
    start_run: Callable[..., RunProcess], fresh_emulator: EmbeddedEmulator, tmp_path: Path
) -> None:
    processor = tmp_path / "fails_once.py"
    processor.write_text(FAILS_ONCE, encoding="utf-8")
    endpoint = fresh_emulator.endpoint_url
    # A short graceful-shutdown bound: after the failure the launcher's shutdown hook
    # waits for every shard, and the failed one never finishes.
    run = start_run(str(processor), "--stream", "run-restart", "--app", "run-restart", "--endpoint", endpoint,
                    "--restart", "--backoff", "0.5", "--set", "shutdownGraceMillis=2000", "--no-progress")
    wait_for(lambda: "worker started after" in run.stderr or run.proc.poll() is not None, 120, "start")
    kinesis = _aws.client("kinesis", endpoint)
    dynamodb = _aws.client("dynamodb", endpoint)

    def checkpoint() -> str | None:
        leases = _aws.read_leases(dynamodb, "run-restart")
        return leases[0].checkpoint if leases else None

    before = _aws.put_records(kinesis, "run-restart", [(f"a{i}".encode(), "k") for i in range(5)])
    wait_for(lambda: checkpoint() == before[-1].sequence_number, 60, "the first batch's checkpoint")
    failing = _aws.put_records(kinesis, "run-restart", [(d.encode(), "k") for d in ("b0", "b1", "poison", "b3")])
    wait_for(lambda: "restart 1 of 5" in run.stderr or run.proc.poll() is not None, 120, "the restart")
    assert run.proc.poll() is None, run.stderr
    # The restarted daemon resumes from the checkpoint, before the failing batch.
    wait_for(lambda: checkpoint() == failing[-1].sequence_number or run.proc.poll() is not None, 120,
             "the checkpoint after the restart")
    assert run.proc.poll() is None, run.stderr
    seen = [e["sequence_number"] for e in ledger(tmp_path)]
    for put in before + failing:
        assert put.sequence_number in seen, (put, seen)
    for put in before:
        assert seen.count(put.sequence_number) == 1, seen  # checkpointed before the failure: once
    assert run.interrupt() == 0, run.stderr
    text = run.stderr
    restart_lines = [line for line in text.splitlines() if re.search(r"restart \d+ of 5", line)]
    assert len(restart_lines) == 1, text
    assert restart_lines[0].startswith("kclpy-local: the daemon exited with code 1: the record processor for "
                                       "shardId-000000000000 failed while processing records (exit status 4; "
                                       f"RuntimeError: poison record {failing[2].sequence_number})"), text
    assert "worker started again after" in text
    assert "kclpy-local: restarts: 1" in text
    assert "stopped gracefully" in text
    # The progress board counts the batches finished by both daemons: 5 before the failure,
    # 4 after it (the failed batch was never finished).
    assert "final: shardId-000000000000 9 records" in text, text


# -- runs as a user starts them: no --run-dir, no $KCLPY_LOCAL_LEDGER -------------


@pytest.fixture
def start_own_run(kcl1: Installation, kcl_cache: Path, tmp_path: Path) -> Iterator[Callable[..., RunProcess]]:
    """``run`` in the working directory ``tmp_path/cwd``, with the state directory
    ``tmp_path/state``: each run makes its own run directory there."""
    runs: list[RunProcess] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KCLPY_LOCAL_"))}
    env["KCLPY_LOCAL_STATE"] = str(tmp_path / "state")
    (tmp_path / "cwd").mkdir()

    def start(*argv: str, name: str = "run") -> RunProcess:
        run = RunProcess([*argv, "--cache-dir", str(kcl_cache), "--no-progress"], env, tmp_path, name,
                         cwd=tmp_path / "cwd")
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.close()


def run_directory(run: RunProcess) -> Path:
    """The run directory the run says it uses."""
    match = re.search(r"^kclpy-local: run directory: (.+)$", run.stderr, re.MULTILINE)
    assert match, run.stderr
    return Path(match.group(1))


def ledger_of(run: RunProcess) -> set[str]:
    """The sequence numbers in the ledger of the run's directory."""
    path = run_directory(run) / "ledger.jsonl"
    if not path.exists():
        return set()
    return {json.loads(line)["sequence_number"] for line in path.read_text().splitlines() if line.strip()}


def wait_started(run: RunProcess) -> None:
    wait_for(lambda: "worker started after" in run.stderr or run.proc.poll() is not None, 120,
             "the worker to start")
    assert run.proc.poll() is None, run.stderr


def test_an_application_used_on_another_stream_is_refused(
    start_own_run: Callable[..., RunProcess], fresh_emulator: EmbeddedEmulator, kcl_cache: Path, tmp_path: Path
) -> None:
    endpoint = fresh_emulator.endpoint_url
    kinesis = _aws.client("kinesis", endpoint)
    dynamodb = _aws.client("dynamodb", endpoint)
    first = start_own_run(str(RECORDER), "--stream", "stream-a", "--app", "shared", "--endpoint", endpoint)
    wait_started(first)
    put_a = _aws.put_records(kinesis, "stream-a", [(f"a{i}".encode(), "k") for i in range(5)])
    wait_for(lambda: {p.sequence_number for p in put_a} <= ledger_of(first), 60, "stream-a's records")
    # The lease table says whose checkpoints it holds once the worker has started.
    wait_for(lambda: _aws.read_stream_claim(dynamodb, "shared") == (True, _aws.StreamClaim(("stream-a",))), 30, "the stream tag")
    assert first.interrupt() == 0, first.stderr
    # The recorder's ledger is in the run directory, and the console says so; not in the cwd.
    ledger = run_directory(first) / "ledger.jsonl"
    assert f"kclpy-local: $KCLPY_LOCAL_LEDGER (the example processors' ledger): {ledger}" in first.stderr
    assert ledger.is_file() and not (tmp_path / "cwd" / "ledger.jsonl").exists()
    checkpoints = [lease.checkpoint for lease in _aws.read_leases(dynamodb, "shared")]
    assert checkpoints == [put_a[-1].sequence_number]

    # moto's sequence numbers are per-shard counters: stream-a's checkpoint "5" looks
    # valid on stream-b, whose first five records would be skipped. Refused instead.
    _aws.ensure_stream(kinesis, "stream-b")
    put_b = _aws.put_records(kinesis, "stream-b", [(f"b{i}".encode(), "k") for i in range(8)])
    reused = start_own_run(str(RECORDER), "--stream", "stream-b", "--app", "shared", "--endpoint", endpoint,
                           name="reused")
    assert reused.proc.wait(60) == 2, reused.stderr
    refusal = ("kclpy-local: error: lease table 'shared' holds the checkpoints of stream 'stream-a', not of "
               "stream 'stream-b': a worker on 'stream-b' would resume from 'stream-a''s checkpoints and skip records")
    assert refusal in reused.stderr
    assert "`kclpy-local run --app NEW`" in reused.stderr
    assert "`kclpy-local leases shared --delete`" in reused.stderr
    assert "worker started" not in reused.stderr and "Traceback" not in reused.stderr
    # `kclpy-local daemon` on the shipped local.properties refuses it too (the names substituted).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KCLPY_LOCAL_"))}
    env.update(KCLPY_LOCAL_APP="shared", KCLPY_LOCAL_STREAM="stream-b", KCLPY_LOCAL_ENDPOINT=endpoint,
               AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
    daemon = subprocess.run(
        [sys.executable, "-m", "kclpy_local", "daemon", "properties/local.properties", "--cache-dir", str(kcl_cache)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=False,
    )
    assert daemon.returncode == 2, daemon.stderr
    assert refusal in daemon.stderr
    assert [lease.checkpoint for lease in _aws.read_leases(dynamodb, "shared")] == checkpoints  # untouched

    # A new application name starts stream-b from its first record.
    fresh = start_own_run(str(RECORDER), "--stream", "stream-b", "--app", "fresh", "--endpoint", endpoint,
                          name="fresh")
    wait_started(fresh)
    wait_for(lambda: {p.sequence_number for p in put_b} <= ledger_of(fresh), 60, "stream-b's records")
    assert fresh.interrupt() == 0, fresh.stderr
    assert run_directory(fresh) != run_directory(first)
    assert _aws.read_stream_claim(dynamodb, "fresh") == (True, _aws.StreamClaim(("stream-b",)))


def test_two_runs_of_one_application_keep_their_own_files(
    start_own_run: Callable[..., RunProcess], fresh_emulator: EmbeddedEmulator, tmp_path: Path
) -> None:
    from kclpy_local._exceptions import RunDirectoryBusyError
    from kclpy_local._jvm.rundir import open_run_directory

    endpoint = fresh_emulator.endpoint_url
    _aws.ensure_stream(_aws.client("kinesis", endpoint), "twin", 2)
    runs = [start_own_run(str(RECORDER), "--stream", "twin", "--app", "twin", "--endpoint", endpoint, name=name)
            for name in ("one", "two")]
    for run in runs:
        wait_started(run)
    one, two = (run_directory(run) for run in runs)
    assert one != two and one.parent == two.parent == tmp_path / "state" / "runs"
    # Each holds its directory while it runs.
    with pytest.raises(RunDirectoryBusyError), open_run_directory("twin", explicit=one):
        pass
    put = _aws.put_records(_aws.client("kinesis", endpoint), "twin",
                           [(f"r{i}".encode(), f"pk{i}") for i in range(20)])
    wait_for(lambda: {p.sequence_number + p.shard_id for p in put}
             <= {e["sequence_number"] + e["shard"] for run in runs for e in _ledger_entries(run)}, 60,
             "the records in the two ledgers")
    for run in runs:
        assert run.interrupt() == 0, run.stderr
    # Neither run truncated the other's log or removed its progress file.
    for directory in (one, two):
        assert "kclpy-local: worker STARTED (application twin, stream twin" in (directory / "daemon.log").read_text()
        assert (directory / "progress.jsonl").is_file()
    assert not (tmp_path / "cwd" / "ledger.jsonl").exists()


def _ledger_entries(run: RunProcess) -> list[dict[str, str]]:
    path = run_directory(run) / "ledger.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
