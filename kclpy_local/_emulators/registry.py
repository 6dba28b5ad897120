"""The registry of emulators that ``kclpy-local up`` started: a pid file per state directory.

The state directory is ``--state-dir``, else ``$KCLPY_LOCAL_STATE``, else
``$XDG_STATE_HOME/kclpy-local``, else ``~/.local/state/kclpy-local``. The pid
file is JSON: ``{"pid", "port", "endpoint", "started_at", "log_file", "engine"}``
(``engine``: ``moto``, or ``ministack`` with its ``"version"``; moto when absent), plus
``"kinesis": {"engine", "version", "pid", "port", "tls_port", "endpoint",
"log_file"}`` when another Kinesis engine runs beside moto. Every command that
looks for a running emulator (``up``, ``down``, ``run``, ``put``, ...) reads it
here; writes are atomic and made under the directory's lock.

:func:`use_running` is the rule for a command that would start an engine
of its own (``run --kinesis NAME``, for Kinesis; or in the main process's
place) while ``up``'s emulator runs: it uses the running engine when the kinds
agree and refuses when they do not, so that there are never two engines of
which ``put``, ``leases`` and ``metrics`` know only one. It compares engine
names only; an engine added later needs nothing of its own here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from .. import _env, _files
from .._exceptions import EmulatorError, UsageError
from .._process import pid_alive
from .engines import (
    DEFAULT_ENGINE,
    is_engine_process,
    is_kinesis_engine_process,
    stop_kinesis_engine,
)

__all__ = [
    "LOG_FILE",
    "MOTO",
    "PID_FILE",
    "EmulatorRecord",
    "KinesisRecord",
    "check_state_dir",
    "kinesis_is_live",
    "kinesis_log_file",
    "locked",
    "read_record",
    "record_is_live",
    "remove_record",
    "stop_kinesis",
    "use_running",
    "write_record",
]

logger = logging.getLogger(__name__)

PID_FILE = "emulator.json"
LOG_FILE = "emulator.log"
LOCK_FILE = ".lock"
#: The engine of the pid file's main process (DynamoDB and CloudWatch, and Kinesis
#: unless ``kinesis`` names another engine).
MOTO = "moto"


@dataclass(frozen=True, slots=True)
class KinesisRecord:
    """The Kinesis engine that runs beside moto (``up --kinesis kinesis-mock`` or
    ``ferrokinesis``); ``tls_port`` is 0 for an engine without one."""

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

    @property
    def main_engine(self) -> str:
        """The kind of engine of the main process (``pid``, ``endpoint``)."""
        return self.engine

    @property
    def kinesis_engine(self) -> str:
        """The kind of engine that serves Kinesis (``moto``, ``kinesis-mock``, ...)."""
        return self.kinesis.engine if self.kinesis is not None else self.main_engine

    @property
    def kinesis_pid(self) -> int:
        """The pid of the process that serves Kinesis."""
        return self.kinesis.pid if self.kinesis is not None else self.pid


def _not_a_directory(state_dir: Path) -> UsageError:
    return UsageError(
        f"the state directory {state_dir} is not a directory",
        hint=f"remove it, or point --state-dir or ${_env.STATE.name} at a directory",
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
    with _files.locked(state_dir / LOCK_FILE):
        yield


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


def kinesis_log_file(engine: str) -> str:
    """The name of the log file of the Kinesis engine ``engine`` in the state directory."""
    return f"{engine}.log"


def kinesis_is_live(record: EmulatorRecord) -> bool:
    """Whether the recorded Kinesis engine still runs (``False`` when there is none)."""
    engine = record.kinesis
    return (
        engine is not None
        and pid_alive(engine.pid)
        and is_kinesis_engine_process(engine.engine, engine.pid) is not False
    )


def stop_kinesis(record: EmulatorRecord, timeout: float = 5.0) -> bool:
    """Stop the recorded Kinesis engine if it still runs; True if it ran."""
    if record.kinesis is None or not kinesis_is_live(record):
        return False
    return stop_kinesis_engine(record.kinesis.engine, record.kinesis.pid, timeout)


def use_running(
    record: EmulatorRecord,
    requested: str | None,
    state_dir: Path,
    option: str = "--kinesis",
    role: Literal["kinesis", "main"] = "kinesis",
) -> EmulatorRecord:
    """``record`` (live) when a command that asks for engine ``requested`` (``None``:
    not asked) in ``role`` (``kinesis``: what serves Kinesis; ``main``: the main
    process) may use it instead of starting one of its own.

    The kinds must agree: a second engine would be one that ``put``, ``leases``
    and ``metrics`` do not know (they read this registry), so a different kind
    is refused with a :class:`UsageError` (exit 2) naming both engines and the
    fix. A recorded Kinesis engine that is gone is an :class:`EmulatorError`.
    """
    if role == "kinesis":
        running, url, pid = record.kinesis_engine, record.kinesis_endpoint, record.kinesis_pid
        serves, second = " for Kinesis", "a second Kinesis engine"
    else:
        running, url, pid = record.main_engine, record.endpoint, record.pid
        serves, second = "", "a second emulator"
    where = (
        f"`kclpy-local up` started {running}{serves} at {url} (pid {pid}, state dir {state_dir})"
    )
    if requested is not None and requested != running:
        raise UsageError(
            f"{option} {requested} would start {second}, but {where}; "
            f"put, leases and metrics use that one",
            hint=f"drop {option} to use the running {running}, or stop it first with "
            f"`kclpy-local down` (then `kclpy-local up {option} {requested}` to share one "
            f"with the other commands)",
        )
    if record.kinesis is not None and not kinesis_is_live(record):
        err = EmulatorError(
            f"the {record.kinesis.engine} that `kclpy-local up` started for Kinesis "
            f"(pid {record.kinesis.pid}, "
            f"state dir {state_dir}) is gone"
        )
        err.hint = "stop the rest with `kclpy-local down`, then start again"
        raise err
    return record
