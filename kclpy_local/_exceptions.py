"""The one exception tree of kclpy-local.

::

    KclpyLocalError                      every error this package raises
    ├── ProtocolError                    bad input on the multilang pipe (names line and field)
    ├── ProcessorFailed                  a record processor raised; the batch was not acknowledged
    ├── CheckpointError                  the daemon refused a checkpoint (``.value`` = Java name)
    │   ├── ThrottlingError              ThrottlingException: retry with back-off
    │   ├── ShutdownError                ShutdownException: the processor is shutting down
    │   ├── InvalidStateError            InvalidStateException: no checkpointer / lease lost
    │   ├── DependencyError              KinesisClientLibDependencyException: DynamoDB/Kinesis failed
    │   ├── InvalidSequenceNumberError   IllegalArgumentException: bad or out-of-range number
    │   └── UnknownCheckpointError       any other exception name
    ├── UsageError                       arguments or input a command cannot use (exit 2)
    │   ├── PropertiesError              a .properties file is unreadable or invalid
    │   ├── InputError                   records given to ``put`` cannot be put
    │   ├── StreamMismatchError          the lease table holds another stream's checkpoints
    │   ├── FanoutUnsupportedError       enhanced fan-out asked of a Kinesis engine without it
    │   └── RunDirectoryBusyError        another ``run`` holds the run directory
    ├── PutRecordsError                  records still refused by the stream after every retry
    ├── BootstrapError                   jars, cache or launcher build
    │   ├── ArtifactDownloadError        a jar could not be fetched (names artifact and URL)
    │   ├── ArtifactIntegrityError       a jar's sha256 does not match the lockfile
    │   └── JavaNotFoundError            no java/javac, or too old
    ├── ProcessError                     a child process could not be stopped (survived SIGKILL)
    │   └── NotReadyError                a readiness wait ended first: exit or timeout (carries output)
    ├── DaemonError                      the KCL daemon (JVM) failed
    │   └── DaemonStartError             it did not become ready (carries its last log lines)
    └── EmulatorError                    the local AWS emulator failed
        ├── PortInUseError               the port asked for is taken
        └── InstallError                 installing a pinned engine into the cache failed
            ├── CargoNotFoundError       ferrokinesis is built with cargo, which is not on PATH
            └── FerrokinesisInstallError the cargo build of ferrokinesis failed

Checkpoint errors also derive from ``amazon_kclpy.checkpoint_error.CheckpointError``
and protocol errors from ``amazon_kclpy.dispatch.MalformedAction``, so processors
written for amazon-kclpy catch them unchanged.

Each class has an ``exit_code`` that the command line uses.
"""

from __future__ import annotations

from collections.abc import Sequence

from amazon_kclpy.checkpoint_error import CheckpointError as _KclpyCheckpointError
from amazon_kclpy.dispatch import MalformedAction as _KclpyMalformedAction

__all__ = [
    "ArtifactDownloadError",
    "ArtifactIntegrityError",
    "BootstrapError",
    "CargoNotFoundError",
    "CheckpointError",
    "DaemonError",
    "DaemonStartError",
    "DependencyError",
    "EmulatorError",
    "FanoutUnsupportedError",
    "FerrokinesisInstallError",
    "InputError",
    "InstallError",
    "InvalidSequenceNumberError",
    "InvalidStateError",
    "JavaNotFoundError",
    "KclpyLocalError",
    "NotReadyError",
    "PortInUseError",
    "ProcessError",
    "ProcessorFailed",
    "PropertiesError",
    "ProtocolError",
    "PutRecordsError",
    "RunDirectoryBusyError",
    "ShutdownError",
    "StreamMismatchError",
    "ThrottlingError",
    "UnknownCheckpointError",
    "UsageError",
    "checkpoint_error_for",
    "with_log_tail",
]


class KclpyLocalError(Exception):
    """Base class of every error raised by kclpy-local.

    ``hint`` is one line telling the user what to do about it (the command line
    prints it below the error).
    """

    exit_code: int = 1
    hint: str | None = None

    def __init__(self, *args: object, hint: str | None = None) -> None:
        super().__init__(*args)
        if hint is not None:
            self.hint = hint


class ProtocolError(KclpyLocalError, _KclpyMalformedAction):  # type: ignore[misc]
    """A line on the multilang pipe broke the protocol.

    ``line_number`` counts lines read from the daemon (1-based, or ``None`` when
    unknown), ``line`` is the offending text (shortened), ``field`` a JSON path
    such as ``records[3].data`` or ``None`` for the whole line.
    """

    exit_code = 3

    def __init__(
        self,
        reason: str,
        *,
        line: str | None = None,
        line_number: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = reason
        self.line = line
        self.line_number = line_number
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        where = f"line {self.line_number}" if self.line_number is not None else "input"
        parts = [f"protocol error on {where}"]
        if self.field:
            parts.append(f"field {self.field!r}")
        text = ", ".join(parts) + f": {self.reason}"
        if self.line is not None:
            shown = self.line if len(self.line) <= 200 else self.line[:200] + "..."
            text += f" (line: {shown!r})"
        return text


class ProcessorFailed(KclpyLocalError):
    """The record processor raised while handling a message (never acknowledged)."""

    exit_code = 4


class CheckpointError(KclpyLocalError, _KclpyCheckpointError):  # type: ignore[misc]
    """The daemon answered a checkpoint with an error.

    ``value`` is the Java exception's simple class name, as amazon-kclpy has it.
    """

    java_name: str = ""

    def __init__(self, value: str, sequence_number: str | None = None) -> None:
        self.value = value
        self.sequence_number = sequence_number
        Exception.__init__(self, value)

    def __str__(self) -> str:
        at = f" at sequence number {self.sequence_number}" if self.sequence_number else ""
        return f"checkpoint failed{at}: {self.value}"


class ThrottlingError(CheckpointError):
    """ThrottlingException: the lease table is throttled; retry with back-off."""

    java_name = "ThrottlingException"


class ShutdownError(CheckpointError):
    """ShutdownException: the processor is being shut down; stop processing."""

    java_name = "ShutdownException"


class InvalidStateError(CheckpointError):
    """InvalidStateException: no checkpointer now (initialize, lease lost) or bad table state."""

    java_name = "InvalidStateException"


class DependencyError(CheckpointError):
    """KinesisClientLibDependencyException: DynamoDB or Kinesis failed; retryable."""

    java_name = "KinesisClientLibDependencyException"


class InvalidSequenceNumberError(CheckpointError):
    """IllegalArgumentException: the sequence number is malformed or out of range."""

    java_name = "IllegalArgumentException"


class UnknownCheckpointError(CheckpointError):
    """Any other exception name the daemon reported."""


_BY_JAVA_NAME: dict[str, type[CheckpointError]] = {
    cls.java_name: cls
    for cls in (
        ThrottlingError,
        ShutdownError,
        InvalidStateError,
        DependencyError,
        InvalidSequenceNumberError,
    )
}


def checkpoint_error_for(value: str, sequence_number: str | None = None) -> CheckpointError:
    """Map the daemon's error string to an exception instance of this tree."""
    cls = _BY_JAVA_NAME.get(value, UnknownCheckpointError)
    return cls(value, sequence_number)


class UsageError(KclpyLocalError):
    """The arguments or the input of a command cannot be used (names which)."""

    exit_code = 2


class PropertiesError(UsageError):
    """A properties file is missing, unreadable or invalid."""


class InputError(UsageError):
    """The arguments or the records given to ``put`` cannot be put."""


class StreamMismatchError(UsageError):
    """The lease table of an application holds the leases of other streams.

    ``table`` is the lease table (the applicationName), ``claimed`` the stream it
    was used for, ``stream`` the one a worker was about to start on (for several
    streams, their description); ``message`` says why, where the default (a
    worker on one stream resuming from another's checkpoints) does not.
    """

    def __init__(
        self,
        table: str,
        claimed: str,
        stream: str,
        *,
        hint: str | None = None,
        message: str | None = None,
    ) -> None:
        self.table = table
        self.claimed = claimed
        self.stream = stream
        super().__init__(
            message
            or f"lease table {table!r} holds the checkpoints of stream {claimed!r}, not of "
            f"stream {stream!r}: a worker on {stream!r} would resume from {claimed!r}'s "
            f"checkpoints and skip records",
            hint=hint,
        )


class FanoutUnsupportedError(UsageError):
    """A worker would read by enhanced fan-out from a Kinesis engine that cannot serve it.

    ``engine`` is the engine's name (``None`` when only its endpoint is known),
    ``endpoint`` its URL (``None`` for an engine not started yet), ``why`` what it
    lacks.
    """

    def __init__(
        self, engine: str | None, endpoint: str | None, why: str, *, hint: str | None = None
    ) -> None:
        self.engine = engine
        self.endpoint = endpoint
        self.why = why
        where = engine or "the Kinesis engine"
        if endpoint:
            where += f" at {endpoint}"
        super().__init__(
            f"enhanced fan-out (retrievalMode FANOUT, SubscribeToShard over HTTP/2) on {where}: "
            f"{why}",
            hint=hint,
        )


class RunDirectoryBusyError(UsageError):
    """Another live ``kclpy-local run`` holds the run directory (``path``; ``pid`` if known)."""

    def __init__(self, path: str, pid: int | None, *, hint: str | None = None) -> None:
        self.path = path
        self.pid = pid
        who = f"another run (pid {pid})" if pid is not None else "another run"
        super().__init__(f"the run directory {path} is in use by {who}", hint=hint)


class PutRecordsError(KclpyLocalError):
    """Some records were still refused after every retry (``failed`` = error codes)."""

    def __init__(self, stream: str, failed: Sequence[tuple[str, str]]) -> None:
        self.stream = stream
        self.failed = tuple(failed)
        codes = sorted({code for code, _ in failed})
        super().__init__(
            f"{len(failed)} record(s) not accepted by stream {stream!r}: {', '.join(codes)}"
        )


class BootstrapError(KclpyLocalError):
    """The jars, the cache or the launcher build failed."""

    exit_code = 5


class ArtifactDownloadError(BootstrapError):
    """A jar could not be downloaded."""

    def __init__(self, artifact: str, url: str, reason: str) -> None:
        self.artifact = artifact
        self.url = url
        self.reason = reason
        super().__init__(f"cannot download {artifact} from {url}: {reason}")


class ArtifactIntegrityError(BootstrapError):
    """A jar's content does not match its pinned sha256."""

    def __init__(self, artifact: str, location: str, expected: str, actual: str) -> None:
        self.artifact = artifact
        self.location = location
        self.expected = expected
        self.actual = actual
        super().__init__(f"{artifact} from {location} has sha256 {actual}, expected {expected}")


class JavaNotFoundError(BootstrapError):
    """No usable ``java`` or ``javac`` was found, or it is too old."""

    exit_code = 6


def with_log_tail(message: str, heading: str, log_tail: Sequence[str]) -> str:
    """``message`` followed by a process's last output lines, indented under
    ``heading`` (``message`` alone when there are none): the text of an error
    that carries a log tail."""
    if not log_tail:
        return message
    return f"{message}\n{heading}:\n" + "\n".join(f"  {ln}" for ln in log_tail)


class ProcessError(KclpyLocalError):
    """A child process misbehaved (for instance it survived SIGKILL).

    The layers above translate it into their own errors (:class:`DaemonError`,
    :class:`EmulatorError`) at their boundary.
    """


class NotReadyError(ProcessError):
    """A readiness wait ended before its check passed.

    ``gone`` tells that the process exited first (``returncode`` is its exit
    code then, when known), else the wait timed out after ``timeout`` seconds;
    ``last`` is the check's last answer and ``log_tail`` the process's last
    output lines.
    """

    def __init__(
        self,
        what: str,
        *,
        last: str,
        timeout: float | None,
        gone: bool = False,
        returncode: int | None = None,
        log_tail: tuple[str, ...] = (),
    ) -> None:
        self.what = what
        self.last = last
        self.timeout = timeout
        self.gone = gone
        self.returncode = returncode
        self.log_tail = log_tail
        if gone:
            code = "" if returncode is None else f" with code {returncode}"
            text = f"{what} exited{code} before it was ready"
        else:
            text = f"{what} not ready within {timeout or 0:g}s (last: {last})"
        super().__init__(with_log_tail(text, "last output lines", log_tail))


class DaemonError(KclpyLocalError):
    """The KCL daemon failed."""

    exit_code = 7


class DaemonStartError(DaemonError):
    """The daemon did not become ready; ``log_tail`` holds its last log lines."""

    def __init__(self, message: str, log_tail: tuple[str, ...] = ()) -> None:
        self.log_tail = log_tail
        super().__init__(with_log_tail(message, "last daemon log lines", log_tail))


class EmulatorError(KclpyLocalError):
    """The local AWS emulator failed or is unreachable."""

    exit_code = 8


class PortInUseError(EmulatorError):
    """The requested port is already bound by another process."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        super().__init__(f"port {port} on {host} is already in use")
        self.hint = f"stop what listens on {host}:{port}, or pick another port with --port"


class InstallError(EmulatorError):
    """Installing a pinned engine failed; ``registry_unreachable`` tells a network
    failure (its package registry cannot be reached) from the rest."""

    registry_unreachable = False


class CargoNotFoundError(InstallError):
    """ferrokinesis is not built yet, and ``cargo`` (which builds it) is not on PATH."""

    def __init__(self) -> None:
        super().__init__(
            "the ferrokinesis engine is built with cargo on first use, "
            "and cargo is not on PATH nor in $CARGO_HOME/bin (needs cargo: Rust's build tool)"
        )
        self.hint = (
            "install Rust with cargo (https://rustup.rs, or apt-get install cargo), then retry"
        )


class FerrokinesisInstallError(InstallError):
    """``cargo install`` of the ferrokinesis engine failed, or built something unsound.

    ``registry_unreachable`` tells a network failure (crates.io) from the rest.
    """
