"""``kclpy-local up`` / ``down`` through ``main()``, with a real moto server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import moto.server  # noqa: F401 - the test extra installs it
import pytest

from kclpy_local._cli import main
from kclpy_local._emulators import moto as _emulator
from kclpy_local._emulators.moto import READY_PATH, wait_ready
from kclpy_local._emulators.registry import (
    PID_FILE,
    EmulatorRecord,
    read_record,
    write_record,
)
from kclpy_local._env import default_state_dir
from kclpy_local._exceptions import EmulatorError
from kclpy_local._process import pid_alive


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A private state dir; whatever ``up`` left running there is stopped afterwards."""
    path = tmp_path / "state"
    yield path
    record = read_record(path)
    if record is not None and pid_alive(record.pid) and _emulator.is_moto_process(record.pid):
        _emulator.stop_pid(record.pid)


def _answers(url: str) -> bool:
    try:
        wait_ready(url, timeout=1.0, path=READY_PATH)
    except EmulatorError:
        return False
    return True


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_up_twice_then_down_twice(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up", "--port", "0", "--state-dir", str(state_dir)]) == 0
    out, err = capsys.readouterr()
    endpoint = out.strip()
    assert endpoint.startswith("http://127.0.0.1:")
    assert "kclpy-local down" in err
    data = json.loads((state_dir / PID_FILE).read_text())
    assert set(data) == {"pid", "port", "endpoint", "started_at", "log_file", "engine"}
    assert data["engine"] == "moto"
    assert data["endpoint"] == endpoint
    assert endpoint.endswith(f":{data['port']}")
    assert _answers(endpoint)
    assert Path(data["log_file"]).is_file()

    # Idempotent: the running one is reported, nothing new is started.
    assert main(["up", "--port", "0", "--state-dir", str(state_dir)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == endpoint
    assert "already running" in err
    assert json.loads((state_dir / PID_FILE).read_text())["pid"] == data["pid"]

    assert main(["down", "--state-dir", str(state_dir)]) == 0
    out, _ = capsys.readouterr()
    assert "stopped" in out
    assert not pid_alive(data["pid"])
    assert not (state_dir / PID_FILE).exists()
    assert not _answers(endpoint)

    assert main(["down", "--state-dir", str(state_dir)]) == 0
    out, _ = capsys.readouterr()
    assert "no emulator running" in out


def test_up_replaces_a_stale_pid_file(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dead = _dead_pid()
    write_record(state_dir, EmulatorRecord(dead, 1, "http://127.0.0.1:1", "then", "log"))
    assert main(["up", "--port", "0", "--state-dir", str(state_dir)]) == 0
    out, err = capsys.readouterr()
    assert "stale" in err
    record = read_record(state_dir)
    assert record is not None and record.pid != dead
    assert out.strip() == record.endpoint
    assert main(["down", "--state-dir", str(state_dir)]) == 0


def test_down_with_a_stale_pid_file(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_record(state_dir, EmulatorRecord(_dead_pid(), 1, "http://127.0.0.1:1", "then", "log"))
    assert main(["down", "--state-dir", str(state_dir)]) == 0
    assert "no emulator running" in capsys.readouterr().out
    assert not (state_dir / PID_FILE).exists()


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_down_never_kills_a_recycled_pid(state_dir: Path) -> None:
    # The pid file names a live process that is not moto: this test's own process.
    write_record(state_dir, EmulatorRecord(os.getpid(), 1, "http://127.0.0.1:1", "then", "log"))
    assert main(["down", "--state-dir", str(state_dir)]) == 0
    assert not (state_dir / PID_FILE).exists()


def test_down_with_an_unreadable_pid_file(state_dir: Path) -> None:
    state_dir.mkdir(parents=True)
    (state_dir / PID_FILE).write_text("{not json")
    assert main(["down", "--state-dir", str(state_dir)]) == 0
    assert not (state_dir / PID_FILE).exists()


def test_up_on_a_taken_port_fails_fast(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        started = time.monotonic()
        code = main(["up", "--port", str(port), "--state-dir", str(state_dir)])
        assert time.monotonic() - started < 1.0
    assert code == 8
    err = capsys.readouterr().err
    assert "already in use" in err
    assert "--port" in err  # the hint
    assert not (state_dir / PID_FILE).exists()


def test_up_without_moto_gives_the_install_hint(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_emulator, "_find_spec", lambda name: None)
    assert main(["up", "--port", "0", "--state-dir", str(state_dir)]) == 8
    assert "pip install 'kclpy-local[emulator]'" in capsys.readouterr().err


def test_state_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KCLPY_LOCAL_STATE", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    assert default_state_dir() == tmp_path / "home" / ".local" / "state" / "kclpy-local"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_dir() == tmp_path / "xdg" / "kclpy-local"
    monkeypatch.setenv("KCLPY_LOCAL_STATE", str(tmp_path / "explicit"))
    assert default_state_dir() == tmp_path / "explicit"


def test_up_uses_the_state_env(
    monkeypatch: pytest.MonkeyPatch, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KCLPY_LOCAL_STATE", str(state_dir))
    assert main(["up", "--port", "0"]) == 0
    assert (state_dir / PID_FILE).exists()
    assert main(["down"]) == 0
    assert not (state_dir / PID_FILE).exists()


def test_foreground_up_is_stopped_by_down(state_dir: Path) -> None:
    argv = [sys.executable, "-m", "kclpy_local", "up", "--foreground", "--port", "0"]
    proc = subprocess.Popen(
        [*argv, "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().strip()
        assert endpoint.startswith("http://127.0.0.1:")
        assert _answers(endpoint)
        assert main(["down", "--state-dir", str(state_dir)]) == 0
        proc.communicate(timeout=15)
        assert proc.returncode == 0
        assert not (state_dir / PID_FILE).exists()
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=15)
