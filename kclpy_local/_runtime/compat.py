"""Run processors written for amazon-kclpy (interfaces v1, v2 and v3) unchanged.

The processor receives amazon-kclpy's own input objects, built from messages
that kclpy-local has already validated; its checkpointer raises errors that
derive from ``amazon_kclpy.kcl.CheckpointError``. On a KCL 1.x daemon,
``shutdown`` is translated as the 2.x/3.x daemons would send it: ZOMBIE becomes
``lease_lost`` and TERMINATE becomes ``shard_ended`` with a working checkpointer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from amazon_kclpy import kcl as _kcl
from amazon_kclpy import messages as _kmsg
from amazon_kclpy.v2 import processor as _v2
from amazon_kclpy.v3 import processor as _v3

from .._protocol.messages import DaemonMessage, Shutdown
from .checkpointer import Checkpointer

__all__ = ["KclpyAdapter", "is_kclpy_processor"]


class _Record(_kmsg.Record):  # type: ignore[misc]
    """amazon-kclpy's Record, safe when approximateArrivalTimestamp is null."""

    def __init__(self, json_dict: dict[str, Any]) -> None:
        ts = json_dict["approximateArrivalTimestamp"]
        self._sequence_number = json_dict["sequenceNumber"]
        self._sub_sequence_number = json_dict["subSequenceNumber"]
        self._timestamp_millis = None if ts is None else int(ts)
        self._approximate_arrival_timestamp = (
            None if ts is None else datetime.fromtimestamp(int(ts) / 1000.0)
        )
        self._partition_key = json_dict["partitionKey"]
        self._data = json_dict["data"]
        self._json_dict = json_dict


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

    def dispatch(
        self, raw: dict[str, Any], message: DaemonMessage, checkpointer: Checkpointer
    ) -> None:
        p = self._processor
        action = message.action
        if action == "initialize":
            p.initialize(_kmsg.InitializeInput(raw))
        elif action == "processRecords":
            batch = {
                "action": action,
                "records": [_Record(r) for r in raw["records"]],
                "millisBehindLatest": raw["millisBehindLatest"],
            }
            _kmsg.ProcessRecordsInput(batch).dispatch(checkpointer, p)
        elif isinstance(message, Shutdown):
            if message.reason == "TERMINATE":
                _kmsg.ShardEndedInput({"action": "shardEnded"}).dispatch(checkpointer, p)
            else:
                p.lease_lost(_kmsg.LeaseLostInput({"action": "leaseLost"}))
        elif action == "shardEnded":
            _kmsg.ShardEndedInput(raw).dispatch(checkpointer, p)
        elif action == "leaseLost":
            p.lease_lost(_kmsg.LeaseLostInput(raw))
        elif action == "shutdownRequested":
            _kmsg.ShutdownRequestedInput(raw).dispatch(checkpointer, p)
