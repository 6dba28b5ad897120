"""Every command that finds an endpoint by itself says which one and why, in one
line on stderr: ``put``, ``leases``, ``metrics``, ``doctor`` and ``run``, each as a
real ``python -m kclpy_local`` process, for the flag, the variable, the emulator
``kclpy-local up`` started (a real moto server) and the default. And ``run`` asks
for no second Kinesis engine beside ``up``'s.

No JVM: ``run --print-properties`` resolves its endpoint as a run does, and
refuses as a run does, without starting anything.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from kclpy_local._emulators.registry import PID_FILE, read_record
from kclpy_local._process import pid_alive

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RECORDER = ROOT / "processors" / "recorder.py"
PREFIX = "kclpy-local: endpoint "

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def cli(tmp_path: Path, state: Path) -> Cli:
    """``python -m kclpy_local ARGV`` with a private state dir, an empty jar cache and
    no ambient ``AWS_*`` or ``KCLPY_LOCAL_*`` variables; ``env`` adds some."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KCLPY_LOCAL_"))}
    base.update(KCLPY_LOCAL_STATE=str(state), KCLPY_LOCAL_CACHE=str(tmp_path / "cache"))

    def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kclpy_local", *argv], env={**base, **(env or {})},
                              cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=120, check=False)

    return run


def endpoint_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one endpoint line of a command's stderr (without the prefix)."""
    lines = [line for line in result.stderr.splitlines() if line.startswith(PREFIX)]
    assert len(lines) == 1, result.stderr
    assert PREFIX not in result.stdout, result.stdout
    return lines[0][len(PREFIX):]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


#: A command and its arguments, the endpoint it needs (flag form), and the service.
COMMANDS = {
    "put": ["put", "--stream", "ep-nope", "--count", "1"],
    "leases": ["leases", "ep-nope"],
    "metrics": ["metrics", "ep-nope"],
    "doctor": ["doctor"],
    "run": ["run", str(RECORDER), "--stream", "ep-nope", "--print-properties"],
}


@pytest.mark.parametrize("source", ["flag", "variable"])
def test_the_flag_and_the_variable(cli: Cli, state: Path, source: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    for name, argv in COMMANDS.items():
        if source == "flag":
            result = cli(*argv, "--endpoint", url)
            assert endpoint_line(result) == f"{url} (from --endpoint)", name
        else:
            result = cli(*argv, env={"KCLPY_LOCAL_ENDPOINT": url})
            assert endpoint_line(result) == f"{url} (from $KCLPY_LOCAL_ENDPOINT)", name
        if name in ("put", "leases", "metrics"):  # nothing listens there
            assert result.returncode == 8, result.stderr
            assert f"cannot reach {url}" in result.stderr
    # doctor's finding names the source too.
    result = cli("doctor", "--endpoint", url)
    assert f"nothing answers at {url} (from --endpoint)" in result.stdout


def test_the_default(cli: Cli, state: Path) -> None:
    why = f"no emulator recorded in the state dir {state}"
    for name, argv in COMMANDS.items():
        line = endpoint_line(cli(*argv))
        if name == "run":  # a run starts its embedded emulator instead
            assert re.fullmatch(rf"http://127\.0\.0\.1:\d+ \(embedded emulator started for this run: "
                                rf"{re.escape(why)}\)", line), line
        else:
            assert line == f"http://127.0.0.1:4566 (the default: {why})", name


def test_the_emulator_up_started(cli: Cli, state: Path) -> None:
    up = cli("up", "--port", "0")
    assert up.returncode == 0, up.stderr
    url = up.stdout.strip()
    record = read_record(state)
    assert record is not None and record.endpoint == url
    try:
        expected = f"{url} (running emulator moto, pid {record.pid}, from the state dir {state})"
        stream, app = unique("ep-stream"), unique("ep-app")
        # put finds it, and --json's stdout is still one JSON document.
        put = cli("put", "--stream", stream, "--create", "--count", "3", "--json")
        assert put.returncode == 0, put.stderr
        assert endpoint_line(put) == expected
        assert json.loads(put.stdout)["endpoint"] == url
        leases = cli("leases", app, "--json")
        assert leases.returncode == 1 and endpoint_line(leases) == expected  # no lease table yet
        metrics = cli("metrics", app, "--json")
        assert metrics.returncode == 0 and endpoint_line(metrics) == expected
        assert json.loads(metrics.stdout) == []
        doctor = cli("doctor", "--json")
        assert endpoint_line(doctor) == expected
        (emulator,) = [row for row in json.loads(doctor.stdout) if row["check"] == "emulator"]
        assert emulator["status"] == "ok" and f"from the state dir {state}" in emulator["finding"]
        run = cli("run", str(RECORDER), "--stream", stream, "--print-properties")
        assert run.returncode == 0, run.stderr
        assert endpoint_line(run) == expected
        assert f"kinesisEndpoint = {url}".replace(":", "\\:") in run.stdout
        assert cli("run", str(RECORDER), "--stream", stream, "--kinesis", "moto",
                   "--print-properties").returncode == 0  # the same kind: used

        # Another kind of Kinesis engine than up's: refused, nothing started.
        refused = cli("run", str(RECORDER), "--stream", stream, "--kinesis", "kinesis-mock")
        assert refused.returncode == 2, refused.stderr
        assert (f"kclpy-local: error: --kinesis kinesis-mock would start a second Kinesis engine, but "
                f"`kclpy-local up` started moto for Kinesis at {url} (pid {record.pid}, state dir "
                f"{state}); put, leases and metrics use that one") in refused.stderr
        assert ("hint: drop --kinesis to use the running moto, or stop it first with `kclpy-local down`"
                in refused.stderr)
        assert "Traceback" not in refused.stderr and "daemon log" not in refused.stderr
        assert not (state / "run").exists()

        # The emulator dies: the commands say the recorded one is gone.
        os.kill(record.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(record.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        gone = cli("leases", app)
        assert endpoint_line(gone) == (f"http://127.0.0.1:4566 (the default: the emulator recorded in "
                                       f"the state dir {state} (pid {record.pid}) is gone)")
    finally:
        down = cli("down")
        assert down.returncode == 0, down.stderr
    assert not (state / PID_FILE).exists()
