"""The per-user jar cache: its layout, atomic writes and verification stamps.

``<cache>`` is ``--cache-dir``, else ``$KCLPY_LOCAL_CACHE``, else
``$XDG_CACHE_HOME/kclpy-local``, else ``~/.cache/kclpy-local``::

    <cache>/kcl1/jars/<artifact>-<version>.jar    the lockfile's jars
    <cache>/kcl1/jars/.verified.json              size/mtime/sha256 stamps
    <cache>/kcl1/launcher.jar                     our launcher, compiled here
    <cache>/kcl1/launcher.json                    what it was built from
    <cache>/kcl1/.lock                            held while a bootstrap writes here

Every file is written atomically (temporary file in the same directory, fsync,
``os.replace``), so the cache never holds a partial file under its final name.
A bootstrap holds the generation's lock (:func:`locked`, an ``flock`` that the
kernel releases when its process dies, even by SIGKILL) while it writes; under
the lock no other writer is at work, so a temporary file found then is a
leftover of a killed one and :func:`remove_leftovers` deletes it.

A cached jar is trusted without re-hashing only while its size and
modification time (nanoseconds) equal the stamp recorded when it was last
hashed; any other size is reported at once, any other mtime triggers a full
re-hash.  This keeps a warm start well under a second while still catching
truncated, replaced or rewritten jars.  A same-size in-place edit that also
restores the old mtime is not caught this way; ``verify="full"`` re-hashes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from .. import _files
from .._exceptions import BootstrapError
from .._files import Under
from .jars import Artifact

__all__ = [
    "CacheLayout",
    "Stamps",
    "Verify",
    "atomic_write_bytes",
    "atomic_writer",
    "check_cached",
    "locked",
    "remove_leftovers",
    "sha256_file",
]

log = logging.getLogger(__name__)

CHUNK = 1 << 16
_STAMP_VERSION = 1

#: ``True``: hash what changed since the last stamp; ``"full"``: hash all; ``False``: sizes only.
Verify = bool | Literal["full"]


@dataclass(frozen=True, slots=True)
class CacheLayout:
    """Where one generation lives in the cache."""

    root: Path
    generation: int

    @property
    def base(self) -> Path:
        return self.root / f"kcl{self.generation}"

    jars_dir = Under("base", "jars")
    stamps_path = Under("base", "jars", ".verified.json")
    launcher_jar = Under("base", "launcher.jar")
    launcher_stamp = Under("base", "launcher.json")
    lock_path = Under("base", ".lock")


@contextmanager
def locked(layout: CacheLayout) -> Iterator[None]:
    """Hold the generation's write lock (blocking until another bootstrap is done)."""
    try:
        lock = _files.locked(layout.lock_path)
    except OSError as exc:
        raise BootstrapError(f"cannot lock the cache directory {layout.base}: {exc}") from exc
    with lock:
        yield


#: What a killed writer leaves: :func:`atomic_writer`'s temporary files, and the
#: launcher build's temporary directories (``.build-*``, see ``launcher.py``).
_LEFTOVERS = (".*.part", ".build-*")


def remove_leftovers(layout: CacheLayout) -> list[Path]:
    """Delete the temporary files and build directories of writers that died; return
    them. Call it only while holding :func:`locked`: a live writer's would go too."""
    removed: list[Path] = []
    for directory in (layout.base, layout.jars_dir):
        for pattern in _LEFTOVERS:
            for path in sorted(directory.glob(pattern)):
                try:
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    log.debug("cannot remove %s: %s", path, exc)
                    continue
                log.info("removed %s, left by an interrupted bootstrap", path)
                removed.append(path)
    return removed


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_writer(dest: Path) -> Iterator[IO[bytes]]:
    """Yield a temp file next to ``dest``; on success fsync it and ``os.replace`` it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            if os.name == "posix":  # mkstemp makes 0600; cached files are plain data
                os.fchmod(fh.fileno(), 0o644)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(dest.parent)


def atomic_write_bytes(dest: Path, data: bytes) -> None:
    with atomic_writer(dest) as fh:
        fh.write(data)


class Stamps:
    """``{filename: {size, mtime_ns, sha256}}`` of files hashed earlier."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dirty = False
        self.entries: dict[str, dict[str, Any]] = {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("version") == _STAMP_VERSION:
                files = data.get("files")
                if isinstance(files, dict):
                    self.entries = files
        except (OSError, ValueError):
            pass

    def matches(self, name: str, st: os.stat_result, sha256: str) -> bool:
        return self.entries.get(name) == {
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "sha256": sha256,
        }

    def record(self, path: Path, sha256: str) -> None:
        st = path.stat()
        self.entries[path.name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}
        self.dirty = True

    def forget(self, name: str) -> None:
        if self.entries.pop(name, None) is not None:
            self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        payload = {"version": _STAMP_VERSION, "files": self.entries}
        try:
            atomic_write_bytes(self.path, json.dumps(payload, indent=1, sort_keys=True).encode())
            self.dirty = False
        except OSError as exc:  # a read-only cache still works, it just re-hashes
            log.debug("cannot save %s: %s", self.path, exc)


def check_cached(path: Path, artifact: Artifact, stamps: Stamps, verify: Verify) -> str | None:
    """``None`` if ``path`` holds ``artifact``; else why not (``"missing"`` or a defect)."""
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    if st.st_size != artifact.size:
        stamps.forget(path.name)
        return f"size is {st.st_size} bytes, expected {artifact.size}"
    if verify is False:
        return None
    if verify is True and stamps.matches(path.name, st, artifact.sha256):
        return None
    actual = sha256_file(path)
    if actual != artifact.sha256:
        stamps.forget(path.name)
        return f"sha256 is {actual}"
    stamps.record(path, actual)
    return None
