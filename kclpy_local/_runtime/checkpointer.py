"""Checkpointing: ask the daemon to record how far a shard has been processed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._exceptions import InvalidStateError, checkpoint_error_for
from .._protocol.messages import CheckpointRequest, Record
from .retry import RetryPolicy

if TYPE_CHECKING:
    from .._protocol.channel import Channel

__all__ = ["Checkpointer"]


class Checkpointer:
    """Checkpoints the shard this processor owns.

    * ``checkpoint()``: at the last record delivered to this processor;
    * ``checkpoint(record)``: at that record (sequence and sub-sequence number);
    * ``checkpoint(sequence_number, sub_sequence_number)``: at that position.

    A refused checkpoint raises a :class:`~kclpy_local.CheckpointError` subclass;
    pass ``retry=RetryPolicy()`` to retry throttled ones with back-off. The
    signature also accepts amazon-kclpy's keywords, so processors written for it
    work unchanged.
    """

    __slots__ = ("_channel", "_unavailable")

    def __init__(self, channel: Channel | None, *, unavailable: str | None = None) -> None:
        self._channel = channel
        self._unavailable = unavailable if channel is not None else (unavailable or "no channel")

    def checkpoint(
        self,
        sequence_number: Record | str | None = None,
        sub_sequence_number: int | None = None,
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        """Checkpoint; see the class docstring for the three forms."""
        if isinstance(sequence_number, Record):
            if sub_sequence_number is not None:
                raise TypeError("give a record or a sub-sequence number, not both")
            request = CheckpointRequest(
                sequence_number.sequence_number, sequence_number.sub_sequence_number
            )
        else:
            if sequence_number is not None and not isinstance(sequence_number, str):
                raise TypeError(
                    f"sequence_number must be a str or a Record, not {type(sequence_number).__name__}"
                )
            if sub_sequence_number is not None and (
                isinstance(sub_sequence_number, bool) or not isinstance(sub_sequence_number, int)
            ):
                raise TypeError("sub_sequence_number must be an int")
            request = CheckpointRequest(sequence_number, sub_sequence_number)
        if retry is None:
            self._send(request)
        else:
            retry.call(lambda: self._send(request))

    def _send(self, request: CheckpointRequest) -> None:
        if self._unavailable is not None or self._channel is None:
            raise InvalidStateError("InvalidStateException", request.sequence_number)
        reply = self._channel.checkpoint(request)
        if reply.error is not None:
            raise checkpoint_error_for(reply.error, request.sequence_number)
