"""The processor process: its main loop, stdout ownership and failure policy.

``run(processor)`` is the entry point of a processor script. It reads daemon
messages from stdin, calls the processor and answers on stdout, which it owns:
the real stdout file descriptor is kept for the protocol and descriptor 1 is
pointed at stderr, so nothing a processor (or a library, or a child process)
prints can corrupt the exchange.

An exception from the processor is never acknowledged as success. By default
(``on_error="exit"``) it is reported on stderr with its traceback and the
process exits with status 4 without answering; the daemon then stops and the
work resumes from the last checkpoint. ``on_error="continue"`` (or the
environment variable ``KCLPY_LOCAL_ON_ERROR=continue``) is amazon-kclpy's
behaviour: log and acknowledge anyway.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Mapping
from typing import Any, BinaryIO, Literal, NoReturn, TextIO

from .. import _env
from .._exceptions import ProcessorFailed, ProtocolError, UsageError
from .._protocol.channel import Channel
from .._protocol.messages import (
    CheckpointReply,
    CheckpointRequest,
    DaemonMessage,
    Initialize,
    LeaseLost,
    ProcessRecords,
    ShardEnded,
    Shutdown,
    ShutdownRequested,
    Status,
)
from .checkpointer import Checkpointer
from .processor import RecordProcessor
from .progress import ProgressWriter

__all__ = [
    "OnError",
    "Runtime",
    "check_environment",
    "claim_stdout",
    "configure_logging",
    "run",
    "run_to_exit_code",
]

OnError = Literal["exit", "continue"]
_log = logging.getLogger(__name__)


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _resolve_on_error(
    on_error: OnError | None, environ: Mapping[str, str] | None = None
) -> OnError:
    value = on_error or _env.ON_ERROR.get(environ) or "exit"
    if value not in ("exit", "continue"):
        source = "on_error" if on_error else f"${_env.ON_ERROR.name}"
        raise UsageError(f"{source} must be 'exit' or 'continue', not {value!r}")
    return value  # type: ignore[return-value]


def _resolve_strict(strict: bool | None, environ: Mapping[str, str] | None = None) -> bool:
    if strict is not None:
        return strict
    value = (_env.STRICT.get(environ) or "0").lower()
    if value not in _TRUE + _FALSE:
        raise UsageError(
            f"${_env.STRICT.name} must be 1 or 0 (or true/false, yes/no, on/off), not {value!r}"
        )
    return value in _TRUE


def _log_level(environ: Mapping[str, str] | None = None) -> str:
    level = (_env.LOG_LEVEL.get(environ) or "INFO").upper()
    if level not in _LEVELS:
        raise UsageError(
            f"${_env.LOG_LEVEL.name} must be one of {', '.join(_LEVELS)}, not {level!r}"
        )
    return level


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """The processor's settings in ``environ`` (default: this process's):
    ``KCLPY_LOCAL_ON_ERROR``, ``KCLPY_LOCAL_STRICT`` and ``KCLPY_LOCAL_LOG_LEVEL``;
    :class:`UsageError` naming the first bad one. ``kclpy-local run`` and the
    daemon call it before they start anything, so a typo is not found by the
    first record processor the KCL starts."""
    _resolve_on_error(None, environ)
    _resolve_strict(None, environ)
    _log_level(environ)


class _Native:
    """Dispatches typed messages to a :class:`RecordProcessor`."""

    def __init__(self, processor: RecordProcessor) -> None:
        self._p = processor

    def dispatch(self, message: DaemonMessage, checkpointer: Checkpointer) -> None:
        p = self._p
        if isinstance(message, ProcessRecords):
            p.process_records(message, checkpointer)
        elif isinstance(message, Initialize):
            p.initialize(message)
        elif isinstance(message, Shutdown):
            if message.reason == "TERMINATE":
                p.shard_ended(checkpointer)
            else:
                p.lease_lost()
        elif isinstance(message, ShardEnded):
            p.shard_ended(checkpointer)
        elif isinstance(message, LeaseLost):
            p.lease_lost()
        elif isinstance(message, ShutdownRequested):
            p.shutdown_requested(checkpointer)


def _adapter(processor: object) -> Any:
    if isinstance(processor, RecordProcessor):
        return _Native(processor)
    from .compat import KclpyAdapter, is_kclpy_processor

    if is_kclpy_processor(processor):
        return KclpyAdapter(processor)
    raise TypeError(
        f"{type(processor).__name__} is neither a kclpy_local.RecordProcessor "
        "nor an amazon-kclpy record processor"
    )


class Runtime:
    """The message loop over explicit files (what ``run`` and ``KCLProcess`` use)."""

    def __init__(
        self,
        processor: object,
        input_file: TextIO | BinaryIO,
        output_file: TextIO,
        error_file: TextIO,
        *,
        on_error: OnError | None = None,
        strict: bool | None = None,
        progress: ProgressWriter | None = None,
    ) -> None:
        self._adapter = _adapter(processor)
        self.channel = Channel(input_file, output_file, strict=_resolve_strict(strict))
        # Progress events for `kclpy-local run` (see _progress); off unless asked for.
        self._progress = progress if progress is not None else ProgressWriter.from_env()
        self._last_delivered: str | None = None
        if self._progress is not None:
            self.channel.on_checkpoint = self._checkpointed
        self._error_file = error_file
        self._on_error = _resolve_on_error(on_error)
        self._checkpointer = Checkpointer(self.channel)
        self._no_checkpointer = Checkpointer(self.channel, unavailable="lease lost")

    def run(self) -> None:
        """Handle messages until end of input.

        Raises :class:`ProtocolError` on bad input and :class:`ProcessorFailed`
        when the processor raised (unless ``on_error="continue"``).
        """
        channel = self.channel
        while True:
            message = channel.read()
            if message is None:
                return
            if isinstance(message, CheckpointReply):
                raise ProtocolError(
                    "checkpoint reply with no checkpoint request outstanding",
                    line_number=channel.line_number,
                    field="action",
                )
            progress = self._progress
            if progress is not None:
                if isinstance(message, Initialize):
                    progress.initialized(
                        message.shard_id, message.sequence_number, message.stream_name
                    )
                    self._last_delivered = message.sequence_number
                elif isinstance(message, ProcessRecords) and message.records:
                    self._last_delivered = message.records[-1].sequence_number
            self._handle(message)
            channel.write(Status(message.action))
            if progress is not None:
                self._report_progress(progress, message)

    def _checkpointed(self, request: CheckpointRequest, reply: CheckpointReply) -> None:
        assert self._progress is not None
        # A bare checkpoint() is at the last record delivered; the 1.x daemon's
        # reply does not always say which one that was.
        sequence = reply.sequence_number or request.sequence_number or self._last_delivered
        subsequence = (
            reply.sub_sequence_number if reply.sequence_number else request.sub_sequence_number
        )
        self._progress.checkpointed(sequence, subsequence)

    @staticmethod
    def _report_progress(progress: ProgressWriter, message: DaemonMessage) -> None:
        if isinstance(message, ProcessRecords):
            records = message.records
            last = records[-1].sequence_number if records else None
            progress.batch(len(records), message.millis_behind_latest, last)
        elif isinstance(message, ShardEnded) or (
            isinstance(message, Shutdown) and message.reason == "TERMINATE"
        ):
            progress.ended("shard ended")
        elif isinstance(message, LeaseLost | Shutdown):
            progress.ended("lease lost")
        elif isinstance(message, ShutdownRequested):
            progress.ended("shutdown requested")

    def _handle(self, message: DaemonMessage) -> None:
        lost = isinstance(message, LeaseLost) or (
            isinstance(message, Shutdown) and message.reason != "TERMINATE"
        )
        checkpointer = self._no_checkpointer if lost else self._checkpointer
        try:
            self._adapter.dispatch(message, checkpointer)
        except ProtocolError:
            raise
        except Exception as exc:
            if self.channel.failure is not None:  # a protocol error the processor caught
                raise self.channel.failure from None
            where = f"{message.action} (daemon line {self.channel.line_number})"
            if self._on_error == "continue":
                self._report(f"processor raised while handling {where}; continuing as asked")
                return
            self._report(f"processor raised while handling {where}; not acknowledged, exiting")
            raise ProcessorFailed(f"processor raised {type(exc).__name__}: {exc}") from exc
        if self.channel.failure is not None:  # a protocol error the processor swallowed
            raise self.channel.failure

    def _report(self, headline: str) -> None:
        err = self._error_file
        err.write(f"kclpy-local: {headline}\n")
        traceback.print_exc(file=err)
        err.flush()


def claim_stdout() -> TextIO:
    """Keep the real stdout for the protocol and point fd 1 (and ``sys.stdout``) at stderr."""
    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return open(protocol_fd, "w", encoding="utf-8", newline="\n", closefd=True)


def configure_logging() -> None:
    """Send processor logging to stderr with the level on each line (if not configured)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(_log_level())


def _stdin() -> TextIO | BinaryIO:
    """The process's stdin: its bytes (the channel reads them in large reads), else UTF-8 text."""
    stdin = sys.stdin
    buffer = getattr(stdin, "buffer", None)
    if buffer is not None and hasattr(buffer, "readinto1"):
        return buffer  # type: ignore[no-any-return]
    if hasattr(stdin, "reconfigure"):
        stdin.reconfigure(encoding="utf-8")
    return stdin


def run(
    processor: object, *, on_error: OnError | None = None, strict: bool | None = None
) -> NoReturn:
    """Run ``processor`` as the daemon's child process; never returns.

    Exit status: 0 at the end of input, 3 on a protocol error, 4 when the
    processor raised (see the module docstring), 1 when the daemon went away.
    """
    try:
        configure_logging()
        on_error = _resolve_on_error(on_error)
        strict = _resolve_strict(strict)
    except UsageError as exc:
        sys.stderr.write(f"kclpy-local: error: {exc}\n")
        raise SystemExit(exc.exit_code) from None
    output = claim_stdout()
    runtime = Runtime(processor, _stdin(), output, sys.stderr, on_error=on_error, strict=strict)
    raise SystemExit(run_to_exit_code(runtime, sys.stderr))


def run_to_exit_code(runtime: Runtime, error_file: TextIO) -> int:
    """Run to the end and map the outcome to the process exit status."""
    try:
        runtime.run()
    except ProtocolError as exc:
        error_file.write(f"kclpy-local: {exc}\n")
        error_file.flush()
        return exc.exit_code
    except ProcessorFailed as exc:
        return exc.exit_code
    except BrokenPipeError:
        error_file.write("kclpy-local: the daemon closed the pipe\n")
        error_file.flush()
        return 1
    return 0
