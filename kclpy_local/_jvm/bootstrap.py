"""Bootstrap: install one KCL generation into the per-user cache.

:func:`bootstrap` fetches every jar of the generation's lockfile (from Maven
Central, another repository, or a local directory), verifies each against its
pinned sha256, writes it atomically, and builds the launcher; a second run
finds everything in place and makes no network request.
:func:`installation` returns what is installed, verified, without fetching.
See :mod:`kclpy_local._jvm.cache` for the layout and the verification stamps and
:mod:`kclpy_local._jvm.fetch` for retries.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .. import _env
from .._env import default_cache_dir
from .._exceptions import (
    ArtifactDownloadError,
    ArtifactIntegrityError,
    BootstrapError,
    UsageError,
)
from .cache import (
    CacheLayout,
    Stamps,
    Verify,
    check_cached,
    locked,
    remove_leftovers,
    sha256_file,
)
from .fetch import (
    DEFAULT_REPOSITORY,
    DownloadRetry,
    Fetcher,
    Opener,
    copy_from_dir,
    download_timeout,
    resolve_repository,
)
from .jars import DEFAULT_GENERATION, Artifact, Lock, load_lock, sources_sha256
from .launcher import compile_launcher, install_launcher, launcher_problem

__all__ = [
    "DEFAULT_REPOSITORY",
    "NOT_INSTALLED_HINT",
    "BootstrapResult",
    "BootstrapSummary",
    "DownloadRetry",
    "Installation",
    "installation",
    "run_bootstrap",
]

log = logging.getLogger(__name__)

NOT_INSTALLED_HINT = "run `kclpy-local bootstrap`"


@dataclass(frozen=True, slots=True)
class Installation:
    """A verified installation of one KCL generation: what ``java -cp`` needs."""

    generation: int
    jars: tuple[Path, ...]
    launcher_jar: Path
    main_class: str

    def classpath(self) -> str:
        """The launcher jar and every pinned jar, joined with ``os.pathsep``."""
        return os.pathsep.join(str(p) for p in (self.launcher_jar, *self.jars))


@dataclass(frozen=True, slots=True)
class BootstrapSummary:
    """What a bootstrap did (coordinates per outcome; ``requests`` = HTTP requests)."""

    downloaded: tuple[str, ...] = ()
    copied: tuple[str, ...] = ()
    reused: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    bytes_downloaded: int = 0
    requests: int = 0
    launcher_built: bool = False
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    installation: Installation
    summary: BootstrapSummary


def _damaged(artifact: Artifact, path: Path, problem: str) -> ArtifactIntegrityError:
    """The error for a damaged cached jar (``problem`` as :func:`check_cached` says)."""
    try:
        actual = sha256_file(path)
    except OSError as exc:
        actual = f"unreadable ({exc})"
    err = ArtifactIntegrityError(
        artifact.coordinate, str(path), artifact.sha256, f"{actual} ({problem})"
    )
    err.hint = f"{NOT_INSTALLED_HINT} to replace it"
    return err


#: Download progress: a line each time this many more bytes of a jar have arrived.
PROGRESS_STEP = 4 * 1024 * 1024


class _Progress:
    """Progress lines (never a spinner, so they read well in a CI log too).

    ``enabled`` ``True``: every step; ``False``: nothing; ``None``: every step on a
    terminal, else only the slow or unusual work (downloads, replaced jars, removed
    leftovers, the build), so that a cold bootstrap in CI shows where it is while a
    warm one (or one from a local directory) stays quiet.
    """

    def __init__(self, enabled: bool | None, stream: TextIO | None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.work_only = False
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = True
            self.work_only = not (isatty and isatty())
        self.enabled = enabled
        self._shown: dict[str, int] = {}

    def __call__(self, text: str, *, work: bool = False) -> None:
        if self.enabled and (work or not self.work_only):
            print(f"kclpy-local: {text}", file=self.stream, flush=True)

    def received(self, step: str, artifact: Artifact, size: int) -> None:
        """``size`` bytes of ``artifact`` have arrived: a line every :data:`PROGRESS_STEP`."""
        shown = self._shown.get(artifact.coordinate, 0)
        if size - shown >= PROGRESS_STEP and size < artifact.size:
            self._shown[artifact.coordinate] = size - size % PROGRESS_STEP
            self(f"{step}: {_mib(size)} of {_mib(artifact.size)}", work=True)


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


@dataclass
class _Tally:
    downloaded: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)


def _layout(cache_dir: str | os.PathLike[str] | None, generation: int) -> CacheLayout:
    """The generation's place in the cache (``cache_dir``, else the per-user one); a
    :class:`UsageError` naming where it came from when that is not a directory."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    for path in (root, *root.parents):
        if path.exists():
            if not path.is_dir():
                source = "--cache-dir" if cache_dir is not None else _cache_source()
                raise UsageError(
                    f"the cache directory {root} ({source}) is not a directory: {path} is a file",
                    hint=f"point {source} at a directory",
                )
            break
    return CacheLayout(root, generation)


def _cache_source() -> str:
    return f"${_env.CACHE.name}" if _env.CACHE.get() else "the per-user cache"


def _prepare_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BootstrapError(f"cannot create the cache directory {path}: {exc}") from exc


def run_bootstrap(
    generation: int = DEFAULT_GENERATION,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    repository: str | None = None,
    from_dir: str | os.PathLike[str] | None = None,
    offline: bool = False,
    progress: bool | None = None,
    progress_stream: TextIO | None = None,
    retry: DownloadRetry | None = None,
    sleep: Callable[[float], None] = time.sleep,
    opener: Opener = urllib.request.urlopen,
    java: str | os.PathLike[str] | None = None,
    lock: Lock | None = None,
    timeout: float | None = None,
) -> BootstrapResult:
    """Install KCL ``generation`` into the cache; return it and what was done.

    ``from_dir`` installs from a directory of jars (flat, or a Maven repository
    layout such as ``~/.m2/repository``) without any network access;
    ``offline`` forbids downloads (missing or corrupt jars are errors).
    ``progress`` ``None`` means "every step on a terminal, else the downloads"
    (see :class:`_Progress`).  ``timeout`` bounds all the downloads together, in
    seconds (default: :func:`~kclpy_local._jvm.fetch.download_timeout`).  The
    generation's directory is locked while it is written (a second bootstrap
    waits, then finds everything in place), and what an interrupted bootstrap
    left there (temporary files) is removed first.  ``sleep``, ``opener`` and
    ``lock`` (instead of the generation's lockfile) are for tests.
    """
    started = time.monotonic()
    if lock is None:
        lock = load_lock(generation)
    layout = _layout(cache_dir, generation)
    show = _Progress(progress, progress_stream)
    repo = resolve_repository(repository)
    budget = download_timeout() if timeout is None else timeout
    source_dir = Path(from_dir) if from_dir is not None else None
    if source_dir is not None and not source_dir.is_dir():
        what = "is not a directory" if source_dir.exists() else "does not exist"
        raise UsageError(f"--from {source_dir} {what}", hint="give a directory of jars")
    _prepare_dir(layout.jars_dir)
    with locked(layout):
        for path in remove_leftovers(layout):
            show(f"removed {path.name}, left by an interrupted bootstrap", work=True)
        return _install(
            generation,
            lock,
            layout,
            show,
            started,
            fetcher=Fetcher(repo, retry or DownloadRetry(), sleep, opener, timeout=budget),
            source_dir=source_dir,
            offline=offline,
            java=java,
        )


def _install(
    generation: int,
    lock: Lock,
    layout: CacheLayout,
    show: _Progress,
    started: float,
    *,
    fetcher: Fetcher,
    source_dir: Path | None,
    offline: bool,
    java: str | os.PathLike[str] | None,
) -> BootstrapResult:
    """The jars and the launcher, with the generation's lock held."""
    repo = fetcher.repository
    stamps = Stamps(layout.stamps_path)
    tally = _Tally()
    total = len(lock.artifacts)
    try:
        for index, artifact in enumerate(lock.artifacts, 1):
            dest = layout.jars_dir / artifact.filename
            step = f"[{index:>2}/{total}] {artifact.filename}"
            problem = check_cached(dest, artifact, stamps, verify=True)
            if problem is None:
                tally.reused.append(artifact.coordinate)
                show(f"{step}: cached")
                continue
            if problem != "missing":
                if offline and source_dir is None:
                    raise _damaged(artifact, dest, problem)
                log.warning("cached %s is damaged (%s); replacing it", dest, problem)
                show(f"{step}: cached copy is damaged ({problem}), replacing", work=True)
                dest.unlink(missing_ok=True)
                tally.replaced.append(artifact.coordinate)
            if source_dir is not None:
                origin = copy_from_dir(artifact, source_dir, dest)
                tally.copied.append(artifact.coordinate)
                show(f"{step}: copied from {origin}")
            elif offline:
                raise ArtifactDownloadError(
                    artifact.coordinate,
                    artifact.url(repo),
                    "not in the cache and offline mode forbids downloading",
                )
            else:
                show(f"{step}: downloading {_mib(artifact.size)}", work=True)
                fetcher.fetch(artifact, dest, functools.partial(show.received, step))
                tally.downloaded.append(artifact.coordinate)
            stamps.record(dest, artifact.sha256)
    finally:
        stamps.save()
    jars = tuple(layout.jars_dir / a.filename for a in lock.artifacts)
    sources = lock.launcher_sources()
    problem = launcher_problem(layout, lock, sources_sha256(sources), verify=True)
    built = False
    if problem is not None:
        show(f"building the launcher ({problem})", work=True)
        jar, built_by = compile_launcher(lock, jars, sources, workdir=layout.base, java=java)
        install_launcher(layout, lock, jar, sources, built_by)
        built = True
        show(f"launcher built: {layout.launcher_jar}", work=True)
    result = BootstrapResult(
        installation=Installation(
            generation=generation,
            jars=jars,
            launcher_jar=layout.launcher_jar,
            main_class=lock.launcher.main_class,
        ),
        summary=BootstrapSummary(
            downloaded=tuple(tally.downloaded),
            copied=tuple(tally.copied),
            reused=tuple(tally.reused),
            replaced=tuple(tally.replaced),
            bytes_downloaded=fetcher.bytes,
            requests=fetcher.requests,
            launcher_built=built,
            seconds=time.monotonic() - started,
        ),
    )
    show(
        f"KCL {generation} ready in {result.summary.seconds:.1f}s "
        f"({len(tally.downloaded)} downloaded, {len(tally.copied)} copied, {len(tally.reused)} cached)"
    )
    return result


def installation(
    generation: int = DEFAULT_GENERATION,
    cache_dir: str | os.PathLike[str] | None = None,
    verify: Verify = True,
    *,
    lock: Lock | None = None,
) -> Installation:
    """The installed KCL ``generation``, checked; never downloads anything.

    ``verify=True`` checks sizes, and hashes what changed since the last check;
    ``"full"`` re-hashes every jar; ``False`` only checks presence and sizes.
    Raises :class:`BootstrapError` (hint: run ``kclpy-local bootstrap``) when
    something is missing or stale and :class:`ArtifactIntegrityError` when a jar
    is damaged.
    """
    if lock is None:
        lock = load_lock(generation)
    layout = _layout(cache_dir, generation)
    stamps = Stamps(layout.stamps_path)
    jars: list[Path] = []
    try:
        for artifact in lock.artifacts:
            path = layout.jars_dir / artifact.filename
            problem = check_cached(path, artifact, stamps, verify)
            if problem == "missing":
                err = BootstrapError(
                    f"KCL {generation} is not installed in {layout.base}: {artifact.coordinate} "
                    f"({artifact.filename}) is missing"
                )
                err.hint = NOT_INSTALLED_HINT
                raise err
            if problem is not None:
                raise _damaged(artifact, path, problem)
            jars.append(path)
    finally:
        stamps.save()
    problem = launcher_problem(layout, lock, lock.launcher_sha256(), verify)
    if problem is not None:
        err = BootstrapError(f"the KCL {generation} launcher in {layout.base} is {problem}")
        err.hint = NOT_INSTALLED_HINT
        raise err
    return Installation(
        generation=generation,
        jars=tuple(jars),
        launcher_jar=layout.launcher_jar,
        main_class=lock.launcher.main_class,
    )
