"""``kclpy-local run``'s planning and bad input, through the entry point (nothing started)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import javaproperties
import pytest

from kclpy_local._cli import main
from kclpy_local._cli.run import RUN_PROFILE
from kclpy_local._runtime.progress import ProgressBoard, ProgressWriter
from kclpy_local._runtime.loop import Runtime

ROOT = Path(__file__).resolve().parents[2]
RECORDER = ROOT / "processors" / "recorder.py"


def printed(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, str]:
    assert main(["run", *argv, "--print-properties"]) == 0
    return dict(javaproperties.loads(capsys.readouterr().out))


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KCLPY_LOCAL_APP", "KCLPY_LOCAL_STREAM", "KCLPY_LOCAL_ENDPOINT"):
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
