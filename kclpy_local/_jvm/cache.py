"""The per-user jar cache: its layout, atomic writes and verification stamps.

``<cache>`` is ``--cache-dir``, else ``$KCLPY_LOCAL_CACHE``, else
``$XDG_CACHE_HOME/kclpy-local``, else ``~/.cache/kclpy-local``::

    <cache>/kcl1/jars/<artifact>-<version>.jar    the lockfile's jars
    <cache>/kcl1/jars/.verified.json              size/mtime/sha256 stamps
    <cache>/kcl1/launcher.jar                     our launcher, compiled here
    <cache>/kcl1/launcher.json                    what it was built from

Every file is written atomically (temporary file in the same directory, fsync,
``os.replace``), so the cache never holds a partial file under its final name.

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
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from .. import _env
from .jars import Artifact

__all__ = [
    "CACHE_ENV",
    "CacheLayout",
    "Stamps",
    "Verify",
    "atomic_write_bytes",
    "atomic_writer",
    "check_cached",
    "sha256_file",
]

log = logging.getLogger(__name__)

CACHE_ENV = _env.CACHE.name
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

    @property
    def jars_dir(self) -> Path:
        return self.base / "jars"

    @property
    def stamps_path(self) -> Path:
        return self.jars_dir / ".verified.json"

    @property
    def launcher_jar(self) -> Path:
        return self.base / "launcher.jar"

    @property
    def launcher_stamp(self) -> Path:
        return self.base / "launcher.json"


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
    except FileNotFoundError:
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
