"""Run directories: where one ``kclpy-local run`` keeps its files.

Each run gets a directory of its own, ``<state dir>/runs/<app>-<UTC
time>-<pid>`` (or the one it is given), for the effective properties, the
daemon's log, the progress file, the emulator's log and the processors'
ledger. So two runs of one application, side by side, never truncate each
other's log or delete each other's progress file.

A run holds an exclusive lock (``flock``) on the directory's ``.lock`` file,
which names its pid, until it ends: a second run given the same directory is
refused with :class:`~kclpy_local._exceptions.RunDirectoryBusyError` (exit
code 2), and old directories are removed only when no run holds them. Of the
directories in ``runs/`` an application keeps the newest :data:`KEEP`.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .. import _env
from .._env import default_state_dir
from .._exceptions import RunDirectoryBusyError, UsageError

__all__ = ["KEEP", "LOCK_FILE", "RUNS", "open_run_directory", "run_directory_name"]

log = logging.getLogger(__name__)

#: The subdirectory of the state directory that holds the run directories.
RUNS = "runs"
#: The lock file in each run directory; it holds the pid of the run.
LOCK_FILE = ".lock"
#: How many run directories of one application are kept (the newest ones).
KEEP = 10
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
_STAMP = r"\d{8}T\d{6}Z-\d+(?:-\d+)?"


def _safe(app: str) -> str:
    return _SAFE_NAME.sub("-", app) or "app"


def run_directory_name(app: str, *, now: float | None = None, pid: int | None = None) -> str:
    """``<app>-<UTC time>-<pid>``, with the characters a path should not have replaced."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    return f"{_safe(app)}-{stamp}-{os.getpid() if pid is None else pid}"


def _new_directory(runs: Path, app: str) -> Path:
    """A directory that did not exist: ``<app>-<UTC time>-<pid>``, with ``-N`` added
    when a run of this process made that one in the same second."""
    name = run_directory_name(app)
    runs.mkdir(parents=True, exist_ok=True)
    for attempt in range(1000):
        path = runs / (name if attempt == 0 else f"{name}-{attempt}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"{runs / name} and the next 999 names exist")  # pragma: no cover


def _lock(path: Path) -> IO[str]:
    """Hold ``path``'s lock file (writing this pid into it), or raise
    :class:`RunDirectoryBusyError` naming the pid of the run that holds it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        handle = (path / LOCK_FILE).open("a+", encoding="ascii")
    except OSError as exc:
        raise UsageError(
            f"cannot use {path} as the run directory: {exc.strerror or exc}",
            hint="give --run-dir a writable directory",
        ) from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        text = handle.read().strip()
        handle.close()
        raise RunDirectoryBusyError(
            str(path),
            int(text) if text.isdigit() else None,
            hint="wait until that run ends, or give this one another --run-dir "
            "(without --run-dir each run has a directory of its own)",
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _is_free(path: Path) -> bool:
    """Whether no run holds ``path`` (a directory without a lock file counts as free)."""
    try:
        with (path / LOCK_FILE).open("a", encoding="ascii") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def _prune(runs: Path, app: str, keep: int, current: Path) -> None:
    """Remove the run directories of ``app`` beyond the newest ``keep`` that no run holds."""
    pattern = re.compile(re.escape(_safe(app)) + "-" + _STAMP)
    try:
        mine = sorted(
            (p for p in runs.iterdir() if p.is_dir() and pattern.fullmatch(p.name)),
            key=lambda p: p.name,
        )
    except OSError:
        return
    for old in mine[: max(0, len(mine) - keep)]:
        if old != current and _is_free(old):
            shutil.rmtree(old, ignore_errors=True)
            log.info("removed the old run directory %s", old)


@contextlib.contextmanager
def open_run_directory(
    app: str,
    *,
    explicit: Path | None = None,
    state_dir: Path | None = None,
    keep: int = KEEP,
) -> Iterator[Path]:
    """The run directory of one run of ``app``, locked while the block runs.

    ``explicit`` (``--run-dir``) is used as it is, refused when another run holds
    it; otherwise a new directory under ``state_dir`` (default: the state
    directory) ``/runs``, and the oldest directories of ``app`` beyond ``keep``
    that no run holds are removed.
    """
    if explicit is not None:
        path = Path(explicit)
    else:
        runs = (state_dir if state_dir is not None else default_state_dir()) / RUNS
        try:
            path = _new_directory(runs, app)
        except OSError as exc:
            raise UsageError(
                f"cannot make a run directory in {runs}: {exc.strerror or exc}",
                hint=f"point ${_env.STATE.name} at a writable directory, or give --run-dir",
            ) from exc
    handle = _lock(path)
    try:
        if explicit is None:
            _prune(path.parent, app, keep, path)
        yield path
    finally:
        handle.close()  # releases the lock
