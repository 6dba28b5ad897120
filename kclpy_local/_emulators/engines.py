"""The engines that serve Kinesis, DynamoDB and CloudWatch together on one loopback port.

``moto`` (the embedded default, :class:`~kclpy_local._emulators.moto.EmbeddedEmulator`)
and ``ministack`` (:class:`~kclpy_local._emulators.ministack.MiniStack`, LocalStack's
wire-compatible stand-in that needs no Docker). ``up --engine`` and ``run --engine``
start one of them; the registry records which one runs. This module is the one
place that branches on the engine's name: which class starts it, how to tell it
answers, how to recognise its process.

:data:`CBOR_SUPPORT` says, for every Kinesis engine the project knows (these
two, kinesis-mock and LocalStack), whether the Java SDK's CBOR encoding works
with it (``isCBORProtocolDisabled = false``); ``kclpy-local doctor`` prints it.

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
from . import kinesis_mock, ministack
from .ministack import MiniStack
from .moto import READY_PATH, EmbeddedEmulator, is_moto_process, require_moto, wait_ready

__all__ = [
    "AWS_ENGINES",
    "CBOR_SUPPORT",
    "CLOUDWATCH_CBOR",
    "DEFAULT_ENGINE",
    "Engine",
    "EngineSupport",
    "check_answers",
    "is_engine_process",
    "known_engine",
    "make_engine",
    "version_of",
]

AWS_ENGINES = ("moto", "ministack")
DEFAULT_ENGINE = "moto"
Engine = EmbeddedEmulator | MiniStack
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
