"""Run directories: one per run, locked while the run lives, old ones pruned."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kclpy_local._exceptions import RunDirectoryBusyError
from kclpy_local._jvm.rundir import KEEP, LOCK_FILE, RUNS, open_run_directory, run_directory_name

#: Holds the lock of the directory given as argv[1] until stdin closes (another run).
HOLDER = """
import fcntl, os, sys
with open(os.path.join(sys.argv[1], ".lock"), "a+") as handle:
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    handle.truncate(0)
    handle.write(f"{os.getpid()}\\n")
    handle.flush()
    print("held", flush=True)
    sys.stdin.read()
"""


def test_the_name_says_application_time_and_pid() -> None:
    assert run_directory_name("orders app/1", now=0, pid=42) == "orders-app-1-19700101T000000Z-42"


def test_two_runs_of_one_application_get_two_directories(tmp_path: Path) -> None:
    with open_run_directory("app", state_dir=tmp_path) as first, open_run_directory("app", state_dir=tmp_path) as second:
        assert first != second
        assert first.parent == second.parent == tmp_path / RUNS
        assert first.name.startswith("app-") and first.name.endswith(f"-{os.getpid()}")
        assert (first / LOCK_FILE).read_text() == f"{os.getpid()}\n"


def test_a_directory_held_by_another_run_is_refused(tmp_path: Path) -> None:
    held = tmp_path / "run"
    held.mkdir()
    with subprocess.Popen([sys.executable, "-c", HOLDER, str(held)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            with pytest.raises(RunDirectoryBusyError) as info:
                with open_run_directory("app", explicit=held):
                    pass
            assert info.value.exit_code == 2
            assert str(info.value) == f"the run directory {held} is in use by another run (pid {holder.pid})"
            assert info.value.hint is not None and "--run-dir" in info.value.hint
        finally:
            assert holder.stdin is not None
            holder.stdin.close()
            holder.wait(10)
    # Once that run has ended the directory is free again.
    with open_run_directory("app", explicit=held) as path:
        assert path == held


def test_old_directories_are_pruned_but_never_a_live_one(tmp_path: Path) -> None:
    runs = tmp_path / RUNS
    names = [run_directory_name("app", now=1_000_000 + i, pid=7) for i in range(KEEP + 3)]
    for name in names:
        (runs / name).mkdir(parents=True)
    other = runs / run_directory_name("app-two", now=1, pid=7)  # another application's
    other.mkdir()
    with (runs / names[0] / LOCK_FILE).open("a") as live:  # the oldest is still running
        fcntl.flock(live, fcntl.LOCK_EX)
        with open_run_directory("app", state_dir=tmp_path) as current:
            left = sorted(p.name for p in runs.iterdir())
    # KEEP of this application's (the new one included) and the live one stay.
    assert left == sorted([names[0], *names[-(KEEP - 1):], current.name, other.name])
