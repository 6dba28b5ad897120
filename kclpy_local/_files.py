"""Files several layers share: an exclusive lock file.

::

    with locked(cache / ".lock"):   # one writer at a time, across processes
        ...

:func:`locked` holds an exclusive ``flock`` on a file, which it creates (with
its directory) if missing; another process calling it on the same file waits
until the first one leaves. The lock goes with the process, however it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["locked"]


def locked(path: Path) -> contextlib.AbstractContextManager[None]:
    """Hold an exclusive ``flock`` on ``path`` for the ``with`` block, waiting for
    any other holder.

    The file (and its directory) is created and opened at once, so that an
    :class:`OSError` about the lock file itself is raised by this call, before
    the block begins.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    return _holding(path.open("a"))


@contextlib.contextmanager
def _holding(handle: IO[str]) -> Iterator[None]:
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
