"""``kclpy-local put`` through ``main()``, against a real moto server."""

from __future__ import annotations

import io
import json
import re
import socket
import time
from pathlib import Path
from typing import Any

import moto.server  # noqa: F401 - the test extra installs it
import pytest

from kclpy_local import _aws
from kclpy_local._cli import main
from kclpy_local._cli import put as put_cli
from kclpy_local._emulators.moto import EmbeddedEmulator


def after_endpoint(err: str) -> str:
    """stderr after its first line, which must be the endpoint line."""
    first, _, rest = err.partition("\n")
    assert re.fullmatch(r"kclpy-local: endpoint http://\S+ \(from --endpoint\)", first), err
    return rest


@pytest.fixture(autouse=True)
def _no_ambient_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KCLPY_LOCAL_ENDPOINT", raising=False)
    monkeypatch.setattr(put_cli, "BACKOFF", 0.0)


def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))


def _stream(emu: EmbeddedEmulator, name: str, shards: int = 1) -> list[str]:
    kinesis = _aws.client("kinesis", emu.endpoint_url)
    return list(_aws.ensure_stream(kinesis, name, shards).shard_ids)


def _read(emu: EmbeddedEmulator, name: str) -> dict[str, list[tuple[bytes, str]]]:
    """Every record of every shard, in shard order: {shard_id: [(data, key)]}."""
    kinesis = _aws.client("kinesis", emu.endpoint_url)
    out: dict[str, list[tuple[bytes, str]]] = {}
    for shard_id in _aws.ensure_stream(kinesis, name).shard_ids:
        iterator = kinesis.get_shard_iterator(
            StreamName=name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        got: list[tuple[bytes, str]] = []
        while True:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10000)
            got.extend((r["Data"], r["PartitionKey"]) for r in page["Records"])
            if not page["Records"]:
                break
            iterator = page["NextShardIterator"]
        out[shard_id] = got
    return out


def _all(emu: EmbeddedEmulator, name: str) -> list[tuple[bytes, str]]:
    return [rec for records in _read(emu, name).values() for rec in records]


def _put(emu: EmbeddedEmulator, *args: str) -> int:
    return main(["put", "--endpoint", emu.endpoint_url, *args])


# -- good input -------------------------------------------------------------------


def test_stdin_lines_become_records(
    fresh_emulator: EmbeddedEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _stream(fresh_emulator, "lines")
    _stdin(monkeypatch, b"one\ntwo  \r\n\n \nfour\xff\nlast-without-newline")
    assert _put(fresh_emulator, "--stream", "lines") == 0
    out, err = capsys.readouterr()
    assert out == ""
    (summary,) = after_endpoint(err).splitlines()
    assert summary.startswith("put 5 records, 34 bytes, to stream lines in ")
    assert summary.endswith(" records/s")
    records = _all(fresh_emulator, "lines")
    assert [data for data, _ in records] == [
        b"one", b"two  ", b" ", b"four\xff", b"last-without-newline"
    ]
    keys = [key for _, key in records]
    assert len(set(keys)) == 5  # random keys
    assert all(len(k) == 32 for k in keys)


def test_file_with_constant_key_json_summary(
    fresh_emulator: EmbeddedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shards = _stream(fresh_emulator, "const", shards=3)
    source = tmp_path / "lines.txt"
    source.write_bytes(b"".join(f"line {i}\n".encode() for i in range(1, 1201)))
    assert _put(
        fresh_emulator, "--stream", "const", "--file", str(source), "--partition-key", "k", "--json"
    ) == 0
    out, _ = capsys.readouterr()
    doc = json.loads(out)
    assert doc["count"] == 1200
    assert doc["bytes"] == sum(len(f"line {i}") for i in range(1, 1201))
    assert doc["failed"] == 0
    assert doc["stream"] == "const"
    assert doc["endpoint"] == fresh_emulator.endpoint_url
    assert doc["seconds"] > 0
    assert doc["records_per_second"] > 0
    (shard,) = doc["shards"]  # one key, one shard
    assert shard in shards
    assert doc["shards"][shard] == 1200
    got = _read(fresh_emulator, "const")[shard]
    assert got == [(f"line {i}".encode(), "k") for i in range(1, 1201)]


def test_json_lines_with_data_and_key_fields(
    fresh_emulator: EmbeddedEmulator, tmp_path: Path
) -> None:
    _stream(fresh_emulator, "json")
    source = tmp_path / "events.jsonl"
    source.write_text(
        '{"id": "a", "body": "hello"}\n'
        '{"id": 7, "body": {"x": [1, 2]}}\n'
        "\n"
        '{"id": "c", "body": "caf\\u00e9", "other": null}\n'
    )
    assert _put(
        fresh_emulator, "--stream", "json", "--file", str(source), "--json-input",
        "--data-field", "body", "--partition-key-field", "id",
    ) == 0
    assert sorted(_all(fresh_emulator, "json")) == sorted(
        [(b"hello", "a"), (b'{"x":[1,2]}', "7"), ("café".encode(), "c")]
    )


def test_json_lines_without_data_field_send_the_line_as_is(
    fresh_emulator: EmbeddedEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stream(fresh_emulator, "asis")
    lines = [b'{"k": "a",   "v": 1}', b'  {"k":"b"}  ']
    _stdin(monkeypatch, b"\n".join(lines) + b"\n")
    assert _put(
        fresh_emulator, "--stream", "asis", "--json-input", "--partition-key-field", "k"
    ) == 0
    assert sorted(_all(fresh_emulator, "asis")) == sorted([(lines[0], "a"), (lines[1], "b")])


@pytest.mark.parametrize("payload", ["numbered", "random"])
def test_generated_records(
    fresh_emulator: EmbeddedEmulator, payload: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _put(
        fresh_emulator, "--stream", "gen", "--create", "--shards", "2",
        "--count", "1234", "--size", "16", "--payload", payload, "--json",
    ) == 0
    out, err = capsys.readouterr()
    assert "created stream gen with 2 shard(s)" in err
    doc = json.loads(out)
    assert (doc["count"], doc["bytes"], doc["failed"]) == (1234, 1234 * 16, 0)
    assert len(doc["shards"]) == 2
    assert sum(doc["shards"].values()) == 1234
    per_shard = _read(fresh_emulator, "gen")
    assert {shard: len(recs) for shard, recs in per_shard.items()} == doc["shards"]
    datas = [data for recs in per_shard.values() for data, _ in recs]
    assert all(len(d) == 16 for d in datas)
    if payload == "numbered":
        assert sorted(int(d) for d in datas) == list(range(1, 1235))
        assert b"0000000000000001" in datas
    else:
        assert len(set(datas)) == 1234


def test_create_leaves_an_existing_stream_alone(
    fresh_emulator: EmbeddedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    _stream(fresh_emulator, "exists", shards=2)
    assert _put(fresh_emulator, "--stream", "exists", "--create", "--shards", "5", "--count", "3") == 0
    _, err = capsys.readouterr()
    assert "created" not in err
    assert len(_read(fresh_emulator, "exists")) == 2


class _FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal(
    fresh_emulator: EmbeddedEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stream(fresh_emulator, "progress")
    monkeypatch.setattr(put_cli, "PROGRESS_INTERVAL", 0.0)
    tty = _FakeTTY()
    monkeypatch.setattr("sys.stderr", tty)
    assert _put(fresh_emulator, "--stream", "progress", "--count", "1500") == 0
    text = tty.getvalue()
    assert "\rput 500 of 1500 (33%) records, " in text
    assert "\rput 1000 of 1500 (66%) records, " in text
    assert text.rstrip("\n").splitlines()[-1].startswith("put 1500 records, ")
    # The progress line is blanked before the summary.
    progress, summary = text.rsplit("\r", 1)
    assert summary.startswith("put 1500 records, ")
    assert progress.endswith(" ")

    plain = io.StringIO()
    monkeypatch.setattr("sys.stderr", plain)
    assert _put(fresh_emulator, "--stream", "progress", "--count", "1500") == 0
    assert "\r" not in plain.getvalue()
    assert after_endpoint(plain.getvalue()).count("\n") == 1


# -- bad input ----------------------------------------------------------------------


def test_missing_stream_is_an_error_with_a_hint(
    fresh_emulator: EmbeddedEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _stdin(monkeypatch, b"a\n")
    assert _put(fresh_emulator, "--stream", "nope") == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert after_endpoint(err).splitlines() == [
        f"kclpy-local: error: stream nope does not exist at {fresh_emulator.endpoint_url}",
        "hint: create it with --create [--shards N], or check --stream, --endpoint, --region",
    ]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_endpoint_names_it_quickly(capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    assert main(["put", "--stream", "s", "--endpoint", endpoint, "--count", "1"]) == 8
    assert time.monotonic() - started < 5
    _, err = capsys.readouterr()
    first, hint = after_endpoint(err).splitlines()
    assert first == f"kclpy-local: error: cannot reach {endpoint}"
    assert hint.startswith("hint: start the emulator with `kclpy-local up`")


def test_invalid_endpoint_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["put", "--stream", "s", "--endpoint", "localhost:4566", "--count", "1"]) == 2
    _, err = capsys.readouterr()
    assert "invalid endpoint URL 'localhost:4566'" in err
    assert "http://HOST:PORT" in err


def test_malformed_json_line_in_a_file_puts_nothing(
    fresh_emulator: EmbeddedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _stream(fresh_emulator, "strict")
    source = tmp_path / "events.jsonl"
    good = "".join(f'{{"k": "{i}"}}\n' for i in range(1500))
    source.write_text(good + '{"k": "x"\n' + good)
    code = _put(
        fresh_emulator, "--stream", "strict", "--file", str(source), "--json-input",
        "--partition-key-field", "k",
    )
    assert code == 2
    _, err = capsys.readouterr()
    assert after_endpoint(err).splitlines() == [
        f"kclpy-local: error: {source} line 1501: not JSON "
        "(Expecting ',' delimiter at column 10)",
        "hint: nothing was put; fix the line and run again",
    ]
    assert _all(fresh_emulator, "strict") == []


@pytest.mark.parametrize(
    "case",
    [
        ('[1, 2]', [], "not a JSON object but an array"),
        ('{"v": 1}', ["--partition-key-field", "k"], "no field 'k'"),
        ('{"k": true}', ["--partition-key-field", "k"], "field 'k' must be a string or a number, not a boolean"),
        ('{"k": ""}', ["--partition-key-field", "k"], "a partition key has 1 to 256 characters"),
        ('{"k": "' + "x" * 257 + '"}', ["--partition-key-field", "k"], "1 to 256 characters"),
        ('{"d": null}', ["--data-field", "d"], "no field 'd' (or it is null)"),
        ('{"d": "' + "x" * (1024 * 1024) + '"}', ["--data-field", "d", "--partition-key", "k"],
         "the record is 1048577 bytes with its partition key; Kinesis takes at most 1048576"),
    ],
)
def test_bad_json_records_name_the_line(
    fresh_emulator: EmbeddedEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: tuple[str, list[str], str],
) -> None:
    line, flags, message = case
    _stream(fresh_emulator, "bad")
    source = tmp_path / "in.jsonl"
    source.write_text('{"k": "a", "d": "x"}\n' + line + "\n")
    assert _put(
        fresh_emulator, "--stream", "bad", "--file", str(source), "--json-input", *flags
    ) == 2
    _, err = capsys.readouterr()
    assert f"{source} line 2: " in err
    assert message in err
    assert _all(fresh_emulator, "bad") == []


def test_not_utf8_json_line(
    fresh_emulator: EmbeddedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _stream(fresh_emulator, "bytes")
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"k": "\xff"}\n')
    assert _put(fresh_emulator, "--stream", "bytes", "--file", str(source), "--json-input") == 2
    assert f"{source} line 1: not JSON" in capsys.readouterr().err


def test_oversized_raw_line(
    fresh_emulator: EmbeddedEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _stream(fresh_emulator, "big")
    _stdin(monkeypatch, b"ok\n" + b"x" * (1024 * 1024) + b"\n")
    assert _put(fresh_emulator, "--stream", "big", "--partition-key", "k") == 2
    assert "stdin line 2: the record is 1048577 bytes" in capsys.readouterr().err
    assert _all(fresh_emulator, "big") == []  # both lines were in the one unsent batch


def test_malformed_json_on_stdin_stops_at_its_batch(
    fresh_emulator: EmbeddedEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _stream(fresh_emulator, "streamed")
    good = [f'{{"n": {i}}}'.encode() for i in range(1, 1201)]
    lines = [*good[:1100], b"{oops", *good[1100:]]
    _stdin(monkeypatch, b"\n".join(lines) + b"\n")
    assert _put(fresh_emulator, "--stream", "streamed", "--json-input") == 2
    _, err = capsys.readouterr()
    assert after_endpoint(err).splitlines() == [
        "kclpy-local: error: stdin line 1101: not JSON "
        "(Expecting property name enclosed in double quotes at column 2)",
        "hint: 1000 record(s) of the lines before it were put in earlier batches; "
        "the batch holding this line was not sent",
    ]
    assert sorted(d for d, _ in _all(fresh_emulator, "streamed")) == sorted(good[:1000])


def test_unreadable_file(
    fresh_emulator: EmbeddedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.txt"
    assert _put(fresh_emulator, "--stream", "s", "--file", str(missing)) == 2
    _, err = capsys.readouterr()
    assert f"kclpy-local: error: cannot read {missing}: No such file or directory" in err
    assert "hint: --file takes a file of records" in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--data-field", "d"], "--data-field needs --json-input"),
        (["--partition-key-field", "k"], "--partition-key-field needs --json-input"),
        (["--size", "10"], "--size needs --count"),
        (["--payload", "random"], "--payload needs --count"),
        (["--count", "2", "--json-input"], "--json-input reads lines; it does not go with --count"),
        (["--count", "2", "--shards", "2"], "--shards needs --create"),
        (["--count", "2", "--partition-key", "x" * 257], "--partition-key must have 1 to 256"),
        (["--count", "2", "--size", str(1024 * 1024)],
         "--size 1048576: a record and its partition key take at most 1048576 bytes"),
    ],
)
def test_inconsistent_flags_exit_2(
    fresh_emulator: EmbeddedEmulator,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    message: str,
) -> None:
    assert _put(fresh_emulator, "--stream", "s", *flags) == 2
    _, err = capsys.readouterr()
    assert f"kclpy-local: error: {message}" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["put"], "the following arguments are required: --stream"),
        (["put", "--stream", "s", "--count", "0"], "argument --count: must be at least 1, got 0"),
        (["put", "--stream", "s", "--count", "many"], "argument --count: not a whole number"),
        (["put", "--stream", "s", "--count", "1", "--file", "f"], "not allowed with argument"),
        (["put", "--stream", "s", "--partition-key", "a", "--partition-key-field", "b"],
         "not allowed with argument"),
        (["put", "--stream", "s", "--payload", "zeros"], "invalid choice: 'zeros'"),
    ],
)
def test_argparse_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


class _Refusing:
    """A kinesis client whose PutRecords refuses every entry with partition key 'refuse'."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def put_records(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        records = kwargs["Records"]
        keep = [r for r in records if r["PartitionKey"] != "refuse"]
        answers: Any = iter(())
        if keep:
            answers = iter(self._real.put_records(StreamName=kwargs["StreamName"], Records=keep)["Records"])
        refused = {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"}
        out = [refused if r["PartitionKey"] == "refuse" else next(answers) for r in records]
        return {"Records": out, "FailedRecordCount": len(records) - len(keep)}


def test_records_refused_after_retries_exit_1(
    fresh_emulator: EmbeddedEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _stream(fresh_emulator, "throttled")
    real_client = _aws.client
    made: list[_Refusing] = []

    def client(service: str, *args: Any, **kwargs: Any) -> Any:
        made.append(_Refusing(real_client(service, *args, **kwargs)))
        return made[-1]

    monkeypatch.setattr(_aws, "client", client)
    source = tmp_path / "in.jsonl"
    keys = ["a", "refuse", "b", "refuse", "c"] * 120  # 600 records, two batches
    source.write_text("".join(json.dumps({"k": k}) + "\n" for k in keys))
    code = _put(
        fresh_emulator, "--stream", "throttled", "--file", str(source), "--json-input",
        "--partition-key-field", "k", "--json",
    )
    assert code == 1
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert (doc["count"], doc["failed"]) == (360, 240)
    lines = after_endpoint(err).splitlines()
    assert lines[0].startswith("put 360 records, ")
    assert lines[0].endswith("; 240 refused")
    assert lines[1] == (
        "kclpy-local: error: 240 record(s) not accepted by stream 'throttled': "
        "ProvisionedThroughputExceededException"
    )
    assert lines[2].startswith(f"hint: each was sent {put_cli.MAX_ATTEMPTS} times with back-off")
    assert made[-1].calls == 2 * put_cli.MAX_ATTEMPTS  # both batches, every attempt
    assert sorted(k for _, k in _all(fresh_emulator, "throttled")) == sorted(
        k for k in keys if k != "refuse"
    )


def test_help_describes_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["put", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "Exit codes: 0 every record was put; 1 some records" in " ".join(out.split())
    assert "--partition-key-field FIELD" in out
