"""The registry of emulators that ``kclpy-local up`` started: a pid file per state directory.

The state directory is ``--state-dir``, else ``$KCLPY_LOCAL_STATE``, else
``$XDG_STATE_HOME/kclpy-local``, else ``~/.local/state/kclpy-local``. The pid
file is JSON: ``{"pid", "port", "endpoint", "started_at", "log_file", "engine"}``
(``engine``: ``moto``, or ``ministack`` with its ``"version"``; moto when absent), plus
``"kinesis": {"engine", "version", "pid", "port", "tls_port", "endpoint",
"log_file"}`` when another Kinesis engine runs beside moto. Every command that
looks for a running emulator (``up``, ``down``, ``run``, ``put``, ...) reads it
here; writes are atomic and made under the directory's lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import _env
from .._exceptions import UsageError
from .._process import pid_alive
from .engines import DEFAULT_ENGINE, is_engine_process
from .kinesis_mock import is_kinesis_mock_process, stop_group

__all__ = [
    "KINESIS_LOG_FILE",
    "LOG_FILE",
    "PID_FILE",
    "STATE_ENV",
    "EmulatorRecord",
    "KinesisRecord",
    "check_state_dir",
    "kinesis_is_live",
    "locked",
    "read_record",
    "record_is_live",
    "remove_record",
    "stop_kinesis",
    "write_record",
]

logger = logging.getLogger(__name__)

STATE_ENV = _env.STATE.name
PID_FILE = "emulator.json"
LOG_FILE = "emulator.log"
KINESIS_LOG_FILE = "kinesis-mock.log"
LOCK_FILE = ".lock"


@dataclass(frozen=True, slots=True)
class KinesisRecord:
    """The Kinesis engine that runs beside moto (``up --kinesis kinesis-mock``)."""

    engine: str
    version: str
    pid: int
    port: int
    tls_port: int
    endpoint: str
    log_file: str


@dataclass(frozen=True, slots=True)
class EmulatorRecord:
    """What the pid file says about a running emulator.

    ``endpoint`` is the engine's (moto or MiniStack: DynamoDB and CloudWatch, and
    Kinesis unless ``kinesis`` names another engine).
    """

    pid: int
    port: int
    endpoint: str
    started_at: str
    log_file: str
    kinesis: KinesisRecord | None = None
    engine: str = DEFAULT_ENGINE
    version: str = ""

    @property
    def kinesis_endpoint(self) -> str:
        """Where Kinesis is served."""
        return self.kinesis.endpoint if self.kinesis is not None else self.endpoint


def _not_a_directory(state_dir: Path) -> UsageError:
    return UsageError(
        f"the state directory {state_dir} is not a directory",
        hint=f"remove it, or point --state-dir or ${STATE_ENV} at a directory",
    )


def check_state_dir(state_dir: Path) -> Path:
    """``state_dir``, unless it exists and is not a directory (:class:`UsageError`)."""
    if state_dir.exists() and not state_dir.is_dir():
        raise _not_a_directory(state_dir)
    return state_dir


@contextlib.contextmanager
def locked(state_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the state directory (one ``up``/``down`` at a time)."""
    try:
        check_state_dir(state_dir).mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise _not_a_directory(state_dir) from None
    with (state_dir / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_record(state_dir: Path) -> EmulatorRecord | None:
    """The pid file's record; ``None`` when there is none or it is unreadable."""
    path = state_dir / PID_FILE
    try:
        data = json.loads(path.read_text())
        kinesis = data.get("kinesis")
        return EmulatorRecord(
            pid=int(data["pid"]),
            port=int(data["port"]),
            endpoint=str(data["endpoint"]),
            started_at=str(data.get("started_at", "")),
            log_file=str(data.get("log_file", "")),
            kinesis=None
            if kinesis is None
            else KinesisRecord(
                engine=str(kinesis["engine"]),
                version=str(kinesis.get("version", "")),
                pid=int(kinesis["pid"]),
                port=int(kinesis["port"]),
                tls_port=int(kinesis.get("tls_port", 0)),
                endpoint=str(kinesis["endpoint"]),
                log_file=str(kinesis.get("log_file", "")),
            ),
            engine=str(data.get("engine", DEFAULT_ENGINE)),
            version=str(data.get("version", "")),
        )
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise _not_a_directory(state_dir) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("ignoring unreadable pid file %s: %s", path, exc)
        return None


def write_record(state_dir: Path, record: EmulatorRecord) -> Path:
    """Write the pid file atomically; return its path."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / PID_FILE
    tmp = path.with_name(f".{PID_FILE}.{os.getpid()}.tmp")
    data = asdict(record)
    if data["kinesis"] is None:
        del data["kinesis"]
    if not data["version"]:
        del data["version"]
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    return path


def remove_record(state_dir: Path, pid: int | None = None) -> None:
    """Remove the pid file (only if it still names ``pid``, when given)."""
    if pid is not None:
        current = read_record(state_dir)
        if current is not None and current.pid != pid:
            return
    (state_dir / PID_FILE).unlink(missing_ok=True)


def record_is_live(record: EmulatorRecord) -> bool:
    """Whether the recorded process still exists and is (as far as can be told) its engine."""
    return pid_alive(record.pid) and is_engine_process(record.engine, record.pid) is not False


def kinesis_is_live(record: EmulatorRecord) -> bool:
    """Whether the recorded Kinesis engine still runs (``False`` when there is none)."""
    engine = record.kinesis
    return (
        engine is not None
        and pid_alive(engine.pid)
        and is_kinesis_mock_process(engine.pid) is not False
    )


def stop_kinesis(record: EmulatorRecord, timeout: float = 5.0) -> bool:
    """Stop the recorded Kinesis engine if it still runs; True if it ran."""
    if record.kinesis is None or not kinesis_is_live(record):
        return False
    return stop_group(record.kinesis.pid, timeout)
