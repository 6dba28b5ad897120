"""The one lock file: exclusive across holders, created on demand, failing before the block."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from kclpy_local._files import locked


def test_a_second_holder_waits_for_the_first(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / ".lock"
    order: list[str] = []
    entered = threading.Event()

    def second() -> None:
        entered.wait(5)
        with locked(path):
            order.append("second in")

    thread = threading.Thread(target=second)
    thread.start()
    with locked(path):  # creates the directories and the file
        order.append("first in")
        entered.set()
        time.sleep(0.3)
        order.append("first out")
    thread.join(5)
    assert order == ["first in", "first out", "second in"]
    assert path.is_file()


def test_a_lock_file_that_cannot_be_made_fails_at_the_call(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    body_ran = False
    with pytest.raises(OSError):
        lock = locked(blocker / ".lock")  # its directory is a file
        with lock:
            body_ran = True
    assert not body_ran
