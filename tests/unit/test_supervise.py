"""The daemon's supervision without a JVM: the restart back-off, the exit reasons read
from KCL 1.x log lines, endpoint-outage notices, and ``kclpy-local run``'s restart
loop driven with stand-in daemons."""

from __future__ import annotations

import http.server
import io
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from kclpy_local._cli import main
from kclpy_local._cli.run import _View
from kclpy_local._jvm.daemon import READY_MARKER
from kclpy_local._jvm.supervise import (
    GRACEFUL_MARKER,
    RELEASED_MARKER,
    DaemonLog,
    ExitReason,
    OutageWatch,
    RestartPolicy,
    StopReport,
    Supervisor,
    endpoint_answers,
    run_exit_code,
    status_words,
)
from kclpy_local._runtime.progress import ProgressBoard, ProgressWriter

ROOT = Path(__file__).resolve().parents[2]
RECORDER = ROOT / "processors" / "recorder.py"

# -- RestartPolicy ----------------------------------------------------------------


def test_delays_double_up_to_the_maximum() -> None:
    policy = RestartPolicy(max_restarts=8, initial=1, maximum=30)
    assert [policy.next_delay(0.5) for _ in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert policy.restarts == 8


def test_no_delay_once_the_restarts_are_spent() -> None:
    policy = RestartPolicy(max_restarts=2, initial=0.5)
    assert policy.next_delay(0) == 0.5
    assert policy.next_delay(0) == 1.0
    assert policy.exhausted
    assert policy.next_delay(0) is None
    assert policy.next_delay(1000) is None  # a healthy run does not grant more restarts
    assert policy.restarts == 2


def test_a_healthy_run_resets_the_back_off() -> None:
    policy = RestartPolicy(max_restarts=10, initial=1, maximum=30, healthy_after=60)
    assert [policy.next_delay(5) for _ in range(3)] == [1, 2, 4]
    assert policy.next_delay(60) == 1
    assert policy.next_delay(59) == 2


def test_zero_restarts_and_zero_backoff() -> None:
    assert RestartPolicy(max_restarts=0).next_delay(0) is None
    policy = RestartPolicy(max_restarts=3, initial=0, maximum=30)
    assert [policy.next_delay(0) for _ in range(3)] == [0, 0, 0]


@pytest.mark.parametrize(
    "kwargs",
    [{"max_restarts": -1}, {"initial": -1}, {"initial": 40, "maximum": 30}, {"multiplier": 0.5}],
)
def test_bad_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RestartPolicy(**kwargs)  # type: ignore[arg-type]


# -- ExitReason: the KCL 1.15.3 daemon's lines ------------------------------------------

_DATE = "Nov 25, 2026 7:19:49 PM"
SHARD = "shardId-000000000001"


def _stderr(text: str, shard: str = SHARD) -> list[str]:
    """A child's stderr line as the daemon logs it (DrainChildSTDERRTask), then echoes it."""
    return [
        f"{_DATE} com.amazonaws.services.kinesis.multilang.DrainChildSTDERRTask handleLine",
        f"SEVERE: Received error line from subprocess [{text}] for shard {shard}",
        text,
    ]


PROCESSOR_RAISED = [
    "INFO processor: a log line of the processor itself",
    *_stderr("INFO recorder: shardId-000000000001: 5 records, checkpoint 5, 0 ms behind"),
    *_stderr("kclpy-local: processor raised while handling processRecords (daemon line 4); not acknowledged, exiting"),
    *_stderr("Traceback (most recent call last):"),
    *_stderr('  File "/srv/p.py", line 12, in process_records'),
    *_stderr("    raise RuntimeError(f'poison record {r.sequence_number}')"),
    *_stderr("RuntimeError: poison record 8"),
    f"{_DATE} com.amazonaws.services.kinesis.multilang.MultiLangProtocol futureMethod",
    f"SEVERE: Failed to get status message for processRecords action for shard {SHARD}",
    "java.util.concurrent.ExecutionException: java.lang.RuntimeException: Reached end of STDIN of child process",
    "\tat java.base/java.util.concurrent.FutureTask.report(FutureTask.java:122)",
    f"{_DATE} com.amazonaws.services.kinesis.multilang.MultiLangRecordProcessor stopProcessing",
    "SEVERE: Encountered an error while trying to process records",
    "java.lang.RuntimeException: Child process failed to process records",
    "\tat com.amazonaws.services.kinesis.multilang.MultiLangRecordProcessor.processRecords(MultiLangRecordProcessor.java:109)",
    f"{_DATE} com.amazonaws.services.kinesis.multilang.MultiLangRecordProcessor childProcessShutdownSequence",
    "INFO: Child process exited with value: 4",
    "kclpy-local: stop requested; graceful shutdown (up to 20000 ms)",
    "kclpy-local: graceful shutdown did not finish within 20000 ms; exiting anyway",
]


def reason_of(lines: Sequence[str]) -> ExitReason:
    reason = ExitReason()
    for line in lines:
        reason.feed(line)
    return reason


def test_a_processor_that_raised() -> None:
    reason = reason_of(PROCESSOR_RAISED)
    assert reason.describe() == (
        f"the record processor for {SHARD} failed while processing records "
        "(exit status 4; RuntimeError: poison record 8); the KCL stopped the daemon"
    )
    assert not reason.permanent


def _stderr3(text: str, level: str = "ERROR", shard: str = SHARD) -> list[str]:
    """The same line as KCL 3.x's daemon logs it: logback's pattern ends the message
    with a space (``%msg %n``); the launcher logs a line at the level it starts with."""
    return [
        f"2026-11-25 19:19:49,123 [multi-lang-daemon-0001] {level:<5} s.a.k.multilang.DrainChildSTDERRTask "
        f"[NONE] - Received error line from subprocess [{text}] for shard {shard} ",
        text,
    ]


def test_a_processor_that_raised_on_kcl3() -> None:
    lines = [
        *_stderr3("INFO recorder: 5 records", level="INFO"),
        *_stderr3("kclpy-local: processor raised while handling processRecords (daemon line 4); not acknowledged, exiting"),
        *_stderr3("Traceback (most recent call last):"),
        *_stderr3('  File "/srv/p.py", line 12, in process_records'),
        *_stderr3("RuntimeError: poison record 8"),
        "2026-11-25 19:19:49,200 [ShardRecordProcessor-0000] ERROR s.a.k.m.MultiLangShardRecordProcessor [NONE] "
        "- Encountered an error while trying to process records ",
        "2026-11-25 19:19:49,300 [ShardRecordProcessor-0000] INFO  s.a.k.m.MultiLangShardRecordProcessor [NONE] "
        "- Child process exited with value: 4 ",
    ]
    assert reason_of(lines).describe() == (
        f"the record processor for {SHARD} failed while processing records "
        "(exit status 4; RuntimeError: poison record 8); the KCL stopped the daemon"
    )


def test_child_lines_at_their_own_level_are_read_on_kcl1() -> None:
    lines = [line.replace("SEVERE: Received", "INFO: Received") for line in PROCESSOR_RAISED]
    assert reason_of(lines).describe() == reason_of(PROCESSOR_RAISED).describe()


def test_a_processor_that_exited() -> None:
    lines = [line for line in PROCESSOR_RAISED if "subprocess [" not in line]
    lines = [line.replace("value: 4", "value: 7") for line in lines]
    assert reason_of(lines).describe() == (
        f"the record processor for {SHARD} failed while processing records (exit status 7); "
        "the KCL stopped the daemon"
    )


def test_a_processor_that_failed_to_initialize() -> None:
    lines = [
        f"{_DATE} com.amazonaws.services.kinesis.multilang.MultiLangRecordProcessor stopProcessing",
        "SEVERE: Encountered an error while trying to initialize record processor",
        "java.io.IOException: Failed to start client executable",
    ]
    assert reason_of(lines).describe() == (
        "the record processor for a shard failed while initializing; the KCL stopped the daemon"
    )


def test_a_processor_that_timed_out() -> None:
    lines = [
        *_stderr("INFO slow: working"),
        f"{_DATE} com.amazonaws.services.kinesis.multilang.MultiLangProtocol futureMethod",
        f"SEVERE: Timedout to get status message for processRecords action for shard {SHARD}. Terminating...",
        "java.util.concurrent.TimeoutException",
    ]
    assert reason_of(lines).describe() == (
        f"the record processor for {SHARD} did not answer processRecords within timeoutInSeconds; "
        "the KCL halted the JVM"
    )


def test_launcher_lines() -> None:
    cannot = reason_of(["kclpy-local: cannot start: no AWS credentials: ..."])
    assert cannot.describe() == "cannot start: no AWS credentials: ..."
    assert cannot.permanent
    never = reason_of(["kclpy-local: the worker never reached STARTED (initialization failed; see the errors above)"])
    assert never.describe() == "the worker never reached STARTED (initialization failed; see the errors above)"
    assert not never.permanent


def test_ordinary_processor_stderr_is_no_reason() -> None:
    assert reason_of([*_stderr("ERROR mine: something the processor logged"), "kclpy-local: worker STARTED"]).describe() is None


# -- OutageWatch -------------------------------------------------------------------------

REFUSED = ("com.amazonaws.SdkClientException: Unable to execute HTTP request: Connect to 127.0.0.1:4566 "
           "[/127.0.0.1] failed: Connection refused")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_outage_is_reported_once_and_its_end_too() -> None:
    up = [False]
    clock = Clock()
    watch = OutageWatch(lambda: up[0], clock=clock)
    assert watch.check() == []
    watch.feed(REFUSED)
    assert watch.check() == ["the daemon cannot reach its endpoint (Connection refused); the KCL keeps retrying"]
    for _ in range(3):
        watch.feed(REFUSED)
        clock.now += 2
        assert watch.check() == []
    up[0] = True
    clock.now += 2
    assert watch.check() == ["the endpoint answers again (unreachable for 8s)"]
    # A late error from a request sent during the outage: the probe says it is up.
    watch.feed(REFUSED)
    assert watch.check() == []
    assert watch.outages == 1


def test_a_failed_request_while_the_endpoint_answers_is_no_outage() -> None:
    watch = OutageWatch(lambda: True)
    watch.feed("com.amazonaws.SdkClientException: Unable to execute HTTP request: 127.0.0.1:4566 failed to respond")
    assert watch.check() == []
    assert watch.down_since is None


def test_a_lost_lease_table_is_reported_once() -> None:
    watch = OutageWatch(None)
    line = ("com.amazonaws.services.kinesis.leases.exceptions.InvalidStateException: Cannot scan lease table "
            "orders-app because it does not exist.")
    watch.feed(line)
    watch.feed(line)
    notices = watch.check()
    assert len(notices) == 1 and notices[0].startswith("the lease table orders-app does not exist any more")
    assert watch.check() == []


@pytest.fixture
def http_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_endpoint_answers(http_server: str) -> None:
    assert endpoint_answers(http_server)  # any HTTP status counts
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert not endpoint_answers(f"http://127.0.0.1:{closed}", timeout=0.5)
    assert not endpoint_answers("not a url")


# -- run's restart loop with stand-in daemons -----------------------------------------


#: What a JVM stopped by SIGTERM exits with (the launchers' graceful stop too).
SIGTERM_STATUS = 128 + signal.SIGTERM


class FakeDaemon:
    """Says ``lines`` when started, then exits with ``code`` after ``runs_for`` seconds
    (a requested stop ends it at once, gracefully, with 143 as the launchers do)."""

    def __init__(self, sink: Callable[[str], None], lines: Sequence[str], code: int, runs_for: float = 0.0) -> None:
        self.sink, self.lines, self.code, self.runs_for = sink, list(lines), code, runs_for
        self.began: float | None = None
        self.terminated = False
        self.stopped = False

    def start(self, *, wait_ready: bool = True) -> FakeDaemon:
        self.began = time.monotonic()
        for line in self.lines:
            self.sink(line)
        return self

    def wait(self, timeout: float | None = None) -> int | None:
        assert self.began is not None
        if self.terminated:
            return SIGTERM_STATUS
        left = self.began + self.runs_for - time.monotonic()
        if left <= 0:
            return self.code
        time.sleep(min(left, timeout or left))
        return None

    def terminate(self) -> None:
        self.terminated = True
        self.sink(f"{RELEASED_MARKER}shardId-0 (checkpoint 5): no owner, for another worker to take")
        self.sink(GRACEFUL_MARKER)

    def stop(self, timeout: float | None = None) -> int:
        self.stopped = True
        return SIGTERM_STATUS if self.terminated else self.code

    def log_tail(self) -> tuple[str, ...]:
        return tuple(self.lines)


class Harness:
    def __init__(self, tmp: Path, scripts: list[tuple[Sequence[str], int, float]]) -> None:
        self.log = io.StringIO()
        self.err = io.StringIO()
        self.sink = DaemonLog(self.log)
        self.scripts = list(scripts)
        self.daemons: list[FakeDaemon] = []
        self.progress = tmp / "progress.jsonl"
        self.board = ProgressBoard(self.progress)

    def make(self) -> FakeDaemon:
        lines, code, runs_for = self.scripts.pop(0)
        daemon = FakeDaemon(self.sink, lines, code, runs_for)
        self.daemons.append(daemon)
        return daemon

    def run(self, policy: RestartPolicy | None) -> int:
        supervisor = Supervisor(sink=self.sink, board=self.board, console=_View(self.err, False),
                                started=time.time(), ready_timeout=None, policy=policy)
        return supervisor.run(self.make)  # type: ignore[arg-type]


STARTED = f"{READY_MARKER} (application a, stream s, worker w)"


def test_a_failed_daemon_is_restarted_and_the_run_ends_with_the_last_code(tmp_path: Path) -> None:
    h = Harness(tmp_path, [([STARTED, *PROCESSOR_RAISED], 1, 0.0), ([STARTED], 1, 0.0), ([STARTED], 0, 0.0)])
    assert h.run(RestartPolicy(max_restarts=5, initial=0.01)) == 0
    err = h.err.getvalue()
    assert len(h.daemons) == 3 and all(d.stopped for d in h.daemons)
    assert (f"the daemon exited with code 1: the record processor for {SHARD} failed while processing "
            "records (exit status 4; RuntimeError: poison record 8); the KCL stopped the daemon; "
            "restart 1 of 5 in 0.01s") in err
    assert "restart 2 of 5 in 0.02s" in err
    assert "the daemon exited with code 1: no reason in its log; restart 2" in err
    assert "worker started again after" in err
    assert "kclpy-local: restarts: 2" in err
    assert "kclpy-local: restart 1 of 5 (the daemon exited with code 1) in 0.01s" in h.log.getvalue()


def test_the_restarts_run_out(tmp_path: Path) -> None:
    h = Harness(tmp_path, [([STARTED, *PROCESSOR_RAISED], 1, 0.0)] * 3)
    assert h.run(RestartPolicy(max_restarts=2, initial=0)) == 4  # a processor failure
    err = h.err.getvalue()
    assert len(h.daemons) == 3
    assert "error: the daemon exited with code 1: the record processor for" in err
    assert "no restart left (--max-restarts 2); its last lines:" in err
    assert "restarts: 2" in err


def test_without_restart_the_reason_is_in_the_error(tmp_path: Path) -> None:
    h = Harness(tmp_path, [([STARTED, *PROCESSOR_RAISED], 1, 0.0)])
    assert h.run(None) == 4
    assert "error: the daemon exited with code 1: the record processor for shardId-000000000001" in h.err.getvalue()
    assert "restarts:" not in h.err.getvalue()


def test_a_configuration_error_is_not_restarted(tmp_path: Path) -> None:
    h = Harness(tmp_path, [(["kclpy-local: cannot start: no AWS credentials"], 1, 0.0)] * 2)
    assert h.run(RestartPolicy(max_restarts=3, initial=0)) == 1
    assert len(h.daemons) == 1
    assert "error: the daemon exited with code 1: cannot start: no AWS credentials" in h.err.getvalue()


TIMED_OUT = [
    f"{_DATE} com.amazonaws.services.kinesis.multilang.MultiLangProtocol futureMethod",
    f"SEVERE: Timedout to get status message for processRecords action for shard {SHARD}. Terminating...",
]


@pytest.mark.parametrize(
    ("lines", "code", "expected"),
    [
        (PROCESSOR_RAISED, 1, 4),  # README: 4 processor failure (the KCL daemon exits 1)
        (TIMED_OUT, 1, 4),  # a processor that did not answer within timeoutInSeconds
        ([], 1, 1),  # no reason in the log: the daemon's own code
        (["kclpy-local: cannot start: no AWS credentials"], 1, 1),
        ([], -9, 137),  # killed by SIGKILL: 128 + 9
        ([], 0, 0),
    ],
    ids=["raised", "timed-out", "no-reason", "launcher", "signal", "clean"],
)
def test_run_exit_code(lines: Sequence[str], code: int, expected: int) -> None:
    assert run_exit_code(code, reason_of(lines)) == expected


def test_a_processor_failure_during_a_requested_stop_keeps_the_daemons_code() -> None:
    assert run_exit_code(1, reason_of(PROCESSOR_RAISED), stopping=True) == 1


def test_a_run_whose_processor_failed_exits_4(tmp_path: Path) -> None:
    h = Harness(tmp_path, [([STARTED, *TIMED_OUT], 1, 0.0)])
    assert h.run(None) == 4
    assert "did not answer processRecords within timeoutInSeconds" in h.err.getvalue()


def _interrupt_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def test_ctrl_c_during_the_back_off_stops_at_once(tmp_path: Path) -> None:
    h = Harness(tmp_path, [([STARTED, *PROCESSOR_RAISED], 1, 0.0), ([STARTED], 0, 0.0)])
    timer = _interrupt_after(0.5)
    begun = time.monotonic()
    try:
        code = h.run(RestartPolicy(max_restarts=3, initial=60, maximum=60))
    finally:
        timer.cancel()
    assert time.monotonic() - begun < 30
    assert code == 4  # the last daemon stopped on a processor failure
    assert len(h.daemons) == 1
    assert "stopped during the back-off; the last daemon exited with code 1" in h.err.getvalue()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_requested_stop_is_not_restarted(tmp_path: Path) -> None:
    h = Harness(tmp_path, [([STARTED], 1, 60.0), ([STARTED], 0, 0.0)])
    timer = _interrupt_after(0.5)
    try:
        code = h.run(RestartPolicy(max_restarts=3, initial=0))
    finally:
        timer.cancel()
    assert code == 0  # the daemon's 143 after a graceful stop is no failure
    assert len(h.daemons) == 1
    assert h.err.getvalue().splitlines()[-1] == (
        "kclpy-local: stopped gracefully: 1 lease(s) released for another worker to take "
        "(daemon exit status 143 = SIGTERM, as asked)")


def test_progress_accumulates_across_restarts(tmp_path: Path) -> None:
    h = Harness(tmp_path, [([STARTED], 1, 0.0), ([STARTED], 0, 0.0)])
    writer = ProgressWriter(h.progress)
    writer.initialized("shardId-0", None)
    writer.batch(3, 0, "3")
    writer.initialized("shardId-0", "3")  # the second daemon's processor
    writer.batch(2, 0, "5")
    writer.close()
    assert h.run(RestartPolicy(max_restarts=1, initial=0)) == 0
    assert "final: shardId-0 5 records" in h.err.getvalue()


# -- the command line ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-restarts", "3"], "--max-restarts is for --restart"),
        (["--backoff", "2"], "--backoff is for --restart"),
        (["--restart", "--max-restarts", "-1"], "--max-restarts must be 0 or more, not -1"),
        (["--restart", "--backoff", "-2"], "--backoff must be 0 or more seconds, not -2"),
    ],
)
def test_restart_options(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(RECORDER), "--stream", "s", *argv]) == 2
    assert capsys.readouterr().err.startswith(f"kclpy-local: error: {message}")


# -- the outage helper of the integration tests (tests/proxy.py) ---------------------------


@pytest.mark.parametrize("mode", ["refuse", "drop"])
def test_the_proxy_pauses_and_resumes(http_server: str, mode: str) -> None:
    from proxy import PausableProxy

    target = int(http_server.rsplit(":", 1)[1])
    with PausableProxy(("127.0.0.1", target)) as proxy:
        assert endpoint_answers(proxy.endpoint_url)
        port = proxy.port
        proxy.pause(mode)  # type: ignore[arg-type]
        assert proxy.paused
        assert not endpoint_answers(proxy.endpoint_url, timeout=2)
        proxy.resume()
        assert proxy.port == port
        assert endpoint_answers(proxy.endpoint_url)
    assert not endpoint_answers(f"http://127.0.0.1:{port}", timeout=2)


# -- how a stop went -----------------------------------------------------------------


@pytest.mark.parametrize(("code", "words"), [
    (0, "0"), (1, "1"), (-signal.SIGTERM, "143 = SIGTERM"), (143, "143 = SIGTERM"),
    (130, "130 = SIGINT"), (-signal.SIGKILL, "137 = SIGKILL"), (200, "200"),
])
def test_status_words(code: int, words: str) -> None:
    assert status_words(code) == words


def _report(*lines: str) -> StopReport:
    report = StopReport()
    for line in lines:
        report.feed(line)
    return report


RELEASED = [f"{RELEASED_MARKER}shardId-00000000000{i} (checkpoint 7): no owner, for another worker to take"
            for i in range(2)]


def test_a_graceful_stop_reads_as_one() -> None:
    report = _report("kclpy-local: stop requested; graceful shutdown (up to 20000 ms)", GRACEFUL_MARKER,
                     *RELEASED)
    assert (report.graceful, report.released) == (True, 2)
    assert report.describe(SIGTERM_STATUS) == (
        "stopped gracefully: 2 lease(s) released for another worker to take "
        "(daemon exit status 143 = SIGTERM, as asked)")
    # KCL 3.x, or gracefulLeaseHandoff = false: no lease released by the launcher.
    assert _report(GRACEFUL_MARKER).describe(-signal.SIGTERM) == (
        "stopped gracefully: every record processor finished its shutdown "
        "(daemon exit status 143 = SIGTERM, as asked)")


def test_a_stop_that_did_not_complete_says_so() -> None:
    timed_out = _report("kclpy-local: graceful shutdown did not finish within 20000 ms; exiting anyway")
    assert timed_out.describe(SIGTERM_STATUS) == (
        "stopped, but the graceful shutdown did not complete: the leases are left to expire "
        "(daemon exit status 143 = SIGTERM)")
    assert _report(GRACEFUL_MARKER).describe(1).startswith("stopped, but the graceful shutdown did not")
    assert _report().describe(-signal.SIGKILL) == (
        "killed before the graceful shutdown finished: the leases are left to expire "
        "(daemon exit status 137 = SIGKILL)")
    assert _report().describe(1, asked=False) == "the daemon exited by itself (exit status 1)"


class NotStartedDaemon(FakeDaemon):
    """A daemon whose worker never reaches STARTED: a stop shuts it down at once,
    without a graceful shutdown, and it exits with 143, as the launchers do."""

    def terminate(self) -> None:
        self.terminated = True
        self.sink("kclpy-local: stop requested before the worker started; shutting it down")


def test_ctrl_c_before_the_worker_started_is_a_clean_stop(tmp_path: Path) -> None:
    h = Harness(tmp_path, [])
    h.make = lambda: NotStartedDaemon(h.sink, ["kclpy-local: worker INITIALIZING"], 1, 60.0)  # type: ignore[method-assign]
    timer = _interrupt_after(0.5)
    try:
        code = h.run(RestartPolicy(max_restarts=3, initial=0))
    finally:
        timer.cancel()
    assert code == 0
    err = h.err.getvalue()
    assert "error" not in err
    assert err.splitlines()[-1] == (
        "kclpy-local: stopped before the worker started, as asked (daemon exit status 143 = SIGTERM)"
    )


def test_a_worker_that_does_not_start_in_time_is_an_error(tmp_path: Path) -> None:
    h = Harness(tmp_path, [])
    h.make = lambda: NotStartedDaemon(h.sink, ["kclpy-local: worker INITIALIZING"], 1, 60.0)  # type: ignore[method-assign]
    supervisor = Supervisor(sink=h.sink, board=h.board, console=_View(h.err, False),
                            started=time.time(), ready_timeout=0.3, policy=None)
    code = supervisor.run(h.make)  # type: ignore[arg-type]
    err = h.err.getvalue()
    assert code == 143
    assert "the worker did not start within 0s; stopping" in err
    assert "error: the daemon exited with code 143 = SIGTERM" in err
