"""``kclpy-local run``'s planning and bad input, through the entry point (nothing started)."""

from __future__ import annotations

import fcntl
import io
import json
import os
import select
import socket
import subprocess
import sys
from pathlib import Path

import javaproperties
import pytest

from kclpy_local import _aws
from kclpy_local._cli import build_parser, main
from kclpy_local._cli.run import RUN_PROFILE, plan
from kclpy_local._runtime.loop import Runtime
from kclpy_local._runtime.progress import ProgressBoard, ProgressWriter

ROOT = Path(__file__).resolve().parents[2]
RECORDER = ROOT / "processors" / "recorder.py"


def printed(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, str]:
    assert main(["run", *argv, "--print-properties"]) == 0
    return dict(javaproperties.loads(capsys.readouterr().out))


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KCLPY_LOCAL_APP", "KCLPY_LOCAL_STREAM", "KCLPY_LOCAL_ENDPOINT", "KCLPY_LOCAL_LEDGER"):
        monkeypatch.delenv(name, raising=False)


def test_the_built_in_profile_is_the_projects_local_properties() -> None:
    assert RUN_PROFILE.read_bytes() == (ROOT / "properties" / "local.properties").read_bytes()


def test_embedded_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    props = printed(capsys, str(RECORDER), "--stream", "orders")
    assert props["streamName"] == "orders"
    assert props["applicationName"] == "recorder"
    assert props["executableName"] == f"{sys.executable} {RECORDER}"
    endpoints = {props[k] for k in ("kinesisEndpoint", "dynamoDBEndpoint", "cloudWatchEndpoint")}
    assert len(endpoints) == 1 and endpoints.pop().startswith("http://127.0.0.1:")
    assert props["isCBORProtocolDisabled"] == "true"


def test_endpoint_app_and_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    props = printed(capsys, str(RECORDER), "--stream", "s", "--app", "billing", "--endpoint",
                    "http://localhost:4566", "--set", "failoverTimeMillis=7000", "--set", "maxRecords = 50")
    assert props["applicationName"] == "billing"
    assert props["kinesisEndpoint"] == props["dynamoDBEndpoint"] == props["cloudWatchEndpoint"] == "http://localhost:4566"
    assert props["failoverTimeMillis"] == "7000"
    assert props["maxRecords"] == "50"


def test_stream_from_a_properties_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    own = tmp_path / "mine.properties"
    own.write_text("applicationName = mine\nstreamName = from-file\nexecutableName = x\n")
    props = printed(capsys, str(RECORDER), "--properties", str(own))
    assert props["streamName"] == "from-file"
    assert props["applicationName"] == "mine"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["missing.py", "--stream", "s"], "processor not found: missing.py"),
        ([str(RECORDER)], "no stream: give --stream NAME"),
        ([str(RECORDER), "--stream", "s", "--set", "novalue"], "--set expects KEY=VALUE"),
        ([str(RECORDER), "--stream", "s", "--properties", "nope.properties"], "properties file not found: nope.properties"),
        ([str(RECORDER), "--stream", "s", "--endpoint", "http://10.1.2.3:4566"],
         f"{RUN_PROFILE}: refused before anything started"),
        ([str(RECORDER), "--stream", "s", "--set", "failoverTimeMillis=soon"],
         f"{RUN_PROFILE}: refused before anything started"),
    ],
)
def test_bad_input_is_one_clear_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"kclpy-local: error: {message}"), err


def test_a_path_with_a_space_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spaced = tmp_path / "my processors" / "p.py"
    spaced.parent.mkdir()
    spaced.write_text("")
    assert main(["run", str(spaced), "--stream", "s"]) == 2
    err = capsys.readouterr().err
    assert "splits executableName on spaces" in err and "hint:" in err


def test_an_unreachable_endpoint_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    code = main(["run", str(RECORDER), "--stream", "s", "--endpoint", endpoint, "--run-dir", str(tmp_path)])
    assert code == 8
    err = capsys.readouterr().err
    assert f"cannot reach {endpoint}" in err and "hint:" in err


def _closed_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Any client, engine or connection fails the test; the state directory (returned) is empty."""

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("contacted the network or started an engine before refusing")

    import boto3

    from kclpy_local._emulators.kinesis_mock import KinesisMock
    from kclpy_local._emulators.moto import EmbeddedEmulator

    for target, name in ((_aws, "client"), (_aws, "session"), (boto3.session.Session, "client"),
                         (EmbeddedEmulator, "start"), (KinesisMock, "start"),
                         (socket.socket, "connect"), (socket, "create_connection")):
        monkeypatch.setattr(target, name, forbidden)
    state = tmp_path / "state"
    monkeypatch.setenv("KCLPY_LOCAL_STATE", str(state))
    monkeypatch.chdir(tmp_path)
    return state


@pytest.mark.parametrize(
    ("argv", "env", "refusal"),
    [
        (["--endpoint", "http://10.1.2.3:4566"], {},
         "kinesisEndpoint: 10.1.2.3 is not a loopback host, refused in the local profile"),
        (["--endpoint", "https://kinesis.us-east-1.amazonaws.com"], {},
         "kinesisEndpoint: kinesis.us-east-1.amazonaws.com is an AWS host, refused in the local profile"),
        ([], {"KCLPY_LOCAL_ENDPOINT": "http://192.168.7.7:4566"},
         "dynamoDBEndpoint: 192.168.7.7 is not a loopback host, refused in the local profile"),
        (["--set", "regionName="], {}, "regionName: must be set in the local profile"),
        (["--set", "maxRecords=many"], {}, "maxRecords: 'many' is not a Java int"),
        (["--kcl", "3", "--set", "maxRecords=many"], {}, "maxRecords: 'many'"),
    ],
)
def test_refused_before_any_client_or_engine(argv: list[str], env: dict[str, str], refusal: str,
                                            no_network: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["run", str(RECORDER), "--stream", "s", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kclpy-local: error: ") and refusal in err, err
    assert "Traceback" not in err
    assert not no_network.exists()  # no run directory, no log: nothing was written


def test_a_refused_endpoint_is_never_contacted(tmp_path: Path) -> None:
    """Through the CLI in a process of its own: every HTTP request botocore would send
    to http://10.1.2.3:4566 goes to the proxy, a listener here; none arrives."""
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen(8)
        proxy.setblocking(False)
        url = f"http://127.0.0.1:{proxy.getsockname()[1]}"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "KCLPY_LOCAL_")) and k.lower() != "no_proxy"}
        env.update(HTTP_PROXY=url, HTTPS_PROXY=url, http_proxy=url, https_proxy=url,
                   KCLPY_LOCAL_STATE=str(tmp_path / "state"), PYTHONPATH=str(ROOT))
        with subprocess.Popen(
            [sys.executable, "-m", "kclpy_local", "run", str(RECORDER), "--stream", "s",
             "--endpoint", "http://10.1.2.3:4566"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env, cwd=tmp_path,
        ) as cli:
            try:
                _, err = cli.communicate(timeout=20)
            except subprocess.TimeoutExpired:  # it waits for an answer the proxy never sends
                cli.kill()
                _, err = cli.communicate()
        readable, _, _ = select.select([proxy], [], [], 0.2)
    assert readable == [], f"a request was sent before the refusal:\n{err}"
    assert cli.returncode == 2, err
    assert "10.1.2.3 is not a loopback host, refused in the local profile" in err
    assert not (tmp_path / "state").exists()


def test_a_run_directory_held_by_a_live_run_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    held = tmp_path / "run"
    held.mkdir()
    (held / "daemon.log").write_text("the other run's log\n")
    with (held / ".lock").open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write("4242\n")
        handle.flush()
        code = main(["run", str(RECORDER), "--stream", "s", "--endpoint", _closed_endpoint(),
                     "--run-dir", str(held)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"kclpy-local: error: the run directory {held} is in use by another run (pid 4242)\nhint: ")
    assert (held / "daemon.log").read_text() == "the other run's log\n"  # not truncated


def _plan(argv: list[str], environ: dict[str, str]):  # type: ignore[no-untyped-def]
    return plan(build_parser().parse_args(["run", *argv]), environ)


def test_the_shipped_local_properties_are_substituted(capsys: pytest.CaptureFixture[str]) -> None:
    shipped = ROOT / "properties" / "local.properties"
    assert "${KCLPY_LOCAL_STREAM:-kclpy-local-demo}" in shipped.read_text()
    props = printed(capsys, str(RECORDER), "--properties", str(shipped))
    assert props["streamName"] == "kclpy-local-demo"
    assert _plan([str(RECORDER), "--properties", str(shipped)], {}).stream == "kclpy-local-demo"
    chosen = _plan([str(RECORDER), "--properties", str(shipped)], {"KCLPY_LOCAL_STREAM": "orders"})
    assert chosen.stream == "orders" and chosen.environ["KCLPY_LOCAL_STREAM"] == "orders"


def test_an_endpoint_is_judged_after_substitution(tmp_path: Path) -> None:
    """A default that reaches AWS is AWS: no dummy credentials, no stream created."""
    own = tmp_path / "mine.properties"
    own.write_text(
        "# kclpy-local: profile=aws\napplicationName = mine\nstreamName = s\nregionName = us-east-1\n"
        "kinesisEndpoint = ${MY_ENDPOINT:-https://kinesis.us-east-1.amazonaws.com}\n"
    )
    remote = _plan([str(RECORDER), "--properties", str(own)], {})
    assert not remote.create_stream and "AWS_ACCESS_KEY_ID" not in remote.environ
    local = _plan([str(RECORDER), "--properties", str(own)], {"MY_ENDPOINT": "http://127.0.0.1:4566"})
    assert local.create_stream and local.environ["AWS_ACCESS_KEY_ID"] == "test"


def _exchange(lines: list[str]) -> io.StringIO:
    return io.StringIO("".join(json.dumps(line) + "\n" for line in lines))  # type: ignore[arg-type]


def test_the_runtime_reports_progress_that_the_board_sums_up(tmp_path: Path) -> None:
    from kclpy_local import Checkpointer, ProcessRecords, RecordProcessor

    class Checkpointing(RecordProcessor):
        def process_records(self, batch: ProcessRecords, checkpointer: Checkpointer) -> None:
            checkpointer.checkpoint()

        def lease_lost(self) -> None:
            pass

        def shard_ended(self, checkpointer: Checkpointer) -> None:
            pass

        def shutdown_requested(self, checkpointer: Checkpointer) -> None:
            checkpointer.checkpoint()

    record = {"action": "record", "data": "eA==", "partitionKey": "k", "sequenceNumber": "7", "subSequenceNumber": 0, "approximateArrivalTimestamp": 1}
    daemon = _exchange([
        {"action": "initialize", "shardId": "shard-1", "sequenceNumber": "TRIM_HORIZON", "subSequenceNumber": 0},
        {"action": "processRecords", "records": [record, {**record, "sequenceNumber": "9"}], "millisBehindLatest": 120},
        {"action": "checkpoint", "sequenceNumber": None, "subSequenceNumber": None, "error": None},
        {"action": "shutdownRequested"},
        {"action": "checkpoint", "sequenceNumber": None, "subSequenceNumber": None, "error": None},
    ])
    path = tmp_path / "progress.jsonl"
    Runtime(Checkpointing(), daemon, io.StringIO(), io.StringIO(), progress=ProgressWriter(path)).run()
    board = ProgressBoard(path)
    assert board.poll()
    (shard,) = board.shards()
    assert (shard.shard_id, shard.records, shard.millis_behind_latest, shard.checkpoint, shard.state) == (
        "shard-1", 2, 120, "9", "shutdown requested"
    )
    assert not board.poll()  # nothing new
    with path.open("a") as handle:  # a torn line is kept until it is complete
        handle.write('{"event":"records","shard":"shard-1","n":3')
    assert not board.poll()
    with path.open("a") as handle:
        handle.write(',"behind":0}\n')
    assert board.poll() and board.shards()[0].records == 5
