"""Which engine serves what: the engines `up` and `run` start, in one place.

``moto`` (the embedded default, :class:`~kclpy_local._emulators.moto.EmbeddedEmulator`)
and ``ministack`` (:class:`~kclpy_local._emulators.ministack.MiniStack`, LocalStack's
wire-compatible stand-in that needs no Docker) serve Kinesis, DynamoDB and
CloudWatch together on one loopback port (:data:`AWS_ENGINES`); ``up --engine``
and ``run --engine`` start one of them. ``kinesis-mock``
(:class:`~kclpy_local._emulators.kinesis_mock.KinesisMock`) and ``ferrokinesis``
(:class:`~kclpy_local._emulators.ferrokinesis.Ferrokinesis`) serve Kinesis only,
beside moto (:data:`KINESIS_ENGINES`); ``up --kinesis`` and ``run --kinesis``
start one of them. The registry records which ones run. This module is the one
place that branches on an engine's name: which class starts it, how to tell it
answers, how to recognise and stop its process.

:data:`CBOR_SUPPORT` says, for every Kinesis engine the project knows (these,
and LocalStack), whether the Java SDK's CBOR encoding works with it
(``isCBORProtocolDisabled = false``); ``kclpy-local doctor`` prints it, and
:func:`cbor_disabled` is the setting a daemon gets for a Kinesis engine.

:data:`CLOUDWATCH_CBOR` names the engines whose CloudWatch answers the Smithy RPC
v2 CBOR protocol, the only one KCL 3.x's AWS SDK sends CloudWatch requests in, so
KCL 3.x's metrics stay on there: moto, through the front of the embedded server
(:mod:`.moto_server`). Not MiniStack: its CloudWatch decodes RPC v2 CBOR with the
optional ``cbor2`` package, which the pinned installation has not, so it drops
every such request and answers 200 with JSON text (``kclpy-local run`` asks it,
finds that out, and turns KCL 3.x's metrics off on the ``local`` profile).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .._exceptions import UsageError
from . import ferrokinesis, kinesis_mock, ministack
from .ferrokinesis import Ferrokinesis
from .kinesis_mock import KinesisMock
from .ministack import MiniStack
from .moto import READY_PATH, EmbeddedEmulator, is_moto_process, require_moto, wait_ready

__all__ = [
    "AWS_ENGINES",
    "CBOR_SUPPORT",
    "CLOUDWATCH_CBOR",
    "DEFAULT_ENGINE",
    "KINESIS_ENGINES",
    "Engine",
    "EngineSupport",
    "KinesisEngine",
    "cbor_disabled",
    "check_answers",
    "first_use_note",
    "is_engine_process",
    "is_kinesis_engine_process",
    "known_engine",
    "make_engine",
    "make_kinesis_engine",
    "stop_kinesis_engine",
    "version_of",
]

AWS_ENGINES = ("moto", "ministack")
DEFAULT_ENGINE = "moto"
Engine = EmbeddedEmulator | MiniStack
#: What can serve Kinesis: moto itself, or an engine beside it (Kinesis only).
KINESIS_ENGINES = ("moto", "kinesis-mock", "ferrokinesis")
KinesisEngine = KinesisMock | Ferrokinesis
_READY_PATHS = {"moto": READY_PATH, "ministack": ministack.READY_PATH}
#: The engines whose CloudWatch answers the Smithy RPC v2 CBOR protocol.
CLOUDWATCH_CBOR: frozenset[str] = frozenset({"moto"})


@dataclass(frozen=True, slots=True)
class EngineSupport:
    """Whether an engine serves one way of reading its Kinesis (CBOR, enhanced
    fan-out), and why (not)."""

    engine: str
    works: bool
    why: str


CBOR_SUPPORT = (
    EngineSupport("moto", False, "no CBOR at all: every CBOR request answers HTTP 500"),
    EngineSupport(
        "kinesis-mock",
        kinesis_mock.CBOR_RECORDS_WORK,
        "CBOR requests work, but GetRecords sends each record's Data as text, which the "
        "Java SDK refuses",
    ),
    EngineSupport(
        "ferrokinesis",
        ferrokinesis.CBOR_WORKS,
        "GetRecords over CBOR carries each record's Data as bytes, which the Java SDK reads",
    ),
    EngineSupport(
        "localstack",
        kinesis_mock.CBOR_RECORDS_WORK,
        "LocalStack's Kinesis is kinesis-mock (see kinesis-mock)",
    ),
    EngineSupport(
        "ministack",
        ministack.CBOR_WORKS,
        "CBOR needs MiniStack's optional cbor2 package, which the pinned installation has not: "
        "every CBOR request answers SerializationException",
    ),
)


def known_engine(name: str) -> str:
    """``name`` if it is an engine of :data:`AWS_ENGINES`, else :class:`UsageError`."""
    if name not in AWS_ENGINES:
        raise UsageError(f"unknown engine {name!r}; choose one of {', '.join(AWS_ENGINES)}")
    return name


def make_engine(
    name: str,
    port: int,
    *,
    log_path: Path | None = None,
    detach: bool = False,
    session: bool | None = None,
    startup_timeout: float = 30.0,
) -> Engine:
    """The engine ``name`` on ``port`` of 127.0.0.1, not started yet; moto's
    packages are checked here, MiniStack is installed when it starts.

    ``detach``: it may outlive this process (``kclpy-local up``); otherwise it
    ends with it. ``session``: in a session of its own even so (out of reach of
    the terminal's Ctrl-C); MiniStack always is."""
    if known_engine(name) == "ministack":
        return MiniStack(
            port, log_path=log_path, detach=detach, startup_timeout=max(startup_timeout, 60.0)
        )
    require_moto()
    return EmbeddedEmulator(
        port, log_path=log_path, detach=detach, session=session, startup_timeout=startup_timeout
    )


def version_of(engine: Engine) -> str:
    """The engine's version, for the registry ("" for moto, which is a package of this one)."""
    return engine.version


def check_answers(name: str, endpoint: str, timeout: float = 3.0) -> None:
    """:class:`~kclpy_local._exceptions.EmulatorError` unless the engine ``name`` at
    ``endpoint`` is ready."""
    wait_ready(endpoint, timeout=timeout, path=_READY_PATHS.get(name))


def is_engine_process(name: str, pid: int) -> bool | None:
    """Whether ``pid`` runs the engine ``name`` (``None``: cannot be told; an
    unknown name is no engine of ours)."""
    if name == "ministack":
        return ministack.is_ministack_process(pid)
    if name == "moto":
        return is_moto_process(pid)
    return False


# -- Kinesis engines beside moto ------------------------------------------------------


def make_kinesis_engine(
    name: str,
    port: int = 0,
    *,
    log_path: Path | None = None,
    detach: bool = False,
    startup_timeout: float = 60.0,
) -> KinesisEngine:
    """The Kinesis engine ``name`` (``kinesis-mock`` or ``ferrokinesis``) on ``port``
    of 127.0.0.1, not started yet; it is installed when it starts. ``detach``: it
    may outlive this process (``kclpy-local up``)."""
    if name == "kinesis-mock":
        return KinesisMock(
            port, log_path=log_path, detach=detach, startup_timeout=max(startup_timeout, 60.0)
        )
    if name == "ferrokinesis":
        return Ferrokinesis(port, log_path=log_path, detach=detach, startup_timeout=startup_timeout)
    others = [engine for engine in KINESIS_ENGINES if engine != "moto"]
    raise UsageError(f"unknown Kinesis engine {name!r}; choose one of {', '.join(others)}")


def first_use_note(name: str, cache_dir: Path | None = None) -> str | None:
    """What a command says before it starts the Kinesis engine ``name`` when starting
    it will first take minutes (ferrokinesis, not built yet); else ``None``."""
    if name != "ferrokinesis" or ferrokinesis.find_installation(cache_dir) is not None:
        return None
    root = ferrokinesis.install_root(cache_dir)
    return (
        f"building {ferrokinesis.PACKAGE} {ferrokinesis.VERSION} with cargo into {root} "
        "(first use only; a few minutes)"
    )


def cbor_disabled(name: str) -> bool:
    """The ``isCBORProtocolDisabled`` a daemon gets for the Kinesis engine ``name``:
    false only where it reads records over CBOR (:data:`CBOR_SUPPORT`)."""
    return not any(s.works for s in CBOR_SUPPORT if s.engine == name)


def is_kinesis_engine_process(name: str, pid: int) -> bool | None:
    """Whether ``pid`` runs the Kinesis engine ``name`` (``None``: cannot be told;
    an unknown name is no engine of ours)."""
    if name == "kinesis-mock":
        return kinesis_mock.is_kinesis_mock_process(pid)
    if name == "ferrokinesis":
        return ferrokinesis.is_ferrokinesis_process(pid)
    return False


def stop_kinesis_engine(name: str, pid: int, timeout: float = 5.0) -> bool:
    """Stop the process group of the Kinesis engine ``name`` that ``pid`` leads, as
    that engine is stopped; True if it ran."""
    if name == "ferrokinesis":
        return ferrokinesis.stop_group(pid, timeout)
    return kinesis_mock.stop_group(pid, timeout)
