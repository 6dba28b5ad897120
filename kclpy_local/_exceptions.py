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
from dataclasses import KW_ONLY, dataclass

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
    """The command line's exit status for it; a subclass sets its own with
    ``class NewError(KclpyLocalError, exit_code=N)``, else inherits its parent's."""
    hint: str | None = None

    def __init_subclass__(cls, *, exit_code: int | None = None, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if exit_code is not None:
            cls.exit_code = exit_code

    def __init__(self, *args: object, hint: str | None = None) -> None:
        super().__init__(*args)
        if hint is not None:
            self.hint = hint


@dataclass(eq=False)
class ProtocolError(KclpyLocalError, _KclpyMalformedAction, exit_code=3):  # type: ignore[misc]
    """A line on the multilang pipe broke the protocol."""

    reason: str
    _: KW_ONLY
    line: str | None = None
    """The offending text (shown shortened), or ``None`` when there is none."""
    line_number: int | None = None
    """Counts the lines read from the daemon, from 1 (``None`` when unknown)."""
    field: str | None = None
    """A JSON path such as ``records[3].data``, or ``None`` for the whole line."""

    def __post_init__(self) -> None:
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


class ProcessorFailed(KclpyLocalError, exit_code=4):
    """The record processor raised while handling a message (never acknowledged)."""


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


class UsageError(KclpyLocalError, exit_code=2):
    """The arguments or the input of a command cannot be used (names which)."""


class PropertiesError(UsageError):
    """A properties file is missing, unreadable or invalid."""


class InputError(UsageError):
    """The arguments or the records given to ``put`` cannot be put."""


@dataclass(eq=False)
class StreamMismatchError(UsageError):
    """The lease table of an application holds the leases of other streams."""

    table: str
    """The lease table (the applicationName)."""
    claimed: str
    """The stream it was used for."""
    stream: str
    """The one a worker was about to start on (for several streams, their description)."""
    _: KW_ONLY
    hint: str | None = None
    message: str | None = None
    """Why, where the default (a worker on one stream resuming from another's
    checkpoints) does not say it."""

    def __post_init__(self) -> None:
        super().__init__(
            self.message
            or f"lease table {self.table!r} holds the checkpoints of stream {self.claimed!r}, "
            f"not of stream {self.stream!r}: a worker on {self.stream!r} would resume from "
            f"{self.claimed!r}'s checkpoints and skip records",
            hint=self.hint,
        )


@dataclass(eq=False)
class FanoutUnsupportedError(UsageError):
    """A worker would read by enhanced fan-out from a Kinesis engine that cannot serve it."""

    engine: str | None
    """The engine's name (``None`` when only its endpoint is known)."""
    endpoint: str | None
    """Its URL (``None`` for an engine not started yet)."""
    why: str
    """What it lacks."""
    _: KW_ONLY
    hint: str | None = None

    def __post_init__(self) -> None:
        where = self.engine or "the Kinesis engine"
        if self.endpoint:
            where += f" at {self.endpoint}"
        super().__init__(
            f"enhanced fan-out (retrievalMode FANOUT, SubscribeToShard over HTTP/2) on {where}: "
            f"{self.why}",
            hint=self.hint,
        )


@dataclass(eq=False)
class RunDirectoryBusyError(UsageError):
    """Another live ``kclpy-local run`` holds the run directory."""

    path: str
    pid: int | None
    """The other run's process id, if known."""
    _: KW_ONLY
    hint: str | None = None

    def __post_init__(self) -> None:
        who = f"another run (pid {self.pid})" if self.pid is not None else "another run"
        super().__init__(f"the run directory {self.path} is in use by {who}", hint=self.hint)


@dataclass(eq=False)
class PutRecordsError(KclpyLocalError):
    """Some records were still refused after every retry."""

    stream: str
    failed: Sequence[tuple[str, str]]
    """Each refused record's error code and message (a tuple, whatever was given)."""

    def __post_init__(self) -> None:
        self.failed = tuple(self.failed)
        codes = sorted({code for code, _ in self.failed})
        super().__init__(
            f"{len(self.failed)} record(s) not accepted by stream {self.stream!r}: "
            + ", ".join(codes)
        )


class BootstrapError(KclpyLocalError, exit_code=5):
    """The jars, the cache or the launcher build failed."""


@dataclass(eq=False)
class ArtifactDownloadError(BootstrapError):
    """A jar could not be downloaded."""

    artifact: str
    """Its Maven coordinate."""
    url: str
    """Where it was downloaded from (a repository URL, or a ``file:`` one)."""
    reason: str
    """What went wrong, and after how many attempts."""

    def __post_init__(self) -> None:
        super().__init__(f"cannot download {self.artifact} from {self.url}: {self.reason}")


@dataclass(eq=False)
class ArtifactIntegrityError(BootstrapError):
    """A jar's content does not match its pinned sha256."""

    artifact: str
    """Its Maven coordinate."""
    location: str
    """Where the content came from (a URL or a file)."""
    expected: str
    actual: str

    def __post_init__(self) -> None:
        super().__init__(
            f"{self.artifact} from {self.location} has sha256 {self.actual}, "
            f"expected {self.expected}"
        )


class JavaNotFoundError(BootstrapError, exit_code=6):
    """No usable ``java`` or ``javac`` was found, or it is too old."""


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


@dataclass(eq=False)
class NotReadyError(ProcessError):
    """A readiness wait ended before its check passed."""

    what: str
    """The process waited for, as the message names it."""
    _: KW_ONLY
    last: str
    """The check's last answer."""
    timeout: float | None
    """How long the wait was, in seconds."""
    gone: bool = False
    """The process exited first (else the wait timed out)."""
    returncode: int | None = None
    """The exit code of a process that is gone, when known."""
    log_tail: tuple[str, ...] = ()
    """The process's last output lines."""

    def __post_init__(self) -> None:
        if self.gone:
            code = "" if self.returncode is None else f" with code {self.returncode}"
            text = f"{self.what} exited{code} before it was ready"
        else:
            text = f"{self.what} not ready within {self.timeout or 0:g}s (last: {self.last})"
        super().__init__(with_log_tail(text, "last output lines", self.log_tail))


class DaemonError(KclpyLocalError, exit_code=7):
    """The KCL daemon failed."""


@dataclass(eq=False)
class DaemonStartError(DaemonError):
    """The daemon did not become ready."""

    message: str
    log_tail: tuple[str, ...] = ()
    """Its last log lines."""

    def __post_init__(self) -> None:
        super().__init__(with_log_tail(self.message, "last daemon log lines", self.log_tail))


class EmulatorError(KclpyLocalError, exit_code=8):
    """The local AWS emulator failed or is unreachable."""


@dataclass(eq=False)
class PortInUseError(EmulatorError):
    """The requested port is already bound by another process."""

    host: str
    port: int

    def __post_init__(self) -> None:
        super().__init__(
            f"port {self.port} on {self.host} is already in use",
            hint=f"stop what listens on {self.host}:{self.port}, or pick another port with --port",
        )


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
