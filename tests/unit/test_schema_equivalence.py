"""The runtime's checks accept and reject exactly what the JSON Schemas do.

Three paths are held to the schemas: the typed decoder (``fast.decode``, what
every line goes through first), the reference checks on a parsed object
(``check_daemon_object``, which decides every line the typed decoder does not
accept) and strict mode (the compiled schemas)."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kclpy_local import CheckpointRequest, ProtocolError, Status, decode_daemon_line
from kclpy_local._protocol import fast
from kclpy_local._protocol.codec import check_daemon_object, schema_check
from kclpy_local._protocol.schemas import (
    BASE64_PATTERN,
    FASTER_PATTERNS,
    compiled_check,
    iter_violations,
    schemas,
)

LONG = st.integers(min_value=-(2**63), max_value=2**63 - 1)
ANY_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
JUNK = st.recursive(ANY_SCALAR, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2), max_leaves=4)
B64_VALID = st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode())
B64_MAYBE = st.one_of(
    B64_VALID,
    st.text(alphabet="ABCDabcd0189+/=-_ \n*é", max_size=12),
    B64_VALID.map(lambda s: s + "\n"),
    B64_VALID.map(lambda s: s.rstrip("=")),
)


def _field(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly good values, sometimes anything, sometimes missing (the sentinel)."""
    return st.one_of(good, good, good, JUNK, st.just(_MISSING))


_MISSING = object()


def _obj(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not _MISSING}


NULLABLE_LONG = st.one_of(st.none(), LONG, LONG.map(float))
records = st.builds(
    lambda a, d, pk, sq, ts, sub, extra: {**_obj(action=a, data=d, partitionKey=pk, sequenceNumber=sq, approximateArrivalTimestamp=ts, subSequenceNumber=sub), **extra},
    _field(st.just("record")),
    _field(B64_MAYBE),
    _field(st.text(max_size=5)),
    _field(st.text(alphabet="0123456789", min_size=1, max_size=5)),
    _field(NULLABLE_LONG),
    _field(NULLABLE_LONG),
    st.dictionaries(st.sampled_from(["x", "future"]), ANY_SCALAR, max_size=1),
)

messages = st.one_of(
    st.builds(lambda s, q, sub, name: _obj(action="initialize", shardId=s, sequenceNumber=q, subSequenceNumber=sub, streamName=name),
              _field(st.text(max_size=5)), _field(st.one_of(st.none(), st.text(max_size=5))), _field(NULLABLE_LONG),
              # optional: mostly absent (as from the stock daemons), else a name, null or junk
              st.one_of(st.just(_MISSING), st.just(_MISSING), st.text(max_size=5), st.none(), JUNK)),
    st.builds(lambda r, m: _obj(action="processRecords", records=r, millisBehindLatest=m),
              _field(st.lists(records, max_size=3)), _field(NULLABLE_LONG)),
    st.builds(lambda r: _obj(action="shutdown", reason=r), _field(st.sampled_from(["TERMINATE", "ZOMBIE", "REQUESTED", "NOPE"]))),
    st.builds(lambda q, sub, e: _obj(action="checkpoint", sequenceNumber=q, subSequenceNumber=sub, error=e),
              _field(st.one_of(st.none(), st.text(max_size=4))), _field(NULLABLE_LONG), _field(st.one_of(st.none(), st.text(max_size=4)))),
    st.builds(lambda a: {"action": a}, st.sampled_from(["shutdownRequested", "leaseLost", "shardEnded", "status", "nope", "record"])),
    st.builds(lambda a, extra: {"action": a, **extra}, JUNK, st.dictionaries(st.text(max_size=3), ANY_SCALAR, max_size=2)),
)


def _fast_accepts(obj: dict[str, Any]) -> bool:
    try:
        check_daemon_object(obj)
    except ProtocolError:
        return False
    return True


def _schema_accepts(obj: dict[str, Any]) -> bool:
    return not list(iter_violations(obj, "daemon"))


def _compiled_accepts(obj: dict[str, Any]) -> bool:
    """The compiled check's own verdict: ``schema_check`` falls back to the reference
    validator when the compiled check rejects, so its verdict would be the
    reference's whenever the two disagree on a rejection."""
    check = compiled_check("daemon", str(obj.get("action")))
    if check is None:  # no schema for this action: refused
        return False
    try:
        check(obj)
    except Exception:
        return False
    return True


def _strict_accepts(obj: dict[str, Any]) -> bool:
    try:
        schema_check(obj, "daemon", json.dumps(obj), 1)
    except ProtocolError:
        return False
    return True


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(messages)
def test_fast_path_agrees_with_schemas(obj: dict[str, Any]) -> None:
    assert _fast_accepts(obj) == _schema_accepts(obj), obj


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(messages)
def test_strict_mode_agrees_with_schemas(obj: dict[str, Any]) -> None:
    # The compiled check alone accepts exactly what jsonschema accepts, both ways ...
    assert _compiled_accepts(obj) == _schema_accepts(obj), obj
    # ... and strict mode, which reports a rejection with the reference validator, too.
    assert _strict_accepts(obj) == _schema_accepts(obj), obj


@settings(max_examples=300, deadline=None)
@given(st.lists(records.filter(lambda r: not list(iter_violations({"action": "processRecords", "records": [r], "millisBehindLatest": None}, "daemon"))), max_size=4))
def test_valid_records_decode_to_their_bytes(recs: list[dict[str, Any]]) -> None:
    message = check_daemon_object({"action": "processRecords", "records": recs, "millisBehindLatest": 1})
    for raw, rec in zip(recs, message.records, strict=True):  # type: ignore[union-attr]
        assert rec.data == base64.b64decode(raw["data"])
        assert rec.partition_key == raw["partitionKey"]


def _fast_decode(line: str) -> Any:
    try:
        return fast.decode(line)
    except fast.FastPathMiss:
        return None


def _plain(value: Any) -> bool:
    """No float, and no lone surrogate in any string or key: JSON as the daemon writes it.

    Only there must the typed decoder accept every valid message (``1.0`` for an
    integer, NaN or a lone surrogate go to the reference path, which decides)."""
    if isinstance(value, float):
        return False
    if isinstance(value, str):
        return not any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(k) and _plain(v) for k, v in value.items())
    return True


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(messages, st.booleans())
def test_typed_decoder_accepts_only_what_the_schemas_accept(obj: dict[str, Any], ascii_only: bool) -> None:
    line = json.dumps(obj, ensure_ascii=ascii_only)
    valid = _schema_accepts(obj)
    decoded = _fast_decode(line)
    if decoded is not None:
        assert valid, obj
        assert decoded == check_daemon_object(obj), obj  # the same values as the reference
    elif _plain(obj):
        assert not valid, f"the typed decoder refused a valid message: {obj}"


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(messages)
def test_decoding_a_line_agrees_with_schemas(obj: dict[str, Any]) -> None:
    """The whole path: typed decoder, then the reference checks for what it refuses."""
    try:
        decode_daemon_line(json.dumps(obj), 1)
        accepted = True
    except ProtocolError:
        accepted = False
    assert accepted == _schema_accepts(obj), obj


INIT = '"action":"initialize","shardId":"s","subSequenceNumber":null'


@pytest.mark.parametrize(
    ("line", "valid"),
    [
        # duplicate keys: the last one counts, as in json.loads
        ('{' + INIT + ',"sequenceNumber":5,"sequenceNumber":"7"}', True),
        ('{' + INIT + ',"sequenceNumber":"7","sequenceNumber":5}', False),
        ('{"action":"leaseLost","action":"explode"}', False),
        ('{"action":"explode","action":"leaseLost"}', True),
        # what the typed decoder leaves to the reference path
        ('{' + INIT + ',"sequenceNumber":null,"x":NaN}', True),
        ('{"action":"initialize","shardId":"s","sequenceNumber":null,"subSequenceNumber":5.0}', True),
        ('{' + INIT + ',"sequenceNumber":"\\ud800"}', True),
        ('\ufeff{' + INIT + ',"sequenceNumber":null}', False),
        ('{' + INIT + ',"sequenceNumber":null}{}', False),
        ('  {' + INIT + ',"sequenceNumber":null}\r\n', True),
        # base64: standard alphabet, padded, nothing around it
        ('{"action":"processRecords","millisBehindLatest":null,"records":[{"action":"record","data":"eA","partitionKey":"k","sequenceNumber":"1","approximateArrivalTimestamp":null,"subSequenceNumber":null}]}', False),
        ('{"action":"processRecords","millisBehindLatest":null,"records":[{"action":"record","data":"eA==\\n","partitionKey":"k","sequenceNumber":"1","approximateArrivalTimestamp":null,"subSequenceNumber":null}]}', False),
        ('{"action":"processRecords","millisBehindLatest":null,"records":[{"action":"record","data":"eB==","partitionKey":"k","sequenceNumber":"1","approximateArrivalTimestamp":null,"subSequenceNumber":null}]}', True),
        ('{"action":"processRecords","millisBehindLatest":9223372036854775808,"records":[]}', False),
    ],
)
def test_lines_the_typed_decoder_may_see_differently(line: str, valid: bool) -> None:
    try:
        obj = json.loads(line)
    except ValueError:
        assert not valid
    else:
        assert _schema_accepts(obj) == valid
        fast_value = _fast_decode(line)
        if fast_value is not None:  # whatever it accepts is valid, with the reference's values
            assert valid and fast_value == check_daemon_object(obj)
    try:
        decode_daemon_line(line, 1)
        accepted = True
    except ProtocolError:
        accepted = False
    assert accepted == valid


TEXT = st.text(max_size=12) | st.text(alphabet="0123456789", min_size=1, max_size=60)


@settings(max_examples=500, deadline=None)
@given(TEXT)
def test_status_lines_are_what_json_dumps_writes(response_for: str) -> None:
    status = Status(response_for)
    assert fast.encode_child(status) == json.dumps(status.to_wire(), separators=(",", ":"), ensure_ascii=False)


@settings(max_examples=500, deadline=None)
@given(st.none() | TEXT, st.none() | LONG)
def test_checkpoint_requests_are_what_json_dumps_writes(seq: str | None, sub: int | None) -> None:
    request = CheckpointRequest(seq, sub)
    assert fast.encode_child(request) == json.dumps(request.to_wire(), separators=(",", ":"), ensure_ascii=False)


@settings(max_examples=2000, deadline=None)
@given(B64_MAYBE | st.text(alphabet="AZaz09+/=\n\r -_é", max_size=14) | B64_VALID.map(lambda t: t + "=") | B64_VALID.map(lambda t: "=" + t))
def test_the_faster_base64_matcher_agrees_with_the_pattern(text: str) -> None:
    expected = re.compile(BASE64_PATTERN).search(text) is not None
    assert (FASTER_PATTERNS[BASE64_PATTERN].search(text) is not None) == expected, text


def test_the_compiled_check_uses_the_faster_matcher() -> None:
    record = schemas()["urn:kclpy-local:schema:daemon:record"]
    assert record["properties"]["data"]["pattern"] == BASE64_PATTERN
    check = compiled_check("daemon", "processRecords")
    assert check is not None
    assert check.__globals__["REGEX_PATTERNS"][BASE64_PATTERN] is FASTER_PATTERNS[BASE64_PATTERN]


def _outcome(line: str, strict: bool) -> Any:
    try:
        return decode_daemon_line(line, 4, strict=strict)
    except ProtocolError as exc:
        return ("error", str(exc), exc.field)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(messages)
def test_strict_mode_gives_the_same_values_and_the_same_errors(obj: dict[str, Any]) -> None:
    """Strict mode costs more and decides the same: a bad line gets the message the
    default checks give (they name it first), a good one the same values."""
    line = json.dumps(obj)
    assert _outcome(line, strict=True) == _outcome(line, strict=False), obj
