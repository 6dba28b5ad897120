"""The managed-process lifecycle, with real short-lived Python child processes."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import textwrap
import time
from pathlib import Path
from typing import Self

import pytest

from kclpy_local._exceptions import NotReadyError, ProcessError
from kclpy_local._process import (
    Launch,
    Lifecycle,
    ManagedProcess,
    StopPolicy,
    pid_alive,
    run,
    stop_pid,
    wait_for,
    wait_gone,
)

REPO = Path(__file__).resolve().parents[2]


def _python(code: str, **kwargs: object) -> Launch:
    """A Launch of this interpreter running ``code`` (unbuffered)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return Launch([sys.executable, "-c", textwrap.dedent(code)], env=env, **kwargs)  # type: ignore[arg-type]


def _printed(proc: ManagedProcess, text: str) -> str | None:
    return None if any(text in line for line in proc.tail()) else f"no {text!r} yet"


def _wait_file(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().strip():
        assert time.monotonic() < deadline, f"{path} was not written"
        time.sleep(0.02)
    return path.read_text().strip()


def test_launch_is_a_frozen_argv_list() -> None:
    launch = Launch(["prog", "-x"], env={"A": "1"}, cwd=Path("."))
    assert launch.argv == ("prog", "-x")
    kwargs = launch.popen_kwargs()
    assert kwargs["args"] == ["prog", "-x"]
    assert kwargs["env"] == {"A": "1"}
    assert kwargs["start_new_session"] is True
    with pytest.raises(ValueError):
        Launch("prog -x")
    with pytest.raises(AttributeError):
        launch.new_session = False  # type: ignore[misc]


def test_readiness_waits_for_the_check_and_keeps_the_output() -> None:
    lines: list[str] = []
    launch = _python(
        """
        import time
        print("booting")
        time.sleep(0.3)
        print("caf\\u00e9 ready")
        time.sleep(60)
        """
    )
    with ManagedProcess(launch, name="child", on_line=lines.append) as proc:
        waited = proc.wait_ready(lambda: _printed(proc, "ready"), timeout=10)
        assert 0.2 < waited < 10
        assert proc.running and proc.pid is not None
        assert proc.tail() == ("booting", "caf\u00e9 ready")
        assert lines == ["booting", "caf\u00e9 ready"]
    assert not proc.running
    assert proc.poll() == -signal.SIGTERM


def test_the_tail_is_bounded() -> None:
    proc = ManagedProcess(
        _python("for i in range(100): print(f'line {i}')"), name="n", tail_lines=5
    )
    with proc:
        assert proc.wait(10) == 0
        assert proc.tail() == tuple(f"line {i}" for i in range(95, 100))


def test_output_can_go_to_a_log_file(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "child.log"
    log.parent.mkdir()
    log.write_text("an earlier run\n")
    with ManagedProcess(_python("print('to the file')"), name="f", log_path=log) as proc:
        assert proc.wait(10) == 0
    assert log.read_text() == "an earlier run\nto the file\n"  # appended
    assert proc.tail() == ("an earlier run", "to the file")


def test_a_readiness_timeout_carries_the_recent_output() -> None:
    launch = _python("import time; print('still starting'); time.sleep(60)")
    with ManagedProcess(launch, name="slowpoke") as proc:
        proc.wait_ready(lambda: _printed(proc, "still starting"), timeout=10)
        started = time.monotonic()
        with pytest.raises(NotReadyError) as info:
            proc.wait_ready(lambda: "no answer on the port", timeout=0.3)
        assert time.monotonic() - started < 5
        assert proc.running
    err = info.value
    assert not err.gone and err.returncode is None
    assert err.last == "no answer on the port"
    assert err.log_tail == ("still starting",)
    assert "slowpoke not ready within 0.3s (last: no answer on the port)" in str(err)
    assert "  still starting" in str(err)


def test_an_exit_before_ready_is_noticed_with_the_whole_output() -> None:
    launch = _python("import sys; [print(f'error {i}') for i in range(3)]; sys.exit(3)")
    with ManagedProcess(launch, name="quitter") as proc:
        started = time.monotonic()
        with pytest.raises(NotReadyError) as info:
            proc.wait_ready(lambda: "not yet", timeout=30)
        assert time.monotonic() - started < 10
    err = info.value
    assert err.gone and err.returncode == 3
    assert err.log_tail == ("error 0", "error 1", "error 2")
    assert "quitter exited with code 3 before it was ready" in str(err)


def test_a_child_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    launch = _python(
        f"""
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        open({str(ready)!r}, "w").write("x")
        time.sleep(60)
        """
    )
    proc = ManagedProcess(launch, name="stubborn").start()
    _wait_file(ready)
    started = time.monotonic()
    assert proc.stop(0.3) == -signal.SIGKILL
    assert 0.3 <= time.monotonic() - started < 5
    assert proc.pid is not None and not pid_alive(proc.pid)
    assert proc.stop() == -signal.SIGKILL  # twice is harmless


_FAMILY = """
    import signal, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    open({path!r}, "w").write(str(child.pid))
    if {leave!r}:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # exits, the child stays
    time.sleep(60)
"""


@pytest.mark.parametrize("term_group", [True, False])
def test_the_whole_process_group_is_stopped(tmp_path: Path, term_group: bool) -> None:
    pid_file = tmp_path / "grandchild.pid"
    launch = _python(_FAMILY.format(path=str(pid_file), leave=not term_group))
    policy = StopPolicy(term_group=term_group)
    with ManagedProcess(launch, name="family", stop_policy=policy) as proc:
        grandchild = int(_wait_file(pid_file))
        assert pid_alive(grandchild)
    # SIGTERM to the group ends both; SIGTERM to the leader alone ends it, and
    # what is left of its group is killed.
    assert proc.poll() == (-signal.SIGTERM if term_group else 0)
    assert wait_gone(grandchild, 5)


def test_without_a_session_only_the_child_is_signalled(tmp_path: Path) -> None:
    launch = _python("import time; time.sleep(60)", new_session=False)
    with ManagedProcess(launch, name="same-group") as proc:
        assert proc.pid is not None and os.getpgid(proc.pid) == os.getpgid(0)
    assert proc.poll() == -signal.SIGTERM  # and this test process is still here


def test_a_released_child_is_stopped_and_reaped_by_pid() -> None:
    proc = ManagedProcess(_python("import time; time.sleep(60)", bound=False), name="detached").start()
    pid = proc.release()
    assert pid_alive(pid)
    assert stop_pid(pid, timeout=5, group=True)
    assert not pid_alive(pid)
    assert not stop_pid(pid)  # gone: nothing to stop


def test_stop_pid_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    code = f"import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); open({str(ready)!r}, 'w').write('x'); time.sleep(60)"
    proc = ManagedProcess(_python(code, bound=False), name="stubborn").start()
    _wait_file(ready)
    pid = proc.release()
    started = time.monotonic()
    assert stop_pid(pid, timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 5
    assert not pid_alive(pid)


class _HalfStarted(Lifecycle):
    """Starts a child, then fails, as a server that never answers would."""

    def __init__(self) -> None:
        self.proc = ManagedProcess(_python("import time; time.sleep(60)"), name="half")
        self.stopped = 0

    def start(self) -> Self:
        self.proc.start()
        raise RuntimeError("never became ready")

    def stop(self) -> None:
        self.stopped += 1
        self.proc.stop()


def test_the_context_manager_cleans_up_when_start_fails() -> None:
    thing = _HalfStarted()
    with pytest.raises(RuntimeError, match="never became ready"), thing:
        pytest.fail("the body must not run")  # pragma: no cover
    assert thing.stopped == 1
    assert thing.proc.pid is not None and not pid_alive(thing.proc.pid)


def test_a_command_that_cannot_start(tmp_path: Path) -> None:
    proc = ManagedProcess(Launch([str(tmp_path / "no-such-program")]), name="missing")
    with pytest.raises(FileNotFoundError), proc:
        pass  # pragma: no cover
    assert proc.pid is None and proc.stop() is None
    with pytest.raises(ProcessError, match="not been started"):
        proc.wait_ready(lambda: None, 1)


def test_wait_for_without_a_process() -> None:
    answers = iter(["refused", "refused", None])
    assert wait_for(lambda: next(answers), 5, interval=0.01) < 5
    with pytest.raises(NotReadyError) as info:
        wait_for(lambda: "refused", 5, gone=lambda: True, what="the endpoint")
    assert info.value.gone and info.value.last == "no attempt made"


def test_run_captures_the_output() -> None:
    done = run(Launch([sys.executable, "-c", "print('out'); import sys; sys.exit(4)"]), 30)
    assert (done.returncode, done.stdout) == (4, "out\n")


# -- bound children: none outlives its parent ---------------------------------------

#: A parent that starts one child as ``launch_kwargs`` say, prints the child's pid,
#: and waits to be killed. ``no_pdeathsig`` leaves the lifeline alone to do the work.
PARENT = """
import sys, time
from pathlib import Path
from kclpy_local import _process
if {no_pdeathsig}:
    _process._PRCTL = None
child = _process.ManagedProcess(
    _process.Launch([sys.executable, "-c", {child!r}], **{launch_kwargs!r}), name="child"
).start()
Path({pid_file!r}).write_text(str(child.pid))
time.sleep(60)
"""

#: A child that watches its lifeline (as moto's server does here) and sleeps.
WATCHER = (
    "import signal, sys, time; from kclpy_local._process import watch_lifeline; "
    "print(watch_lifeline(), flush=True); time.sleep(60)"
)


def _orphan_after_parent_killed(tmp_path: Path, child: str, *, no_pdeathsig: bool = False,
                                **launch_kwargs: object) -> tuple[int, bool]:
    """Kill -9 a parent of one child; the child's pid and whether it ended within 5 s."""
    pid_file = tmp_path / "child.pid"
    code = PARENT.format(no_pdeathsig=no_pdeathsig, child=child, launch_kwargs=launch_kwargs,
                         pid_file=str(pid_file))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    parent = ManagedProcess(Launch([sys.executable, "-c", code], env=env), name="parent").start()
    try:
        child_pid = int(_wait_file(pid_file))
        time.sleep(0.3)  # the child is past its start-up
        os.kill(parent.pid or 0, signal.SIGKILL)
        parent.wait(5)
        gone = wait_gone(child_pid, 5.0)
        if not gone:
            os.kill(child_pid, signal.SIGKILL)
        return child_pid, gone
    finally:
        parent.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_bound_child_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    _, gone = _orphan_after_parent_killed(tmp_path, "import time; time.sleep(60)")
    assert gone


def test_a_child_watching_its_lifeline_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    # No parent-death signal: the end of the lifeline alone stops the child.
    _, gone = _orphan_after_parent_killed(tmp_path, WATCHER, no_pdeathsig=True)
    assert gone


def test_an_unbound_child_outlives_its_parent(tmp_path: Path) -> None:
    _, gone = _orphan_after_parent_killed(tmp_path, WATCHER, bound=False)
    assert not gone  # what ``kclpy-local up`` relies on


def test_the_lifeline_is_handed_to_the_child_only() -> None:
    code = "import os; print(os.environ.get('KCLPY_LOCAL_LIFELINE'))"
    with ManagedProcess(_python(code), name="bound") as proc:
        proc.wait(10)
    fd = proc.tail()[-1]
    assert fd.isdigit()
    assert proc._lifeline is None  # the write end is closed once the child is reaped
    with ManagedProcess(_python(code, bound=False), name="unbound") as proc:
        proc.wait(10)
    assert proc.tail()[-1] == "None"


def test_watch_lifeline_without_a_lifeline_or_with_a_bad_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from kclpy_local._process import watch_lifeline

    monkeypatch.delenv("KCLPY_LOCAL_LIFELINE", raising=False)
    assert watch_lifeline() is False
    monkeypatch.setenv("KCLPY_LOCAL_LIFELINE", "not-a-number")
    assert watch_lifeline() is False
    assert "KCLPY_LOCAL_LIFELINE" not in os.environ  # not passed on to this process's children


def test_watch_lifeline_calls_back_at_the_end_of_the_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from kclpy_local._process import watch_lifeline

    read_end, write_end = os.pipe()
    monkeypatch.setenv("KCLPY_LOCAL_LIFELINE", str(read_end))
    ended = threading.Event()
    assert watch_lifeline(ended.set) is True
    assert not ended.wait(0.2)
    os.close(write_end)
    assert ended.wait(5)
    os.close(read_end)


def test_a_bound_child_cannot_be_released() -> None:
    with ManagedProcess(_python("import time; time.sleep(60)"), name="bound") as proc:
        with pytest.raises(ProcessError, match="bound"):
            proc.release()


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node (kinesis-mock's runtime)")
def test_a_node_child_with_the_loopback_preload_ends_with_its_lifeline(tmp_path: Path) -> None:
    from kclpy_local._emulators.kinesis_mock import preload_path

    node = f"[{shutil.which('node')!r}, '--require', {str(preload_path())!r}, '-e', 'setInterval(() => {{}}, 1000)']"
    child = f"import os, sys; os.execv({shutil.which('node')!r}, {node})"
    _, gone = _orphan_after_parent_killed(tmp_path, child, no_pdeathsig=True)
    assert gone


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node (kinesis-mock's runtime)")
def test_the_node_lifeline_does_not_keep_a_finished_program_alive() -> None:
    from kclpy_local._emulators.kinesis_mock import preload_path

    node = shutil.which("node")
    assert node is not None
    launch = Launch([node, "--require", str(preload_path()), "-e", "setTimeout(() => {}, 100)"])
    with ManagedProcess(launch, name="node") as proc:
        assert proc.wait(10) == 0  # a program that ends by itself still ends
