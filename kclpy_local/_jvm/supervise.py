"""Supervising the KCL daemon: when to restart it, and why it exited.

:class:`RestartPolicy` is the back-off of ``kclpy-local run --restart``: the
first restart waits ``initial`` seconds, each further one ``multiplier`` times
longer, up to ``maximum``; a daemon that ran ``healthy_after`` seconds before
it failed starts the sequence again.  At most ``max_restarts`` restarts happen
in one run.

:class:`ExitReason` reads the daemon's log line by line and keeps what explains
an exit, from the daemon's own messages (KCL 3.x's say the same as KCL 1.x's):

- ``MultiLangRecordProcessor.stopProcessing`` ("Encountered an error while
  trying to process records", "... to initialize record processor", "... to
  shutdown child process"), which calls ``System.exit(1)`` when a record
  processor dies, fails, or answers out of turn, after logging the child's
  exit status ("Child process exited with value: N");
- ``MultiLangProtocol.futureMethod`` ("Timedout to get status message for A
  action for shard S. Terminating..."), which halts the JVM with status 1 when
  ``timeoutInSeconds`` is set and a processor does not answer in time;
- the record processor's own report on stderr (the daemon logs each of its
  stderr lines as "Received error line from subprocess [LINE] for shard S", at
  the level the line starts with, else at the error level; whatever the level
  and trailing spaces): kclpy-local's runtime writes "kclpy-local: processor
  raised while handling ..." and the traceback, whose last line names the
  exception;
- the launcher's lines ("cannot start: ...", "the worker failed: ...", "the
  worker never reached STARTED").

:class:`OutageWatch` turns the daemon's failed requests into two notices, one
when an endpoint stops answering (confirmed by a probe: the KCL itself keeps
retrying and does not exit) and one when it answers again, and reports a lease
table that has disappeared. :class:`~kclpy_local._jvm.trouble.TroubleWatch`
turns known failures the KCL keeps retrying (a Kinesis endpoint without CBOR,
refused credentials, a missing stream, throttling) into one line with a hint.

:class:`StopReport` reads the log for how a stop went (the launchers' line
after a graceful shutdown that completed, the KCL 1.x launcher's line per lease
it released) and says it in words with the exit status: a daemon stopped
gracefully exits with 128 + the signal, 143 for SIGTERM, which is no failure.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import re
import signal
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Protocol, Self, TextIO

from .._exceptions import ProcessorFailed
from .._process import Lifecycle
from .._runtime.progress import ProgressBoard, ShardProgress
from .daemon import READY_MARKER, Daemon
from .trouble import TroubleWatch

__all__ = [
    "GRACEFUL_MARKER",
    "RELEASED_MARKER",
    "Console",
    "DaemonLog",
    "ExitReason",
    "Life",
    "OutageWatch",
    "RestartPolicy",
    "StopReport",
    "StopSignals",
    "Supervisor",
    "endpoint_answers",
    "exit_status",
    "run_exit_code",
    "status_words",
]

#: The line the launchers print once a graceful shutdown has finished.
GRACEFUL_MARKER = "kclpy-local: graceful shutdown complete"
#: The KCL 1.x launcher's line per lease it released after a complete graceful
#: shutdown (``gracefulLeaseHandoff``), for another worker to take.
RELEASED_MARKER = "kclpy-local: released lease "


@dataclass
class RestartPolicy:
    """Bounded exponential back-off between restarts of a failed daemon."""

    max_restarts: int = 5
    initial: float = 1.0
    maximum: float = 30.0
    multiplier: float = 2.0
    healthy_after: float = 60.0
    #: Restarts granted so far.
    restarts: int = field(default=0, init=False)
    _streak: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_restarts < 0:
            raise ValueError("max_restarts must be >= 0")
        if self.initial < 0 or self.maximum < self.initial:
            raise ValueError("delays must satisfy 0 <= initial <= maximum")
        if self.multiplier < 1:
            raise ValueError("multiplier must be >= 1")

    @property
    def exhausted(self) -> bool:
        return self.restarts >= self.max_restarts

    def next_delay(self, ran_for: float) -> float | None:
        """A daemon failed after running ``ran_for`` seconds: how long to wait before
        starting the next one, or ``None`` when no restart is left."""
        if ran_for >= self.healthy_after:
            self._streak = 0
        if self.exhausted:
            return None
        delay = min(self.maximum, self.initial * self.multiplier**self._streak)
        self._streak += 1
        self.restarts += 1
        return delay


# The KCL 1.15.3 daemon's messages (MultiLangRecordProcessor, MultiLangProtocol).
_STOP_PROCESSING = re.compile(
    r"Encountered an error (?:while trying to (?P<what>process records|initialize record processor"
    r"|shutdown child process)|during shutdown)"
)
_TIMED_OUT = re.compile(
    r"Timedout to get status message for (?P<action>\w+) action for shard (?P<shard>\S+?)\."
)
_CHILD_EXIT = re.compile(r"Child process exited with value: (?P<status>-?\d+)")
_NO_STATUS = re.compile(r"Failed to get status message for \w+ action for shard (?P<shard>\S+)")
# KCL 3.x's logback pattern ends the message with a space ("%msg %n").
_CHILD_STDERR = re.compile(
    r"Received error line from subprocess \[(?P<line>.*)\] for shard (?P<shard>\S+)\s*$"
)
_RAISED = "kclpy-local: processor raised while handling "
# The launcher's lines.
_CANNOT_START = re.compile(r"^kclpy-local: (?P<text>cannot start: .*)$")
_WORKER_FAILED = re.compile(
    r"^kclpy-local: (?P<text>the worker failed: .*|the worker never reached STARTED.*)$"
)
_ACTIVITY = {
    "process records": "processing records",
    "initialize record processor": "initializing",
    "shutdown child process": "shutting down",
}


class ExitReason:
    """Fed every daemon log line; :meth:`describe` says in one line why the daemon stopped."""

    def __init__(self) -> None:
        self.timed_out: tuple[str, str] | None = None  # (action, shard)
        self.stopped_while: str | None = None
        self.child_status: int | None = None
        self.shard: str | None = None
        self.launcher: str | None = None
        #: The launcher refused to start (a configuration problem: restarting will not help).
        self.permanent = False
        self._raised: dict[str, str] = {}  # shard -> what it was handling
        self._exception: dict[str, str] = {}  # shard -> the traceback's last line

    def feed(self, line: str) -> None:
        if line.startswith("kclpy-local: "):
            match = _CANNOT_START.match(line)
            if match:
                self.launcher, self.permanent = match["text"], True
                return
            match = _WORKER_FAILED.match(line)
            if match:
                self.launcher = match["text"]
            return
        if "subprocess [" in line:
            match = _CHILD_STDERR.search(line)
            if match:
                self._child_line(match["shard"], match["line"])
            return
        match = _TIMED_OUT.search(line)
        if match:
            self.timed_out = (match["action"], match["shard"])
            return
        match = _STOP_PROCESSING.search(line)
        if match:
            self.stopped_while = _ACTIVITY.get(match["what"] or "", "shutting down")
            return
        match = _CHILD_EXIT.search(line)
        if match:
            self.child_status = int(match["status"])
            return
        match = _NO_STATUS.search(line)
        if match:
            self.shard = match["shard"]

    def _child_line(self, shard: str, text: str) -> None:
        if text.startswith(_RAISED):
            self._raised[shard] = text[len(_RAISED) :].split(";", maxsplit=1)[0]
            self._exception.pop(shard, None)
            self.shard = shard
            return
        if shard not in self._raised:
            return
        # The traceback's last line ("Type: message") is the only one not indented.
        if (
            text
            and not text[0].isspace()
            and not text.startswith(
                ("Traceback (most recent call last)", "During handling of", "The above exception")
            )
        ):
            self._exception[shard] = text

    @property
    def processor_failed(self) -> bool:
        """A record processor failed or did not answer in time (the KCL stopped the JVM)."""
        return self.timed_out is not None or self.stopped_while is not None

    def describe(self) -> str | None:
        """The reason in one line, or ``None`` when the log says nothing recognisable."""
        if self.timed_out is not None:
            action, shard = self.timed_out
            return (
                f"the record processor for {shard} did not answer {action} within "
                "timeoutInSeconds; the KCL halted the JVM"
            )
        if self.stopped_while is not None:
            shard = self.shard or "a shard"
            text = f"the record processor for {shard} failed while {self.stopped_while}"
            details = []
            if self.child_status is not None:
                details.append(f"exit status {self.child_status}")
            exception = self._exception.get(shard)
            if exception:
                details.append(exception)
            return (
                text
                + (f" ({'; '.join(details)})" if details else "")
                + "; the KCL stopped the daemon"
            )
        return self.launcher


# -- endpoint outages ---------------------------------------------------------------

# The AWS SDK's message for a request that got no HTTP answer (refused, reset, no response).
_UNREACHABLE = re.compile(r"Unable to execute HTTP request: (?P<detail>.*)$")
_CONNECT_FAILED = re.compile(r"failed: (?P<why>[^:]+)$")
# LeaseManager.list (KCL 1.x) when the lease table is gone.
_TABLE_GONE = re.compile(r"Cannot scan lease table (?P<table>\S+) because it does not exist")


def endpoint_answers(url: str, timeout: float = 1.0) -> bool:
    """Whether an HTTP server answers at ``url`` (any status counts; no proxy)."""
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        return False
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return True


class OutageWatch:
    """Notices about the endpoints, from the daemon log and probes.

    :meth:`feed` (any thread) sees each log line; :meth:`check` (the
    supervising loop, every tick) returns the lines to show: once when requests
    fail and ``probe`` confirms an endpoint is down (the KCL keeps retrying),
    once when it answers again, and once per lease table that has disappeared
    (an emulator restarted without its state: a KCL 1.x worker never recreates
    its lease table once running, so it can take no lease until restarted).
    """

    def __init__(
        self,
        probe: Callable[[], bool] | None,
        clock: Callable[[], float] = time.monotonic,
        interval: float = 1.0,
    ) -> None:
        self._probe = probe
        self._clock = clock
        self._interval = interval
        self._suspect: str | None = None
        self._notices: collections.deque[str] = collections.deque()
        self._tables: set[str] = set()
        self._last_probe = -interval
        self.down_since: float | None = None
        self.outages = 0

    def feed(self, line: str) -> None:
        if "HTTP request" in line:
            match = _UNREACHABLE.search(line)
            if match:
                detail = match["detail"].strip()
                why = _CONNECT_FAILED.search(detail)
                self._suspect = why["why"].strip() if why else detail
        elif "lease table" in line:
            match = _TABLE_GONE.search(line)
            if match and match["table"] not in self._tables:
                self._tables.add(match["table"])
                self._notices.append(
                    f"the lease table {match['table']} does not exist any more (was the emulator "
                    "restarted without its state?); this worker cannot take leases until the run "
                    "is restarted"
                )

    def check(self) -> list[str]:
        notices = []
        while self._notices:
            notices.append(self._notices.popleft())
        now = self._clock()
        if self.down_since is None:
            if self._suspect is not None:
                detail, self._suspect = self._suspect, None
                self._last_probe = now
                if self._probe is None or not self._probe():
                    self.down_since = now
                    self.outages += 1
                    notices.append(
                        f"the daemon cannot reach its endpoint ({detail}); the KCL keeps retrying"
                    )
        elif self._probe is not None and now - self._last_probe >= self._interval:
            self._last_probe = now
            if self._probe():
                notices.append(
                    f"the endpoint answers again (unreachable for {now - self.down_since:.0f}s)"
                )
                self.down_since = None
                self._suspect = None
        return notices


class StopSignals(Lifecycle):
    """While entered (started), SIGINT, SIGTERM and SIGHUP (the terminal closed) are
    counted instead of raising: each is a request for a graceful stop.

    ``requested`` is set by the first one (ask the child to stop gracefully);
    ``count > 1`` means the user insists (kill it).  The previous handlers are
    restored on exit (stop).
    """

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.count = 0
        self._previous: dict[int, Any] = {}

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        self.requested.set()

    def start(self) -> Self:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def stop(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


class Console(Protocol):
    """Where a :class:`Supervisor` reports: one-line notices and the live progress."""

    def say(self, text: str) -> None:
        """A notice for the user (one line, or a headline and indented lines)."""

    def show(self, board: ProgressBoard, changed: bool) -> None:
        """Called on every tick with the progress so far."""

    def forget(self) -> None:
        """A notice follows: print below the live progress from now on."""

    def summary(self, shard: ShardProgress) -> str:
        """One shard's progress in a few words."""


def exit_status(code: int) -> int:
    """A Popen return code as a shell reports it (a signal N: 128 + N)."""
    return 128 - code if code < 0 else code


def status_words(code: int) -> str:
    """An exit status with the signal it stands for: ``143 = SIGTERM``, ``0``, ``1``."""
    status = exit_status(code)
    if status > 128:
        with contextlib.suppress(ValueError):
            return f"{status} = {signal.Signals(status - 128).name}"
    return str(status)


_STOP_SIGNALS = (128 + signal.SIGTERM, 128 + signal.SIGINT)


@dataclass
class StopReport:
    """How a daemon's stop went, from its log (:meth:`feed` each line).

    ``graceful``: the launcher finished a graceful shutdown (every record
    processor got ``shutdownRequested`` and answered); ``released``: leases it
    then released for another worker to take (KCL 1.x, ``gracefulLeaseHandoff``).
    """

    graceful: bool = False
    released: int = 0

    def feed(self, line: str) -> None:
        if GRACEFUL_MARKER in line:
            self.graceful = True
        elif RELEASED_MARKER in line:
            self.released += 1

    def describe(self, code: int, *, asked: bool = True) -> str:
        """One line: how the daemon that exited with ``code`` stopped (``asked``: a
        stop was requested), with its exit status for those who need it."""
        status = exit_status(code)
        words = status_words(code)
        if not asked:
            return f"the daemon exited by itself (exit status {words})"
        if self.graceful and status in (0, *_STOP_SIGNALS):
            handed = (
                f"{self.released} lease(s) released for another worker to take"
                if self.released
                else "every record processor finished its shutdown"
            )
            return f"stopped gracefully: {handed} (daemon exit status {words}, as asked)"
        if status == 128 + signal.SIGKILL:
            return (
                f"killed before the graceful shutdown finished: the leases are left to expire "
                f"(daemon exit status {words})"
            )
        return (
            f"stopped, but the graceful shutdown did not complete: the leases are left to "
            f"expire (daemon exit status {words})"
        )


def run_exit_code(code: int, reason: ExitReason, *, stopping: bool = False) -> int:
    """The exit code of ``kclpy-local run`` for a daemon that exited with ``code``.

    :attr:`ProcessorFailed.exit_code <kclpy_local._exceptions.ProcessorFailed>` (4)
    when its log says a record processor failed or timed out (the KCL daemon itself
    exits with 1 then) and the stop was not asked for; else :func:`exit_status`.
    """
    status = exit_status(code)
    if status != 0 and not stopping and reason.processor_failed:
        return ProcessorFailed.exit_code
    return status


class DaemonLog:
    """The daemon's log: to a file or stderr, watching for the graceful-shutdown line,
    the reason of an exit, endpoint outages and known trouble (``trouble``, kept
    across restarts: each kind is reported once per run)."""

    def __init__(
        self,
        stream: TextIO,
        watch: OutageWatch | None = None,
        trouble: TroubleWatch | None = None,
    ) -> None:
        self._stream = stream
        self.watch = watch
        self.trouble = trouble if trouble is not None else TroubleWatch()
        self.begin()

    def begin(self) -> None:
        """A new daemon starts: forget what the previous one said."""
        self.stop = StopReport()
        self.started_at: float | None = None
        self.reason = ExitReason()

    @property
    def graceful(self) -> bool:
        """The daemon's graceful shutdown completed."""
        return self.stop.graceful

    def note(self, line: str) -> None:
        """A line of our own in the log (restarts)."""
        self._stream.write(line + "\n")
        self._stream.flush()

    def __call__(self, line: str) -> None:
        self.stop.feed(line)
        if self.started_at is None and READY_MARKER in line:
            self.started_at = time.time()
        self.reason.feed(line)
        if self.watch is not None:
            self.watch.feed(line)
        self.trouble.feed(line)
        self._stream.write(line + "\n")
        self._stream.flush()


@dataclass
class Life:
    """How one daemon ended."""

    code: int
    stopping: bool
    """A stop was sent to it: the user's (a stop signal) or the ready timeout's."""
    ran_for: float
    timed_out: bool = False
    """The stop was the ready timeout's: the worker did not start in time."""


class Supervisor:
    """Run daemons until one ends for good; report on a :class:`Console`.

    One daemon at a time: started, watched (readiness, outages, progress),
    stopped gracefully on the first stop signal and killed on the second;
    restarted after the back-off of ``policy`` when it fails, unless its log
    says the failure is permanent.  :meth:`run` returns the exit code of the
    whole run (:func:`run_exit_code`: 4 when a record processor failed).
    """

    def __init__(
        self,
        *,
        sink: DaemonLog,
        board: ProgressBoard,
        console: Console,
        started: float,
        ready_timeout: float | None,
        policy: RestartPolicy | None,
    ) -> None:
        self.sink, self.board, self.view = sink, board, console
        self.started = started
        self.ready_timeout = ready_timeout
        self.policy = policy
        self.announced_first = False

    def say(self, text: str) -> None:
        self.view.say(text)

    def run(self, make_daemon: Callable[[], Daemon]) -> int:
        policy, sink = self.policy, self.sink
        interrupted = gave_up = False
        with StopSignals() as stop:
            number = 0
            while True:
                daemon = make_daemon()
                sink.begin()
                try:
                    life = self._live(daemon, stop, number)
                finally:
                    daemon.stop()  # also ends what is left of its process group
                result = exit_status(life.code)
                if life.stopping or result == 0 or policy is None or sink.reason.permanent:
                    break
                delay = policy.next_delay(life.ran_for)
                if delay is None:
                    gave_up = True
                    break
                self.view.forget()
                reason = sink.reason.describe() or "no reason in its log"
                self.say(
                    f"the daemon exited with code {result}: {reason}; "
                    f"restart {policy.restarts} of {policy.max_restarts} in {delay:g}s"
                )
                sink.note(
                    f"kclpy-local: restart {policy.restarts} of {policy.max_restarts} "
                    f"(the daemon exited with code {result}) in {delay:g}s"
                )
                if stop.requested.wait(delay):
                    interrupted = True
                    break
                number += 1
        return self._finish(daemon, life, interrupted=interrupted, gave_up=gave_up)

    def _live(self, daemon: Daemon, stop: StopSignals, number: int) -> Life:
        """Start ``daemon`` and watch it until it exits."""
        sink, board, view = self.sink, self.board, self.view
        began = time.time()
        origin = self.started if number == 0 else began
        announced_start = stopping = timed_out = False
        daemon.start(wait_ready=False)
        code: int | None = None
        while code is None:
            code = daemon.wait(timeout=0.5)
            if not announced_start and sink.started_at is not None:
                announced_start = True
                again = "" if number == 0 else " again"
                self.say(
                    f"worker started{again} after {sink.started_at - origin:.1f}s; "
                    "Ctrl-C stops it gracefully"
                )
            if (
                self.ready_timeout is not None
                and sink.started_at is None
                and code is None
                and time.time() - origin > self.ready_timeout
            ):
                self.say(f"the worker did not start within {self.ready_timeout:.0f}s; stopping")
                timed_out = True
                stop.requested.set()
            notices = sink.watch.check() if sink.watch is not None else []
            for notice in notices + sink.trouble.check():
                view.forget()
                self.say(notice)
            changed = board.poll()
            first = board.first_record_at
            if changed and not self.announced_first and first is not None:
                self.announced_first = True
                self.say(f"first record processed {first - self.started:.1f}s after start")
            view.show(board, changed)
            if code is None and stop.requested.is_set() and not stopping:
                stopping = True
                view.forget()
                self.say("stopping gracefully (Ctrl-C again to kill)")
                daemon.terminate()
            if code is None and stop.count > 1:
                code = daemon.stop(timeout=0)
        return Life(code, stopping, time.time() - began, timed_out)

    def _finish(self, daemon: Daemon, life: Life, *, interrupted: bool, gave_up: bool) -> int:
        board, view, policy = self.board, self.view, self.policy
        board.poll()
        view.forget()
        if board.shards():
            self.say("final: " + "; ".join(view.summary(s) for s in board.shards()))
        if policy is not None:
            self.say(f"restarts: {policy.restarts}")
        if life.stopping and self.sink.graceful:
            self.say(self.sink.stop.describe(life.code))
            return 0
        result = exit_status(life.code)
        asked = life.stopping and not life.timed_out
        if asked and self.sink.started_at is None and result in _STOP_SIGNALS:
            # The launcher shuts a worker that has not started down at once: no
            # record processor runs yet, so there is no graceful shutdown to report.
            self.say(
                "stopped before the worker started, as asked "
                f"(daemon exit status {status_words(life.code)})"
            )
            return 0
        code = run_exit_code(life.code, self.sink.reason, stopping=life.stopping)
        if interrupted:
            self.say(f"stopped during the back-off; the last daemon exited with code {result}")
            return code
        if result != 0:
            reason = self.sink.reason.describe()
            headline = f"error: the daemon exited with code {status_words(result)}" + (
                f": {reason}" if reason else ""
            )
            if gave_up and policy is not None:
                headline += f"; no restart left (--max-restarts {policy.max_restarts})"
            tail = "\n".join(f"  {line}" for line in daemon.log_tail()[-20:])
            self.say(f"{headline}; its last lines:\n{tail}")
        return code
