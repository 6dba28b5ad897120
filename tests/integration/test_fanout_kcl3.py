"""KCL 3.x enhanced fan-out on local engines, with the real JVM through the 3.x launcher
and real engines on loopback: ``kclpy-local run --kcl 3 --set retrievalMode=FANOUT``
on kinesis-mock (the stream consumer registered, every record delivered through
SubscribeToShard and none through GetRecords, checkpoints in the lease table, a
restart that resumes from them, a worker whose ``run`` is killed replaced by another
that takes its leases), ``kclpy-local daemon FILE`` with ``retrievalMode = FANOUT``
on kinesis-mock's TLS port, and ``run --engine ministack``.

kinesis-mock runs with ``LOG_LEVEL=DEBUG`` (passed on by ``up``), so its log names
every request it serves: the proof of how the records were read.

Skipped, with the reason, without Node.js (kinesis-mock) or a JDK.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kclpy_local import _aws
from kclpy_local._emulators.kinesis_mock import KinesisMockInstallation, stop_group
from kclpy_local._emulators.registry import read_record
from kclpy_local._jvm.bootstrap import Installation
from kclpy_local._process import pid_alive

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RECORDER = ROOT / "processors" / "recorder.py"
SUBSCRIBE = "Processing SubscribeToShard request"
GET_RECORDS = "Processing GetRecords request"
FANOUT_LINE = "kclpy-local: records by enhanced fan-out (SubscribeToShard), stream consumer "
H2C = "HTTP/2 without TLS (h2c, prior knowledge)"
STARTED = re.compile(r"kclpy-local: worker STARTED \(application \S+, stream \S+, worker (\S+)\)")

Key = tuple[str, str]  # (shard id, sequence number)


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)
    return time.monotonic() - start


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def keys(path: Path) -> list[Key]:
    return [(str(e["shard"]), str(e["sequence_number"])) for e in read_jsonl(path)]


def base_env(tmp_path: Path, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KCLPY_LOCAL_"))}
    env.update(KCLPY_LOCAL_STATE=str(tmp_path / "state"), KCLPY_LOCAL_CACHE=str(cache))
    return env


@dataclass
class Run:
    """One ``kclpy-local run`` process (a worker) with its own run directory and ledger."""

    proc: subprocess.Popen[bytes]
    run_dir: Path
    stderr: Path

    @property
    def ledger(self) -> Path:
        return self.run_dir / "ledger.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.run_dir / "checkpoints.jsonl"

    def text(self) -> str:
        return self.stderr.read_text()

    def daemon_log(self) -> str:
        path = self.run_dir / "daemon.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_started(self, timeout: float = 180) -> None:
        wait_for(
            lambda: "worker started after" in self.text() or self.proc.poll() is not None,
            timeout,
            "the worker to start",
        )
        assert self.proc.poll() is None, self.text()

    def worker_id(self) -> str:
        found = STARTED.search(self.daemon_log())
        assert found, self.daemon_log()[-3000:]
        return found.group(1)


def start_run(env: Mapping[str, str], tmp_path: Path, name: str, *args: str) -> Run:
    run_dir = tmp_path / name
    run_dir.mkdir()
    stderr = tmp_path / f"{name}.stderr"
    worker_env = {
        **env,
        "KCLPY_LOCAL_LEDGER": str(run_dir / "ledger.jsonl"),
        "KCLPY_LOCAL_CHECKPOINTS": str(run_dir / "checkpoints.jsonl"),
    }
    argv = [
        sys.executable,
        "-m",
        "kclpy_local",
        "run",
        str(RECORDER),
        "--no-progress",
        "--run-dir",
        str(run_dir),
        *args,
    ]
    with stderr.open("w") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=out,
            env=worker_env,
            cwd=tmp_path,
        )
    return Run(proc, run_dir, stderr)


def stop(run: Run) -> None:
    if run.proc.poll() is None:
        run.proc.kill()
        run.proc.wait(30)


def shard_leases(dynamodb: Any, table: str) -> dict[str, _aws.Lease]:
    return {
        lease.lease_key: lease
        for lease in _aws.read_leases(dynamodb, table, shard_leases_only=True)
    }


def last_per_shard(puts: list[_aws.PutResult]) -> dict[str, int]:
    last: dict[str, int] = {}
    for p in puts:
        last[p.shard_id] = max(last.get(p.shard_id, 0), int(p.sequence_number))
    return last


def checkpointed(dynamodb: Any, table: str, last: Mapping[str, int]) -> Callable[[], bool]:
    def check() -> bool:
        leases = shard_leases(dynamodb, table)
        return all(
            (
                leases.get(s)
                and (leases[s].checkpoint or "").isdigit()
                and int(leases[s].checkpoint or 0) >= n
            )
            for s, n in last.items()
        )

    return check


@pytest.fixture
def up_with_kinesis_mock(
    kcl3: Installation,
    kinesis_mock_installation: KinesisMockInstallation,
    kinesis_mock_cache: Path,
    tmp_path: Path,
) -> Iterator[tuple[dict[str, str], Any]]:
    """``kclpy-local up --kinesis kinesis-mock`` (kinesis-mock logging every request), its
    environment for the commands, and its registry record; stopped afterwards."""
    pytest.importorskip("moto.server")
    env = base_env(tmp_path, kinesis_mock_cache)
    up = subprocess.run(
        [sys.executable, "-m", "kclpy_local", "up", "--port", "0", "--kinesis", "kinesis-mock"],
        env={**env, "LOG_LEVEL": "DEBUG"},
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert up.returncode == 0, up.stderr
    record = read_record(tmp_path / "state")
    assert record is not None and record.kinesis is not None
    try:
        yield env, record
    finally:
        subprocess.run(
            [sys.executable, "-m", "kclpy_local", "down"],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=False,
        )
        if pid_alive(record.kinesis.pid):
            stop_group(record.kinesis.pid)


def test_run_fanout_on_kinesis_mock_restart_and_a_killed_worker(
    up_with_kinesis_mock: tuple[dict[str, str], Any], kcl_cache: Path, tmp_path: Path
) -> None:
    env, record = up_with_kinesis_mock
    app, stream = "fanout-app", "fanout-stream"
    kinesis = _aws.client("kinesis", record.kinesis.endpoint)
    dynamodb = _aws.client("dynamodb", record.endpoint)
    engine_log = Path(record.kinesis.log_file)
    args = (
        "--stream",
        stream,
        "--app",
        app,
        "--shards",
        "2",
        "--kcl",
        "3",
        "--set",
        "retrievalMode=FANOUT",
        "--cache-dir",
        str(kcl_cache),
    )
    runs: list[Run] = []
    try:
        # 1. The first worker: the consumer is registered, records come through subscriptions.
        first = start_run(env, tmp_path, "run1", *args)
        runs.append(first)
        first.wait_started()
        log = first.daemon_log()
        assert (
            f"kclpy-local: Kinesis endpoint {record.kinesis.endpoint} (region us-east-1, {H2C})"
            in log
        )
        assert FANOUT_LINE + app in log
        put1 = _aws.put_records(
            kinesis, stream, [(f"one-{i}".encode(), f"pk-{i}") for i in range(40)]
        )
        wanted1 = {(p.shard_id, p.sequence_number) for p in put1}
        wait_for(lambda: wanted1 <= set(keys(first.ledger)), 90, "the first records in the ledger")
        wait_for(checkpointed(dynamodb, app, last_per_shard(put1)), 60, "the first checkpoints")
        arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
            "StreamARN"
        ]
        consumers = kinesis.list_stream_consumers(StreamARN=arn)["Consumers"]
        assert [(c["ConsumerName"], c["ConsumerStatus"]) for c in consumers] == [(app, "ACTIVE")]
        served = engine_log.read_text()
        assert served.count(SUBSCRIBE) >= 2, "one subscription per shard at least"
        assert GET_RECORDS not in served
        assert "FanOutConsumerRegistration" in first.daemon_log()
        # Graceful stop: the checkpoints are exact.
        first.proc.send_signal(signal.SIGINT)
        assert first.proc.wait(90) == 0, first.text()
        assert "kclpy-local: stopped gracefully" in first.text()

        # 2. A restart resumes from the checkpoints: the records put meanwhile, nothing twice.
        put2 = _aws.put_records(
            kinesis, stream, [(f"two-{i}".encode(), f"pk-{i}") for i in range(30)]
        )
        second = start_run(env, tmp_path, "run2", *args)
        runs.append(second)
        second.wait_started()
        wanted2 = {(p.shard_id, p.sequence_number) for p in put2}
        wait_for(
            lambda: wanted2 <= set(keys(second.ledger)), 90, "the records put while no worker ran"
        )
        assert set(keys(second.ledger)).isdisjoint(wanted1), (
            "a checkpointed record was processed twice"
        )
        last1 = last_per_shard(put1)
        starts = {
            e["shard"]: e["sequence_number"]
            for e in read_jsonl(second.checkpoints)
            if e["event"] == "initialize"
        }
        assert {s: int(n) for s, n in starts.items()} == last1, (
            "the restart did not start at the checkpoints"
        )
        assert FANOUT_LINE + app in second.daemon_log()
        wait_for(checkpointed(dynamodb, app, last_per_shard(put2)), 60, "the second checkpoints")
        killed_worker = second.worker_id()
        assert {lease.owner for lease in shard_leases(dynamodb, app).values()} == {killed_worker}

        # 3. A second worker joins; SIGKILL of the first one's `kclpy-local run` (not the JVM):
        # its JVM goes with it, and the other worker takes its leases.
        third = start_run(env, tmp_path, "run3", *args)
        runs.append(third)
        third.wait_started()
        second.proc.send_signal(signal.SIGKILL)
        assert second.proc.wait(30) == -signal.SIGKILL
        killed_at = time.monotonic()
        taker = third.worker_id()
        assert taker != killed_worker
        took = wait_for(
            lambda: {lease.owner for lease in shard_leases(dynamodb, app).values()} == {taker},
            120,
            f"worker {taker} to hold every lease",
        )
        put3 = _aws.put_records(
            kinesis, stream, [(f"three-{i}".encode(), f"pk-{i}") for i in range(30)]
        )
        wanted3 = {(p.shard_id, p.sequence_number) for p in put3}
        wait_for(lambda: wanted3 <= set(keys(third.ledger)), 90, "the records put after the kill")
        print(
            f"\nfan-out: leases taken {took:.1f}s after the kill, records processed "
            f"{time.monotonic() - killed_at:.1f}s after it"
        )
        # Every record exactly once over the three workers: the killed worker had
        # checkpointed all it processed, so its successor starts after them.
        processed = keys(first.ledger) + keys(second.ledger) + keys(third.ledger)
        assert len(processed) == len(set(processed)), "a record was processed twice"
        assert set(processed) == wanted1 | wanted2 | wanted3, "a record was lost"
        served = engine_log.read_text()
        assert GET_RECORDS not in served, "the workers polled"
        assert served.count(SUBSCRIBE) >= 6
        third.proc.send_signal(signal.SIGINT)
        assert third.proc.wait(90) == 0, third.text()
    finally:
        for run in runs:
            stop(run)


def test_daemon_file_fanout_on_the_tls_port(
    up_with_kinesis_mock: tuple[dict[str, str], Any], kcl_cache: Path, tmp_path: Path
) -> None:
    """A user's file with ``retrievalMode = FANOUT`` through ``kclpy-local daemon FILE``,
    Kinesis on kinesis-mock's TLS port: HTTP/2 by ALPN, its self-signed certificate
    trusted because the file says so for this loopback endpoint."""
    env, record = up_with_kinesis_mock
    tls = f"https://127.0.0.1:{record.kinesis.tls_port}"
    app, stream = "fanout-tls-app", "fanout-tls"
    kinesis = _aws.client("kinesis", record.kinesis.endpoint)
    _aws.ensure_stream(kinesis, stream, 1)
    ledger_path = tmp_path / "ledger.jsonl"
    path = tmp_path / "app.properties"
    path.write_text(
        f"applicationName = {app}\nstreamName = {stream}\nexecutableName = {sys.executable} {RECORDER}\n"
        "AwsCredentialsProvider = EnvironmentVariableCredentialsProvider\nregionName = us-east-1\n"
        f"kinesisEndpoint = {tls}\ndynamoDBEndpoint = {record.endpoint}\n"
        f"cloudWatchEndpoint = {record.endpoint}\nisCBORProtocolDisabled = true\nmetricsLevel = NONE\n"
        "initialPositionInStream = TRIM_HORIZON\nretrievalMode = FANOUT\n"
        "kinesisTrustLoopbackCertificates = true\n",
        encoding="utf-8",
    )
    stderr = tmp_path / "daemon.stderr"
    daemon_env = {
        **env,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "KCLPY_LOCAL_LEDGER": str(ledger_path),
    }
    with stderr.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kclpy_local",
                "daemon",
                str(path),
                "--kcl",
                "3",
                "--cache-dir",
                str(kcl_cache),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=out,
            env=daemon_env,
            cwd=tmp_path,
        )
    try:
        wait_for(
            lambda: "kclpy-local: worker STARTED" in stderr.read_text() or proc.poll() is not None,
            180,
            "the worker to start",
        )
        assert proc.poll() is None, stderr.read_text()[-3000:]
        put = _aws.put_records(
            kinesis, stream, [(f"tls-{i}".encode(), f"pk-{i}") for i in range(20)]
        )
        wanted = {(p.shard_id, p.sequence_number) for p in put}
        wait_for(lambda: wanted <= set(keys(ledger_path)), 90, "the records in the ledger")
        text = stderr.read_text()
        assert (
            f"kclpy-local: Kinesis endpoint {tls} (region us-east-1, HTTP/2 over TLS by ALPN, any "
            "certificate trusted (kinesisTrustLoopbackCertificates))"
        ) in text
        assert FANOUT_LINE + app in text
        arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
            "StreamARN"
        ]
        assert [
            c["ConsumerName"] for c in kinesis.list_stream_consumers(StreamARN=arn)["Consumers"]
        ] == [app]
        assert GET_RECORDS not in Path(record.kinesis.log_file).read_text()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(90) == 143, text[-3000:]  # the JVM's exit status after SIGTERM
        assert "kclpy-local: graceful shutdown complete" in stderr.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)

    # The key with an endpoint that is not a loopback https:// one is refused before the JVM.
    bad = tmp_path / "bad.properties"
    bad.write_text(path.read_text().replace(tls, record.kinesis.endpoint), encoding="utf-8")
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "kclpy_local",
            "daemon",
            str(bad),
            "--kcl",
            "3",
            "--cache-dir",
            str(kcl_cache),
        ],
        env=daemon_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2, refused.stderr
    assert (
        f"error: kinesisTrustLoopbackCertificates: true is only for an https:// kinesisEndpoint on a "
        f"loopback host, not {record.kinesis.endpoint}"
    ) in refused.stderr
    assert "worker STARTED" not in refused.stderr


def test_run_fanout_on_ministack(kcl3: Installation, kcl_cache: Path, tmp_path: Path) -> None:
    """MiniStack serves Kinesis, DynamoDB and CloudWatch on one port, and SubscribeToShard over h2c."""
    from kclpy_local._emulators.ministack import MiniStackInstallError, ensure_installed

    try:
        ensure_installed()
    except MiniStackInstallError as exc:
        if exc.registry_unreachable:
            pytest.skip(f"the package index is unreachable: {exc}")
        raise
    env = base_env(tmp_path, kcl_cache)
    app, stream = "fanout-ms-app", "fanout-ms"
    run = start_run(
        env,
        tmp_path,
        "run",
        "--stream",
        stream,
        "--app",
        app,
        "--kcl",
        "3",
        "--engine",
        "ministack",
        "--port",
        "0",
        "--set",
        "retrievalMode=FANOUT",
        "--cache-dir",
        str(kcl_cache),
    )
    try:
        run.wait_started()
        endpoint = re.search(
            r"endpoint (http://127\.0\.0\.1:\d+) \(embedded emulator started", run.text()
        )
        assert endpoint, run.text()
        kinesis = _aws.client("kinesis", endpoint.group(1))
        put = _aws.put_records(
            kinesis, stream, [(f"ms-{i}".encode(), f"pk-{i}") for i in range(20)]
        )
        wanted = {(p.shard_id, p.sequence_number) for p in put}
        wait_for(lambda: wanted <= set(keys(run.ledger)), 90, "the records in the ledger")
        log = run.daemon_log()
        assert f"kclpy-local: Kinesis endpoint {endpoint.group(1)} (region us-east-1, {H2C})" in log
        assert FANOUT_LINE + app in log
        arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
            "StreamARN"
        ]
        assert [
            c["ConsumerName"] for c in kinesis.list_stream_consumers(StreamARN=arn)["Consumers"]
        ] == [app]
        dynamodb = _aws.client("dynamodb", endpoint.group(1))
        wait_for(
            checkpointed(dynamodb, app, last_per_shard(put)),
            60,
            "the checkpoint in the lease table",
        )
        run.proc.send_signal(signal.SIGINT)
        assert run.proc.wait(90) == 0, run.text()
    finally:
        stop(run)


def test_run_fanout_over_http1_on_a_kinesis_mock_of_its_own(
    kcl3: Installation,
    kinesis_mock_installation: KinesisMockInstallation,
    kinesis_mock_cache: Path,
    tmp_path: Path,
) -> None:
    """``run --kinesis kinesis-mock`` starts its own engine; ``kinesisHttpProtocol = HTTP1_1``
    keeps the Kinesis client on HTTP/1.1, and SubscribeToShard still serves every record."""
    pytest.importorskip("moto.server")
    env = {
        **base_env(tmp_path, kinesis_mock_cache),
        "LOG_LEVEL": "DEBUG",
    }  # kinesis-mock's, passed on
    app, stream = "fanout-h1-app", "fanout-h1"
    run = start_run(
        env,
        tmp_path,
        "run",
        "--stream",
        stream,
        "--app",
        app,
        "--kcl",
        "3",
        "--kinesis",
        "kinesis-mock",
        "--port",
        "0",
        "--set",
        "retrievalMode=FANOUT",
        "--set",
        "kinesisHttpProtocol=HTTP1_1",
        "--cache-dir",
        str(kinesis_mock_cache),
    )
    try:
        run.wait_started()
        url = re.search(r"Kinesis on kinesis-mock at (http://127\.0\.0\.1:\d+)", run.text())
        assert url, run.text()
        kinesis = _aws.client("kinesis", url.group(1))
        put = _aws.put_records(
            kinesis, stream, [(f"h1-{i}".encode(), f"pk-{i}") for i in range(20)]
        )
        wanted = {(p.shard_id, p.sequence_number) for p in put}
        wait_for(lambda: wanted <= set(keys(run.ledger)), 90, "the records in the ledger")
        log = run.daemon_log()
        assert (
            f"kclpy-local: Kinesis endpoint {url.group(1)} (region us-east-1, HTTP/1.1 "
            "(kinesisHttpProtocol = HTTP1_1))"
        ) in log
        assert FANOUT_LINE + app in log
        served = (run.run_dir / "kinesis-mock.log").read_text()
        assert SUBSCRIBE in served and GET_RECORDS not in served
        run.proc.send_signal(signal.SIGINT)
        assert run.proc.wait(90) == 0, run.text()
    finally:
        stop(run)
