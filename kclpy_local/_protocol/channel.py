"""The processor's end of the pipe: read daemon lines, write child lines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from .._exceptions import ProtocolError
from .codec import check_daemon_object, encode, load_line, schema_check
from .messages import CheckpointReply, CheckpointRequest, ChildMessage, DaemonMessage

__all__ = ["Channel"]


class Channel:
    """Reads daemon messages and writes child messages, one JSON line each.

    Line numbers count the lines read from the daemon, so a protocol error can
    name the offending line.
    """

    def __init__(self, input_file: TextIO, output_file: TextIO, *, strict: bool = False) -> None:
        self._input = input_file
        self._output = output_file
        self._strict = strict
        self.line_number = 0
        self.failure: ProtocolError | None = None
        #: Called with the request and the reply after each accepted checkpoint.
        self.on_checkpoint: Callable[[CheckpointRequest, CheckpointReply], None] | None = None

    def read(self) -> tuple[dict[str, Any], DaemonMessage] | None:
        """The next message as (raw object, typed value), or ``None`` at end of input.

        Blank lines are skipped.
        """
        while True:
            line = self._input.readline()
            if not line:
                return None
            self.line_number += 1
            if not line.isspace():
                return self._decode(line)

    def _decode(self, line: str) -> tuple[dict[str, Any], DaemonMessage]:
        obj = load_line(line, self.line_number)
        message = check_daemon_object(obj, line, self.line_number)
        if self._strict:
            schema_check(obj, "daemon", line, self.line_number)
        return obj, message

    def write(self, message: ChildMessage) -> None:
        self._output.write(encode(message) + "\n")
        self._output.flush()

    def checkpoint(self, request: CheckpointRequest) -> CheckpointReply:
        """Send a checkpoint request and read the daemon's reply.

        A protocol error here is also kept in ``failure``, so that it stops the
        process even if the processor catches it.
        """
        try:
            reply = self._exchange(request)
        except ProtocolError as exc:
            self.failure = exc
            raise
        if reply.error is None and self.on_checkpoint is not None:
            self.on_checkpoint(request, reply)
        return reply

    def _exchange(self, request: CheckpointRequest) -> CheckpointReply:
        self.write(request)
        got = self.read()
        if got is None:
            raise ProtocolError(
                "end of input while waiting for the reply to a checkpoint request",
                line_number=self.line_number + 1,
            )
        _, reply = got
        if not isinstance(reply, CheckpointReply):
            raise ProtocolError(
                f"expected a checkpoint reply, got {reply.action!r}",
                line_number=self.line_number,
                field="action",
            )
        return reply
