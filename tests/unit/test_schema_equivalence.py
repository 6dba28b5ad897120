"""The runtime's fast checks accept and reject exactly what the JSON Schemas do."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kclpy_local import ProtocolError
from kclpy_local._protocol.codec import check_daemon_object, schema_check
from kclpy_local._protocol.schemas import compiled_check, iter_violations

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
    st.builds(lambda s, q, sub: _obj(action="initialize", shardId=s, sequenceNumber=q, subSequenceNumber=sub),
              _field(st.text(max_size=5)), _field(st.one_of(st.none(), st.text(max_size=5))), _field(NULLABLE_LONG)),
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
    except Exception:  # noqa: BLE001 - whatever the compiled validator raises is a rejection
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
