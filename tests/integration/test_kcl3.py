"""KCL 3.x: the real JVM running amazon-kinesis-client 3.5.1's MultiLangDaemon through
our 3.x launcher, against the embedded emulator (moto), with real pipes to Python
processors.

The properties files are written here in the 3.x style: the keys the 3.x daemon
reads (``AwsCredentialsProvider`` with an AWS SDK v2 provider, ``retrievalMode``,
``metricsLevel``...) and the launcher's own (``cloudWatchEndpoint``,
``isCBORProtocolDisabled``, ``initialLeaseSync``...).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from kclpy_local import _aws
from kclpy_local._emulators.moto import READY_PATH, EmbeddedEmulator, free_port, wait_ready
from kclpy_local._jvm.bootstrap import Installation, installation
from kclpy_local._jvm.daemon import READY_MARKER, Daemon
from kclpy_local._jvm.jars import load_lock

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MAIN = "dev.kclpylocal.kcl3.KclLocalLauncher"
RECORDER = ROOT / "processors" / "recorder.py"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
EAGER = "kclpy-local: eager initial lease sync"

#: Timings for fast local feedback (keys the stock 3.x daemon reads): leases
#: expire after 5 s; the leader assigns leases every second; a worker's metrics
#: (which lease assignment waits for) are reported every 2 s, so a stopped
#: worker counts as gone after 4 s; the worker's own initial shard sync sleeps
#: 5 s instead of 60 s.
LOCAL_TIMINGS = {
    "failoverTimeMillis": "5000",
    "leaseAssignmentIntervalMillis": "1000",
    "workerMetricsReporterFreqInMillis": "2000",
    "shardSyncIntervalMillis": "5000",
    "idleTimeBetweenReadsInMillis": "250",
    "parentShardPollIntervalMillis": "500",
}

#: The launcher's own timing keys: the leader lock lasts 10 s instead of 120 s,
#: so a worker that was killed holding it blocks lease assignment for 10 s.
LAUNCHER_TIMINGS = {
    "dynamoDbLockBasedLeaderLeaseDurationInMillis": "10000",
    "dynamoDbLockBasedLeaderHeartbeatPeriodInMillis": "2000",
}


def write_properties(path: Path, endpoint: str, app: str, stream: str, **extra: str) -> Path:
    """A KCL 3.x properties file for the recorder processor against one local endpoint."""
    lines = {
        "applicationName": app,
        "streamName": stream,
        "executableName": f"{sys.executable} {RECORDER}",
        "AwsCredentialsProvider": "EnvironmentVariableCredentialsProvider",
        "regionName": "us-east-1",
        "kinesisEndpoint": endpoint,
        "dynamoDBEndpoint": endpoint,
        "cloudWatchEndpoint": endpoint,
        "isCBORProtocolDisabled": "true",
        "retrievalMode": "POLLING",
        "metricsLevel": "NONE",
        "initialPositionInStream": "TRIM_HORIZON",
        "initialLeaseSync": "eager",
        **LOCAL_TIMINGS,
        **LAUNCHER_TIMINGS,
        **extra,
    }
    path.write_text("".join(f"{k} = {v}\n" for k, v in lines.items()), encoding="utf-8")
    return path


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def ledger(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def shard_leases(dynamodb: object, table: str) -> dict[str, _aws.Lease]:
    """The shard leases of a 3.x lease table, which also holds the leader lock,
    the client version state and each worker's metrics."""
    return {
        lease.lease_key: lease
        for lease in _aws.read_leases(dynamodb, table)
        if lease.raw.get("entityType") == "LEASE"
    }


def daemon(
    inst: Installation, properties: Path, ledger_path: Path, lines: list[str], env: Mapping[str, str] | None = None
) -> Daemon:
    return Daemon(
        properties,
        installation=inst,
        env={**DUMMY_CREDENTIALS, "KCLPY_LOCAL_LEDGER": str(ledger_path), **(env or {})},
        cwd=ROOT,
        log=lines.append,
        ready_timeout=180,
        validate=False,
    )


def run_launcher(
    java: str, inst: Installation, *args: str, env: Mapping[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    argv = [java, "-Dfile.encoding=UTF-8", "-cp", inst.classpath(), inst.main_class, *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False,
        env=dict(env) if env is not None else {**os.environ, **DUMMY_CREDENTIALS},
    )


# -- the installation ---------------------------------------------------------------


def test_launcher_is_built_for_java_8_and_verified(kcl3: Installation, kcl_cache: Path) -> None:
    assert kcl3.main_class == MAIN
    with zipfile.ZipFile(kcl3.launcher_jar) as jar:
        manifest = jar.read("META-INF/MANIFEST.MF").decode()
        main_class = jar.read("dev/kclpylocal/kcl3/KclLocalLauncher.class")
    assert f"Main-Class: {MAIN}" in manifest
    assert int.from_bytes(main_class[6:8], "big") == 52  # class file version of Java 8
    assert installation(3, kcl_cache, verify="full") == kcl3
    assert [p.name for p in kcl3.jars] == [a.filename for a in load_lock(3).artifacts]


def test_self_check(java_bin: str, kcl3: Installation) -> None:
    proc = run_launcher(java_bin, kcl3, "--self-check")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "kclpy-local: self-check OK (charset UTF-8)" in proc.stdout
    assert "kclpy-local: Kinesis endpoint http://127.0.0.1:9 (region us-east-1, HTTP/1.1)" in proc.stderr
    assert "kclpy-local: DynamoDB endpoint http://127.0.0.1:9 (region us-east-1)" in proc.stderr
    assert ("kclpy-local: CloudWatch endpoint http://127.0.0.1:9 (region us-east-1, Smithy RPC v2 CBOR)"
            in proc.stderr)


def test_launcher_links_only_against_the_pinned_jars(kcl3: Installation) -> None:
    jdeps = shutil.which("jdeps")
    if jdeps is None:
        pytest.skip("jdeps is not on PATH (it ships with full JDKs)")
    proc = subprocess.run(
        [jdeps, "--multi-release", "base", "--missing-deps", "-cp", os.pathsep.join(map(str, kcl3.jars)),
         str(kcl3.launcher_jar)],
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


# -- usage errors and failures, one line each -----------------------------------------


BAD_VALUES = {
    "isCBORProtocolDisabled=yes": "isCBORProtocolDisabled must be true or false, not 'yes'",
    "initialLeaseSync=sometimes": "initialLeaseSync must be one of worker, eager, not 'sometimes'",
    "maxInitializationAttempts=0": "maxInitializationAttempts must be a positive whole number, not '0'",
    "dynamoDbLockBasedLeaderHeartbeatPeriodInMillis=10000":
        "dynamoDbLockBasedLeaderHeartbeatPeriodInMillis (10000) must be shorter than "
        "dynamoDbLockBasedLeaderLeaseDurationInMillis (10000)",
}


@pytest.mark.parametrize("setting", sorted(BAD_VALUES))
def test_bad_launcher_values_are_usage_errors(
    java_bin: str, kcl3: Installation, tmp_path: Path, setting: str
) -> None:
    key, value = setting.split("=")
    props = write_properties(tmp_path / "app.properties", "http://127.0.0.1:9", "it", "it", **{key: value})
    proc = run_launcher(java_bin, kcl3, str(props))
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f"kclpy-local: {BAD_VALUES[setting]}\n" in proc.stderr
    assert "Exception in thread" not in proc.stderr


def test_usage_errors_exit_1(java_bin: str, kcl3: Installation, tmp_path: Path) -> None:
    proc = run_launcher(java_bin, kcl3)
    assert proc.returncode == 1
    assert "expected exactly one argument" in proc.stderr
    proc = run_launcher(java_bin, kcl3, str(tmp_path / "missing.properties"))
    assert proc.returncode == 1
    assert "missing.properties" in proc.stderr


def test_missing_credentials_are_one_line_and_exit_1(java_bin: str, kcl3: Installation, tmp_path: Path) -> None:
    props = write_properties(tmp_path / "app.properties", "http://127.0.0.1:9", "it", "it")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "JAVA_TOOL_OPTIONS"}
    proc = run_launcher(java_bin, kcl3, str(props), env=env)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert not [line for line in proc.stderr.splitlines() if line.startswith("\tat ")], proc.stderr[-3000:]
    problem = [line for line in proc.stderr.splitlines() if line.startswith("kclpy-local: cannot start:")]
    assert len(problem) == 1, proc.stderr[-3000:]
    assert "no AWS credentials: AwsCredentialsProvider = EnvironmentVariableCredentialsProvider" in problem[0]


def test_worker_that_cannot_initialize_exits_3(java_bin: str, kcl3: Installation, tmp_path: Path) -> None:
    """Endpoints that refuse connections: the stock daemon would exit 0 here."""
    props = write_properties(
        tmp_path / "app.properties", "http://127.0.0.1:9", "it", "it",
        initialLeaseSync="worker", maxInitializationAttempts="1",
    )
    proc = run_launcher(java_bin, kcl3, str(props), timeout=300)
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert "kclpy-local: the worker never reached STARTED (initialization failed" in proc.stderr
    assert READY_MARKER not in proc.stderr


# -- end to end on the embedded emulator ------------------------------------------------


def test_records_exact_checkpoints_and_restart(
    kcl3: Installation, fresh_emulator: EmbeddedEmulator, tmp_path: Path
) -> None:
    endpoint = fresh_emulator.endpoint_url
    app, stream = "kcl3-exact", "kcl3-exact-stream"
    kinesis = _aws.client("kinesis", endpoint)
    dynamodb = _aws.client("dynamodb", endpoint)
    _aws.ensure_stream(kinesis, stream, 3)
    records = [(f"first-{i}-\u00e9\u00df-".encode() + bytes([i % 256, 0, 255]), f"pk-{i % 7}") for i in range(60)]
    first = _aws.put_records(kinesis, stream, records)
    props = write_properties(tmp_path / "app.properties", endpoint, app, stream)
    ledger_path = tmp_path / "ledger.jsonl"
    lines: list[str] = []

    started = time.monotonic()
    with daemon(kcl3, props, ledger_path, lines):
        ready = time.monotonic() - started
        wait_for(lambda: bool(ledger(ledger_path)), 180, "the first record")
        first_record = time.monotonic() - started
        wanted = {(r.shard_id, r.sequence_number) for r in first}
        wait_for(lambda: wanted <= {(e["shard"], e["sequence_number"]) for e in ledger(ledger_path)}, 120,
                 f"{len(wanted)} records in the ledger")
        print(f"\nKCL 3 cold start (JVM start to worker STARTED): {ready:.1f}s; "
              f"to the first record processed: {first_record:.1f}s")
        # Every record exactly as sent: bytes, partition key, sequence number.
        got = {(e["shard"], e["sequence_number"]): e for e in ledger(ledger_path)}
        for r in first:
            entry = got[(r.shard_id, r.sequence_number)]
            assert base64.b64decode(str(entry["data"])) == r.data
            assert entry["partition_key"] == r.partition_key
        # Checkpoints in the lease table equal the last processed sequence numbers.
        last: dict[str, int] = {}
        for r in first:
            last[r.shard_id] = max(last.get(r.shard_id, 0), int(r.sequence_number))

        def checkpoints_landed() -> bool:
            leases = shard_leases(dynamodb, app)
            return all(leases.get(shard) and leases[shard].checkpoint == str(seq) for shard, seq in last.items())

        wait_for(checkpoints_landed, 60, f"checkpoints {last}")
        shard_ids = {s["ShardId"] for s in kinesis.list_shards(StreamName=stream)["Shards"]}
        assert set(shard_leases(dynamodb, app)) == shard_ids
        # The leader lock lives in the same table, with the launcher's lease duration.
        leader = {lease.lease_key: lease for lease in _aws.read_leases(dynamodb, app)}["Leader"]
        assert leader.raw["leaseDuration"] == "10000", leader.raw
    assert len(ledger(ledger_path)) == len(first)
    eager = [line for line in lines if line.startswith(EAGER)]
    assert eager[0] == f"{EAGER}: created the lease table {app}", lines[-50:]
    assert eager[1].startswith(f"{EAGER}: 3 lease(s) in {app} for stream {stream} in "), eager
    assert not any("Lease table is still empty" in line for line in lines)
    assert "kclpy-local: graceful shutdown complete" in lines

    # A restart (a new worker id) resumes from the checkpoints: nothing is processed twice.
    restart_lines: list[str] = []
    started = time.monotonic()
    with daemon(kcl3, props, ledger_path, restart_lines):
        second = _aws.put_records(kinesis, stream, [(f"second-{i}".encode(), f"pk-{i}") for i in range(20)])
        wanted = {(r.shard_id, r.sequence_number) for r in second}
        wait_for(lambda: wanted <= {(e["shard"], e["sequence_number"]) for e in ledger(ledger_path)}, 180,
                 f"{len(wanted)} more records in the ledger")
        print(f"KCL 3 restart to the last new record processed: {time.monotonic() - started:.1f}s")
    assert f"{EAGER} not needed: the lease table {app} already has leases" in restart_lines
    keys = [(e["shard"], e["sequence_number"]) for e in ledger(ledger_path)]
    assert len(keys) == len(set(keys)) == len(first) + len(second), "a checkpointed record was processed twice"


def test_metrics_reach_the_embedded_emulator(
    kcl3: Installation, fresh_emulator: EmbeddedEmulator, tmp_path: Path
) -> None:
    """The embedded moto answers the Smithy RPC v2 CBOR protocol of KCL 3.x's AWS SDK:
    a worker's metrics land in its CloudWatch, and nothing is reported as failed."""
    endpoint = fresh_emulator.endpoint_url
    kinesis = _aws.client("kinesis", endpoint)
    _aws.ensure_stream(kinesis, "kcl3-metrics", 1)
    _aws.put_records(kinesis, "kcl3-metrics", [(f"m{i}".encode(), "pk") for i in range(7)])
    props = write_properties(
        tmp_path / "app.properties", endpoint, "kcl3-metrics-app", "kcl3-metrics",
        metricsLevel="SUMMARY", metricsBufferTimeMillis="1000",
    )
    lines: list[str] = []
    cloudwatch = _aws.client("cloudwatch", endpoint)

    def records_processed() -> float:
        return sum(p.sum or 0 for m in _aws.list_metrics(cloudwatch, "kcl3-metrics-app", "RecordsProcessed")
                   for p in _aws.metric_statistics(cloudwatch, "kcl3-metrics-app", m.name, m.dimensions))

    with daemon(kcl3, props, tmp_path / "ledger.jsonl", lines):
        wait_for(lambda: len(ledger(tmp_path / "ledger.jsonl")) == 7, 120, "the records")
        wait_for(lambda: records_processed() == 7, 60, "RecordsProcessed to sum to 7")
    assert f"kclpy-local: CloudWatch endpoint {endpoint} (region us-east-1, Smithy RPC v2 CBOR)" in lines
    assert not any("CloudWatch metrics cannot be delivered" in line for line in lines)


def test_metrics_an_endpoint_cannot_take_are_explained(
    kcl3: Installation, fresh_emulator: EmbeddedEmulator, tmp_path: Path
) -> None:
    """A moto server of its own (``python -m moto.server``, no RPC v2 CBOR front) answers
    KCL 3.x's PutMetricData with 404: the launcher says why, once, and records flow."""
    endpoint = fresh_emulator.endpoint_url
    port = free_port()
    stock = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        plain = f"http://127.0.0.1:{port}"
        wait_ready(plain, timeout=30, path=READY_PATH)
        assert _aws.rpc_v2_cbor_problem(plain) == "HTTP 404 without an RPC v2 CBOR answer"
        kinesis = _aws.client("kinesis", endpoint)
        _aws.ensure_stream(kinesis, "kcl3-no-metrics", 1)
        _aws.put_records(kinesis, "kcl3-no-metrics", [(b"m", "pk")])
        props = write_properties(
            tmp_path / "app.properties", endpoint, "kcl3-no-metrics-app", "kcl3-no-metrics",
            metricsLevel="SUMMARY", metricsBufferTimeMillis="1000", cloudWatchEndpoint=plain,
        )
        lines: list[str] = []
        failed = "kclpy-local: CloudWatch metrics cannot be delivered to " + plain
        with daemon(kcl3, props, tmp_path / "ledger.jsonl", lines):
            wait_for(lambda: any(line.startswith(failed) for line in lines), 120, "the CloudWatch failure line")
            wait_for(lambda: bool(ledger(tmp_path / "ledger.jsonl")), 120, "the record")
    finally:
        stock.terminate()
        stock.wait(30)
    (line,) = [line for line in lines if line.startswith(failed)]
    assert "Smithy RPC v2 CBOR protocol only" in line and "metricsLevel = NONE" in line


def test_killed_worker_is_replaced(kcl3: Installation, fresh_emulator: EmbeddedEmulator, tmp_path: Path) -> None:
    """SIGKILL leaves the leader lock and the leases held; a new worker takes over once they expire."""
    endpoint = fresh_emulator.endpoint_url
    app, stream = "kcl3-killed", "kcl3-killed-stream"
    kinesis = _aws.client("kinesis", endpoint)
    _aws.ensure_stream(kinesis, stream, 2)
    props = write_properties(tmp_path / "app.properties", endpoint, app, stream)
    ledger_path = tmp_path / "ledger.jsonl"

    def processed(results: list[_aws.PutResult]) -> Callable[[], bool]:
        wanted = {(r.shard_id, r.sequence_number) for r in results}
        return lambda: wanted <= {(e["shard"], e["sequence_number"]) for e in ledger(ledger_path)}

    lines: list[str] = []
    first = daemon(kcl3, props, ledger_path, lines)
    with first:
        wait_for(processed(_aws.put_records(kinesis, stream, [(b"before", f"pk-{i}") for i in range(10)])),
                 180, "the records put before the kill")
        assert first.pid is not None
        os.killpg(first.pid, signal.SIGKILL)
        assert first.wait(30) == -signal.SIGKILL
    restarted = time.monotonic()
    with daemon(kcl3, props, ledger_path, []):
        wait_for(processed(_aws.put_records(kinesis, stream, [(b"after", f"pk-{i}") for i in range(10)])),
                 240, "the records put after the kill")
        print(f"\nKCL 3 restart after SIGKILL to the last new record processed: {time.monotonic() - restarted:.1f}s")
