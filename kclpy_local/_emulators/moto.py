"""The embedded local AWS: moto in server mode, run as a subprocess.

One loopback port serves Kinesis, DynamoDB and CloudWatch (moto routes requests
by the SigV4 service name). The server runs as moto's ``moto.server`` main in a
child process (which ends when this process ends, unless detached) rather than moto's ``ThreadedMotoServer``, which hangs forever when
its port is taken: here a taken port is found by binding it first, and a server
that exits early is noticed while waiting for it to answer.

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

import errno
import importlib.util
import ipaddress
import logging
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Self

from .. import _process
from .._exceptions import EmulatorError, NotReadyError, PortInUseError, ProcessError
from .._process import Launch, Lifecycle, ManagedProcess, StopPolicy

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

# ``python -m moto.server`` that also watches its lifeline (the process names
# ``moto.server`` on its command line, which :func:`is_moto_process` looks for).
_SERVER_MAIN = (
    "import sys; from kclpy_local._process import watch_lifeline; watch_lifeline(); "
    "from moto.server import main; sys.argv[0] = 'moto.server'; main(sys.argv[1:])"
)

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4566
READY_PATH = "/moto-api/data.json"
RESET_PATH = "/moto-api/reset"
INSTALL_HINT = "pip install 'kclpy-local[emulator]'"

_TAIL_LINES = 40
_PORT_ATTEMPTS = 5
# No proxy for probes: a loopback server must not be reached through HTTP_PROXY.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# moto has no children: SIGTERM and SIGKILL go to it alone.
_SERVER_STOP = StopPolicy(kill_note="emulator pid %(pid)d ignored SIGTERM; killing it")
_PID_STOP = StopPolicy(logger_name=__name__)


class EmulatorStartError(EmulatorError):
    """The emulator did not become ready; ``log_tail`` holds its last output lines."""

    def __init__(self, message: str, log_tail: tuple[str, ...] = ()) -> None:
        self.log_tail = log_tail
        text = message
        if log_tail:
            text += "\nlast emulator output lines:\n" + "\n".join(f"  {ln}" for ln in log_tail)
        super().__init__(text)


def require_moto() -> None:
    """Raise :class:`EmulatorError` with an install hint unless moto's server can run."""
    missing = [m for m in ("moto", "flask", "flask_cors", "werkzeug") if _find_spec(m) is None]
    if missing:
        err = EmulatorError(
            f"the embedded emulator needs moto's server mode; missing: {', '.join(missing)}"
        )
        err.hint = INSTALL_HINT
        raise err


def _find_spec(name: str) -> object | None:
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def check_loopback(host: str) -> str:
    """Return ``host`` if it is an IPv4 loopback address, else raise :class:`EmulatorError`."""
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        err = EmulatorError(f"the emulator binds loopback only; refusing host {host!r}")
        err.hint = f"use {DEFAULT_HOST}"
        raise err
    return host


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Same option as the server's own socket (werkzeug sets it): a port in
    # TIME_WAIT is free, a port with a listener is not.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def ensure_port_free(host: str, port: int) -> None:
    """Raise :class:`PortInUseError` at once if ``host:port`` cannot be bound."""
    try:
        _bind(host, port).close()
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise PortInUseError(host, port) from exc
        raise EmulatorError(f"cannot bind {host}:{port}: {exc}") from exc


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port on ``host`` that was free a moment ago (bound to port 0, then closed)."""
    with _bind(host, 0) as sock:
        port: int = sock.getsockname()[1]
    return port


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
            lambda: _probe(url, path, deadline),
            timeout,
            interval=interval,
            gone=None if alive is None else lambda: not alive(),
        )
    except NotReadyError as exc:
        if exc.gone:
            raise EmulatorError(f"{endpoint_url} went away while waiting for it") from exc
        raise EmulatorError(f"{url} not ready after {timeout:.1f}s (last: {exc.last})") from exc


def _probe(url: str, path: str | None, deadline: float) -> str | None:
    """One GET of ``url``: ``None`` when it counts as an answer, else why not."""
    try:
        with _OPENER.open(url, timeout=max(0.2, min(2.0, deadline - time.monotonic()))) as r:
            if path is None or r.status == 200:
                return None
            return f"HTTP {r.status}"
    except urllib.error.HTTPError as exc:
        return None if path is None else f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))


def reset_moto(endpoint_url: str, timeout: float = 10.0) -> None:
    """Wipe every resource of the moto server at ``endpoint_url``."""
    request = urllib.request.Request(endpoint_url.rstrip("/") + RESET_PATH, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as r:
            r.read()
    except (OSError, ValueError) as exc:
        raise EmulatorError(f"cannot reset the emulator at {endpoint_url}: {exc}") from exc


def is_moto_process(pid: int) -> bool | None:
    """Whether ``pid`` runs ``moto.server``; ``None`` when this cannot be told (no /proc)."""
    cmdline = Path("/proc") / str(pid) / "cmdline"
    if not Path("/proc/self/cmdline").exists():
        return None
    try:
        return b"moto.server" in cmdline.read_bytes()
    except OSError:
        return False


def stop_pid(pid: int, timeout: float = 5.0) -> bool:
    """Stop a process: SIGTERM, wait up to ``timeout``, then SIGKILL. True if it ran."""
    try:
        return _process.stop_pid(pid, timeout, _PID_STOP)
    except ProcessError as exc:
        raise EmulatorError(str(exc)) from exc


class EmbeddedEmulator(Lifecycle):
    """moto's server on one loopback port, in a child process.

    ``port=0`` picks a free port (retrying if another process takes it between
    the pick and the server's bind). Output goes to ``log_path`` when given
    (appended), otherwise it is kept in memory; either way the last lines are
    in :class:`EmulatorStartError` when start fails. ``detach=True`` puts the
    server in a new session, so that it outlives this process once
    :meth:`release` has been called; otherwise it ends with this process
    (see :class:`~kclpy_local._process.Launch`), in a session of its own when
    ``session`` says so (out of reach of the terminal's Ctrl-C).
    """

    #: The engine's name in the registry.
    name = "moto"

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        host: str = DEFAULT_HOST,
        *,
        log_path: Path | None = None,
        detach: bool = False,
        session: bool | None = None,
        startup_timeout: float = 30.0,
        python: str = sys.executable,
    ) -> None:
        if not 0 <= port <= 65535:
            raise EmulatorError(f"invalid port {port}")
        self.host = check_loopback(host)
        self._requested_port = port
        self._port: int | None = None
        self._log_path = log_path
        self._detach = detach
        self._session = detach if session is None else session
        self._startup_timeout = startup_timeout
        self._python = python
        self._process: ManagedProcess | None = None
        self._output: ManagedProcess | None = None  # the last one started, stopped or not
        self.startup_seconds: float | None = None

    # -- properties ---------------------------------------------------------

    @property
    def port(self) -> int:
        """The port served (the real one when port 0 was asked, once started)."""
        return self._port if self._port is not None else self._requested_port

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> Self:
        """Start the server and wait until it answers; clean up if it does not."""
        if self._process is not None:
            raise EmulatorError("the emulator is already started")
        require_moto()
        attempts = _PORT_ATTEMPTS if self._requested_port == 0 else 1
        for attempt in range(1, attempts + 1):
            if self._requested_port == 0:
                port = free_port(self.host)
            else:
                port = self._requested_port
                ensure_port_free(self.host, port)
            try:
                self._launch(port)
                self._await_ready()
                return self
            except PortInUseError:
                self._cleanup()
                if attempt == attempts:
                    raise
                logger.info("port %d was taken before moto bound it; retrying", port)
            except BaseException:
                self._cleanup()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server (SIGTERM, wait, SIGKILL). Safe to call twice."""
        self._cleanup(timeout)

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the server to exit; its exit code, or ``None`` on timeout or if not started."""
        return self._process.wait(timeout) if self._process is not None else None

    def release(self) -> int:
        """Forget a detached, running server without stopping it; return its pid."""
        if self._process is None or not self._detach:
            raise EmulatorError("only a started, detached emulator can be released")
        pid = self._process.release()
        self._process = None
        return pid

    def reset(self) -> None:
        """Wipe every stream, table and metric (``POST /moto-api/reset``)."""
        reset_moto(self.endpoint_url)

    def output_tail(self) -> tuple[str, ...]:
        """The server's last output lines."""
        return self._output.tail() if self._output is not None else ()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<EmbeddedEmulator {self.endpoint_url} {state}>"

    # -- internals ----------------------------------------------------------

    def _launch(self, port: int) -> None:
        argv = [self._python, "-c", _SERVER_MAIN, "-H", self.host, "-p", str(port)]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._port = port
        self._process = self._output = ManagedProcess(
            Launch(argv, env=env, new_session=self._session, bound=not self._detach),
            name=f"moto-{port}",
            stop_policy=_SERVER_STOP,
            tail_lines=_TAIL_LINES,
            log_path=self._log_path,
            on_line=lambda line: logger.debug("moto: %s", line),
        ).start()

    def _await_ready(self) -> None:
        proc = self._process
        assert proc is not None and proc.started_at is not None
        deadline = time.monotonic() + self._startup_timeout
        try:
            proc.wait_ready(
                lambda: _probe(self.endpoint_url + READY_PATH, READY_PATH, deadline),
                self._startup_timeout,
            )
        except NotReadyError as exc:
            if not exc.gone:
                raise EmulatorStartError(
                    f"the emulator did not answer on {self.endpoint_url} "
                    f"within {self._startup_timeout:.1f}s",
                    exc.log_tail,
                ) from exc
            if any("in use" in line.lower() for line in exc.log_tail):
                raise PortInUseError(self.host, self.port) from exc
            raise EmulatorStartError(
                f"the emulator exited with code {exc.returncode} before it was ready",
                exc.log_tail,
            ) from exc
        self.startup_seconds = time.monotonic() - proc.started_at
        logger.info(
            "emulator ready on %s (pid %d) in %.2fs",
            self.endpoint_url,
            proc.pid,
            self.startup_seconds,
        )

    def _cleanup(self, timeout: float = 5.0) -> None:
        proc, self._process = self._process, None
        if proc is not None:
            try:
                proc.stop(timeout)
            except ProcessError as exc:
                raise EmulatorError(str(exc)) from exc
