"""Installing an engine into the per-user cache: once, atomically, under a lock.

An engine installed on first use (kinesis-mock with npm, MiniStack with pip)
lives in ``<cache>/<engine>/<version>/``. :func:`install_once` builds it in a
temporary directory beside the final one and renames it into place only once
``defect`` finds nothing wrong with it, so a half-done install is never taken
for a good one; one installer at a time holds the engine's lock file, and a
second one that waited finds the work done. A broken installation is replaced.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["LOCK_FILE", "install_once", "locked"]

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created, with its parents, if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install_once(
    root: Path,
    version: str,
    *,
    defect: Callable[[Path], str | None],
    build: Callable[[Path], None],
    refuse: Callable[[str], Exception],
    label: str,
) -> Path:
    """``root/version``, built by ``build(tmp)`` unless ``defect`` finds it sound.

    ``defect(path)`` says what is wrong with an installation (``None``: nothing);
    ``build(tmp)`` fills a fresh temporary directory and raises on failure;
    ``refuse(reason)`` makes the error raised when the built directory is still
    defective. The temporary directory is removed whatever happens.
    """
    final = root / version
    if defect(final) is None:
        return final
    with locked(root / LOCK_FILE):
        problem = defect(final)
        if problem is None:  # another process installed it meanwhile
            return final
        for stale in root.glob(f".{version}-*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        if final.exists():
            logger.warning("reinstalling %s in %s: %s", label, final, problem)
            shutil.rmtree(final)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{version}-", suffix=".tmp"))
        try:
            started = time.monotonic()
            build(tmp)
            problem = defect(tmp)
            if problem is not None:
                raise refuse(problem)
            tmp.chmod(0o755)  # mkdtemp made it private; the cache is plain data
            tmp.rename(final)
            logger.info("installed %s in %s (%.1fs)", label, final, time.monotonic() - started)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final
