"""Files several layers share: an exclusive lock file, and paths of a layout.

::

    with locked(cache / ".lock"):   # one writer at a time, across processes
        ...

:func:`locked` holds an exclusive ``flock`` on a file, which it creates (with
its directory) if missing; another process calling it on the same file waits
until the first one leaves. The lock goes with the process, however it ends.

:class:`Under` declares one path of a directory layout by where it lies::

    class Layout:
        jars_dir = Under("base", "jars")        # self.base / "jars"
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["Under", "locked"]


class Under:
    """A read-only path attribute: the path attribute ``parent`` of the same object
    joined with ``parts``."""

    __slots__ = ("_parent", "_parts")

    def __init__(self, parent: str, *parts: str) -> None:
        self._parent = parent
        self._parts = parts

    def __get__(self, obj: Any, owner: Any = None) -> Path:
        parent: Path = getattr(obj, self._parent)
        return parent.joinpath(*self._parts)


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
