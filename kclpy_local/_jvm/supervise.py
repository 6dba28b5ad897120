"""Supervising the KCL daemon: when to restart it, and why it exited.

:class:`RestartPolicy` is the back-off of ``kclpy-local run --restart``: the
first restart waits ``initial`` seconds, each further one ``multiplier`` times
longer, up to ``maximum``; a daemon that ran ``healthy_after`` seconds before
it failed starts the sequence again.  At most ``max_restarts`` restarts happen
in one run.

:class:`ExitReason` reads the daemon's log line by line and keeps what explains
an exit, from the KCL 1.x daemon's own messages:

- ``MultiLangRecordProcessor.stopProcessing`` ("Encountered an error while
  trying to process records", "... to initialize record processor", "... to
  shutdown child process"), which calls ``System.exit(1)`` when a record
  processor dies, fails, or answers out of turn, after logging the child's
  exit status ("Child process exited with value: N");
- ``MultiLangProtocol.futureMethod`` ("Timedout to get status message for A
  action for shard S. Terminating..."), which halts the JVM with status 1 when
  ``timeoutInSeconds`` is set and a processor does not answer in time;
- the record processor's own report on stderr (the daemon logs each of its
  stderr lines as "Received error line from subprocess [LINE] for shard S"):
  kclpy-local's runtime writes "kclpy-local: processor raised while handling
  ..." and the traceback, whose last line names the exception;
- the launcher's lines ("cannot start: ...", "the worker failed: ...", "the
  worker never reached STARTED").

:class:`OutageWatch` turns the daemon's failed requests into two notices, one
when an endpoint stops answering (confirmed by a probe: the KCL itself keeps
retrying and does not exit) and one when it answers again, and reports a lease
table that has disappeared.
"""

from __future__ import annotations

import collections
import http.client
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["ExitReason", "OutageWatch", "RestartPolicy", "endpoint_answers"]


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
_TIMED_OUT = re.compile(r"Timedout to get status message for (?P<action>\w+) action for shard (?P<shard>\S+?)\.")
_CHILD_EXIT = re.compile(r"Child process exited with value: (?P<status>-?\d+)")
_NO_STATUS = re.compile(r"Failed to get status message for \w+ action for shard (?P<shard>\S+)")
_CHILD_STDERR = re.compile(r"Received error line from subprocess \[(?P<line>.*)\] for shard (?P<shard>\S+)$")
_RAISED = "kclpy-local: processor raised while handling "
# The launcher's lines.
_CANNOT_START = re.compile(r"^kclpy-local: (?P<text>cannot start: .*)$")
_WORKER_FAILED = re.compile(r"^kclpy-local: (?P<text>the worker failed: .*|the worker never reached STARTED.*)$")
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
            self._raised[shard] = text[len(_RAISED):].split(";", maxsplit=1)[0]
            self._exception.pop(shard, None)
            self.shard = shard
            return
        if shard not in self._raised:
            return
        # The traceback's last line ("Type: message") is the only one not indented.
        if text and not text[0].isspace() and not text.startswith(
            ("Traceback (most recent call last)", "During handling of", "The above exception")
        ):
            self._exception[shard] = text

    def describe(self) -> str | None:
        """The reason in one line, or ``None`` when the log says nothing recognisable."""
        if self.timed_out is not None:
            action, shard = self.timed_out
            return (f"the record processor for {shard} did not answer {action} within "
                    "timeoutInSeconds; the KCL halted the JVM")
        if self.stopped_while is not None:
            shard = self.shard or "a shard"
            text = f"the record processor for {shard} failed while {self.stopped_while}"
            details = []
            if self.child_status is not None:
                details.append(f"exit status {self.child_status}")
            exception = self._exception.get(shard)
            if exception:
                details.append(exception)
            return text + (f" ({'; '.join(details)})" if details else "") + "; the KCL stopped the daemon"
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
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
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

    def __init__(self, probe: Callable[[], bool] | None, clock: Callable[[], float] = time.monotonic,
                 interval: float = 1.0) -> None:
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
                    notices.append(f"the daemon cannot reach its endpoint ({detail}); the KCL keeps retrying")
        elif self._probe is not None and now - self._last_probe >= self._interval:
            self._last_probe = now
            if self._probe():
                notices.append(f"the endpoint answers again (unreachable for {now - self.down_since:.0f}s)")
                self.down_since = None
                self._suspect = None
        return notices
