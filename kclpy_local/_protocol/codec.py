"""Line decoding and encoding of the multilang protocol.

``decode_daemon_line`` turns one line from the daemon into a typed message.
It tries the typed decoder of :mod:`.fast` first; a line that path does not
accept goes through the reference path here (``json.loads`` and hand-written
checks), which accepts exactly what the JSON Schemas accept and names the line
and field of anything else. Both are tested against the schemas.
``strict=True`` checks every message against the schema documents themselves
as well. Unknown extra fields from the daemon are tolerated, as the schemas say.

``encode`` writes a message as one JSON line (no newline) exactly as the
daemon accepts it: the daemon drops messages with unknown fields.
"""

from __future__ import annotations

import binascii
import json
import math
from typing import Any

from .._exceptions import ProtocolError
from . import fast as _fast
from . import messages as _msg
from . import schemas as _schemas
from .messages import ChildMessage, DaemonMessage, Record

__all__ = [
    "check_daemon_object",
    "decode_child_line",
    "decode_daemon_line",
    "encode",
    "load_line",
    "schema_check",
]

_LONG_MIN = -(2**63)
_LONG_MAX = 2**63 - 1
_SHUTDOWN_REASONS = frozenset({"TERMINATE", "ZOMBIE", "REQUESTED"})
_a2b = binascii.a2b_base64
_MISSING = object()


class _Bad(Exception):
    """Internal: a field failed its check (turned into ProtocolError by the caller)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason


def load_line(line: str | bytes | bytearray, line_number: int | None = None) -> dict[str, Any]:
    """Parse one protocol line (text, or its ASCII/UTF-8 bytes) into a JSON object, or raise
    ProtocolError (naming the line as text)."""
    if not line or line.isspace():
        raise ProtocolError("empty line", line=_shown(line), line_number=line_number)
    try:
        obj = json.loads(line)  # surrounding whitespace is fine; no copy of a long line
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(
            f"not JSON ({exc})", line=_shown(line), line_number=line_number
        ) from None
    if not isinstance(obj, dict):
        raise ProtocolError(
            f"expected a JSON object, got {type(obj).__name__}",
            line=_shown(line),
            line_number=line_number,
        )
    return obj


def _shown(line: str | bytes | bytearray) -> str:
    """A line as text for an error message (bytes that are not UTF-8 are replaced)."""
    return line if isinstance(line, str) else bytes(line).decode("utf-8", "replace")


# -- field checks: each mirrors one construct of the schemas --------------------------


def _str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key, _MISSING)
    if value is _MISSING:
        raise _Bad(where + key, "missing")
    if type(value) is not str:
        raise _Bad(where + key, f"expected a string, got {_kind(value)}")
    return value


def _present(obj: dict[str, Any], key: str, where: str, required: bool) -> Any:
    """The value of ``key``: ``None`` when absent and not required, or null."""
    value = obj.get(key, _MISSING)
    if value is _MISSING:
        if required:
            raise _Bad(where + key, "missing")
        return None
    return value


def _opt_str(obj: dict[str, Any], key: str, where: str, required: bool = True) -> str | None:
    value = _present(obj, key, where, required)
    if value is not None and type(value) is not str:
        raise _Bad(where + key, f"expected a string or null, got {_kind(value)}")
    return value


def _opt_long(obj: dict[str, Any], key: str, where: str, required: bool = True) -> int | None:
    value = _present(obj, key, where, required)
    if value is None:
        return None
    kind = type(value)
    if kind is int:
        number: int = value
    elif kind is float and math.isfinite(value) and value.is_integer():
        number = int(value)
    else:
        raise _Bad(where + key, f"expected an integer or null, got {_kind(value)}")
    if not _LONG_MIN <= number <= _LONG_MAX:
        raise _Bad(where + key, "out of the range of a Java long")
    return number


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return f"a JSON {'array' if isinstance(value, list) else 'object'}"


def _records(records: list[Any]) -> tuple[Record, ...]:
    """Check and build every record; the common all-good case stays on one fast loop."""
    out: list[Record] = []
    append = out.append
    a2b = _a2b
    make = _fast.make_record
    lo, hi = _LONG_MIN, _LONG_MAX
    for index, obj in enumerate(records):
        try:
            data = obj["data"]
            pk = obj["partitionKey"]
            seq = obj["sequenceNumber"]
            ts = obj["approximateArrivalTimestamp"]
            sub = obj["subSequenceNumber"]
            good = (
                type(data) is str
                and type(pk) is str
                and type(seq) is str
                and (ts is None or (type(ts) is int and lo <= ts <= hi))
                and (sub is None or (type(sub) is int and lo <= sub <= hi))
                and obj["action"] == "record"
            )
            if good:
                append(make(a2b(data, strict_mode=True), pk, seq, sub, ts))
                continue
        except (KeyError, TypeError, ValueError):
            pass
        append(_record(obj, index))  # the careful path: normalises or names the bad field
    return tuple(out)


def _record(obj: object, index: int) -> Record:
    where = f"records[{index}]."
    if type(obj) is not dict:
        raise _Bad(f"records[{index}]", f"expected a JSON object, got {_kind(obj)}")
    if obj.get("action", _MISSING) != "record":
        raise _Bad(where + "action", "expected 'record'")
    data = _str(obj, "data", where)
    try:
        decoded = _a2b(data, strict_mode=True)
    except ValueError as exc:
        raise _Bad(where + "data", f"invalid base64 ({exc})") from None
    return Record(
        decoded,
        _str(obj, "partitionKey", where),
        _str(obj, "sequenceNumber", where),
        _opt_long(obj, "subSequenceNumber", where),
        _opt_long(obj, "approximateArrivalTimestamp", where),
    )


def _decode(obj: dict[str, Any]) -> DaemonMessage:
    action = obj.get("action", _MISSING)
    if action is _MISSING:
        raise _Bad("action", "missing")
    if action == "processRecords":
        records = obj.get("records", _MISSING)
        if records is _MISSING:
            raise _Bad("records", "missing")
        if type(records) is not list:
            raise _Bad("records", f"expected an array, got {_kind(records)}")
        millis = _opt_long(obj, "millisBehindLatest", "")
        return _msg.ProcessRecords(_records(records), millis)
    if action == "initialize":
        return _msg.Initialize(
            _str(obj, "shardId", ""),
            _opt_str(obj, "sequenceNumber", ""),
            _opt_long(obj, "subSequenceNumber", ""),
            _opt_str(obj, "streamName", "", required=False),
        )
    if action == "checkpoint":
        return _msg.CheckpointReply(
            _opt_str(obj, "sequenceNumber", ""),
            _opt_long(obj, "subSequenceNumber", ""),
            _error_field(obj),
        )
    if action == "shutdown":
        reason = obj.get("reason", _MISSING)
        if reason is _MISSING:
            raise _Bad("reason", "missing")
        if type(reason) is not str or reason not in _SHUTDOWN_REASONS:
            raise _Bad("reason", f"expected TERMINATE, ZOMBIE or REQUESTED, got {_kind(reason)}")
        return _msg.Shutdown(reason)  # type: ignore[arg-type]
    if action == "shutdownRequested":
        return _msg.ShutdownRequested()
    if action == "leaseLost":
        return _msg.LeaseLost()
    if action == "shardEnded":
        return _msg.ShardEnded()
    if type(action) is not str:
        raise _Bad("action", f"expected a string, got {_kind(action)}")
    raise _Bad("action", f"unknown action {action!r}")


def _error_field(obj: dict[str, Any]) -> str | None:
    error = obj.get("error")
    if error is not None and type(error) is not str:
        raise _Bad("error", f"expected a string or null, got {_kind(error)}")
    return error


def check_daemon_object(
    obj: dict[str, Any], line: str | None = None, line_number: int | None = None
) -> DaemonMessage:
    """Check an already parsed daemon message and build its typed value."""
    try:
        return _decode(obj)
    except _Bad as bad:
        raise ProtocolError(
            bad.reason, line=line, line_number=line_number, field=bad.field
        ) from None


def decode_daemon_line(
    line: str | bytes | bytearray, line_number: int | None = None, *, strict: bool = False
) -> DaemonMessage:
    """Decode one line written by the daemon (text, or its UTF-8 bytes).

    Raises :class:`ProtocolError` naming the line and the field on any bad input.
    """
    if not isinstance(line, str) and not line.isascii():
        line = _utf8(line, line_number)  # the typed decoder skips unknown fields unread
    if strict:
        return _decode_strict(line, line_number)
    try:
        return _fast.decode(line)
    except _fast.FastPathMiss:
        text = _text(line)  # the reference path: accepts, or names the fault
        return check_daemon_object(load_line(text, line_number), text, line_number)


def _decode_strict(line: str | bytes | bytearray, line_number: int | None) -> DaemonMessage:
    """Strict mode: the compiled schema judges the parsed line, then the typed decoder
    builds the message (the parsed object is dropped before the message is built, and a
    line of bytes is parsed as it is: its text is made only to name a fault)."""
    obj = load_line(line, line_number)
    if not _compiled_accepts(obj, "daemon"):
        text = _text(line)
        check_daemon_object(obj, text, line_number)  # the hand-written checks name it first,
        _raise_violations(obj, "daemon", text, line_number)  # else every schema violation
    del obj
    try:
        return _fast.decode(line)
    except _fast.FastPathMiss:
        text = _text(line)
        return check_daemon_object(load_line(text, line_number), text, line_number)


def _text(line: str | bytes | bytearray) -> str:
    return line if isinstance(line, str) else line.decode("ascii")  # ASCII: checked before


def _utf8(line: bytes | bytearray, line_number: int | None) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            f"the line is not UTF-8 text (byte {line[exc.start : exc.start + 1]!r} "
            f"at offset {exc.start})",
            line_number=line_number,
        ) from None


def _compiled_accepts(obj: dict[str, Any], direction: _schemas.Direction) -> bool:
    """The compiled schema's verdict on an object (``False`` for an unknown action)."""
    check = _schemas.compiled_check(direction, str(obj.get("action")))
    if check is None:
        return False
    try:
        check(obj)
    except Exception:  # whatever the compiled validator raises is a rejection
        return False
    return True


def schema_check(
    obj: dict[str, Any], direction: _schemas.Direction, line: str, line_number: int | None
) -> None:
    """Raise a ProtocolError listing every violation when the schema rejects ``obj``."""
    if not _compiled_accepts(obj, direction):  # reported by the reference validator, with paths
        _raise_violations(obj, direction, line, line_number)


def _raise_violations(
    obj: dict[str, Any], direction: _schemas.Direction, line: str, line_number: int | None
) -> None:
    """Raise one ProtocolError listing every schema violation of ``obj`` (if any)."""
    found = list(_schemas.iter_violations(obj, direction))
    if found:
        reason = "; ".join(f"{v.path or '<root>'}: {v.message}" for v in found)
        raise ProtocolError(
            reason, line=line, line_number=line_number, field=found[0].path or None
        ) from None


def decode_child_line(line: str, line_number: int | None = None) -> ChildMessage:
    """Decode one line written by a processor (used by the scripted daemon)."""
    obj = load_line(line, line_number)
    _raise_violations(obj, "child", line, line_number)
    if obj["action"] == "status":
        return _msg.Status(obj["responseFor"])
    return _msg.CheckpointRequest(obj["sequenceNumber"], obj["subSequenceNumber"])


def encode(message: DaemonMessage | ChildMessage) -> str:
    """One JSON line (without its newline) for a message, in either direction."""
    if isinstance(message, _msg.Status | _msg.CheckpointRequest):
        return _fast.encode_child(message)
    return json.dumps(message.to_wire(), separators=(",", ":"), ensure_ascii=False)
