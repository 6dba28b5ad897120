"""The multilang protocol's messages as typed, immutable values.

Daemon to child (KCL 1.x and 2.x/3.x): :class:`Initialize`, :class:`ProcessRecords`
(with :class:`Record` items), :class:`Shutdown` (1.x only), :class:`ShutdownRequested`,
:class:`LeaseLost` and :class:`ShardEnded` (2.x/3.x), :class:`CheckpointReply`.

Child to daemon: :class:`Status` and :class:`CheckpointRequest`.

The wire format itself is defined by the JSON Schema documents in
``kclpy_local/_protocol/wire``; ``to_wire()`` gives the JSON object of a message.
"""

from __future__ import annotations

import base64
from dataclasses import Field, dataclass, fields
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

__all__ = [
    "DAEMON_ACTIONS",
    "CheckpointReply",
    "CheckpointRequest",
    "ChildMessage",
    "DaemonMessage",
    "Initialize",
    "LeaseLost",
    "ProcessRecords",
    "Record",
    "ShardEnded",
    "Shutdown",
    "ShutdownReason",
    "ShutdownRequested",
    "Status",
]

ShutdownReason = Literal["TERMINATE", "ZOMBIE", "REQUESTED"]


def _camel(name: str) -> str:
    """``sub_sequence_number`` -> ``subSequenceNumber``: a field's name on the wire."""
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


class _Message:
    """What the messages share: an ``action``, and the JSON object that ``to_wire()``
    gives: the action, then each field in order under its camelCase name."""

    __slots__ = ()
    action: ClassVar[str]
    """The message's ``action`` on the wire: a class keyword, ``class Shutdown(_Message,
    action="shutdown")``."""
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    def __init_subclass__(cls, *, action: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if action is not None:  # None when dataclass(slots=True) makes the class again
            cls.action = action

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"action": self.action}
        for field in fields(self):
            wire[_camel(field.name)] = getattr(self, field.name)
        return wire


@dataclass(frozen=True, slots=True)
class Record:
    """One Kinesis record, its data already decoded from base64."""

    data: bytes
    """The record's payload, as the producer put it."""
    partition_key: str
    """The key the producer gave; it chose the shard."""
    sequence_number: str
    """The record's position in its shard (decimal digits, up to 128 bits)."""
    sub_sequence_number: int | None = None
    """Its index in an aggregated (KPL) record, or ``None`` for a plain record."""
    approximate_arrival_timestamp_ms: int | None = None
    """When Kinesis accepted it, milliseconds since the epoch (``None`` if unknown)."""

    @property
    def approximate_arrival_timestamp(self) -> datetime | None:
        """When Kinesis accepted the record, timezone-aware UTC (``None`` if unknown)."""
        ms = self.approximate_arrival_timestamp_ms
        if ms is None:
            return None
        return datetime.fromtimestamp(ms / 1000.0, tz=UTC)

    def to_wire(self) -> dict[str, Any]:
        return {
            "action": "record",
            "data": base64.b64encode(self.data).decode("ascii"),
            "partitionKey": self.partition_key,
            "sequenceNumber": self.sequence_number,
            "approximateArrivalTimestamp": self.approximate_arrival_timestamp_ms,
            "subSequenceNumber": self.sub_sequence_number,
        }


@dataclass(frozen=True, slots=True)
class Initialize(_Message, action="initialize"):
    """The first message to a processor: which shard, and where it resumes.

    ``stream_name`` is the stream the shard belongs to, when the daemon says so
    (``None`` otherwise): the kclpy-local KCL 3.x launcher does, on one stream as on
    several (``streamNames``); KCL 1.x and the stock daemons do not.
    """

    shard_id: str
    sequence_number: str | None = None
    sub_sequence_number: int | None = None
    stream_name: str | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "action": self.action,
            "shardId": self.shard_id,
            "sequenceNumber": self.sequence_number,
            "subSequenceNumber": self.sub_sequence_number,
        }
        if self.stream_name is not None:  # absent, as the stock daemons write it
            wire["streamName"] = self.stream_name
        return wire


@dataclass(frozen=True, slots=True)
class ProcessRecords(_Message, action="processRecords"):
    """A batch of records, and how far behind the tip of the shard it is."""

    records: tuple[Record, ...]
    millis_behind_latest: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "records": [r.to_wire() for r in self.records],
            "millisBehindLatest": self.millis_behind_latest,
        }


@dataclass(frozen=True, slots=True)
class Shutdown(_Message, action="shutdown"):
    """KCL 1.x: the processor is shut down (TERMINATE = shard end, ZOMBIE = lease lost)."""

    reason: ShutdownReason


@dataclass(frozen=True, slots=True)
class ShutdownRequested(_Message, action="shutdownRequested"):
    """The worker shuts down gracefully; the processor may checkpoint."""


@dataclass(frozen=True, slots=True)
class LeaseLost(_Message, action="leaseLost"):
    """KCL 2.x/3.x: another worker took the lease; do not checkpoint."""


@dataclass(frozen=True, slots=True)
class ShardEnded(_Message, action="shardEnded"):
    """KCL 2.x/3.x: the shard is closed and fully read; the processor must checkpoint."""


@dataclass(frozen=True, slots=True)
class CheckpointReply(_Message, action="checkpoint"):
    """The daemon's answer to a checkpoint request."""

    sequence_number: str | None = None
    """The position checkpointed (``None``: the last record delivered)."""
    sub_sequence_number: int | None = None
    error: str | None = None
    """Why the checkpoint failed, as the Java exception's simple class name (such
    as ``ShutdownException``), or ``None`` when it succeeded."""


@dataclass(frozen=True, slots=True)
class Status(_Message, action="status"):
    """Child to daemon: the message ``response_for`` has been fully handled."""

    response_for: str


@dataclass(frozen=True, slots=True)
class CheckpointRequest(_Message, action="checkpoint"):
    """Child to daemon: checkpoint at this position (``None``: the last record delivered)."""

    sequence_number: str | None = None
    sub_sequence_number: int | None = None


DaemonMessage = (
    Initialize
    | ProcessRecords
    | Shutdown
    | ShutdownRequested
    | LeaseLost
    | ShardEnded
    | CheckpointReply
)
ChildMessage = Status | CheckpointRequest

DAEMON_ACTIONS: tuple[str, ...] = (
    "initialize",
    "processRecords",
    "shutdown",
    "shutdownRequested",
    "leaseLost",
    "shardEnded",
    "checkpoint",
)
