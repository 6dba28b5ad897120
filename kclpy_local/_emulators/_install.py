"""Installing an engine into the per-user cache: once, atomically, under a lock.

An engine installed on first use (kinesis-mock with npm, MiniStack with pip)
lives in ``<cache>/<engine>/<version>/``, described by a subclass of
:class:`Installation` (where it is, what is wrong with it). :func:`install_once`
builds it in a temporary directory beside the final one and renames it into
place only once ``defect`` finds nothing wrong with it, so a half-done install
is never taken for a good one; one installer at a time holds the engine's lock
file, and a second one that waited finds the work done. A broken installation
is replaced. An :class:`Installer` runs the steps of the build (``npm install``,
``pip download``) and says why one failed, telling an unreachable package
registry from the rest.
"""

from __future__ import annotations

import abc
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Self

from .. import _process
from .._env import default_cache_dir
from .._exceptions import InstallError
from .._files import locked
from .._process import Launch

__all__ = [
    "LOCK_FILE",
    "InstallError",
    "Installation",
    "Installer",
    "install_once",
]

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"


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


# -- an installation ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Installation(abc.ABC):
    """An engine pinned to one version, installed in ``<cache>/<directory>/<version>``.

    A subclass names the :attr:`directory`, the :attr:`version`, how messages
    call it (:attr:`label`), its :attr:`error` class, and says what is wrong
    with a directory that should hold it (:meth:`defect`).
    """

    root: Path
    #: The directory of the per-user cache its versions live in.
    directory: ClassVar[str]
    #: The pinned version.
    version: ClassVar[str]
    #: What messages call it (``kinesis-local@0.6.2``).
    label: ClassVar[str]
    #: What a failed installation raises.
    error: ClassVar[type[InstallError]]

    @classmethod
    @abc.abstractmethod
    def defect(cls, root: Path) -> str | None:
        """``None`` if ``root`` holds the pinned version; else what is wrong with it."""

    @classmethod
    def install_root(cls, cache_dir: Path | None = None) -> Path:
        """``<cache>/<directory>``: one directory per version below it."""
        return (cache_dir if cache_dir is not None else default_cache_dir()) / cls.directory

    @classmethod
    def find(cls, cache_dir: Path | None = None) -> Self | None:
        """The installed pinned version, or ``None`` (nothing is fetched)."""
        root = cls.install_root(cache_dir) / cls.version
        return cls(root) if cls.defect(root) is None else None

    @classmethod
    def install(cls, cache_dir: Path | None, build: Callable[[Path], None]) -> Self:
        """The pinned version, built by ``build(tmp)`` unless it is installed
        (see :func:`install_once`); :attr:`error` if what it built is not sound."""
        final = install_once(
            cls.install_root(cache_dir),
            cls.version,
            defect=cls.defect,
            build=build,
            refuse=lambda problem: cls.error(f"the installed {cls.label} is not sound: {problem}"),
            label=cls.label,
        )
        return cls(final)


# -- running the installer ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Installer:
    """A tool that installs an engine (npm, pip) and how it fails.

    ``registry`` names where the tool downloads from, ``network_words`` are the
    words of its output that say it cannot be reached (``network_hint`` says
    what to check), and ``missing_words`` those that say it has no such package
    (``missing_hint``).
    """

    installation: type[Installation]
    registry: str
    network_words: tuple[str, ...]
    network_hint: str
    missing_words: tuple[str, ...] = ()
    missing_hint: str = ""

    def run(self, launch: Launch, timeout: float, *, what: str) -> None:
        """Run one step (``what``: ``npm install``...) to its end, in at most
        ``timeout`` seconds; the installation's error unless it exits with 0."""
        error, label = self.installation.error, self.installation.label
        try:
            if timeout <= 0:
                raise subprocess.TimeoutExpired(list(launch.argv), 0)
            result = _process.run(launch, timeout)
        except subprocess.TimeoutExpired as exc:
            raise error(f"installing {label}: {what} did not finish in time") from exc
        except OSError as exc:
            raise error(f"installing {label}: cannot run {what}: {exc}") from exc
        if result.returncode == 0:
            return
        output = (result.stderr + "\n" + result.stdout).strip()
        tail = "\n".join(f"  {line}" for line in output.splitlines()[-15:])
        if any(word in output for word in self.network_words):
            err = error(f"cannot install {label}: {self.registry} is unreachable\n{tail}")
            err.hint = self.network_hint
            err.registry_unreachable = True
        elif any(word in output for word in self.missing_words):
            err = error(f"{self.registry} has no {label}\n{tail}")
            err.hint = self.missing_hint
        else:
            err = error(f"installing {label}: {what} exited with code {result.returncode}\n{tail}")
        raise err
