"""Record processor failures and endpoint outages under the real KCL 1.15.3 daemon.

What KCL 1.x does (MultiLangRecordProcessor, MultiLangProtocol):

- a record processor that raises (kclpy-local's runtime then exits 4 without
  answering) or dies in mid-batch: ``MultiLangRecordProcessor.processRecords``
  gets no status, ``stopProcessing`` logs "Encountered an error while trying to
  process records" and the child's exit status, then ``System.exit(1)``: the
  whole daemon stops, after the launcher's shutdown hook has tried a graceful
  shutdown of the other shards;
- a record processor that does not answer within ``timeoutInSeconds``:
  ``MultiLangProtocol.futureMethod`` logs "Timedout to get status message ...
  Terminating..." and calls ``Runtime.halt(1)`` (no shutdown hooks; the hung
  child is left to kclpy-local, which kills the daemon's process group);
- the endpoint going away: every client call fails and is retried (the shard
  consumers' ``ProcessTask``, the lease renewer and taker, the metrics
  publisher); the daemon does not exit.  Leases not renewed for
  ``failoverTimeMillis`` are lost: a checkpoint after that is refused with
  ShutdownException, the processor gets ``shutdown`` (ZOMBIE), and when the
  endpoint is back the worker takes its leases again and resumes from their
  checkpoints.  An emulator restarted without its state leaves the worker with no
  lease table; a KCL 1.x worker never recreates it once running.

In every case nothing is checkpointed beyond what the processor finished.
"""

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
from proxy import PausableProxy  # tests/proxy.py

from kclpy_local import _aws
from kclpy_local._emulators.moto import EmbeddedEmulator, free_port
from kclpy_local._jvm.bootstrap import Installation
from kclpy_local._jvm.supervise import ExitReason
from kclpy_local._process import pid_alive
from kclpy_local._runtime.progress import ProgressBoard
from kclpy_local.testing import LocalStream, ProcessorRun

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RECORDER = ROOT / "processors" / "recorder.py"

#: Records every record it finishes to $KCLPY_LOCAL_LEDGER and checkpoints each batch.
#: On the record whose data is "poison" it fails as $FAIL_MODE says: raise, exit
#: (os._exit(7)) or hang; with $FAIL_MARKER only while that file does not exist
#: (creating it), so a second attempt succeeds. $ON_LEASE_LOST=skip: a checkpoint
#: refused with ShutdownException (the lease was lost) is skipped, as the KCL
#: documentation advises.
PROCESSOR = '''
import json, logging, os, time
from kclpy_local import RecordProcessor, ShutdownError, run

LEDGER = os.environ["KCLPY_LOCAL_LEDGER"]
MODE = os.environ.get("FAIL_MODE", "raise")
MARKER = os.environ.get("FAIL_MARKER")
SKIP_LOST = os.environ.get("ON_LEASE_LOST") == "skip"
log = logging.getLogger("failing")


class Failing(RecordProcessor):
    def initialize(self, shard):
        self.shard = shard.shard_id

    def process_records(self, batch, checkpointer):
        with open(LEDGER, "a", encoding="utf-8") as ledger:
            for record in batch.records:
                if record.data == b"poison" and not (MARKER and os.path.exists(MARKER)):
                    if MARKER:
                        open(MARKER, "w").close()
                    ledger.flush()
                    if MODE == "raise":
                        raise RuntimeError(f"poison record {record.sequence_number}")
                    if MODE == "exit":
                        os._exit(7)
                    time.sleep(3600)
                ledger.write(json.dumps({"shard": self.shard, "sequence_number": record.sequence_number,
                                         "data": record.data.decode()}) + "\\n")
        if batch.records:
            try:
                checkpointer.checkpoint(batch.records[-1])
            except ShutdownError:
                if not SKIP_LOST:
                    raise
                log.warning("lease lost: checkpoint skipped")

    def lease_lost(self):
        log.warning("%s: lease lost", self.shard)

    def shard_ended(self, checkpointer):
        checkpointer.checkpoint()

    def shutdown_requested(self, checkpointer):
        checkpointer.checkpoint()


run(Failing())
'''

#: The launcher's graceful shutdown (its shutdown hook also runs on the KCL's
#: System.exit) waits for every shard; the failed one never finishes.
FAST_EXIT = {"shutdownGraceMillis": "2000"}


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def processor(tmp_path: Path) -> Path:
    path = tmp_path / "failing.py"
    path.write_text(PROCESSOR, encoding="utf-8")
    return path


def read_ledger(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def processed(path: Path) -> dict[str, set[int]]:
    """Per shard, the sequence numbers the processor finished."""
    done: dict[str, set[int]] = {}
    for entry in read_ledger(path):
        done.setdefault(entry["shard"], set()).add(int(entry["sequence_number"]))
    return done


def checkpoints(run: ProcessorRun) -> dict[str, str | None]:
    return {lease.lease_key: lease.checkpoint for lease in run.leases()}


def last_per_shard(puts: list[_aws.PutResult]) -> dict[str, int]:
    last: dict[str, int] = {}
    for put in puts:
        last[put.shard_id] = max(last.get(put.shard_id, 0), int(put.sequence_number))
    return last


def assert_checkpoints_within(cps: dict[str, str | None], done: dict[str, set[int]]) -> None:
    """Every checkpoint is a record the processor finished (or no record yet)."""
    for shard, checkpoint in cps.items():
        if checkpoint in (None, "TRIM_HORIZON", "LATEST", "SHARD_END"):
            continue
        assert checkpoint is not None and int(checkpoint) in done.get(shard, set()), (
            f"{shard} checkpointed at {checkpoint}, beyond the records processed: "
            f"{sorted(done.get(shard, set()))}"
        )


def reason(run: ProcessorRun) -> str | None:
    exit_reason = ExitReason()
    for line in run.log:
        exit_reason.feed(line)
    return exit_reason.describe()


# -- a processor that fails in mid-batch ---------------------------------------------


def _start_and_poison(run: ProcessorRun, stream: LocalStream) -> tuple[int, int]:
    """Process a first batch, then put one whose third record is the poison.

    Returns the first batch's last sequence number and the poison's."""
    first = stream.put([f"a{i}" for i in range(5)], partition_key="k")
    run.wait_processed(first)
    a_last = int(first[-1].sequence_number)
    wait_for(lambda: checkpoints(run) == {stream.shard_ids[0]: str(a_last)}, 30, "the first checkpoint")
    second = stream.put(["b0", "b1", "poison", "b3"], partition_key="k")
    return a_last, int(second[2].sequence_number)


@pytest.mark.parametrize(("mode", "status"), [("raise", 4), ("exit", 7)])
def test_a_processor_failing_in_mid_batch_stops_the_daemon(
    mode: str, status: int, *, kcl1: Installation, fresh_emulator: EmbeddedEmulator, processor: Path,
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    stream = LocalStream.create(fresh_emulator.endpoint_url)
    run = ProcessorRun(processor, stream, installation=kcl1, overrides=FAST_EXIT,
                       env={"KCLPY_LOCAL_LEDGER": str(ledger), "FAIL_MODE": mode})
    with run:
        a_last, poison = _start_and_poison(run, stream)
        code = run.daemon.wait(120)
        assert code == 1, "\n".join(run.daemon.log_tail())  # MultiLangRecordProcessor: System.exit(1)
        text = "\n".join(run.log)
        assert "Encountered an error while trying to process records" in text
        assert f"Child process exited with value: {status}" in text
        described = reason(run)
        assert described is not None and described.startswith(
            f"the record processor for {stream.shard_ids[0]} failed while processing records (exit status {status}"
        ), described
        if mode == "raise":
            assert f"RuntimeError: poison record {poison}" in described
        # The lease keeps the last checkpoint the processor made: the first batch's.
        done = processed(ledger)
        cps = checkpoints(run)
        assert cps == {stream.shard_ids[0]: str(a_last)}, cps
        assert_checkpoints_within(cps, done)
        assert poison not in done[stream.shard_ids[0]]
        assert max(done[stream.shard_ids[0]]) < poison


def test_a_hung_processor_with_timeout_in_seconds_halts_the_daemon(
    kcl1: Installation, fresh_emulator: EmbeddedEmulator, processor: Path, tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    stream = LocalStream.create(fresh_emulator.endpoint_url)
    run = ProcessorRun(processor, stream, installation=kcl1, overrides={"timeoutInSeconds": "3"},
                       env={"KCLPY_LOCAL_LEDGER": str(ledger), "FAIL_MODE": "hang"})
    with run:
        a_last, poison = _start_and_poison(run, stream)
        started = time.monotonic()
        code = run.daemon.wait(120)
        assert code == 1, "\n".join(run.daemon.log_tail())  # MultiLangProtocol: Runtime.halt(1)
        assert time.monotonic() - started < 60
        text = "\n".join(run.log)
        assert (f"Timedout to get status message for processRecords action for shard "
                f"{stream.shard_ids[0]}. Terminating...") in text
        assert "graceful shutdown" not in text  # halt: no shutdown hook ran
        assert reason(run) == (f"the record processor for {stream.shard_ids[0]} did not answer processRecords "
                               "within timeoutInSeconds; the KCL halted the JVM")
        cps = checkpoints(run)
        assert cps == {stream.shard_ids[0]: str(a_last)}, cps
        done = processed(ledger)
        assert_checkpoints_within(cps, done)
        assert max(done[stream.shard_ids[0]]) < poison
        # The halted JVM left its hung child behind ...
        child = ProgressBoard(run.progress_path)
        child.poll()
        pid = child.shards()[0].pid
        assert pid is not None and pid_alive(pid)
    # ... and stopping the run ends the daemon's whole process group.
    wait_for(lambda: not pid_alive(pid), 10, f"the hung processor {pid} to be gone")


# -- an endpoint outage (a proxy in front of moto, paused) -------------------------------


def test_an_outage_of_the_endpoint_is_survived(
    kcl1: Installation, fresh_emulator: EmbeddedEmulator, processor: Path, tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    direct = LocalStream.create(fresh_emulator.endpoint_url, shards=2)
    with PausableProxy(("127.0.0.1", fresh_emulator.port)) as proxy:
        through_proxy = LocalStream(direct.name, proxy.endpoint_url, direct.shard_ids)
        run = ProcessorRun(processor, through_proxy, installation=kcl1,
                           env={"KCLPY_LOCAL_LEDGER": str(ledger), "ON_LEASE_LOST": "skip"})
        dynamodb = _aws.client("dynamodb", fresh_emulator.endpoint_url)

        def check() -> dict[str, str | None]:
            """The lease table (read past the proxy) never runs ahead of the ledger.

            The leases first: the processor writes its ledger before it checkpoints."""
            cps = {lease.lease_key: lease.checkpoint for lease in _aws.read_leases(dynamodb, run.app)}
            done = processed(ledger)
            assert_checkpoints_within(cps, done)
            return cps

        with run:
            run.wait_processed(direct.put([f"a{i}" for i in range(10)]))
            proxy.pause()
            during = direct.put([f"b{i}" for i in range(10)])  # the producer is not cut off
            outage_end = time.monotonic() + 10
            while time.monotonic() < outage_end:
                assert run.daemon.returncode is None, "\n".join(run.daemon.log_tail())
                check()
                time.sleep(0.5)
            proxy.resume()
            last = {shard: str(n) for shard, n in last_per_shard(during).items()}

            def caught_up() -> bool:
                assert run.daemon.returncode is None, "\n".join(run.daemon.log_tail())
                cps = check()
                return all(cps.get(shard) == sequence for shard, sequence in last.items())

            wait_for(caught_up, 120, f"checkpoints {last} after the outage")
            text = "\n".join(run.log)
            assert "Connection refused" in text
            assert "Encountered an exception while renewing a lease" in text  # LeaseRenewer
            done = processed(ledger)
            for put in during:
                assert int(put.sequence_number) in done[put.shard_id]


# -- the emulator restarted: moto comes back without its state -------------------------


def test_run_reports_an_emulator_that_restarted_without_its_state(
    kcl1: Installation, kcl_cache: Path, tmp_path: Path,
) -> None:
    import moto.server  # noqa: F401 - the test extra installs it
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KCLPY_LOCAL_"))}
    env["KCLPY_LOCAL_LEDGER"] = str(tmp_path / "ledger.jsonl")
    env["KCLPY_LOCAL_STATE"] = str(tmp_path / "state")
    stderr_path = tmp_path / "run.stderr"
    emulators = [EmbeddedEmulator(port=port).start()]
    endpoint = emulators[0].endpoint_url
    try:
        with stderr_path.open("w") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "kclpy_local", "run", str(RECORDER), "--stream", "outage",
                 "--app", "outage-app", "--endpoint", endpoint, "--cache-dir", str(kcl_cache),
                 "--run-dir", str(tmp_path / "run"), "--no-progress"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=env, cwd=tmp_path,
            )
        try:
            def said(text: str) -> Callable[[], bool]:
                return lambda: text in stderr_path.read_text() or proc.poll() is not None

            wait_for(said("worker started after"), 120, "the worker to start")
            kinesis = _aws.client("kinesis", endpoint)
            put = _aws.put_records(kinesis, "outage", [(f"r{i}".encode(), "k") for i in range(5)])
            dynamodb = _aws.client("dynamodb", endpoint)
            wait_for(lambda: [lease.checkpoint for lease in _aws.read_leases(dynamodb, "outage-app")]
                     == [put[-1].sequence_number], 60, "the checkpoint")

            emulators[0].stop()
            wait_for(said("the daemon cannot reach its endpoint"), 60, "the outage notice")
            assert proc.poll() is None, stderr_path.read_text()
            time.sleep(3)
            emulators.append(EmbeddedEmulator(port=port).start())
            wait_for(said("the endpoint answers again"), 30, "the end of the outage")
            wait_for(said("the lease table outage-app does not exist any more"), 60, "the lost lease table")
            assert proc.poll() is None, stderr_path.read_text()  # the daemon keeps running
            # Nothing was checkpointed on the new, empty emulator: the worker cannot recreate its table.
            assert "outage-app" not in _aws.client("dynamodb", endpoint).list_tables()["TableNames"]
            assert [e["data"] for e in read_ledger(tmp_path / "ledger.jsonl")] == [
                "cjA=", "cjE=", "cjI=", "cjM=", "cjQ="]  # r0..r4, once each
            proc.send_signal(signal.SIGINT)
            code = proc.wait(90)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        text = stderr_path.read_text()
        assert len(re.findall("the daemon cannot reach its endpoint", text)) == 1, text
        assert code == 0 and "stopped gracefully" in text, text
    finally:
        for emulator in emulators:
            emulator.stop()


@pytest.fixture(autouse=True)
def _no_stray_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("KCLPY_LOCAL_ENDPOINT", "KCLPY_LOCAL_PROGRESS"):
        monkeypatch.delenv(name, raising=False)
    yield
