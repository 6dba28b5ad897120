"""Which endpoint a command talks to, and why.

:func:`resolve` is the one place that decides it, for every command that
finds an endpoint by itself (``put``, ``leases``, ``metrics``, ``run``,
``doctor``), in this order:

1. the command's flag (``--endpoint URL``);
2. ``$KCLPY_LOCAL_ENDPOINT``;
3. the emulator ``kclpy-local up`` started, from the registry in the state
   directory (for Kinesis the engine beside moto, when ``up --kinesis`` started
   one);
4. the default, ``http://127.0.0.1:4566`` (``run`` starts its embedded
   emulator instead).

The answer is an :class:`Endpoint`: the URL, its source and the reason in
words, which the command line prints as one line on stderr
(``kclpy-local: endpoint URL (REASON)``), so that two commands that disagree
show it at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .. import _env
from .moto import DEFAULT_HOST, DEFAULT_PORT
from .registry import MOTO, EmulatorRecord, kinesis_is_live, read_record, record_is_live

__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_REASON",
    "SERVICES",
    "Endpoint",
    "Service",
    "Source",
    "resolve",
]

DEFAULT_ENDPOINT = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
#: How a ``default`` endpoint's reason begins (``the default: WHY``).
DEFAULT_REASON = "the default"

Service = Literal["kinesis", "dynamodb", "cloudwatch"]
SERVICES: tuple[Service, ...] = ("kinesis", "dynamodb", "cloudwatch")
#: ``flag``: the command's option; ``variable``: ``$KCLPY_LOCAL_ENDPOINT``;
#: ``emulator``: what ``kclpy-local up`` started; ``default``: none of these.
Source = Literal["flag", "variable", "emulator", "default"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The endpoint a command uses for one service, where it came from and why.

    ``record`` is the running emulator's registry record when ``source`` is
    ``emulator``; ``reason`` is the explanation in words.
    """

    url: str
    source: Source
    reason: str
    service: Service = "kinesis"
    record: EmulatorRecord | None = None

    def describe(self) -> str:
        """``URL (REASON)``."""
        return f"{self.url} ({self.reason})"


def resolve(
    explicit: str | None,
    service: Service = "kinesis",
    *,
    flag: str = "--endpoint",
    environ: Mapping[str, str] | None = None,
    state_dir: Path | None = None,
) -> Endpoint:
    """The endpoint for ``service``: ``explicit`` (the value of ``flag``), else
    ``$KCLPY_LOCAL_ENDPOINT``, else the emulator ``up`` started (read from
    ``state_dir``, default :func:`~kclpy_local._env.default_state_dir`), else
    :data:`DEFAULT_ENDPOINT`."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}")
    if explicit:
        return Endpoint(explicit, "flag", f"from {flag}", service)
    variable = _env.ENDPOINT
    from_env = variable.get(environ)
    if from_env:
        return Endpoint(from_env, "variable", f"from ${variable.name}", service)
    directory = state_dir if state_dir is not None else _env.default_state_dir()
    record = read_record(directory)
    if record is None:
        return Endpoint(
            DEFAULT_ENDPOINT,
            "default",
            f"{DEFAULT_REASON}: no emulator recorded in the state dir {directory}",
            service,
        )
    if not record_is_live(record):
        return Endpoint(
            DEFAULT_ENDPOINT,
            "default",
            f"{DEFAULT_REASON}: the emulator recorded in the state dir {directory} "
            f"(pid {record.pid}) is gone",
            service,
        )
    origin = f"from the state dir {directory}"
    if record.kinesis is None:
        reason = f"running emulator {MOTO}, pid {record.pid}, {origin}"
        return Endpoint(record.endpoint, "emulator", reason, service, record)
    engine = record.kinesis
    if service != "kinesis":
        reason = (
            f"running emulator {MOTO}, pid {record.pid}, {origin}; "
            f"Kinesis is on {engine.engine} at {engine.endpoint}"
        )
        return Endpoint(record.endpoint, "emulator", reason, service, record)
    if kinesis_is_live(record):
        reason = f"running emulator {engine.engine} for Kinesis, pid {engine.pid}, {origin}"
        return Endpoint(engine.endpoint, "emulator", reason, service, record)
    reason = (
        f"running emulator {MOTO}, pid {record.pid}, {origin}; "
        f"its {engine.engine} for Kinesis (pid {engine.pid}) is gone"
    )
    return Endpoint(record.endpoint, "emulator", reason, service, record)
