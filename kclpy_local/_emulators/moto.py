"""The embedded local AWS: moto in server mode, run as a subprocess.

One loopback port serves Kinesis, DynamoDB and CloudWatch (moto routes requests
by the SigV4 service name). The server runs moto's application in a child
process (which ends when this process ends, unless detached) rather than moto's
``ThreadedMotoServer``, which hangs forever when its port is taken: here a taken
port is found by binding it first, and a server that exits early is noticed
while waiting for it to answer. In front of moto's application the server
answers CloudWatch in the Smithy RPC v2 CBOR protocol, the one KCL 3.x's AWS SDK
sends (:mod:`.moto_server`), so KCL 3.x's metrics reach moto's CloudWatch.

::

    with EmbeddedEmulator(port=0) as emu:
        client = boto3.client("kinesis", endpoint_url=emu.endpoint_url, ...)
        ...
        emu.reset()

Errors are :class:`~kclpy_local._exceptions.EmulatorError` (a server that did not
become ready: :class:`EmulatorStartError`, which carries the server's last output
lines) and :class:`~kclpy_local._exceptions.PortInUseError`.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable
from typing import Unpack

from .. import _process
from .._exceptions import EmulatorError, NotReadyError, ProcessError
from .._process import StopPolicy
from ._engine import (
    DEFAULT_HOST,
    Command,
    EmulatorStartError,
    EngineOptions,
    EngineProcess,
    check_loopback,
    ensure_port_free,
    free_port,
    http_problem,
    post,
    runs,
)

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "INSTALL_HINT",
    "READY_PATH",
    "EmbeddedEmulator",
    "EmulatorStartError",
    "check_loopback",
    "ensure_port_free",
    "free_port",
    "is_moto_process",
    "require_moto",
    "reset_moto",
    "stop_pid",
    "wait_ready",
]

# moto's server with the RPC v2 CBOR front (:mod:`.moto_server`), watching its
# lifeline (the process names ``moto.server`` on its command line, which
# :func:`is_moto_process` looks for).
_SERVER_MAIN = (
    "import sys; from kclpy_local._process import watch_lifeline; watch_lifeline(); "
    "from kclpy_local._emulators.moto_server import main; sys.argv[0] = 'moto.server'; "
    "main(sys.argv[1:])"
)

DEFAULT_PORT = 4566
READY_PATH = "/moto-api/data.json"
RESET_PATH = "/moto-api/reset"
INSTALL_HINT = "pip install 'kclpy-local[emulator]'"

# moto has no children: SIGTERM and SIGKILL go to it alone.
_SERVER_STOP = StopPolicy(kill_note="emulator pid %(pid)d ignored SIGTERM; killing it")
_PID_STOP = StopPolicy(logger_name=__name__)


def require_moto() -> None:
    """Raise :class:`EmulatorError` with an install hint unless moto's server can run."""
    needed = ("moto", "flask", "flask_cors", "werkzeug", "cbor2")
    missing = [m for m in needed if _find_spec(m) is None]
    if missing:
        err = EmulatorError(
            "the embedded emulator needs moto's server mode and cbor2 (its CloudWatch in "
            f"KCL 3.x's protocol); missing: {', '.join(missing)}"
        )
        err.hint = INSTALL_HINT
        raise err


def _find_spec(name: str) -> object | None:
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def wait_ready(
    endpoint_url: str,
    timeout: float = 10.0,
    *,
    path: str | None = None,
    interval: float = 0.05,
    alive: Callable[[], bool] | None = None,
) -> float:
    """Wait until ``endpoint_url`` answers; return the seconds waited.

    With ``path`` (e.g. :data:`READY_PATH` for moto) the endpoint is ready when a
    GET of that path answers 200. Without it, any HTTP answer counts, whatever its
    status: that suits any endpoint URL (LocalStack, kinesis-mock, a remote one).
    ``alive`` is polled between attempts; when it returns ``False`` the wait ends
    with :class:`EmulatorError` at once. On timeout, :class:`EmulatorError` names
    the last failure.
    """
    base = endpoint_url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise EmulatorError(f"not an http(s) endpoint URL: {endpoint_url!r}")
    url = base + (path or "/")
    deadline = time.monotonic() + timeout
    try:
        return _process.wait_for(
            lambda: http_problem(
                url, max(0.2, min(2.0, deadline - time.monotonic())), any_status=path is None
            ),
            timeout,
            interval=interval,
            gone=None if alive is None else lambda: not alive(),
        )
    except NotReadyError as exc:
        if exc.gone:
            raise EmulatorError(f"{endpoint_url} went away while waiting for it") from exc
        raise EmulatorError(f"{url} not ready after {timeout:.1f}s (last: {exc.last})") from exc


def reset_moto(endpoint_url: str, timeout: float = 10.0) -> None:
    """Wipe every resource of the moto server at ``endpoint_url``."""
    post(
        endpoint_url.rstrip("/") + RESET_PATH,
        timeout,
        failure=f"cannot reset the emulator at {endpoint_url}",
    )


def is_moto_process(pid: int) -> bool | None:
    """Whether ``pid`` runs ``moto.server``; ``None`` when this cannot be told (no /proc)."""
    return runs(pid, b"moto.server")


def stop_pid(pid: int, timeout: float = 5.0) -> bool:
    """Stop a process: SIGTERM, wait up to ``timeout``, then SIGKILL. True if it ran."""
    try:
        return _process.stop_pid(pid, timeout, _PID_STOP)
    except ProcessError as exc:
        raise EmulatorError(str(exc)) from exc


class EmbeddedEmulator(EngineProcess):
    """moto's server on one loopback port, in a child process.

    ``port=0`` picks a free port (retrying if another process takes it between
    the pick and the server's bind). Output, ``detach`` and ``session``: as for
    every :class:`EngineProcess`.
    """

    name = "moto"
    label = "the emulator"
    stop_policy = _SERVER_STOP
    port_taken = ("in use",)
    ready_interval = 0.05

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        host: str = DEFAULT_HOST,
        *,
        session: bool | None = None,
        python: str = sys.executable,
        **options: Unpack[EngineOptions],
    ) -> None:
        detach = options.get("detach", False)
        super().__init__((port,), host, session=detach if session is None else session, **options)
        self._python = python

    def prepare(self) -> None:
        require_moto()

    def command(self, ports: tuple[int, ...]) -> Command:
        argv = [self._python, "-c", _SERVER_MAIN, "-H", self.host, "-p", str(ports[0])]
        return Command(argv, dict(os.environ, PYTHONUNBUFFERED="1"))

    def ready_problem(self, timeout: float) -> str | None:
        return http_problem(self.endpoint_url + READY_PATH, timeout)

    def reset(self) -> None:
        """Wipe every stream, table and metric (``POST /moto-api/reset``)."""
        reset_moto(self.endpoint_url)
