"""Runtime behaviour that transcripts do not cover: API surface, types, stdout ownership."""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest
from amazon_kclpy import kcl as upstream_kcl
from hypothesis import given, settings
from hypothesis import strategies as st

import kclpy_local
from kclpy_local import (
    Checkpointer,
    CheckpointError,
    InvalidStateError,
    ProtocolError,
    Record,
    RecordProcessor,
    RetryPolicy,
    ThrottlingError,
    decode_daemon_line,
    encode,
)
from kclpy_local._exceptions import DaemonStartError, NotReadyError, checkpoint_error_for
from kclpy_local._protocol import messages
from kclpy_local._protocol.channel import LineReader
from kclpy_local._protocol.schemas import iter_violations, schema

ROOT = Path(__file__).resolve().parents[2]


def test_public_surface_is_pinned() -> None:
    assert set(kclpy_local.__all__) == {
        "ArtifactDownloadError", "ArtifactIntegrityError", "BootstrapError", "CheckpointError",
        "CheckpointReply", "CheckpointRequest", "Checkpointer", "DaemonError", "DaemonStartError",
        "DependencyError", "EmulatorError", "Initialize", "InvalidSequenceNumberError",
        "InvalidStateError", "JavaNotFoundError", "KCLProcess", "KclpyLocalError", "LeaseLost",
        "PortInUseError", "ProcessRecords", "ProcessorFailed", "PropertiesError", "ProtocolError",
        "Record", "RecordProcessor", "RetryPolicy", "ShardEnded", "Shutdown", "ShutdownError",
        "ShutdownRequested", "Status", "ThrottlingError", "UnknownCheckpointError", "__version__",
        "decode_child_line", "decode_daemon_line", "encode", "run",
        # added with the one exception tree
        "InputError", "PutRecordsError", "UsageError",
    }
    for name in kclpy_local.__all__:
        assert hasattr(kclpy_local, name)


def test_abstract_methods_are_enforced() -> None:
    class Incomplete(RecordProcessor):
        def process_records(self, batch, checkpointer):  # type: ignore[no-untyped-def]
            pass

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]


def test_record_arrival_time_is_utc_aware_and_null_safe() -> None:
    r = Record(b"x", "k", "1", None, 1_700_000_000_123)
    assert r.approximate_arrival_timestamp == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    assert Record(b"x", "k", "1").approximate_arrival_timestamp is None


def test_messages_are_immutable() -> None:
    r = Record(b"x", "k", "1")
    with pytest.raises(AttributeError):
        r.data = b"y"  # type: ignore[misc]


def test_round_trip_of_a_daemon_line() -> None:
    line = '{"action":"processRecords","records":[{"action":"record","data":"aGk=","partitionKey":"p","sequenceNumber":"9","approximateArrivalTimestamp":5,"subSequenceNumber":null}],"millisBehindLatest":3}'
    message = decode_daemon_line(line)
    assert json.loads(encode(message)) == json.loads(line)


@pytest.mark.parametrize(
    ("direction", "message"),
    [
        ("daemon", messages.Initialize("shardId-1", "4959033827149025660855969253836157109", 0, "orders")),
        ("daemon", messages.ProcessRecords((Record(b"hi", "p", "9", 0, 5),), 3)),
        ("daemon", messages.Shutdown("ZOMBIE")),
        ("daemon", messages.ShutdownRequested()),
        ("daemon", messages.LeaseLost()),
        ("daemon", messages.ShardEnded()),
        ("daemon", messages.CheckpointReply("9", 0, "ThrottlingException")),
        ("child", messages.Status("processRecords")),
        ("child", messages.CheckpointRequest("9", 1)),
    ],
    ids=lambda value: value if isinstance(value, str) else type(value).__name__,
)
def test_every_message_field_has_its_wire_name(
    direction: Literal["daemon", "child"], message: messages.DaemonMessage | messages.ChildMessage
) -> None:
    wire = message.to_wire()
    # Every field is sent, under a name the message's schema knows, and the object is valid.
    assert len(wire) == 1 + len(dataclasses.fields(message))
    document = schema(direction, wire["action"])
    assert document is not None
    assert set(wire) <= set(document["properties"])
    assert list(iter_violations(wire, direction)) == []


def test_initialize_names_its_stream_only_when_the_daemon_did() -> None:
    """A stock daemon's initialize (no streamName) round-trips as written; ours keeps its stream."""
    stock = '{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":null}'
    message = decode_daemon_line(stock)
    assert isinstance(message, messages.Initialize) and message.stream_name is None
    assert encode(message) == stock
    ours = stock[:-1] + ',"streamName":"payments"}'
    for strict in (False, True):
        named = decode_daemon_line(ours, strict=strict)
        assert named == messages.Initialize("shardId-000000000001", "TRIM_HORIZON", None, "payments")
    assert json.loads(encode(named)) == json.loads(ours)
    assert list(iter_violations(json.loads(ours), "daemon")) == []


@pytest.mark.parametrize("bad", ['1', '["a"]', '{"name":"a"}'])
def test_a_stream_name_that_is_not_a_string_is_refused(bad: str) -> None:
    line = '{"action":"initialize","shardId":"s","sequenceNumber":null,"subSequenceNumber":null,"streamName":' + bad + "}"
    for strict in (False, True):
        with pytest.raises(ProtocolError) as info:
            decode_daemon_line(line, 3, strict=strict)
        assert info.value.field == "streamName"


def test_strict_mode_reports_the_field() -> None:
    line = '{"action":"initialize","shardId":"s","sequenceNumber":null,"subSequenceNumber":"x"}'
    with pytest.raises(ProtocolError) as info:
        decode_daemon_line(line, 7, strict=True)
    assert info.value.line_number == 7
    assert info.value.field == "subSequenceNumber"


@pytest.mark.parametrize(
    ("java", "cls"),
    [
        ("ThrottlingException", "ThrottlingError"),
        ("ShutdownException", "ShutdownError"),
        ("InvalidStateException", "InvalidStateError"),
        ("KinesisClientLibDependencyException", "DependencyError"),
        ("IllegalArgumentException", "InvalidSequenceNumberError"),
        ("AnythingElse", "UnknownCheckpointError"),
    ],
)
def test_checkpoint_errors_map_to_one_tree(java: str, cls: str) -> None:
    exc = checkpoint_error_for(java, "42")
    assert type(exc).__name__ == cls
    assert isinstance(exc, CheckpointError)
    assert isinstance(exc, kclpy_local.KclpyLocalError)
    assert isinstance(exc, upstream_kcl.CheckpointError), "amazon-kclpy processors catch it unchanged"
    assert exc.value == java


def test_protocol_error_is_amazon_kclpys_malformed_action() -> None:
    from amazon_kclpy.dispatch import MalformedAction

    assert issubclass(ProtocolError, MalformedAction)


def test_errors_with_a_log_tail_show_it_below_the_message() -> None:
    assert str(DaemonStartError("no worker", ("a", "b"))) == "no worker\nlast daemon log lines:\n  a\n  b"
    assert str(DaemonStartError("no worker")) == "no worker"
    gone = NotReadyError("moto", last="refused", timeout=5, gone=True, returncode=1, log_tail=("x",))
    assert str(gone) == "moto exited with code 1 before it was ready\nlast output lines:\n  x"
    assert str(NotReadyError("moto", last="refused", timeout=2.5)) == "moto not ready within 2.5s (last: refused)"


def test_retry_policy_is_bounded_and_backs_off() -> None:
    waits: list[float] = []
    calls = 0

    def throttled() -> None:
        nonlocal calls
        calls += 1
        raise ThrottlingError("ThrottlingException")

    policy = RetryPolicy(attempts=4, initial_delay=0.1, multiplier=2.0, max_delay=0.3, sleep=waits.append)
    with pytest.raises(ThrottlingError):
        policy.call(throttled)
    assert calls == 4
    assert waits == [0.1, 0.2, 0.3]


def test_retry_policy_does_not_retry_other_errors() -> None:
    calls = 0

    def fails() -> None:
        nonlocal calls
        calls += 1
        raise InvalidStateError("InvalidStateException")

    with pytest.raises(InvalidStateError):
        RetryPolicy(sleep=lambda _s: None).call(fails)
    assert calls == 1


def test_checkpointer_without_channel_refuses_locally() -> None:
    with pytest.raises(InvalidStateError):
        Checkpointer(None, unavailable="lease lost").checkpoint()


def test_checkpointer_rejects_bad_arguments() -> None:
    cp = Checkpointer(None)
    with pytest.raises(TypeError):
        cp.checkpoint(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cp.checkpoint("1", "2")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cp.checkpoint(Record(b"", "k", "1"), 3)


def test_kclprocess_rejects_unknown_processor_type() -> None:
    with pytest.raises(TypeError, match="neither"):
        kclpy_local.KCLProcess(object(), io.StringIO(), io.StringIO(), io.StringIO()).run()


STRAY = textwrap.dedent(
    """
    import logging, os, subprocess, sys
    from kclpy_local import RecordProcessor, run

    class Noisy(RecordProcessor):
        def initialize(self, shard):
            print("print to stdout")
            sys.stdout.write("sys.stdout write\\n")
            os.write(1, b"raw fd 1 write\\n")
            subprocess.run(["echo", "child process echo"], check=True)
            logging.getLogger("user").warning("a warning")
        def process_records(self, batch, checkpointer): pass
        def lease_lost(self): pass
        def shard_ended(self, checkpointer): checkpointer.checkpoint()
        def shutdown_requested(self, checkpointer): checkpointer.checkpoint()

    run(Noisy())
    """
)


def test_stdout_belongs_to_the_protocol(tmp_path: Path) -> None:
    script = tmp_path / "noisy.py"
    script.write_text(STRAY)
    line = '{"action":"initialize","shardId":"s","sequenceNumber":null,"subSequenceNumber":null}\n'
    proc = subprocess.run(
        [sys.executable, str(script)], input=line, capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ['{"action":"status","responseFor":"initialize"}']
    for text in ("print to stdout", "sys.stdout write", "raw fd 1 write", "child process echo"):
        assert text in proc.stderr
    assert "WARNING user: a warning" in proc.stderr


def test_processor_failure_exits_non_zero_without_status(tmp_path: Path) -> None:
    script = tmp_path / "fails.py"
    script.write_text(
        textwrap.dedent(
            """
            from kclpy_local import RecordProcessor, run
            class Fails(RecordProcessor):
                def process_records(self, batch, checkpointer): raise ValueError("bad record")
                def lease_lost(self): pass
                def shard_ended(self, checkpointer): pass
                def shutdown_requested(self, checkpointer): pass
            run(Fails())
            """
        )
    )
    lines = (
        '{"action":"initialize","shardId":"s","sequenceNumber":null,"subSequenceNumber":null}\n'
        '{"action":"processRecords","records":[],"millisBehindLatest":null}\n'
    )
    proc = subprocess.run([sys.executable, str(script)], input=lines, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 4
    assert proc.stdout.splitlines() == ['{"action":"status","responseFor":"initialize"}']
    assert "ValueError: bad record" in proc.stderr
    assert "Traceback" in proc.stderr


def test_amazon_kclpy_records_carry_the_decoded_bytes_and_compute_the_rest_when_asked() -> None:
    """The drop-in decodes each record's base64 once: binary_data is the codec's
    bytes; data, the arrival datetime and the JSON fields are made on demand."""
    from amazon_kclpy import messages as upstream_messages
    from amazon_kclpy.v3 import processor as upstream_v3

    seen: list[upstream_messages.Record] = []

    class Keeps(upstream_v3.RecordProcessorBase):  # type: ignore[misc]
        def initialize(self, initialize_input):  # type: ignore[no-untyped-def]
            pass

        def process_records(self, process_records_input):  # type: ignore[no-untyped-def]
            seen.extend(process_records_input.records)

        def lease_lost(self, lease_lost_input):  # type: ignore[no-untyped-def]
            pass

        def shard_ended(self, shard_ended_input):  # type: ignore[no-untyped-def]
            pass

        def shutdown_requested(self, shutdown_requested_input):  # type: ignore[no-untyped-def]
            pass

    wire = [
        {"action": "record", "data": "aGVsbG8=", "partitionKey": "p", "sequenceNumber": "9",
         "approximateArrivalTimestamp": 1_700_000_000_123, "subSequenceNumber": 2},
        {"action": "record", "data": "", "partitionKey": "q", "sequenceNumber": "10",
         "approximateArrivalTimestamp": None, "subSequenceNumber": None},
    ]
    line = json.dumps({"action": "processRecords", "records": wire, "millisBehindLatest": 0})
    message = decode_daemon_line(line)
    from kclpy_local._runtime.compat import KclpyAdapter

    KclpyAdapter(Keeps()).dispatch(message, Checkpointer(None))
    first, second = seen
    assert isinstance(first, upstream_messages.Record)
    assert first.binary_data is message.records[0].data  # type: ignore[union-attr]  # not decoded again
    assert "approximate_arrival_timestamp" not in vars(first) and "data" not in vars(first)
    assert first.binary_data == b"hello" and first.data == "aGVsbG8="
    assert (first.sequence_number, first.sub_sequence_number, first.partition_key) == ("9", 2, "p")
    assert first.timestamp_millis == 1_700_000_000_123
    assert first.approximate_arrival_timestamp == datetime.fromtimestamp(1_700_000_000.123)  # naive, as upstream
    assert first.approximate_arrival_timestamp is first.approximate_arrival_timestamp
    assert [first.get(k) for k in wire[0]] == list(wire[0].values())
    assert first["data"] == "aGVsbG8=" and second["approximateArrivalTimestamp"] is None
    assert second.approximate_arrival_timestamp is None and second.timestamp_millis is None
    assert second.binary_data == b"" and second.data == ""


class _Trickle(io.RawIOBase):
    """A stream that gives at most the next chunk size per read, like a pipe."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self._data, self._sizes, self._at = data, sizes or [1], 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), self._sizes[self._at % len(self._sizes)], len(self._data))
        self._at += 1
        buffer[:size] = self._data[:size]
        self._data = self._data[size:]
        return size


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=8),
    st.booleans(),
    st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=5),
    st.sampled_from([1, 4, 16, 1 << 18]),
)
def test_line_reader_gives_the_lines_whatever_the_reads(
    parts: list[bytes], final_newline: bool, sizes: list[int], buffer_size: int
) -> None:
    data = b"\n".join(parts) + (b"\n" if final_newline and parts else b"")
    reader = LineReader(_Trickle(data, sizes), size=buffer_size)  # type: ignore[arg-type]
    got = []
    while line := reader.readline():
        got.append(line)
    assert got == io.BytesIO(data).readlines()
    assert reader.readline() == b""


@pytest.mark.parametrize(
    ("second_line", "reason"),
    [
        (b'{"action":"processRecords","records":[{"action":"record","data":"eA==","partitionKey":"\xff",'
         b'"sequenceNumber":"5","approximateArrivalTimestamp":null,"subSequenceNumber":null}],"millisBehindLatest":0}',
         "byte b'\\xff'"),
        # in a field the typed decoder skips unread
        (b'{"action":"shutdownRequested","note":"caf\xc3"}', "byte b'\\xc3'"),
    ],
)
def test_bytes_that_are_not_utf8_are_a_protocol_error_naming_the_line(
    tmp_path: Path, second_line: bytes, reason: str
) -> None:
    script = tmp_path / "p.py"
    script.write_text(
        textwrap.dedent(
            """
            from kclpy_local import RecordProcessor, run
            class P(RecordProcessor):
                def process_records(self, batch, checkpointer): pass
                def lease_lost(self): pass
                def shard_ended(self, checkpointer): pass
                def shutdown_requested(self, checkpointer): pass
            run(P())
            """
        )
    )
    lines = b'{"action":"initialize","shardId":"s","sequenceNumber":null,"subSequenceNumber":null}\n' + second_line + b"\n"
    proc = subprocess.run([sys.executable, str(script)], input=lines, capture_output=True, timeout=30, check=False)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.splitlines() == [b'{"action":"status","responseFor":"initialize"}']
    err = proc.stderr.decode()
    assert "protocol error on line 2" in err and "not UTF-8" in err and reason in err, err
    assert "Traceback" not in err


def test_a_processor_process_imports_no_filesystem_helpers() -> None:
    """A processor's memory is kept small: importing the runtime and loading the schemas
    (strict mode) pull neither pathlib nor importlib.resources (1.6 MB between them)."""
    probe = (
        "import sys, kclpy_local\n"
        "from kclpy_local._protocol import schemas\n"
        "assert schemas.schemas() and schemas.compiled_check('daemon', 'processRecords')\n"
        "print(sorted({'pathlib', 'importlib.resources', 'zipfile'} & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
