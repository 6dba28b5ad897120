"""An engine's process: the lifecycle moto, MiniStack and kinesis-mock share.

:class:`EngineProcess` is one :class:`~kclpy_local._process.ManagedProcess`
serving on loopback ports. Its :meth:`~EngineProcess.start` picks the ports (a
free one for each port asked as 0, retrying when another process takes one
before the engine binds it; a fixed port that is taken fails at once with
:class:`~kclpy_local._exceptions.PortInUseError`), starts the child, waits
until it answers and, for an engine that may bind beyond loopback, reads its
listening sockets from ``/proc`` and stops it if one is elsewhere. A subclass
says only what differs: the command that starts it (:meth:`~EngineProcess.command`),
how to tell it answers (:meth:`~EngineProcess.ready_problem`), what comes first
(:meth:`~EngineProcess.prepare`: an installation, a check) and the words of its
output that say its port was taken. Every engine's constructor takes the options of
:class:`EngineOptions` and hands them on; an engine run from an installation of its
own in the cache is an :class:`InstalledEngine` (its options: :class:`InstalledOptions`).

The child is *bound* (see :class:`~kclpy_local._process.Launch`): it ends when
this process ends, however it ends, unless the engine is started with
``detach=True``; then :meth:`~EngineProcess.release` hands it over, and it
outlives this process (``kclpy-local up``).

Also here, for every engine: the loopback checks (:func:`check_loopback`,
:func:`ensure_port_free`, :func:`free_port`), HTTP probes that bypass any proxy
(:func:`http_problem`, :func:`post`), a process's listening sockets
(:func:`listening_sockets`) and its command line (:func:`runs`).
"""

from __future__ import annotations

import abc
import contextlib
import errno
import ipaddress
import logging
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Generic, NamedTuple, Self, TypedDict, TypeVar, Unpack

from .._exceptions import EmulatorError, NotReadyError, PortInUseError, ProcessError
from .._process import Launch, Lifecycle, ManagedProcess, StopPolicy

__all__ = [
    "DEFAULT_HOST",
    "OPENER",
    "Command",
    "EmulatorStartError",
    "EngineOptions",
    "EngineProcess",
    "InstalledEngine",
    "InstalledOptions",
    "Listener",
    "check_loopback",
    "ensure_port_free",
    "free_port",
    "http_problem",
    "listening_sockets",
    "post",
    "routine_kill",
    "runs",
]

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
#: Opens URLs without a proxy: a loopback server must not be reached through HTTP_PROXY.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_TAIL_LINES = 40
_PORT_ATTEMPTS = 5


class EmulatorStartError(EmulatorError):
    """The emulator did not become ready; ``log_tail`` holds its last output lines."""

    def __init__(self, message: str, log_tail: tuple[str, ...] = ()) -> None:
        self.log_tail = log_tail
        text = message
        if log_tail:
            text += "\nlast emulator output lines:\n" + "\n".join(f"  {ln}" for ln in log_tail)
        super().__init__(text)


# -- loopback ports -------------------------------------------------------------------


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
    # Same option as the servers' own sockets (werkzeug sets it): a port in
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


def routine_kill(label: str, grace: float, logger_name: str) -> StopPolicy:
    """How an engine is stopped whose SIGKILL after ``grace`` seconds is routine:
    SIGTERM to its process group, and the note before SIGKILL logged at DEBUG."""
    return StopPolicy(
        max_grace=grace,
        kill_note=f"{label} pid %(pid)d still runs after SIGTERM; killing it",
        kill_note_level=logging.DEBUG,
        logger_name=logger_name,
    )


# -- HTTP -----------------------------------------------------------------------------


def http_problem(url: str, timeout: float, *, any_status: bool = False) -> str | None:
    """One GET of ``url``: ``None`` when it answers 200 (``any_status``: any HTTP
    answer at all), else why not."""
    try:
        with OPENER.open(url, timeout=timeout) as response:
            if any_status or response.status == 200:
                return None
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return None if any_status else f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))


def post(url: str, timeout: float, *, failure: str) -> None:
    """POST to ``url`` with no body (an engine's reset); :class:`EmulatorError`
    starting with ``failure`` when it does not answer."""
    request = urllib.request.Request(url, method="POST")
    try:
        with OPENER.open(request, timeout=timeout) as response:
            response.read()
    except (OSError, ValueError) as exc:
        raise EmulatorError(f"{failure}: {exc}") from exc


# -- what a process is ----------------------------------------------------------------


def runs(pid: int, needle: bytes) -> bool | None:
    """Whether the command line of ``pid`` (its arguments, each ended by NUL)
    holds ``needle``; ``None`` when this cannot be told (no /proc)."""
    if not Path("/proc/self/cmdline").exists():
        return None
    try:
        cmdline = (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False
    return needle in cmdline + b"\x00"


@dataclass(frozen=True, slots=True)
class Listener:
    """A listening TCP socket (or a bound UDP one) of a process."""

    protocol: str  # "tcp", "tcp6", "udp" or "udp6"
    address: str
    port: int

    @property
    def loopback(self) -> bool:
        return ipaddress.ip_address(self.address).is_loopback


def _proc_address(text: str) -> tuple[str, int]:
    host_hex, port_hex = text.split(":")
    raw = bytes.fromhex(host_hex)
    # The kernel prints each 32-bit word in host (little-endian) order.
    ordered = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(ordered)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address), int(port_hex, 16)


def listening_sockets(pid: int) -> list[Listener] | None:
    """The sockets ``pid`` listens on (TCP) or has bound (UDP), from ``/proc``.

    ``None`` where this cannot be told (no ``/proc``, or the process is gone).
    """
    proc = Path("/proc") / str(pid)
    try:
        inodes = set()
        for fd in (proc / "fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
        tables = {
            name: (proc / "net" / name).read_text() for name in ("tcp", "tcp6", "udp", "udp6")
        }
    except OSError:
        return None
    found = []
    for name, table in tables.items():
        for line in table.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10 or fields[9] not in inodes:
                continue
            state = fields[3]
            if (name.startswith("tcp") and state != "0A") or (
                name.startswith("udp") and state != "07"
            ):
                continue  # 0A: TCP LISTEN; 07: UDP unconnected (bound)
            address, port = _proc_address(fields[1])
            found.append(Listener(name, address, port))
    return found


# -- the engine -----------------------------------------------------------------------


class Command(NamedTuple):
    """What starts an engine: its arguments, its whole environment, its directory."""

    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path | None = None


class EngineOptions(TypedDict, total=False):
    """The options every engine's constructor hands on to :class:`EngineProcess`
    (its docstring says what each does)."""

    log_path: Path | None
    detach: bool
    startup_timeout: float


_Installation = TypeVar("_Installation")


class InstalledOptions(EngineOptions, Generic[_Installation], total=False):
    """The options of an :class:`InstalledEngine`: those of every engine, and where
    it is installed."""

    cache_dir: Path | None
    installation: _Installation | None


class EngineProcess(Lifecycle):
    """An engine serving on loopback ports, in a child process.

    ``ports`` are the ports asked for (0: a free one), the first being the one
    :attr:`endpoint_url` names. Output goes to ``log_path`` (appended) when
    given, otherwise it is kept in memory; either way its last lines are in
    :class:`EmulatorStartError` when start fails. ``detach=True`` lets it
    outlive this process once :meth:`release` has been called; otherwise it
    ends with this process. ``startup_timeout``: the seconds it may take to
    answer (default: the engine's :attr:`default_startup_timeout`). ``session``:
    in a session and process group of its own, which the stop signals (out of
    reach of the terminal's Ctrl-C).
    """

    #: Its name in the registry, in process names and in its log lines.
    name: ClassVar[str]
    #: How messages call it.
    label: ClassVar[str]
    #: The pinned version ("" for one that is a package of this one).
    version: ClassVar[str] = ""
    stop_policy: ClassVar[StopPolicy]
    #: Words of its output (lowercase) that tell it found its port taken.
    port_taken: ClassVar[tuple[str, ...]]
    #: Seconds between readiness probes.
    ready_interval: ClassVar[float] = 0.1
    #: Whether it can bind beyond loopback, so that its sockets are checked once it answers.
    check_sockets: ClassVar[bool] = False
    #: Seconds it may take to answer when ``startup_timeout`` is not given.
    default_startup_timeout: ClassVar[float] = 30.0

    def __init__(
        self,
        ports: tuple[int, ...],
        host: str,
        *,
        log_path: Path | None = None,
        detach: bool = False,
        startup_timeout: float | None = None,
        session: bool = True,
    ) -> None:
        for value in ports:
            if not 0 <= value <= 65535:
                raise EmulatorError(f"invalid port {value}")
        self.host = check_loopback(host)
        self._requested = ports
        self._ports: tuple[int, ...] | None = None
        self._log_path = log_path
        self._detach = detach
        self._session = session
        self._startup_timeout = (
            self.default_startup_timeout if startup_timeout is None else startup_timeout
        )
        self._process: ManagedProcess | None = None
        self._output: ManagedProcess | None = None  # the last one started, stopped or not
        self.startup_seconds: float | None = None

    # -- what a subclass says -----------------------------------------------

    def prepare(self) -> None:
        """What must hold before it starts (installed, its runtime found); raises if not."""

    @abc.abstractmethod
    def command(self, ports: tuple[int, ...]) -> Command:
        """How it is started to serve on ``ports``."""

    @abc.abstractmethod
    def ready_problem(self, timeout: float) -> str | None:
        """One readiness probe of at most ``timeout`` seconds: ``None`` once it
        answers, else what is still missing."""

    # -- properties ---------------------------------------------------------

    @property
    def ports(self) -> tuple[int, ...]:
        """The ports served (the real ones once started)."""
        return self._ports if self._ports is not None else self._requested

    @property
    def port(self) -> int:
        """The port served (the real one when port 0 was asked, once started)."""
        return self.ports[0]

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
        """Start it and wait until it answers; stop it again if it does not."""
        if self._process is not None:
            raise EmulatorError(f"{self.label} is already started")
        self.prepare()
        attempts = 1 if all(self._requested) else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            ports = self._pick_ports()
            try:
                self._launch(ports)
                self._await_ready()
                if self.check_sockets:
                    self._check_listeners()
                return self
            except PortInUseError:
                self._cleanup()
                if attempt == attempts:
                    raise
                logger.info("a port was taken before %s bound it; retrying", self.label)
            except BaseException:
                self._cleanup()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self, timeout: float = 5.0) -> None:
        """Stop it as :attr:`stop_policy` says (SIGTERM, wait, SIGKILL). Safe to call twice."""
        self._cleanup(timeout)

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for it to exit; its exit code, or ``None`` on timeout or if not started."""
        return self._process.wait(timeout) if self._process is not None else None

    def release(self) -> int:
        """Forget a detached, running engine without stopping it; return its pid."""
        if self._process is None or not self._detach:
            raise EmulatorError(f"only a started, detached engine can be released ({self.label})")
        pid = self._process.release()
        self._process = None
        return pid

    def listeners(self) -> list[Listener] | None:
        """The sockets it listens on (``None`` when not running or no /proc)."""
        pid = self.pid
        return None if pid is None else listening_sockets(pid)

    def output_tail(self) -> tuple[str, ...]:
        """Its last output lines."""
        return self._output.tail() if self._output is not None else ()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        words = (type(self).__name__, self.version, self.endpoint_url, state)
        return f"<{' '.join(word for word in words if word)}>"

    # -- internals ----------------------------------------------------------

    def _pick_ports(self) -> tuple[int, ...]:
        """The ports asked for, each 0 replaced by a free port unlike the others."""
        for fixed in self._requested:
            if fixed:
                ensure_port_free(self.host, fixed)
        picked = list(self._requested)
        for index, asked in enumerate(picked):
            if not asked:
                port = free_port(self.host)
                while port in picked:
                    port = free_port(self.host)
                picked[index] = port
        return tuple(picked)

    def _launch(self, ports: tuple[int, ...]) -> None:
        argv, env, cwd = self.command(ports)
        logger.debug("starting %s on port(s) %s", list(argv), ", ".join(map(str, ports)))
        self._ports = ports
        self._process = self._output = ManagedProcess(
            Launch(argv, env=env, cwd=cwd, new_session=self._session, bound=not self._detach),
            name=f"{self.name}-{ports[0]}",
            stop_policy=self.stop_policy,
            tail_lines=_TAIL_LINES,
            log_path=self._log_path,
            on_line=lambda line: logger.debug("%s: %s", self.name, line),
        ).start()

    def _await_ready(self) -> None:
        proc = self._process
        assert proc is not None and proc.started_at is not None
        deadline = time.monotonic() + self._startup_timeout
        try:
            proc.wait_ready(
                lambda: self.ready_problem(max(0.2, min(2.0, deadline - time.monotonic()))),
                self._startup_timeout,
                interval=self.ready_interval,
            )
        except NotReadyError as exc:
            if not exc.gone:
                raise EmulatorStartError(
                    f"{self.label} did not answer on {self.endpoint_url} within "
                    f"{self._startup_timeout:.1f}s (last: {exc.last})",
                    exc.log_tail,
                ) from exc
            if any(word in line.lower() for line in exc.log_tail for word in self.port_taken):
                raise PortInUseError(self.host, self.port) from exc
            raise EmulatorStartError(
                f"{self.label} exited with code {exc.returncode} before it was ready",
                exc.log_tail,
            ) from exc
        self.startup_seconds = time.monotonic() - proc.started_at
        logger.info(
            "%s ready on %s (pid %d) in %.2fs",
            self.label,
            self.endpoint_url,
            proc.pid,
            self.startup_seconds,
        )

    def _check_listeners(self) -> None:
        found = self.listeners()
        if found is None:
            return  # no /proc: the engine's own settings alone keep it on loopback
        outside = [f"{s.protocol} {s.address}:{s.port}" for s in found if not s.loopback]
        if outside:
            raise EmulatorStartError(
                f"{self.label} listens beyond loopback ({', '.join(outside)}); stopped it",
                self.output_tail(),
            )

    def _cleanup(self, timeout: float = 5.0) -> None:
        proc, self._process = self._process, None
        if proc is not None:
            try:
                proc.stop(timeout)
            except ProcessError as exc:
                raise EmulatorError(str(exc)) from exc


class InstalledEngine(EngineProcess, Generic[_Installation]):
    """An engine run from an installation in the cache: ``installation`` when given,
    else the pinned one, installed into ``cache_dir`` (default: the per-user cache)
    on first use (:meth:`install`)."""

    def __init__(
        self,
        ports: tuple[int, ...],
        host: str,
        *,
        cache_dir: Path | None = None,
        installation: _Installation | None = None,
        **options: Unpack[EngineOptions],
    ) -> None:
        super().__init__(ports, host, **options)
        self._cache_dir = cache_dir
        self.installation = installation

    @abc.abstractmethod
    def install(self, cache_dir: Path | None) -> _Installation:
        """The pinned installation in ``cache_dir``, installed first if it is not there."""

    def prepare(self) -> None:
        if self.installation is None:
            self.installation = self.install(self._cache_dir)
