"""The fast path of the codec: typed decoding of daemon lines, and child lines by hand.

``decode`` parses a daemon line straight into msgspec structs (base64 into
bytes included, in C) and turns them into the typed messages of
:mod:`.messages`. The structs mirror the JSON Schema documents in ``wire/``,
which stay the source of truth: the test suite checks that whatever this path
accepts the schemas accept too, with the same values. It is stricter in a few
corners that a daemon never writes (``1.0`` for an integer, ``NaN``, lone
surrogates, duplicate keys with a bad first value): there it raises, and the
codec's reference path decides, accepting what the schemas accept and naming
the line and field of anything else.

``encode_child`` writes the processor's two messages without a generic
serializer; its output is byte for byte what ``json.dumps`` gives.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec

from .messages import (
    CheckpointReply,
    CheckpointRequest,
    ChildMessage,
    DaemonMessage,
    Initialize,
    LeaseLost,
    ProcessRecords,
    Record,
    ShardEnded,
    Shutdown,
    ShutdownRequested,
    Status,
)

__all__ = ["FastPathMiss", "decode", "encode_child", "make_record"]

#: What ``decode`` raises when it does not accept a line (the reference path decides).
FastPathMiss = (msgspec.DecodeError, UnicodeError)

_Long = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class _Record(msgspec.Struct, rename="camel", gc=False):
    action: Literal["record"]
    data: bytes  # standard base64 with padding, decoded
    partition_key: str
    sequence_number: str
    approximate_arrival_timestamp: _Long | None
    sub_sequence_number: _Long | None


class _Message(msgspec.Struct, tag_field="action", rename="camel"):
    pass


class _Initialize(_Message, tag="initialize"):
    shard_id: str
    sequence_number: str | None
    sub_sequence_number: _Long | None
    stream_name: str | None = None


class _ProcessRecords(_Message, tag="processRecords"):
    records: list[_Record]
    millis_behind_latest: _Long | None


class _Shutdown(_Message, tag="shutdown"):
    reason: Literal["TERMINATE", "ZOMBIE", "REQUESTED"]


class _ShutdownRequested(_Message, tag="shutdownRequested"):
    pass


class _LeaseLost(_Message, tag="leaseLost"):
    pass


class _ShardEnded(_Message, tag="shardEnded"):
    pass


class _CheckpointReply(_Message, tag="checkpoint"):
    sequence_number: str | None
    sub_sequence_number: _Long | None
    error: str | None = None


_decoder = msgspec.json.Decoder(
    _Initialize
    | _ProcessRecords
    | _Shutdown
    | _ShutdownRequested
    | _LeaseLost
    | _ShardEnded
    | _CheckpointReply
)

_new = object.__new__
_set_fields: tuple[Any, ...] = tuple(
    vars(Record)[name].__set__  # the slot descriptors, which bypass the frozen __setattr__
    for name in (
        "data",
        "partition_key",
        "sequence_number",
        "sub_sequence_number",
        "approximate_arrival_timestamp_ms",
    )
)


def make_record(
    data: bytes,
    pk: str,
    seq: str,
    sub: int | None,
    ts: int | None,
    _new: Any = _new,
    _f: tuple[Any, ...] = _set_fields,
) -> Record:
    """Record(...) without the frozen dataclass's per-field ``object.__setattr__`` calls."""
    record: Record = _new(Record)
    _f[0](record, data)
    _f[1](record, pk)
    _f[2](record, seq)
    _f[3](record, sub)
    _f[4](record, ts)
    return record


def _process_records(m: _ProcessRecords) -> ProcessRecords:
    make = make_record
    records = tuple(
        [
            make(
                r.data,
                r.partition_key,
                r.sequence_number,
                r.sub_sequence_number,
                r.approximate_arrival_timestamp,
            )
            for r in m.records
        ]
    )
    return ProcessRecords(records, m.millis_behind_latest)


_SHUTDOWN_REQUESTED = ShutdownRequested()
_LEASE_LOST = LeaseLost()
_SHARD_ENDED = ShardEnded()

_build: dict[type, Callable[[Any], DaemonMessage]] = {
    _ProcessRecords: _process_records,
    _CheckpointReply: lambda m: CheckpointReply(m.sequence_number, m.sub_sequence_number, m.error),
    _Initialize: lambda m: Initialize(
        m.shard_id, m.sequence_number, m.sub_sequence_number, m.stream_name
    ),
    _Shutdown: lambda m: Shutdown(m.reason),
    _ShutdownRequested: lambda m: _SHUTDOWN_REQUESTED,
    _LeaseLost: lambda m: _LEASE_LOST,
    _ShardEnded: lambda m: _SHARD_ENDED,
}


def decode(line: str | bytes | bytearray) -> DaemonMessage:
    """A daemon line as a typed message; raises one of ``FastPathMiss`` if not accepted."""
    wire = _decoder.decode(line)
    return _build[type(wire)](wire)


# -- the child's lines -----------------------------------------------------------------

_STATUS: dict[str, str] = {}


def _string(value: str) -> str:
    """A JSON string as ``json.dumps(value, ensure_ascii=False)`` writes it."""
    if value.isalnum():  # letters and digits need no escape (sequence numbers always)
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False)


def encode_child(message: ChildMessage) -> str:
    """The line (without newline) of a status or checkpoint request."""
    if type(message) is Status:
        response_for = message.response_for
        line = _STATUS.get(response_for)
        if line is None:
            line = f'{{"action":"status","responseFor":{_string(response_for)}}}'
            if len(_STATUS) < 16:
                _STATUS[response_for] = line
        return line
    if type(message) is CheckpointRequest:
        seq, sub = message.sequence_number, message.sub_sequence_number
        if (seq is None or type(seq) is str) and (sub is None or type(sub) is int):
            return (
                '{"action":"checkpoint","sequenceNumber":'
                + ("null" if seq is None else _string(seq))
                + ',"subSequenceNumber":'
                + ("null" if sub is None else int.__repr__(sub))
                + "}"
            )
    return json.dumps(message.to_wire(), separators=(",", ":"), ensure_ascii=False)
