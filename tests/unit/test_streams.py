"""One application on several streams (KCL 3.x ``streamNames``): the key and its
rules, ``kclpy-local run --kcl 3 --stream a --stream b``, the per-stream progress
and the recorder's ledger. Nothing here starts a JVM or an engine; the stream
claim is in test_claim.py, the wire field in test_runtime.py and the transcripts,
the real daemon in tests/integration/test_multi_stream.py."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import javaproperties
import pytest

from kclpy_local import Initialize, ProcessRecords, Record
from kclpy_local._cli import build_parser, main
from kclpy_local._cli.run import plan, render
from kclpy_local._config.generations import KCL1, KCL3
from kclpy_local._config.kcl3_keys import lookup
from kclpy_local._config.keyspec import KeyType
from kclpy_local._config.pipeline import prepare
from kclpy_local._runtime.loop import Runtime
from kclpy_local._runtime.progress import ProgressBoard, ProgressWriter

ROOT = Path(__file__).resolve().parents[2]
RECORDER = ROOT / "processors" / "recorder.py"
ENDPOINTS = "".join(
    f"{key} = http://127.0.0.1:4566\n"
    for key in ("kinesisEndpoint", "dynamoDBEndpoint", "cloudWatchEndpoint")
)
BASE = (
    "applicationName = multi\n"
    "executableName = python3 processor.py\n"
    "AwsCredentialsProvider = EnvironmentVariableCredentialsProvider\n"
    "regionName = us-east-1\n"
    "isCBORProtocolDisabled = true\n"
    "retrievalMode = POLLING\n"
    "metricsLevel = NONE\n" + ENDPOINTS
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "KCLPY_LOCAL_APP",
        "KCLPY_LOCAL_STREAM",
        "KCLPY_LOCAL_ENDPOINT",
        "KCLPY_LOCAL_LEDGER",
    ):
        monkeypatch.delenv(name, raising=False)


def _file(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "multi.properties"
    path.write_text(BASE + extra, encoding="utf-8")
    return path


def _problems(path: Path, generation: int) -> list[tuple[str, str, str]]:
    prepared = prepare(path, generation=generation, translate=False)
    return [(p.key, p.severity, p.message) for p in prepared.problems]


# -- the key and its rules -------------------------------------------------------------


def test_the_key_is_the_3x_launchers() -> None:
    spec = lookup("streamNames")
    assert spec is not None
    assert (spec.source, spec.type, spec.required) == ("launcher", KeyType.STREAM_NAMES, False)
    assert KCL3.streams_key == "streamNames" and KCL1.streams_key is None
    assert KCL3.streams({"streamNames": " a ,b, a", "streamName": "x"}) == ("a", "b")
    assert (
        KCL3.streams({"streamName": " x "})
        == ("x",)
        == KCL1.streams({"streamNames": "a, b", "streamName": "x"})
    )
    assert KCL3.several_streams({"streamNames": "a"}) and not KCL1.several_streams(
        {"streamNames": "a"}
    )


def test_several_streams_in_a_3x_file_are_valid(tmp_path: Path) -> None:
    """No streamName is required beside them, and the spaces around names are no warning."""
    assert _problems(_file(tmp_path, "streamNames = orders , payments\n"), 3) == []
    assert (
        _problems(_file(tmp_path, "streamNames = orders\n"), 3) == []
    )  # multi-stream mode, one stream


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "no stream is named; the launcher stops at start"),
        (" , ", "no stream is named; the launcher stops at start"),
        ("orders,,payments", "'orders,,payments' has an empty name; the launcher stops at start"),
        ("orders, ", "'orders,' has an empty name; the launcher stops at start"),
        ("orders, orders", "orders is named twice; the launcher stops at start"),
        (
            "orders, pay:ments",
            "'pay:ments' is not a stream name (only letters, digits, '_', '.' and '-' are allowed); "
            "the launcher stops at start",
        ),
        (
            "s" * 129,
            f"{'s' * 129!r} is not a stream name (its length is 129; 1 to 128 characters are "
            "allowed); the launcher stops at start",
        ),
    ],
)
def test_bad_stream_names_are_errors(tmp_path: Path, value: str, message: str) -> None:
    assert _problems(_file(tmp_path, f"streamNames = {value}\n"), 3) == [
        ("streamNames", "error", message)
    ]


@pytest.mark.parametrize(
    ("extra", "key", "why"),
    [
        ("streamName = orders\n", "streamName", "it names the one stream of single-stream mode"),
        (
            "streamArn = arn:aws:kinesis:us-east-1:123456789012:stream/orders\n",
            "streamArn",
            "it names the one stream of single-stream mode",
        ),
        (
            "fanoutConfig.consumerArn = arn:aws:kinesis:us-east-1:123456789012:stream/a/consumer/c:1\n",
            "fanoutConfig.consumerArn",
            "a consumer belongs to one stream",
        ),
    ],
)
def test_another_stream_key_beside_stream_names_is_an_error(
    tmp_path: Path, extra: str, key: str, why: str
) -> None:
    problems = _problems(_file(tmp_path, "streamNames = a, b\n" + extra), 3)
    assert (
        key,
        "error",
        f"given with streamNames (several streams): {why}; the launcher stops at start",
    ) in problems
    assert not [p for p in problems if p[0] != key]


def test_a_1x_file_with_stream_names_is_refused_with_the_way_out(tmp_path: Path) -> None:
    path = _file(tmp_path, "streamNames = a, b\n")
    prepared = prepare(path, generation=1, translate=False)
    (problem,) = [p for p in prepared.problems if p.key == "streamNames"]
    assert problem.severity == "error"
    assert problem.message.startswith("several streams (the KCL's multi-stream mode) need KCL 3.x")
    assert problem.hint == "run the file on KCL 3.x (--kcl 3), or name one stream in streamName"
    # The error names the cause once: no second error for the missing streamName.
    assert not [p for p in prepared.problems if p.key == "streamName"]


def test_a_1x_file_translated_for_3x_keeps_its_streams(tmp_path: Path) -> None:
    path = tmp_path / "one.properties"
    path.write_text(
        "applicationName = multi\nstreamNames = a, b\nexecutableName = python3 p.py\n"
        "AWSCredentialsProvider = DefaultAWSCredentialsProviderChain\nregionName = us-east-1\n"
        + ENDPOINTS,
        encoding="utf-8",
    )
    prepared = prepare(path, generation=3)
    assert prepared.values["streamNames"] == "a, b" and "streamName" not in prepared.values
    assert [p for p in prepared.problems if p.severity == "error"] == []


def test_properties_check_names_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _file(tmp_path, "streamNames = a, b\nstreamName = a\n")
    assert main(["properties", "check", str(path), "--kcl", "3"]) == 2
    out = capsys.readouterr().out
    assert f"{path}:12: error: streamName: given with streamNames (several streams)" in out


# -- kclpy-local run --------------------------------------------------------------------


def _plan(*argv: str, environ: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return plan(build_parser().parse_args(["run", *argv]), environ or {})


def _printed(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, str]:
    assert main(["run", *argv, "--print-properties"]) == 0
    return dict(javaproperties.loads(capsys.readouterr().out))


def test_run_with_several_streams(capsys: pytest.CaptureFixture[str]) -> None:
    chosen = _plan(str(RECORDER), "--kcl", "3", "--stream", "orders", "--stream", "payments")
    assert chosen.streams == ("orders", "payments") and chosen.several
    assert "KCLPY_LOCAL_STREAM" not in chosen.environ  # no one stream to name
    props = _printed(
        capsys, str(RECORDER), "--kcl", "3", "--stream", "orders", "--stream", "payments"
    )
    assert props["streamNames"] == "orders, payments"
    assert "streamName" not in props and "streamArn" not in props


def test_run_with_a_file_of_several_streams(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _file(tmp_path, "streamNames = orders, payments\n")
    assert _plan(str(RECORDER), "--kcl", "3", "--properties", str(path)).streams == (
        "orders",
        "payments",
    )
    # One --stream runs that stream alone, in single-stream mode.
    props = _printed(
        capsys, str(RECORDER), "--kcl", "3", "--properties", str(path), "--stream", "refunds"
    )
    assert props["streamName"] == "refunds" and "streamNames" not in props
    # Several replace the file's streams.
    props = _printed(
        capsys,
        str(RECORDER),
        "--kcl",
        "3",
        "--properties",
        str(path),
        "--stream",
        "a",
        "--stream",
        "b",
    )
    assert props["streamNames"] == "a, b"


def test_several_streams_on_kcl1_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """(More bad --stream options are rows of test_hostile_inputs.py.)"""
    assert (
        main(
            [
                "run",
                str(RECORDER),
                "--stream",
                "a",
                "--stream",
                "b",
                "--endpoint",
                "http://127.0.0.1:9",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith(
        "kclpy-local: error: several --stream options: one application on several streams is the "
        "KCL's multi-stream mode, which KCL 3.x has and KCL 1.x has not\nhint: add --kcl 3\n"
    )


def test_a_file_of_several_streams_on_kcl1_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _file(tmp_path, "streamNames = orders, payments\n")
    assert (
        main(["run", str(RECORDER), "--properties", str(path), "--endpoint", "http://127.0.0.1:9"])
        == 2
    )
    err = capsys.readouterr().err
    assert (
        f"kclpy-local: error: {path} names several streams (streamNames): KCL 3.x runs them" in err
    )
    assert "hint: add --kcl 3" in err


def test_run_refuses_a_conflicting_file_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _file(tmp_path, "streamNames = orders, payments\nstreamName = orders\n")
    assert (
        main(
            [
                "run",
                str(RECORDER),
                "--kcl",
                "3",
                "--properties",
                str(path),
                "--endpoint",
                "http://127.0.0.1:9",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "refused before anything started" in err
    assert "streamName: given with streamNames (several streams)" in err
    assert "run directory" not in err  # nothing was opened or started


# -- per-stream progress and the ledger ---------------------------------------------------


def _processed(tmp_path: Path, progress: Path, stream: str, shard: str, count: int) -> None:
    """One processor process's protocol exchange, with its progress events."""
    records = [Record(f"{stream}-{i}".encode(), "pk", str(i + 1)) for i in range(count)]
    lines = [
        json.dumps(Initialize(shard, "TRIM_HORIZON", None, stream).to_wire()),
        json.dumps(ProcessRecords(tuple(records), 0).to_wire()),
        json.dumps(
            {
                "action": "checkpoint",
                "sequenceNumber": str(count),
                "subSequenceNumber": None,
                "error": None,
            }
        ),
        json.dumps({"action": "shutdownRequested"}),
        json.dumps(
            {
                "action": "checkpoint",
                "sequenceNumber": None,
                "subSequenceNumber": None,
                "error": None,
            }
        ),
    ]
    sys.path.insert(0, str(RECORDER.parent))
    try:
        from recorder import RecorderProcessor
    finally:
        sys.path.pop(0)
    processor = RecorderProcessor(
        str(tmp_path / "ledger.jsonl"), str(tmp_path / "checkpoints.jsonl")
    )
    Runtime(
        processor,
        io.StringIO("\n".join(lines) + "\n"),
        io.StringIO(),
        io.StringIO(),
        progress=ProgressWriter(progress),
    ).run()


def test_shards_of_several_streams_are_kept_apart(tmp_path: Path) -> None:
    progress = tmp_path / "progress.jsonl"
    _processed(tmp_path, progress, "payments", "shardId-000000000000", 2)
    _processed(tmp_path, progress, "orders", "shardId-000000000000", 3)
    board = ProgressBoard(progress)
    assert board.poll()
    shards = board.shards()
    assert [(s.stream, s.shard_id, s.records, s.checkpoint) for s in shards] == [
        ("orders", "shardId-000000000000", 3, "3"),
        ("payments", "shardId-000000000000", 2, "2"),
    ]
    assert render(shards, several=True)[0].split() == [
        "stream",
        "shard",
        "state",
        "records",
        "lag",
        "ms",
        "checkpoint",
    ]
    assert render(shards, several=True)[1].split()[:3] == [
        "orders",
        "shardId-000000000000",
        "shutdown",
    ]
    # The recorder's ledger and checkpoint log say which stream each record came from.
    ledger = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert [(e["stream"], e["shard"], e["sequence_number"]) for e in ledger] == [
        ("payments", "shardId-000000000000", "1"),
        ("payments", "shardId-000000000000", "2"),
        ("orders", "shardId-000000000000", "1"),
        ("orders", "shardId-000000000000", "2"),
        ("orders", "shardId-000000000000", "3"),
    ]
    notes = [json.loads(line) for line in (tmp_path / "checkpoints.jsonl").read_text().splitlines()]
    assert {(n["stream"], n["event"]) for n in notes} >= {
        ("orders", "initialize"),
        ("payments", "checkpoint"),
    }


def test_a_stream_the_daemon_does_not_name_is_null(tmp_path: Path) -> None:
    """KCL 1.x and the stock daemons send no streamName: one row per shard, as before."""
    progress = tmp_path / "progress.jsonl"
    writer = ProgressWriter(progress)
    writer.initialized("shardId-000000000001", "TRIM_HORIZON")
    writer.batch(4, 0, "4")
    writer.close()
    event = json.loads(progress.read_text().splitlines()[0])
    assert "stream" not in event  # the events stay as they were
    board = ProgressBoard(progress)
    board.poll()
    (shard,) = board.shards()
    assert (shard.stream, shard.shard_id, shard.records) == (None, "shardId-000000000001", 4)
    assert render([shard])[0].split()[0] == "shard"
