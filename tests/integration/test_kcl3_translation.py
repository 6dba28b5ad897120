"""The same properties file on KCL 1.x and KCL 3.x: ``properties/local.properties``,
written for KCL 1.x, runs ``processors/recorder.py`` under the real KCL 3.x daemon
against the embedded emulator (moto), translated by kclpy-local on the way, with
only the overrides a 1.x run uses as well."""

from __future__ import annotations

import base64
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
from kclpy_local._cli import main
from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._jvm.bootstrap import Installation
from kclpy_local.testing import LocalStream, ProcessorRun

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "properties" / "local.properties"
RECORDER = ROOT / "processors" / "recorder.py"
NOTE = "kclpy-local: translated for KCL 3.x: "


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def ledger(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def last_sequence(put: list[_aws.PutResult]) -> dict[str, str]:
    last: dict[str, int] = {}
    for record in put:
        last[record.shard_id] = max(last.get(record.shard_id, 0), int(record.sequence_number))
    return {shard: str(sequence) for shard, sequence in last.items()}


def test_the_1x_local_file_runs_on_kcl3(
    kcl3: Installation, fresh_emulator: EmbeddedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = LocalStream.create(fresh_emulator.endpoint_url, name="translated", shards=3)
    before = stream.put([(f"before-{i}-\u00e9".encode(), f"pk-{i % 5}") for i in range(30)])
    ledger_path = tmp_path / "ledger.jsonl"
    run = ProcessorRun(
        RECORDER,
        stream,
        app="translated-app",
        properties=LOCAL,
        generation=3,
        installation=kcl3,
        env={"KCLPY_LOCAL_LEDGER": str(ledger_path)},
        cwd=ROOT,
        ready_timeout=180,
    )
    started = time.monotonic()
    with run:
        ready = time.monotonic() - started
        run.wait_processed(before, timeout=120)
        first = time.monotonic() - started
        after = stream.put([(f"after-{i}".encode(), f"pk-{i % 5}") for i in range(30)])
        run.wait_processed(after, timeout=120)
        with capsys.disabled():
            print(f"\nthe 1.x local file on KCL 3.x: worker STARTED after {ready:.1f}s, "
                  f"records put before start processed after {first:.1f}s")
        # Every record exactly once, as sent.
        entries = {(str(e["shard"]), str(e["sequence_number"])): e for e in ledger(ledger_path)}
        assert len(entries) == len(ledger(ledger_path)) == 60
        for record in before + after:
            entry = entries[(record.shard_id, record.sequence_number)]
            assert base64.b64decode(str(entry["data"])) == record.data
            assert entry["partition_key"] == record.partition_key
        # The checkpoints are in the lease table, one shard lease per shard.
        expected = last_sequence(before + after)

        def checkpoints() -> dict[str, str | None]:
            leases = {lease.lease_key: lease.checkpoint for lease in run.leases()}
            assert set(leases) == set(stream.shard_ids)
            return {shard: leases[shard] for shard in expected}

        wait_for(lambda: checkpoints() == expected, 60, f"checkpoints {expected}")
        # The table also holds KCL 3.x's other items (the leader lock while a worker runs).
        dynamodb = _aws.client("dynamodb", fresh_emulator.endpoint_url)
        kinds = {str(item.raw.get("entityType")) for item in _aws.read_leases(dynamodb, "translated-app")}
        assert {"LEASE", "LEADER", "CLIENT_VERSION_MIGRATION", "WORKER_METRIC_STATS"} <= kinds, kinds
        # The embedded moto answers KCL 3.x's CloudWatch protocol: the KCL's metrics are
        # in its CloudWatch, one RecordsProcessed per shard, 60 records in all.
        cloudwatch = _aws.client("cloudwatch", fresh_emulator.endpoint_url)

        def records_processed() -> float:
            return sum(p.sum or 0 for m in _aws.list_metrics(cloudwatch, "translated-app", "RecordsProcessed")
                       for p in _aws.metric_statistics(cloudwatch, "translated-app", m.name, m.dimensions))

        wait_for(lambda: records_processed() == 60, 60, "RecordsProcessed to sum to 60")
    log = run.log
    # The file was translated, one line per change, and ran on KCL 3.x.
    notes = [line for line in log if line.startswith(NOTE)]
    assert NOTE + ("added retrievalMode = POLLING: KCL 1.x polls with GetRecords; KCL 3.x would use "
                   "enhanced fan-out (SubscribeToShard)") in notes
    assert not any("metricsLevel" in note for note in notes)
    assert NOTE + ("dropped keys KCL 3.x does not read: dataFetchingStrategy, readPause, "
                   "idleMillisBetweenCalls, processorStart, leaseCleanupIntervalMillis") in notes
    assert not any("CloudWatch metrics cannot be delivered" in line for line in log)
    assert "kclpy-local: graceful shutdown complete" in log

    # The leases command shows the shard leases only.
    capsys.readouterr()
    assert main(["leases", "translated-app", "--endpoint", fresh_emulator.endpoint_url, "--json"]) == 0
    shown = {row["shard"]: row["checkpoint"] for row in json.loads(capsys.readouterr().out)}
    assert set(shown) == set(stream.shard_ids)
    assert {shard: shown[shard] for shard in expected} == expected
    assert main(["leases", "translated-app", "--endpoint", fresh_emulator.endpoint_url]) == 0
    out, err = capsys.readouterr()
    assert "Leader" not in out and "Migration3.0" not in out
    assert "KCL 3.x items that are not shard leases left out" in err


# -- `kclpy-local run` with the same file on both generations ------------------------------


class RunProcess:
    """``python -m kclpy_local run ...`` with its stderr collected."""

    def __init__(self, argv: list[str], env: dict[str, str], tmp: Path) -> None:
        self.stderr_path = tmp / "run.stderr"
        self._stderr = self.stderr_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kclpy_local", "run", *argv],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
            env=env, cwd=ROOT, text=True,
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
def start_run(kcl_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., RunProcess]]:
    runs: list[RunProcess] = []

    def start(generation: int, *argv: str) -> RunProcess:
        tmp = tmp_path_factory.mktemp(f"run-kcl{generation}")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KCLPY_LOCAL_"))}
        env["KCLPY_LOCAL_LEDGER"] = str(tmp / "ledger.jsonl")
        env["KCLPY_LOCAL_STATE"] = str(tmp / "state")
        run = RunProcess([*argv, "--kcl", str(generation), "--cache-dir", str(kcl_cache),
                          "--run-dir", str(tmp / "run")], env, tmp)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.close()


def _figure(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, text[-3000:]
    return float(match.group(1))


@pytest.mark.parametrize("generation", [1, 3])
def test_run_the_same_file_on_both_generations(
    generation: int,
    request: pytest.FixtureRequest,
    start_run: Callable[..., RunProcess],
    fresh_emulator: EmbeddedEmulator,
) -> None:
    request.getfixturevalue("kcl1" if generation == 1 else "kcl3")
    endpoint = fresh_emulator.endpoint_url
    app, stream = f"same-file-{generation}", f"same-file-{generation}"
    kinesis = _aws.client("kinesis", endpoint)
    _aws.ensure_stream(kinesis, stream, 2)
    put = _aws.put_records(kinesis, stream, [(f"r{i}".encode(), f"pk{i}") for i in range(20)])
    run = start_run(generation, str(RECORDER), "--properties", str(LOCAL), "--stream", stream, "--app", app,
                    "--endpoint", endpoint)
    ledger_path = Path(run.stderr_path).parent / "ledger.jsonl"
    wanted = {(p.shard_id, p.sequence_number) for p in put}
    wait_for(lambda: wanted <= {(str(e["shard"]), str(e["sequence_number"])) for e in ledger(ledger_path)}
             or run.proc.poll() is not None, 180, "the records in the ledger")
    assert run.proc.poll() is None, run.stderr[-3000:]
    expected = last_sequence(put)
    dynamodb = _aws.client("dynamodb", endpoint)


    def checkpoints() -> dict[str, str | None]:
        leases = {lease.lease_key: lease.checkpoint for lease in _aws.read_leases(dynamodb, app, shard_leases_only=True)}
        return {shard: leases.get(shard) for shard in expected}

    wait_for(lambda: checkpoints() == expected, 60, f"checkpoints {expected}")
    wait_for(lambda: "first record processed" in run.stderr, 30, "the first-record line")
    assert run.interrupt() == 0, run.stderr[-3000:]
    stderr = run.stderr
    assert "stopped gracefully" in stderr
    started = _figure(r"worker started after ([0-9.]+)s", stderr)
    first = _figure(r"first record processed ([0-9.]+)s after start", stderr)
    print(f"\nthe same local.properties on KCL {generation}.x: worker started after {started:.1f}s, "
          f"first record processed after {first:.1f}s")
    notes = [line for line in stderr.splitlines() if line.startswith(NOTE)]
    if generation == 1:
        assert notes == []
    else:
        assert NOTE + ("added retrievalMode = POLLING: KCL 1.x polls with GetRecords; KCL 3.x would use "
                       "enhanced fan-out (SubscribeToShard)") in notes
        effective = (Path(run.stderr_path).parent / "run" / "effective.properties").read_text()
        assert "retrievalMode = POLLING" in effective
        assert "leaseCleanupIntervalMillis" not in effective


def _endpoint_of_run(stderr: str) -> str:
    match = re.search(r"kclpy-local: endpoint (http://127\.0\.0\.1:\d+) \(embedded emulator started for this run", stderr)
    assert match, stderr[-3000:]
    return match.group(1)


def _metrics(capsys: pytest.CaptureFixture[str], app: str, endpoint: str) -> list[dict[str, object]]:
    """``kclpy-local metrics APP --json``."""
    capsys.readouterr()
    assert main(["metrics", app, "--endpoint", endpoint, "--json"]) == 0
    rows: list[dict[str, object]] = json.loads(capsys.readouterr().out)
    return rows


def _total(rows: list[dict[str, object]], name: str) -> float:
    return sum(float(str(row["sum"])) for row in rows if row["name"] == name)


def test_kcl3_metrics_on_the_embedded_default(
    kcl3: Installation, start_run: Callable[..., RunProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    """``kclpy-local run --kcl 3`` on the embedded default (moto started by the run) keeps
    the KCL's metrics on: the KCL 3.x worker's PutMetricData calls (Smithy RPC v2 CBOR)
    reach moto's CloudWatch, and ``kclpy-local metrics APP`` lists them, as on KCL 1.x."""
    app, stream = "kcl3-metrics", "kcl3-metrics-stream"
    run = start_run(3, str(RECORDER), "--stream", stream, "--shards", "2", "--app", app, "--port", "0",
                    "--no-progress")
    wait_for(lambda: "worker started after" in run.stderr or run.proc.poll() is not None, 180, "the worker")
    assert run.proc.poll() is None, run.stderr[-3000:]
    endpoint = _endpoint_of_run(run.stderr)
    capsys.readouterr()
    assert main(["put", "--stream", stream, "--endpoint", endpoint, "--count", "120", "--size", "50"]) == 0
    ledger_path = Path(run.stderr_path).parent / "ledger.jsonl"
    wait_for(lambda: len(ledger(ledger_path)) >= 120, 120, "120 records in the ledger")
    assert len({(e["shard"], e["sequence_number"]) for e in ledger(ledger_path)}) == 120

    wait_for(lambda: _total(_metrics(capsys, app, endpoint), "RecordsProcessed") == 120, 60,
             "RecordsProcessed to sum to the 120 records put")
    rows = _metrics(capsys, app, endpoint)
    names = {str(row["name"]) for row in rows}
    # The KCL 3.x worker's own metrics: processing per shard, the lease assignment of
    # its leader, lease renewal and discovery, the worker metrics it reports.
    assert {"RecordsProcessed", "DataBytesProcessed", "MillisBehindLatest", "KinesisDataFetcher.getRecords.Success",
            "LeaderDecider:IsLeader", "NumWorkers", "TotalLeases", "CurrentLeases", "RenewLease.Success",
            "NewLeasesDiscovered", "RecordProcessor.processRecords.Time"} <= names, sorted(names)
    processed = [row for row in rows if row["name"] == "RecordsProcessed"]
    shards = {"shardId-000000000000", "shardId-000000000001"}
    assert {str(dict(row["dimensions"])["ShardId"]) for row in processed} == shards  # type: ignore[call-overload]
    assert all(dict(row["dimensions"])["Operation"] == "ProcessTask" for row in processed)  # type: ignore[call-overload]
    assert all(row["unit"] == "Count" for row in processed)
    assert _total(rows, "DataBytesProcessed") == 120 * 50
    assert _total(rows, "KinesisDataFetcher.getRecords.Success") > 0
    assert _total(rows, "TotalLeases") > 0 and _total(rows, "RenewLease.Success") > 0

    assert run.interrupt() == 0, run.stderr[-3000:]
    stderr = run.stderr
    assert not any("metricsLevel" in line for line in stderr.splitlines() if line.startswith(NOTE))
    run_dir = Path(run.stderr_path).parent / "run"
    assert "metricsLevel" not in (run_dir / "effective.properties").read_text()
    log = (run_dir / "daemon.log").read_text()
    assert f"kclpy-local: CloudWatch endpoint {endpoint} (region us-east-1, Smithy RPC v2 CBOR)" in log
    assert "CloudWatch metrics cannot be delivered" not in log
    # How often the KCL flushes (metricsBufferTimeMillis = 1000 in the local profile), from
    # the emulator's request log: a few calls a second, every one answered 200.
    calls = re.findall(r'"POST /service/GraniteServiceVersion20100801/operation/PutMetricData HTTP/1\.1" (\d+)',
                       (run_dir / "emulator.log").read_text())
    started = _figure(r"worker started after ([0-9.]+)s", stderr)
    print(f"\nKCL 3.x metrics on the embedded moto: worker started after {started:.1f}s, {len(calls)} "
          f"PutMetricData calls, {len(names)} metric names, "
          f"{sum(int(str(r['sample_count']).split('.')[0]) for r in rows)} samples")
    assert calls and set(calls) == {"200"}


@pytest.mark.docker
def test_kcl3_on_localstack_with_cloudwatch_metrics(
    kcl3: Installation, localstack_endpoint: str, tmp_path: Path
) -> None:
    """properties/localstack.properties (written for 1.x; Kinesis over JSON) on KCL 3.x against
    LocalStack, whose CloudWatch speaks the Smithy RPC v2 CBOR protocol of the 3.x
    SDK: records processed, checkpointed, and the KCL's metrics at the
    cloudWatchEndpoint. Skipped where no Docker engine runs."""
    app = f"kcl3-ls-{os.getpid()}-{int(time.time())}"
    stream = LocalStream.create(localstack_endpoint, name=f"{app}-stream", shards=2)
    ledger_path = tmp_path / "ledger.jsonl"
    run = ProcessorRun(
        RECORDER,
        stream,
        app=app,
        properties=ROOT / "properties" / "localstack.properties",
        generation=3,
        installation=kcl3,
        env={"KCLPY_LOCAL_LEDGER": str(ledger_path)},
        cwd=ROOT,
        ready_timeout=300,
    )
    with run:
        put = stream.put([(f"ls-{i}".encode(), f"pk-{i % 3}") for i in range(20)])
        run.wait_processed(put, timeout=180)
        expected = last_sequence(put)
        wait_for(lambda: {lease.lease_key: lease.checkpoint for lease in run.leases()
                          if lease.lease_key in expected} == expected, 60, f"checkpoints {expected}")
        cloudwatch = _aws.client("cloudwatch", localstack_endpoint)
        wait_for(lambda: bool(_aws.list_metrics(cloudwatch, app)), 120, f"KCL 3.x metrics in namespace {app}")
    assert {base64.b64decode(str(e["data"])) for e in ledger(ledger_path)} == {p.data for p in put}
