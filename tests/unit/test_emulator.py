"""The embedded emulator: a real moto server process on 127.0.0.1."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import moto.server  # noqa: F401 - the test extra installs it
import pytest

from kclpy_local._emulators import _engine
from kclpy_local._emulators import moto as _emulator
from kclpy_local._emulators.moto import (
    EmbeddedEmulator,
    EmulatorStartError,
    check_loopback,
    free_port,
    wait_ready,
)
from kclpy_local._exceptions import EmulatorError, PortInUseError
from kclpy_local._process import pid_alive


def _answers(url: str) -> bool:
    try:
        wait_ready(url, timeout=2.0, path=_emulator.READY_PATH)
    except EmulatorError:
        return False
    return True


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A socket listening on a loopback port, as another program would."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


def _fake_python(tmp_path: Path, body: str) -> str:
    """An executable standing in for the interpreter (ignores ``-m moto.server ...``)."""
    script = tmp_path / "fake-python"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    return str(script)


def test_start_on_a_free_port_then_stop() -> None:
    emu = EmbeddedEmulator(port=0)
    with emu:
        assert emu.port != 0
        assert emu.endpoint_url == f"http://127.0.0.1:{emu.port}"
        assert emu.pid is not None and pid_alive(emu.pid)
        assert emu.running
        assert emu.startup_seconds is not None and emu.startup_seconds < 15
        assert _answers(emu.endpoint_url)
        pid = emu.pid
    assert not emu.running
    assert emu.pid is None
    assert not pid_alive(pid)
    assert not _answers(emu.endpoint_url)
    emu.stop()  # twice is harmless


def test_context_manager_stops_on_error() -> None:
    emu = EmbeddedEmulator(port=0)
    with pytest.raises(RuntimeError), emu:
        pid = emu.pid
        raise RuntimeError("boom")
    assert pid is not None and not pid_alive(pid)


def test_reset_wipes_state() -> None:
    import boto3

    with EmbeddedEmulator(port=0) as emu:
        kinesis = boto3.client(
            "kinesis",
            endpoint_url=emu.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        kinesis.create_stream(StreamName="s", ShardCount=1)
        assert kinesis.list_streams()["StreamNames"] == ["s"]
        emu.reset()
        assert kinesis.list_streams()["StreamNames"] == []


def test_output_goes_to_the_log_file(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "moto.log"
    with EmbeddedEmulator(port=0, log_path=log) as emu:
        wait_ready(emu.endpoint_url, path=_emulator.READY_PATH)
    assert "Running on" in log.read_text()


def test_port_in_use_fails_at_once(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(PortInUseError) as info:
        EmbeddedEmulator(port=port).start()
    assert time.monotonic() - started < 0.5
    assert info.value.port == port
    assert info.value.exit_code == 8
    assert info.value.hint


def test_bound_but_not_listening_port_is_in_use() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        with pytest.raises(PortInUseError):
            EmbeddedEmulator(port=sock.getsockname()[1]).start()


def test_moto_losing_the_race_for_its_port_is_port_in_use(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The port is taken after the check: moto itself exits, and that is noticed.
    monkeypatch.setattr(_engine, "ensure_port_free", lambda host, port: None)
    emu = EmbeddedEmulator(port=listener.getsockname()[1])
    started = time.monotonic()
    with pytest.raises(PortInUseError):
        emu.start()
    assert time.monotonic() - started < 10
    assert emu.pid is None


def test_port_zero_retries_when_the_picked_port_is_taken(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = listener.getsockname()[1]
    picks = iter([taken])
    real = _engine.free_port
    monkeypatch.setattr(_engine, "free_port", lambda host: next(picks, None) or real(host))
    with EmbeddedEmulator(port=0) as emu:
        assert emu.port not in (0, taken)
        assert _answers(emu.endpoint_url)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "localhost", "::1", "example.com"])
def test_non_loopback_host_is_refused(host: str) -> None:
    with pytest.raises(EmulatorError, match="loopback"):
        EmbeddedEmulator(port=0, host=host)


def test_loopback_hosts_are_accepted() -> None:
    assert check_loopback("127.0.0.1") == "127.0.0.1"
    assert check_loopback("127.0.0.2") == "127.0.0.2"


def test_early_exit_carries_the_output(tmp_path: Path) -> None:
    python = _fake_python(tmp_path, 'echo "no luck today: boom"; exit 3')
    emu = EmbeddedEmulator(port=0, python=python)
    with pytest.raises(EmulatorStartError) as info:
        emu.start()
    assert "code 3" in str(info.value)
    assert "no luck today: boom" in info.value.log_tail
    assert emu.pid is None


def test_readiness_timeout_kills_the_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    python = _fake_python(tmp_path, f'echo $$ > "{pid_file}"; echo still starting; exec sleep 60')
    emu = EmbeddedEmulator(port=0, python=python, startup_timeout=0.5)
    with pytest.raises(EmulatorStartError) as info:
        emu.start()
    assert "did not answer" in str(info.value)
    assert "still starting" in info.value.log_tail
    assert not pid_alive(int(pid_file.read_text()))


def test_missing_moto_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_emulator, "_find_spec", lambda name: None)
    with pytest.raises(EmulatorError) as info:
        EmbeddedEmulator(port=0).start()
    assert info.value.hint == "pip install 'kclpy-local[emulator]'"


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def other_endpoint() -> Iterator[str]:
    """Some HTTP server that is not moto (answers 404 to everything)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_wait_ready_accepts_any_answer_from_an_arbitrary_endpoint(other_endpoint: str) -> None:
    assert wait_ready(other_endpoint, timeout=2.0) < 2.0


def test_wait_ready_with_a_path_needs_200(other_endpoint: str) -> None:
    with pytest.raises(EmulatorError, match="HTTP 404"):
        wait_ready(other_endpoint, timeout=0.3, path="/health")


def test_wait_ready_times_out_on_a_closed_port() -> None:
    started = time.monotonic()
    with pytest.raises(EmulatorError, match="not ready"):
        wait_ready(f"http://127.0.0.1:{free_port()}", timeout=0.3)
    assert time.monotonic() - started < 2.0


def test_wait_ready_refuses_non_http_urls() -> None:
    with pytest.raises(EmulatorError):
        wait_ready("ftp://127.0.0.1:21", timeout=0.1)


def test_wait_ready_stops_when_the_process_is_gone() -> None:
    with pytest.raises(EmulatorError, match="went away"):
        wait_ready(f"http://127.0.0.1:{free_port()}", timeout=5.0, alive=lambda: False)


def test_session_fixture_serves(emulator: EmbeddedEmulator) -> None:
    assert emulator.running
    assert _answers(emulator.endpoint_url)
