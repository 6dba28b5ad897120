"""The Daemon running the real launcher on the JVM."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kclpy_local._exceptions import DaemonStartError
from kclpy_local._jvm.bootstrap import Installation
from kclpy_local._jvm.daemon import READY_MARKER, Daemon

pytestmark = pytest.mark.integration

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def _gone(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_unreachable_endpoint_fails_fast_with_the_log(
    kcl1: Installation, tmp_path: Path, unreachable_properties: Callable[..., Path]
) -> None:
    props = unreachable_properties()
    daemon = Daemon(props, installation=kcl1, env={"JAVA_TOOL_OPTIONS": "-Daws.accessKeyId=it -Daws.secretKey=it"},
                    cwd=tmp_path, ready_timeout=150)
    started = time.monotonic()
    with pytest.raises(DaemonStartError, match="exited with code 3 before its worker started") as info:
        daemon.start()
    assert time.monotonic() - started < 150
    assert any("the worker never reached STARTED" in line for line in info.value.log_tail)
    assert daemon.returncode == 3


def test_ready_timeout_stops_the_jvm_and_its_group(
    kcl1: Installation, tmp_path: Path, unreachable_properties: Callable[..., Path]
) -> None:
    props = unreachable_properties(maxInitializationAttempts="20")
    daemon = Daemon(props, installation=kcl1, env={"JAVA_TOOL_OPTIONS": "-Daws.accessKeyId=it -Daws.secretKey=it"},
                    cwd=tmp_path, ready_timeout=8, stop_timeout=10)
    with pytest.raises(DaemonStartError, match=r"within 8s") as info:
        daemon.start()
    assert info.value.log_tail
    assert daemon.returncode is not None
    assert daemon.pid is not None and _gone(daemon.pid)


PROCESSOR = textwrap.dedent(
    """\
    import pathlib
    from kclpy_local import RecordProcessor, run

    MARK = pathlib.Path(__file__).with_name("events.txt")

    def note(text):
        with MARK.open("a") as fh:
            fh.write(text + "\\n")

    class Recorder(RecordProcessor):
        def initialize(self, message):
            note("initialize " + message.shard_id)

        def process_records(self, batch, checkpointer):
            note(f"records {len(batch.records)}")

        def lease_lost(self):
            note("lease_lost")

        def shard_ended(self, checkpointer):
            note("shard_ended")

        def shutdown_requested(self, checkpointer):
            note("shutdown_requested")

    if __name__ == "__main__":
        run(Recorder())
    """
)


def test_starts_against_the_emulator_and_stops_gracefully(
    kcl1: Installation, tmp_path: Path, fresh_emulator: object
) -> None:
    import boto3
    endpoint: str = fresh_emulator.endpoint_url  # type: ignore[attr-defined]
    kinesis = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1", **{
        "aws_access_key_id": "testing", "aws_secret_access_key": "testing"})
    kinesis.create_stream(StreamName="it-daemon", ShardCount=1)
    (tmp_path / "processor.py").write_text(PROCESSOR, encoding="utf-8")
    props = tmp_path / "it.properties"
    props.write_text(textwrap.dedent(f"""\
        applicationName = it-daemon
        streamName = it-daemon
        executableName = {sys.executable} processor.py
        AWSCredentialsProvider = EnvironmentVariableCredentialsProvider
        regionName = us-east-1
        kinesisEndpoint = {endpoint}
        dynamoDBEndpoint = {endpoint}
        cloudWatchEndpoint = {endpoint}
        isCBORProtocolDisabled = true
        initialPositionInStream = TRIM_HORIZON
        shutdownGraceMillis = 15000
        metricsBufferTimeMillis = 1000
        """))
    lines: list[str] = []
    events = tmp_path / "events.txt"
    with Daemon(props, installation=kcl1, env=CREDENTIALS, cwd=tmp_path, log=lines.append,
                ready_timeout=120, stop_timeout=30) as daemon:
        assert any(line.startswith(READY_MARKER) for line in lines)
        deadline = time.monotonic() + 60
        while "initialize" not in (events.read_text() if events.exists() else ""):
            assert time.monotonic() < deadline, "\n".join(daemon.log_tail())
            time.sleep(0.2)
    assert daemon.returncode == 128 + signal.SIGTERM
    assert f"kclpy-local: CloudWatch endpoint {endpoint} (signing region us-east-1)" in lines
    assert any(line.startswith("kclpy-local: stop requested; graceful shutdown") for line in lines)
    assert "shutdown_requested" in events.read_text().split("\n")
