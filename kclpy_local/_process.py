"""Child processes: the one lifecycle behind every server and JVM the toolkit starts.

::

    launch = Launch(["python", "-m", "http.server", "0"], env=env, cwd=workdir)
    with ManagedProcess(launch, name="web") as proc:   # stopped even if start fails
        proc.wait_ready(lambda: None if proc.tail() else "no output yet", timeout=10)
        ...
    # stopped: SIGTERM, a grace period, then SIGKILL of its process group

:class:`Launch` is how a child starts (argv list, environment, working
directory, its own session); :class:`StopPolicy` how it is stopped. A
:class:`ManagedProcess` drains the child's merged stdout and stderr on a
thread into a bounded tail (forwarding each line to ``on_line``), or lets the
child append to a log file; :meth:`ManagedProcess.wait_ready` polls a check
until it passes, the child exits or the timeout passes, and its
:class:`~kclpy_local._exceptions.NotReadyError` carries the last output lines.

For processes known only by their pid (a pid file): :func:`pid_alive`,
:func:`wait_gone` and :func:`stop_pid`. A child handed over with
:meth:`ManagedProcess.release` stays known to them, so that it is reaped when
it is stopped later by pid.

Nothing here logs above DEBUG except the note a :class:`StopPolicy` names for
a child that ignored SIGTERM; the layers above translate
:class:`~kclpy_local._exceptions.ProcessError` into their own errors.
"""

from __future__ import annotations

import abc
import collections
import contextlib
import ctypes
import ctypes.util
import io
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from . import _env
from ._exceptions import NotReadyError, ProcessError

__all__ = [
    "KILL_WAIT",
    "LIFELINE_VARIABLE",
    "Launch",
    "Lifecycle",
    "ManagedProcess",
    "StopPolicy",
    "pid_alive",
    "run",
    "stop_pid",
    "wait_for",
    "wait_gone",
    "watch_lifeline",
]

logger = logging.getLogger(__name__)

#: Seconds (at least) to wait for a process to go once it has been sent SIGKILL.
KILL_WAIT = 5.0
_JOIN_TIMEOUT = 5.0
_POLL = 0.05
# Children started here and not yet reaped (released ones included), by pid: a
# zombie child must count as gone, and only its Popen may reap it.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}

#: The variable naming, in a bound child, the descriptor of its lifeline: the read
#: end of a pipe whose only write end this process holds. It reads end-of-file
#: once this process is gone, however it ended (see :func:`watch_lifeline`).
LIFELINE_VARIABLE = _env.LIFELINE.name
_PR_SET_PDEATHSIG = 1

Check = Callable[[], str | None]
"""A readiness check: ``None`` once ready, else what is still missing."""


# -- launching --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Launch:
    """How a child process is started.

    ``env`` replaces the environment (``None``: this process's); ``new_session``
    puts the child in a session and process group of its own, which is what
    :class:`StopPolicy` signals. Every option of how a child starts lives
    here, and :meth:`popen_kwargs` is the one place they become arguments of
    :class:`subprocess.Popen`.

    A ``bound`` child (the default) ends when this process ends, however it
    ends (SIGKILL and out-of-memory kills included), so that no worker
    outlives the command that started it. Two mechanisms, either sufficient:
    on Linux the kernel sends the child SIGTERM when its parent dies (the
    parent is the *thread* that started it, so bound children are started
    from threads that live as long as the process, as every caller here
    does); and, on every platform, a :class:`ManagedProcess` hands the child
    a *lifeline* (:data:`LIFELINE_VARIABLE`) that a child which watches it
    (the Java launchers, :func:`watch_lifeline`) reads end-of-file on. A
    child meant to outlive this process (``kclpy-local up``) is started with
    ``bound=False``.
    """

    argv: Sequence[str]
    env: Mapping[str, str] | None = field(default=None, hash=False)
    cwd: Path | None = None
    new_session: bool = True
    bound: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.argv, str) or not self.argv:
            raise ValueError("argv must be a non-empty list of arguments")
        object.__setattr__(self, "argv", tuple(self.argv))
        if self.env is not None:
            object.__setattr__(self, "env", dict(self.env))

    def popen_kwargs(self) -> dict[str, Any]:
        """The arguments of :class:`subprocess.Popen` that start the child as described."""
        kwargs: dict[str, Any] = {
            "args": list(self.argv),
            "env": None if self.env is None else dict(self.env),
            "cwd": self.cwd,
            "start_new_session": self.new_session,
        }
        if self.bound and _PRCTL is not None:
            kwargs["preexec_fn"] = _die_with_parent(os.getpid())
        return kwargs


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        prctl: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        return None
    return prctl


_PRCTL = _load_prctl()  # looked up before any fork: the child only calls it


def _die_with_parent(parent: int) -> Callable[[], None]:
    """What a bound child runs between fork and exec (Linux): SIGTERM on the
    parent's death, and an immediate exit if the parent is already gone."""

    def preexec() -> None:
        assert _PRCTL is not None
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request was made
            os._exit(1)

    return preexec


def watch_lifeline(on_end: Callable[[], object] | None = None) -> bool:
    """In a bound child: act when the parent goes; whether there is a lifeline.

    Reads the descriptor :data:`LIFELINE_VARIABLE` names on a daemon thread;
    at end-of-file (the parent is gone) calls ``on_end``, by default sending
    this process SIGTERM, so that its usual graceful stop runs. The variable
    is removed from the environment, so that this process's own children do
    not take a descriptor they do not hold for a lifeline.
    """
    value = os.environ.pop(LIFELINE_VARIABLE, None)
    if value is None:
        return False
    try:
        fd = int(value)
        os.fstat(fd)
    except (ValueError, OSError):
        logger.warning("%s=%r is not an open descriptor; not watching it", LIFELINE_VARIABLE, value)
        return False
    end = on_end or (lambda: os.kill(os.getpid(), signal.SIGTERM))

    def watch() -> None:
        with contextlib.suppress(OSError):
            while os.read(fd, 512):
                pass
        logger.debug("the lifeline ended: the parent is gone")
        end()

    threading.Thread(target=watch, name="lifeline", daemon=True).start()
    return True


def run(launch: Launch, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a short command to its end: no stdin, its output captured as text.

    As :func:`subprocess.run`: :class:`subprocess.TimeoutExpired` (the child is
    killed) or :class:`OSError` when it cannot be started.
    """
    logger.debug("running %s", list(launch.argv))
    return subprocess.run(
        **launch.popen_kwargs(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )


# -- pids ------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (a zombie child of ours is reaped first)."""
    proc = _CHILDREN.get(pid)
    if proc is not None:
        return proc.poll() is None
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``pid`` to be gone; whether it is."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)
    return True


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except (ProcessLookupError, PermissionError):
        return False


def _signal(pid: int, sig: int, *, group: bool) -> None:
    """Send ``sig`` to the process group ``pid`` leads (``group``), else to ``pid`` alone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


@dataclass(frozen=True, slots=True)
class StopPolicy:
    """How a process is stopped: SIGTERM, a grace period, then SIGKILL.

    ``term_group`` sends SIGTERM to its whole process group (``False``: to the
    leader alone, which shuts its own children down); SIGKILL always goes to
    the group, and whatever of the group outlives the leader is killed too.
    A process that leads no group is signalled alone. ``max_grace`` caps the
    grace period; ``kill_note`` (``%(pid)d`` and ``%(grace)g`` style fields) is
    logged at ``kill_note_level`` on the logger ``logger_name`` before SIGKILL.
    """

    term_group: bool = True
    max_grace: float | None = None
    kill_note: str = "pid %(pid)d ignored SIGTERM for %(grace).1fs; sending SIGKILL"
    kill_note_level: int = logging.WARNING
    logger_name: str = __name__

    def grace(self, timeout: float) -> float:
        return timeout if self.max_grace is None else min(timeout, self.max_grace)


def _stop(pid: int, timeout: float, policy: StopPolicy, *, group: bool, termed: bool) -> bool:
    """The one stop routine: True if ``pid`` still ran. :class:`ProcessError` if it survives."""
    ran = pid_alive(pid)
    if ran:
        if not termed:
            _signal(pid, signal.SIGTERM, group=group and policy.term_group)
        grace = policy.grace(timeout)
        if not wait_gone(pid, grace):
            logging.getLogger(policy.logger_name).log(
                policy.kill_note_level, policy.kill_note, {"pid": pid, "grace": grace}
            )
            _signal(pid, signal.SIGKILL, group=group)
            if not wait_gone(pid, max(timeout, KILL_WAIT)):
                raise ProcessError(f"process {pid} survived SIGKILL")
    if group:
        _signal(pid, signal.SIGKILL, group=True)  # what of its group outlived it
    return ran


def stop_pid(
    pid: int, timeout: float = 5.0, policy: StopPolicy = StopPolicy(), *, group: bool = False
) -> bool:
    """Stop a process by pid (SIGTERM, wait up to ``timeout``, SIGKILL); True if it ran.

    With ``group`` the process group it leads is signalled (it alone if it
    leads none). A child released by :meth:`ManagedProcess.release` is reaped.
    """
    if not pid_alive(pid):
        _CHILDREN.pop(pid, None)
        return False
    try:
        return _stop(pid, timeout, policy, group=group and _leads_group(pid), termed=False)
    finally:
        proc = _CHILDREN.get(pid)
        if proc is not None and proc.poll() is not None:
            del _CHILDREN[pid]


# -- waiting ---------------------------------------------------------------------


def wait_for(
    check: Check,
    timeout: float | None,
    *,
    interval: float = _POLL,
    gone: Callable[[], bool] | None = None,
    what: str = "it",
) -> float:
    """Poll ``check`` until it returns ``None``; return the seconds waited.

    ``gone`` is asked before every attempt; when it says so, or after
    ``timeout`` seconds (``None``: no limit), :class:`NotReadyError` ends the
    wait with the check's last answer.
    """
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    last = "no attempt made"
    while True:
        if gone is not None and gone():
            raise NotReadyError(what, last=last, timeout=timeout, gone=True)
        problem = check()
        if problem is None:
            return time.monotonic() - started
        last = problem
        if deadline is not None and time.monotonic() >= deadline:
            raise NotReadyError(what, last=last, timeout=timeout)
        time.sleep(interval)


# -- the context manager ---------------------------------------------------------


class Lifecycle(abc.ABC):
    """Something started and stopped; as a context manager it is stopped even
    when :meth:`start` fails half-way (``stop`` must be safe to call twice)."""

    @abc.abstractmethod
    def start(self) -> Self: ...

    @abc.abstractmethod
    def stop(self) -> object: ...

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- one child -------------------------------------------------------------------


class ManagedProcess(Lifecycle):
    """One child process: launched, drained, waited for, stopped.

    Its stdout and stderr are merged. With ``log_path`` the child appends them
    to that file itself (so a released child keeps logging) and :meth:`tail`
    reads the file; otherwise a thread reads them line by line (UTF-8), keeps
    the last ``tail_lines`` and hands each to ``on_line``. ``name`` is used in
    thread names and errors.
    """

    def __init__(
        self,
        launch: Launch,
        *,
        name: str,
        stop_policy: StopPolicy = StopPolicy(),
        tail_lines: int = 40,
        log_path: Path | None = None,
        on_line: Callable[[str], object] | None = None,
    ) -> None:
        self.launch = launch
        self.name = name
        self.stop_policy = stop_policy
        self.log_path = log_path
        self._tail_lines = tail_lines
        self._on_line = on_line
        self._tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self._tail_lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._drain: threading.Thread | None = None
        self._terminated = False
        self._stopped = False
        self._lifeline: int | None = None
        self.started_at: float | None = None

    # -- inspection -------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def poll(self) -> int | None:
        """The exit code, or ``None`` while it runs (or before it started)."""
        return self._proc.poll() if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def tail(self) -> tuple[str, ...]:
        """The last output lines (from the log file when there is one)."""
        if self.log_path is not None:
            try:
                lines = self.log_path.read_text(errors="replace").splitlines()
            except OSError:
                return ()
            return tuple(lines[-self._tail_lines :]) if self._tail_lines else ()
        with self._tail_lock:
            return tuple(self._tail)

    # -- lifecycle --------------------------------------------------------

    def start(self) -> Self:
        """Launch the child (not waiting for anything) and start draining its output."""
        if self._proc is not None:
            raise ProcessError(f"{self.name} is already started")
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("ab") as log_file:  # the child keeps its own copy
                self._proc = self._spawn(log_file)
        else:
            self._proc = self._spawn(subprocess.PIPE)
        _CHILDREN[self._proc.pid] = self._proc
        self.started_at = time.monotonic()
        if self._proc.stdout is not None:
            self._drain = threading.Thread(
                target=self._read,
                args=(self._proc.stdout,),
                name=f"{self.name}-output-{self._proc.pid}",
                daemon=True,
            )
            self._drain.start()
        return self

    def _spawn(self, stdout: IO[bytes] | int) -> subprocess.Popen[bytes]:
        logger.debug("starting %s: %s", self.name, list(self.launch.argv))
        kwargs = self.launch.popen_kwargs()
        if not self.launch.bound:
            return subprocess.Popen(
                **kwargs, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT
            )
        # The lifeline: the child inherits the read end; the write end (not
        # inherited by any child) is held until the child is stopped or reaped.
        read_end, write_end = os.pipe()
        env = dict(os.environ if kwargs["env"] is None else kwargs["env"])
        env[LIFELINE_VARIABLE] = str(read_end)
        try:
            proc = subprocess.Popen(
                **{**kwargs, "env": env},
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.STDOUT,
                pass_fds=(read_end,),
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        self._lifeline = write_end
        return proc

    def _cut_lifeline(self) -> None:
        fd, self._lifeline = self._lifeline, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _read(self, stream: IO[bytes]) -> None:
        text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace")
        for raw in text:
            line = raw.rstrip("\r\n")
            with self._tail_lock:
                self._tail.append(line)
            if self._on_line is not None:
                self._on_line(line)
        text.close()

    def _join_drain(self) -> None:
        if self._drain is not None:
            self._drain.join(timeout=_JOIN_TIMEOUT)

    def wait_ready(self, check: Check, timeout: float | None, *, interval: float = _POLL) -> float:
        """Poll ``check`` until it passes; the seconds waited.

        :class:`NotReadyError` (with :meth:`tail`, and the exit code if it
        exited, its output read to the end) when the child exits first or
        ``timeout`` passes.
        """
        if self._proc is None:
            raise ProcessError(f"{self.name} has not been started")
        try:
            return wait_for(check, timeout, interval=interval, gone=lambda: not self.running)
        except NotReadyError as exc:
            if exc.gone:
                self._join_drain()
            raise NotReadyError(
                self.name,
                last=exc.last,
                timeout=timeout,
                gone=exc.gone,
                returncode=self.poll(),
                log_tail=self.tail(),
            ) from None

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the child to exit (its output read to the end); its exit code,
        or ``None`` on timeout or if it was never started."""
        if self._proc is None:
            return None
        try:
            code = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._cut_lifeline()
        self._join_drain()
        return code

    def terminate(self) -> None:
        """Send SIGTERM (as :attr:`stop_policy` says) once, without waiting."""
        if self._proc is not None and self._proc.poll() is None and not self._terminated:
            self._terminated = True
            group = self.launch.new_session and self.stop_policy.term_group
            _signal(self._proc.pid, signal.SIGTERM, group=group)

    def stop(self, timeout: float = 5.0) -> int | None:
        """Stop the child and its process group as :attr:`stop_policy` says; its exit
        code (``None`` if never started). Safe to call twice."""
        proc = self._proc
        if proc is None:
            return None
        if not self._stopped:
            self.terminate()
            try:
                _stop(
                    proc.pid, timeout, self.stop_policy, group=self.launch.new_session, termed=True
                )
            finally:
                self._cut_lifeline()
            self._stopped = True
            _CHILDREN.pop(proc.pid, None)
        self._join_drain()
        return proc.poll()

    def release(self) -> int:
        """Forget the running child without stopping it; its pid.

        Only a child started with ``bound=False`` can outlive this process.
        :func:`pid_alive` and :func:`stop_pid` still reap it.
        """
        proc = self._proc
        if proc is None or proc.poll() is not None:
            raise ProcessError(f"{self.name} is not running")
        if self.launch.bound:
            raise ProcessError(f"{self.name} is bound to this process; it cannot be released")
        self._stopped = True  # stopping is now up to whoever has the pid
        return proc.pid

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<ManagedProcess {self.name} {state}>"
