"""Run processors written for amazon-kclpy (interfaces v1, v2 and v3) unchanged.

The processor receives amazon-kclpy's own input objects, built from messages
that kclpy-local has already validated; its checkpointer raises errors that
derive from ``amazon_kclpy.kcl.CheckpointError``. On a KCL 1.x daemon,
``shutdown`` is translated as the 2.x/3.x daemons would send it: ZOMBIE becomes
``lease_lost`` and TERMINATE becomes ``shard_ended`` with a working checkpointer.
"""

from __future__ import annotations

import base64
from datetime import datetime
from functools import cached_property
from operator import attrgetter
from typing import Any

from amazon_kclpy import kcl as _kcl
from amazon_kclpy import messages as _kmsg
from amazon_kclpy.v2 import processor as _v2
from amazon_kclpy.v3 import processor as _v3

from .._protocol.messages import DaemonMessage, ProcessRecords, Record, Shutdown
from .checkpointer import Checkpointer

__all__ = ["KclpyAdapter", "is_kclpy_processor"]


class _Record(_kmsg.Record):  # type: ignore[misc]
    """amazon-kclpy's Record over a record the codec has already decoded.

    The data is decoded from base64 once, by the codec: ``binary_data`` is those
    bytes. The rest is made the first time a processor asks for it: ``data``
    (the base64 text, re-encoded), the arrival ``datetime`` (naive local time,
    as amazon-kclpy gives it; ``None`` when the daemon sent null) and the JSON
    object behind ``get``/``[]`` (the record's six wire fields).
    """

    __slots__ = ("_record",)

    def __init__(self, record: Record) -> None:  # amazon-kclpy's __init__ takes the JSON dict
        self._record = record

    # The record's own fields, read through (a C getter: no Python call per access).
    binary_data = property(attrgetter("_record.data"))
    sequence_number = property(attrgetter("_record.sequence_number"))
    sub_sequence_number = property(attrgetter("_record.sub_sequence_number"))
    partition_key = property(attrgetter("_record.partition_key"))
    timestamp_millis = property(attrgetter("_record.approximate_arrival_timestamp_ms"))

    @cached_property
    def data(self) -> str:
        return base64.b64encode(self._record.data).decode("ascii")

    @cached_property
    def approximate_arrival_timestamp(self) -> datetime | None:
        ms = self._record.approximate_arrival_timestamp_ms
        return None if ms is None else datetime.fromtimestamp(ms / 1000.0)

    @cached_property
    def _json_dict(self) -> dict[str, Any]:
        wire: dict[str, Any] = self._record.to_wire()
        return wire

    def get(self, field: str) -> Any:
        return self._json_dict[field]

    def __getitem__(self, field: str) -> Any:
        return self._json_dict[field]


_new_record = object.__new__
_set_record: Any = vars(_Record)["_record"].__set__  # the slot, set with no __init__ call


def _records(message: ProcessRecords) -> list[_Record]:
    new, bind, cls = _new_record, _set_record, _Record
    out: list[_Record] = []
    append = out.append
    for record in message.records:
        wrapped = new(cls)
        bind(wrapped, record)
        append(wrapped)
    return out


def is_kclpy_processor(processor: object) -> bool:
    """True for a processor written against amazon-kclpy's interfaces.

    As amazon-kclpy does, anything with a ``process_records`` method counts,
    dispatched by its ``version`` attribute (1, 2, else 3).
    """
    bases = (_kcl.RecordProcessorBase, _v2.RecordProcessorBase, _v3.RecordProcessorBase)
    return isinstance(processor, bases) or callable(getattr(processor, "process_records", None))


class KclpyAdapter:
    """Dispatches validated messages to an amazon-kclpy processor."""

    def __init__(self, processor: Any) -> None:
        version = getattr(processor, "version", 3)
        if version == 1:
            processor = _v3.V2toV3Processor(_v2.V1toV2Processor(processor))
        elif version == 2:
            processor = _v3.V2toV3Processor(processor)
        self._processor = processor

    def dispatch(self, message: DaemonMessage, checkpointer: Checkpointer) -> None:
        p = self._processor
        action = message.action
        if isinstance(message, ProcessRecords):
            batch = {
                "action": action,
                "records": _records(message),
                "millisBehindLatest": message.millis_behind_latest,
            }
            _kmsg.ProcessRecordsInput(batch).dispatch(checkpointer, p)
        elif action == "initialize":
            p.initialize(_kmsg.InitializeInput(message.to_wire()))
        elif isinstance(message, Shutdown):
            if message.reason == "TERMINATE":
                _kmsg.ShardEndedInput({"action": "shardEnded"}).dispatch(checkpointer, p)
            else:
                p.lease_lost(_kmsg.LeaseLostInput({"action": "leaseLost"}))
        elif action == "shardEnded":
            _kmsg.ShardEndedInput(message.to_wire()).dispatch(checkpointer, p)
        elif action == "leaseLost":
            p.lease_lost(_kmsg.LeaseLostInput(message.to_wire()))
        elif action == "shutdownRequested":
            _kmsg.ShutdownRequestedInput(message.to_wire()).dispatch(checkpointer, p)
