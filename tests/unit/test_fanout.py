"""Enhanced fan-out on local engines: the engines that serve it, the probe of an
endpoint of unknown kind, and the refusal before anything starts (no JVM here)."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kclpy_local import _aws
from kclpy_local._cli import main
from kclpy_local._emulators import fanout
from kclpy_local._emulators.fanout import FANOUT_SUPPORT, check_engine, check_values, h2_problem
from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._exceptions import FanoutUnsupportedError

ROOT = Path(__file__).resolve().parents[2]
RECORDER = ROOT / "processors" / "recorder.py"
SETTINGS_FRAME = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("KCLPY_LOCAL_APP", "KCLPY_LOCAL_STREAM", "KCLPY_LOCAL_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KCLPY_LOCAL_STATE", str(tmp_path / "state"))  # no `up` running


def _serve_once(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """A loopback server that answers one connection with ``answer``; yields its URL."""
    server = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def run() -> None:
        conn, _ = server.accept()
        with conn:
            received.append(conn.recv(64))
            answer(conn)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        thread.join(5)
    assert received and received[0].startswith(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")


@pytest.fixture
def h2c_server() -> Iterator[str]:
    yield from _serve_once(lambda conn: conn.sendall(SETTINGS_FRAME))


@pytest.fixture
def http1_server() -> Iterator[str]:
    yield from _serve_once(lambda conn: conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n"))


def test_the_engines_the_project_starts() -> None:
    assert {s.engine: s.works for s in FANOUT_SUPPORT} == {
        "moto": False,
        "kinesis-mock": True,
        "ministack": True,
    }


def test_moto_is_refused_by_name_with_the_fix() -> None:
    with pytest.raises(FanoutUnsupportedError) as info:
        check_engine("moto", None)
    assert str(info.value) == (
        "enhanced fan-out (retrievalMode FANOUT, SubscribeToShard over HTTP/2) on moto: moto has "
        "no SubscribeToShard (it answers HTTP 500) and speaks no HTTP/2"
    )
    assert info.value.engine == "moto" and info.value.exit_code == 2
    assert info.value.hint == fanout.FANOUT_HINT
    with pytest.raises(FanoutUnsupportedError, match=r"on moto at http://127\.0\.0\.1:4566: "):
        check_engine("moto", "http://127.0.0.1:4566")


def test_engines_that_serve_it_and_aws_are_not_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_probe(*args: object) -> str:
        raise AssertionError("an engine of known kind, or AWS, is never probed")

    monkeypatch.setattr(fanout, "probe", no_probe)
    check_engine("kinesis-mock", None)
    check_engine("ministack", "http://127.0.0.1:1")
    check_engine(None, None)  # AWS: the KCL's own HTTP/2 client, nothing to check
    check_engine(None, "https://kinesis.us-east-1.amazonaws.com")


def test_h2_problem_accepts_a_settings_frame(h2c_server: str) -> None:
    assert h2_problem(h2c_server) is None


def test_h2_problem_names_an_http1_answer(http1_server: str) -> None:
    assert h2_problem(http1_server) == (
        "it does not speak HTTP/2 without TLS (h2c, prior knowledge): it answered the HTTP/2 "
        "preface with 'HTTP/1.1 400 Bad Request', not a SETTINGS frame"
    )


def test_nothing_listening_says_nothing_about_the_engine() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert h2_problem(f"http://127.0.0.1:{port}") is None
    assert _aws.subscribe_to_shard_problem(f"http://127.0.0.1:{port}") is None


def test_moto_answers_neither_http2_nor_subscribe_to_shard(emulator: EmbeddedEmulator) -> None:
    assert _aws.subscribe_to_shard_problem(emulator.endpoint_url) == (
        "it answers SubscribeToShard with HTTP 500 500"
    )
    problem = fanout.probe(emulator.endpoint_url)
    assert problem is not None and problem.startswith(
        "it does not speak HTTP/2 without TLS (h2c, prior knowledge)"
    )
    with pytest.raises(FanoutUnsupportedError) as info:
        check_engine(None, emulator.endpoint_url)
    assert str(info.value).startswith(
        f"enhanced fan-out (retrievalMode FANOUT, SubscribeToShard over HTTP/2) on the Kinesis "
        f"engine at {emulator.endpoint_url}: it does not speak HTTP/2 without TLS"
    )


def test_check_values_only_when_the_worker_reads_by_fanout(emulator: EmbeddedEmulator) -> None:
    base = {"kinesisEndpoint": emulator.endpoint_url, "regionName": "us-east-1"}
    check_values({**base, "retrievalMode": "POLLING"}, 3)
    check_values({**base, "retrievalMode": "DEFAULT", "maxRecords": "100"}, 3)  # polls
    check_values(base, 1)  # KCL 1.x always polls
    for values in ({**base, "retrievalMode": "FANOUT"}, base):  # DEFAULT with no polling key
        with pytest.raises(FanoutUnsupportedError):
            check_values(values, 3)
    # The endpoint as a client builder property is the same endpoint.
    with pytest.raises(FanoutUnsupportedError):
        check_values(
            {"kinesisClient.endpointOverride": emulator.endpoint_url, "retrievalMode": "FANOUT"}, 3
        )


def test_run_refuses_fanout_on_the_embedded_moto_before_anything_starts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # No jars in this cache: had the refusal come later, the bootstrap check would fail first.
    code = main(
        [
            "run",
            str(RECORDER),
            "--stream",
            "s",
            "--kcl",
            "3",
            "--set",
            "retrievalMode=FANOUT",
            "--cache-dir",
            str(tmp_path / "no-jars"),
            "--run-dir",
            str(tmp_path / "run"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.splitlines() == [
        "kclpy-local: error: enhanced fan-out (retrievalMode FANOUT, SubscribeToShard over HTTP/2) on "
        "moto: moto has no SubscribeToShard (it answers HTTP 500) and speaks no HTTP/2",
        f"hint: {fanout.FANOUT_HINT}",
    ]
    assert not (tmp_path / "run").exists()  # nothing started, nothing written


def test_run_on_an_endpoint_of_unknown_kind_asks_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, emulator: EmbeddedEmulator
) -> None:
    code = main(
        [
            "run",
            str(RECORDER),
            "--stream",
            "s",
            "--kcl",
            "3",
            "--set",
            "retrievalMode=FANOUT",
            "--endpoint",
            emulator.endpoint_url,
            "--cache-dir",
            str(tmp_path / "no-jars"),
            "--run-dir",
            str(tmp_path / "run"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"on the Kinesis engine at {emulator.endpoint_url}: it does not speak HTTP/2" in err
    assert "Traceback" not in err


def test_run_polling_on_moto_is_not_checked(capsys: pytest.CaptureFixture[str]) -> None:
    # The translation adds retrievalMode = POLLING; --print-properties starts nothing.
    assert main(["run", str(RECORDER), "--stream", "s", "--kcl", "3", "--print-properties"]) == 0
    assert "retrievalMode = POLLING" in capsys.readouterr().out


def test_daemon_refuses_a_file_whose_kinesis_engine_has_no_fanout(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, emulator: EmbeddedEmulator
) -> None:
    endpoint = emulator.endpoint_url
    path = tmp_path / "app.properties"
    path.write_text(
        "applicationName = fanout-app\nstreamName = fanout\n"
        f"executableName = {sys.executable} {RECORDER}\n"
        "AwsCredentialsProvider = EnvironmentVariableCredentialsProvider\nregionName = us-east-1\n"
        f"kinesisEndpoint = {endpoint}\ndynamoDBEndpoint = {endpoint}\ncloudWatchEndpoint = {endpoint}\n"
        "isCBORProtocolDisabled = true\nmetricsLevel = NONE\nretrievalMode = FANOUT\n",
        encoding="utf-8",
    )
    code = main(["daemon", str(path), "--kcl", "3", "--cache-dir", str(tmp_path / "no-jars")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert (
        f"kclpy-local: error: enhanced fan-out (retrievalMode FANOUT, SubscribeToShard over HTTP/2) "
        f"on the Kinesis engine at {endpoint}: it does not speak HTTP/2 without TLS"
    ) in err
    assert f"hint: {fanout.FANOUT_HINT}" in err


def test_over_http1_only_subscribe_to_shard_is_asked(emulator: EmbeddedEmulator) -> None:
    """kinesisHttpProtocol = HTTP1_1: the launcher speaks HTTP/1.1, so HTTP/2 is not asked."""
    values = {
        "kinesisEndpoint": emulator.endpoint_url,
        "retrievalMode": "FANOUT",
        "kinesisHttpProtocol": "HTTP1_1",
    }
    with pytest.raises(FanoutUnsupportedError) as info:
        check_values(values, 3)
    assert info.value.why == "it answers SubscribeToShard with HTTP 500 500"
