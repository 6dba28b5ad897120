"""No orphans: whatever ends ``kclpy-local run`` or ``kclpy-local daemon FILE``
(SIGKILL, an out-of-memory kill, SIGHUP when the terminal closes), every
process it started ends too: the JVM, the record processors it runs, the
embedded emulator.

The fault is applied to the command the user started. A marker variable in that
command's environment is inherited by everything it starts; afterwards no
process on the machine may carry it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _helpers import read_jsonl, wait_for

from kclpy_local import _aws
from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._jvm.bootstrap import Installation
from kclpy_local._jvm.supervise import GRACEFUL_MARKER

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RECORDER = ROOT / "processors" / "recorder.py"
LOCAL_PROPERTIES = ROOT / "properties" / "local.properties"
MARK = "KCLPY_LOCAL_TEST_ORPHAN_MARK"
#: "A few seconds": the longest a child may outlive the command.
GONE_WITHIN = 15.0


def carriers(mark: str) -> list[int]:
    """The pids of the live processes whose environment holds ``MARK=mark``."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def describe(pids: list[int]) -> str:
    lines = []
    for pid in pids:
        try:
            cmdline = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        lines.append(f"{pid}: {cmdline.decode(errors='replace')[:160]}")
    return "\n".join(lines)


class Command:
    """One ``python -m kclpy_local ...`` as a user starts it, with a marked environment."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, tmp: Path) -> None:
        self.mark = uuid.uuid4().hex
        self.stderr_path = tmp / f"{argv[0]}.stderr"
        self._stderr = self.stderr_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kclpy_local", *argv],
            stdin=subprocess.DEVNULL,
            stdout=self._stderr,
            stderr=subprocess.STDOUT,
            env={**env, MARK: self.mark},
            cwd=cwd,
        )

    @property
    def output(self) -> str:
        return self.stderr_path.read_text()

    def gone_after(self, sig: int, timeout: float = 60.0) -> tuple[float, int]:
        """Send ``sig`` to the command; the seconds until nothing it started is left
        (and the command's exit code)."""
        assert self.proc.poll() is None, self.output
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        deadline = started + timeout
        while carriers(self.mark) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = carriers(self.mark)
        assert not left, f"left running {time.monotonic() - started:.1f}s after the signal:\n{describe(left)}"
        return time.monotonic() - started, code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()
        for pid in carriers(self.mark):  # never leave what a failed test left
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def base_env(kcl1: Installation, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KCLPY_LOCAL_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["KCLPY_LOCAL_LEDGER"] = str(tmp_path / "ledger.jsonl")
    env["KCLPY_LOCAL_STATE"] = str(tmp_path / "state")
    return env


@pytest.fixture
def start(base_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Command]]:
    commands: list[Command] = []

    def start(*argv: str, env: dict[str, str] | None = None, cwd: Path = tmp_path) -> Command:
        command = Command(list(argv), {**base_env, **(env or {})}, cwd, tmp_path)
        commands.append(command)
        return command

    yield start
    for command in commands:
        command.close()


def _processing(command: Command, endpoint: str, stream: str, ledger: Path) -> None:
    """Records put on ``stream`` reach the command's processor (everything is up)."""
    put = _aws.put_records(_aws.client("kinesis", endpoint), stream, [(b"x", f"k{i}") for i in range(4)])
    wanted = {p.sequence_number for p in put}
    wait_for(
        lambda: wanted <= {e["sequence_number"] for e in read_jsonl(ledger)} or command.proc.poll() is not None,
        90,
        "the records in the ledger",
    )
    assert command.proc.poll() is None, command.output


def _run(start: Callable[..., Command], kcl_cache: Path, tmp_path: Path) -> tuple[Command, int]:
    command = start("run", str(RECORDER), "--stream", "orphans", "--shards", "2",
                    "--cache-dir", str(kcl_cache), "--run-dir", str(tmp_path / "run"))
    wait_for(lambda: "worker started after" in command.output or command.proc.poll() is not None, 120,
             "the worker to start")
    match = re.search(r"kclpy-local: endpoint (http://127\.0\.0\.1:\d+) \(embedded emulator started", command.output)
    assert match, command.output
    _processing(command, match.group(1), "orphans", tmp_path / "ledger.jsonl")
    # The run's own children: the embedded emulator, the JVM, one processor per shard.
    return command, len(carriers(command.mark)) - 1


def _daemon(start: Callable[..., Command], kcl_cache: Path, emulator: EmbeddedEmulator,
            tmp_path: Path) -> tuple[Command, int]:
    endpoint = emulator.endpoint_url
    _aws.ensure_stream(_aws.client("kinesis", endpoint), "orphans-daemon", 2)
    env = {
        "KCLPY_LOCAL_ENDPOINT": endpoint,
        "KCLPY_LOCAL_STREAM": "orphans-daemon",
        "KCLPY_LOCAL_APP": "orphans-daemon",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }
    command = start("daemon", str(LOCAL_PROPERTIES), "--cache-dir", str(kcl_cache), env=env, cwd=ROOT)
    wait_for(lambda: "worker STARTED" in command.output or command.proc.poll() is not None, 120,
             "the worker to start")
    _processing(command, endpoint, "orphans-daemon", tmp_path / "ledger.jsonl")
    return command, len(carriers(command.mark)) - 1


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGHUP], ids=["SIGKILL", "SIGHUP"])
def test_nothing_outlives_run(start: Callable[..., Command], kcl_cache: Path, tmp_path: Path, sig: int) -> None:
    command, children = _run(start, kcl_cache, tmp_path)
    assert children >= 4, describe(carriers(command.mark))  # emulator, JVM, two processors
    seconds, code = command.gone_after(sig)
    print(f"\nrun, {signal.Signals(sig).name}: {children} children, all gone {seconds:.1f}s after the signal")
    assert seconds < GONE_WITHIN
    if sig == signal.SIGHUP:  # the terminal closed: a graceful stop
        assert code == 0, command.output
        assert "stopped gracefully" in command.output


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGHUP], ids=["SIGKILL", "SIGHUP"])
def test_nothing_outlives_daemon(start: Callable[..., Command], kcl_cache: Path, fresh_emulator: EmbeddedEmulator,
                                 tmp_path: Path, sig: int) -> None:
    command, children = _daemon(start, kcl_cache, fresh_emulator, tmp_path)
    assert children >= 3, describe(carriers(command.mark))  # JVM, two processors
    seconds, code = command.gone_after(sig)
    print(f"\ndaemon, {signal.Signals(sig).name}: {children} children, all gone {seconds:.1f}s after the signal")
    assert seconds < GONE_WITHIN
    if sig == signal.SIGHUP:
        assert code in (0, 143), command.output  # the daemon's own code for a graceful stop
        assert GRACEFUL_MARKER in command.output, command.output
