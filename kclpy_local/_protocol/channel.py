"""The processor's end of the pipe: read daemon lines, write child lines.

Given a binary input (the process's stdin, as ``run`` and ``KCLProcess`` pass
it), the channel reads lines of bytes through one buffer, taking as much as
each read returns: a processRecords line is often over a megabyte, and a text
file's ``readline`` takes it 8 KB at a time. The typed decoder reads those
bytes directly. A text input (``io.StringIO``, a file opened in text mode) is
read line by line as text.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, BinaryIO, TextIO

from .._exceptions import ProtocolError
from .codec import decode_daemon_line
from .fast import encode_child
from .messages import CheckpointReply, CheckpointRequest, ChildMessage, DaemonMessage

__all__ = ["Channel", "LineReader"]


class LineReader:
    """``readline()`` for a binary stream, reading through one fixed buffer.

    Each read fills as much of the buffer as the stream gives (``readinto1``:
    one read, never waiting to fill it), so a long line on a pipe costs a few
    reads; a line that spans reads is gathered in a ``bytearray``.
    """

    def __init__(self, stream: BinaryIO, size: int = 1 << 18) -> None:
        read: Any = getattr(stream, "readinto1", None) or getattr(stream, "readinto", None)
        if read is None:
            raise TypeError(f"{type(stream).__name__} has no readinto")
        self._read = read
        self._buf = bytearray(size)
        self._view = memoryview(self._buf)
        self._start = 0  # the unread data is _buf[_start:_end]
        self._end = 0

    def readline(self) -> bytes | bytearray:
        """The next line with its newline; the last one may lack it; ``b""`` at the end."""
        buf, view = self._buf, self._view
        line: bytearray | None = None
        while True:
            start, end = self._start, self._end
            newline = buf.find(b"\n", start, end)
            if newline >= 0:
                self._start = newline + 1
                if line is None:
                    return bytes(view[start : newline + 1])
                line += view[start : newline + 1]
                return line
            if start < end:
                if line is None:
                    line = bytearray(view[start:end])
                else:
                    line += view[start:end]
            self._start = self._end = 0
            got = self._read(view)
            if not got:
                return b"" if line is None else line
            self._end = got


class Channel:
    """Reads daemon messages and writes child messages, one JSON line each.

    Line numbers count the lines read from the daemon, so a protocol error can
    name the offending line.
    """

    def __init__(
        self, input_file: TextIO | BinaryIO, output_file: TextIO, *, strict: bool = False
    ) -> None:
        self._readline: Callable[[], str | bytes | bytearray] = input_file.readline
        if not isinstance(input_file, io.TextIOBase) and hasattr(input_file, "readinto"):
            self._readline = LineReader(input_file).readline  # type: ignore[arg-type]
        self._output = output_file
        self._strict = strict
        self.line_number = 0
        self.failure: ProtocolError | None = None
        #: Called with the request and the reply after each accepted checkpoint.
        self.on_checkpoint: Callable[[CheckpointRequest, CheckpointReply], None] | None = None

    def read(self) -> DaemonMessage | None:
        """The next message, or ``None`` at end of input. Blank lines are skipped."""
        while True:
            try:
                line = self._readline()
            except UnicodeDecodeError as exc:
                raise ProtocolError(
                    f"the line is not UTF-8 text (byte {exc.object[exc.start : exc.start + 1]!r} "
                    f"at offset {exc.start})",
                    line_number=self.line_number + 1,
                ) from None
            if not line:
                return None
            self.line_number += 1
            if not line.isspace():
                return decode_daemon_line(line, self.line_number, strict=self._strict)

    def write(self, message: ChildMessage) -> None:
        self._output.write(encode_child(message) + "\n")
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
        reply = self.read()
        if reply is None:
            raise ProtocolError(
                "end of input while waiting for the reply to a checkpoint request",
                line_number=self.line_number + 1,
            )
        if not isinstance(reply, CheckpointReply):
            raise ProtocolError(
                f"expected a checkpoint reply, got {reply.action!r}",
                line_number=self.line_number,
                field="action",
            )
        self._check_echo(request, reply)
        return reply

    def _check_echo(self, request: CheckpointRequest, reply: CheckpointReply) -> None:
        """The reply must be for the position asked (KCL 1.x and 3.x echo it).

        A reply for another position answers another request; taking it as this
        one's would report progress that was not made. A subsequence number of
        ``None`` means 0 (``checkpoint(seq)`` is ``checkpoint(seq, 0)``). (The
        schema requires ``sequenceNumber`` in a reply, so there is always a
        position to compare.)
        """
        pairs: list[tuple[str, object, object]] = [
            ("sequenceNumber", request.sequence_number, reply.sequence_number),
            ("subSequenceNumber", request.sub_sequence_number or 0, reply.sub_sequence_number or 0),
        ]
        for name, asked, answered in pairs:
            if asked != answered:
                raise ProtocolError(
                    f"the checkpoint reply is for {name} {answered!r}, but {asked!r} was asked",
                    line_number=self.line_number,
                    field=name,
                )
