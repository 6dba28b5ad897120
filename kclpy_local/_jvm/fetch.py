"""Downloading pinned jars: retries with back-off, verification, atomic writes.

urllib only.  429, 5xx, connection errors, timeouts and truncated bodies are
retried with bounded exponential back-off (:class:`DownloadRetry`); other HTTP
errors are not.  A body whose sha256 differs from the lockfile's is never put
in place.  Every failure names the artifact and the URL.

All the downloads of one bootstrap share an overall deadline
(:func:`download_timeout`: ``$KCLPY_LOCAL_DOWNLOAD_TIMEOUT`` seconds, 15 minutes
by default): no retry starts, no back-off sleeps and no read waits past it, so a
stalled or trickling repository ends in an :class:`ArtifactDownloadError` instead
of an endless bootstrap.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .. import _env
from .._exceptions import (
    ArtifactDownloadError,
    ArtifactIntegrityError,
    BootstrapError,
    UsageError,
)
from .._version import __version__
from .cache import CHUNK, atomic_writer
from .jars import Artifact

__all__ = [
    "DEFAULT_DOWNLOAD_TIMEOUT",
    "DEFAULT_REPOSITORY",
    "DownloadRetry",
    "Fetcher",
    "Opener",
    "copy_from_dir",
    "download_timeout",
    "resolve_repository",
]

log = logging.getLogger(__name__)

DEFAULT_REPOSITORY = "https://repo1.maven.org/maven2/"
#: Seconds all the downloads of one bootstrap may take together (15 minutes).
DEFAULT_DOWNLOAD_TIMEOUT = 900.0


def download_timeout() -> float:
    """``$KCLPY_LOCAL_DOWNLOAD_TIMEOUT`` (seconds, more than 0), else 15 minutes."""
    value = _env.DOWNLOAD_TIMEOUT.get()
    if value is None:
        return DEFAULT_DOWNLOAD_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (seconds > 0 and math.isfinite(seconds)):
        raise UsageError(
            f"${_env.DOWNLOAD_TIMEOUT.name} must be a number of seconds above 0, not {value!r}",
            hint=f"unset it for the default ({DEFAULT_DOWNLOAD_TIMEOUT:.0f} s), or give e.g. 1800",
        )
    return seconds


def resolve_repository(repository: str | None = None) -> str:
    """The Maven repository base URL: argument, ``$KCLPY_LOCAL_MAVEN_REPO``, Central."""
    url = repository or _env.MAVEN_REPO.get() or DEFAULT_REPOSITORY
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https", "file") or not (parts.netloc or parts.path):
        source = "--repository" if repository else _env.MAVEN_REPO.name
        raise UsageError(
            f"the Maven repository {url!r} ({source}) is not an http(s) or file URL",
            hint="give a base URL such as https://repo1.maven.org/maven2/",
        )
    return url.rstrip("/") + "/"


@dataclass(frozen=True, slots=True)
class DownloadRetry:
    """Bounded exponential back-off for transient download failures.

    The delay before retry ``n`` (1-based) is ``base_delay * 2**(n-1)`` capped
    at ``max_delay``; a 429/503 ``Retry-After`` of a few seconds is honoured up
    to ``max_delay``.  ``timeout`` applies to connecting and to each read.
    """

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 8.0
    timeout: float = 60.0

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        backoff = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        if retry_after is not None:
            backoff = max(backoff, min(retry_after, self.max_delay))
        return backoff


class _Transient(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    value = exc.headers.get("Retry-After") if exc.headers else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


Opener = Callable[..., Any]


#: Called with the bytes received so far of the artifact being downloaded.
ChunkCallback = Callable[[Artifact, int], None]


@dataclass(eq=False, slots=True)
class Fetcher:
    """Downloads artifacts with retries, all of them within ``timeout`` seconds.

    The deadline starts when the fetcher is made (``timeout`` ``None``: no
    deadline); ``requests`` and ``bytes`` count the requests sent and the bytes
    received.
    """

    repository: str
    policy: DownloadRetry
    sleep: Callable[[float], None]
    opener: Opener
    _: KW_ONLY
    timeout: float | None = None
    clock: Callable[[], float] = time.monotonic
    deadline: float | None = field(init=False)
    requests: int = field(default=0, init=False)
    bytes: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.deadline = None if self.timeout is None else self.clock() + self.timeout

    def _left(self, artifact: Artifact, url: str) -> float | None:
        """Seconds until the deadline; :class:`ArtifactDownloadError` once it has passed."""
        if self.deadline is None:
            return None
        left = self.deadline - self.clock()
        if left <= 0:
            raise ArtifactDownloadError(
                artifact.coordinate,
                url,
                f"the downloads took longer than {self.timeout:g} s in all "
                f"(${_env.DOWNLOAD_TIMEOUT.name}; raise it for a slow network)",
            )
        return left

    def fetch(self, artifact: Artifact, dest: Path, on_chunk: ChunkCallback | None = None) -> None:
        """Download ``artifact`` to ``dest``, verified; ``on_chunk`` is told, after
        every block read, how many of its bytes have arrived."""
        url = artifact.url(self.repository)
        last = "no attempt made"
        for attempt in range(1, self.policy.attempts + 1):
            try:
                self._once(artifact, url, dest, on_chunk)
                return
            except _Transient as exc:
                last = exc.reason
                if attempt == self.policy.attempts:
                    break
                delay = self.policy.delay(attempt, exc.retry_after)
                left = self._left(artifact, url)
                if left is not None and delay >= left:
                    raise ArtifactDownloadError(
                        artifact.coordinate,
                        url,
                        f"{last} (no time left for attempt {attempt + 1} before the overall "
                        f"download deadline, ${_env.DOWNLOAD_TIMEOUT.name})",
                    ) from None
                log.info(
                    "retrying %s in %.1fs (attempt %d/%d): %s",
                    artifact.coordinate,
                    delay,
                    attempt + 1,
                    self.policy.attempts,
                    exc.reason,
                )
                self.sleep(delay)
        raise ArtifactDownloadError(
            artifact.coordinate, url, f"{last} (gave up after {self.policy.attempts} attempts)"
        )

    def _once(
        self, artifact: Artifact, url: str, dest: Path, on_chunk: ChunkCallback | None
    ) -> None:
        request = urllib.request.Request(url, headers={"User-Agent": f"kclpy-local/{__version__}"})
        left = self._left(artifact, url)
        timeout = self.policy.timeout if left is None else min(self.policy.timeout, left)
        self.requests += 1
        try:
            response = self.opener(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            reason = f"HTTP {exc.code} {exc.reason}"
            if exc.code == 429 or exc.code >= 500:
                raise _Transient(reason, _retry_after(exc)) from exc
            raise ArtifactDownloadError(artifact.coordinate, url, reason) from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (FileNotFoundError, PermissionError, IsADirectoryError)):
                raise ArtifactDownloadError(artifact.coordinate, url, str(exc.reason)) from exc
            raise _Transient(f"connection failed: {exc.reason}") from exc
        except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
        except (ValueError, OSError) as exc:
            raise ArtifactDownloadError(artifact.coordinate, url, str(exc)) from exc
        digest = hashlib.sha256()
        size = 0
        # read1: what has arrived (at most one receive), so that the deadline is
        # checked while a slow body trickles in, not after a whole block of it.
        read = getattr(response, "read1", response.read)
        try:
            with response, atomic_writer(dest) as fh:
                while True:
                    try:
                        chunk = read(CHUNK)
                    except (TimeoutError, OSError, http.client.HTTPException) as exc:
                        raise _Transient(
                            f"download interrupted: {type(exc).__name__}: {exc}"
                        ) from exc
                    if not chunk:
                        break
                    size += len(chunk)
                    digest.update(chunk)
                    if on_chunk is not None:
                        on_chunk(artifact, size)
                    self._left(artifact, url)  # a trickle must not outlast the deadline
                    if size > artifact.size:
                        raise ArtifactIntegrityError(
                            artifact.coordinate,
                            url,
                            artifact.sha256,
                            f"{digest.hexdigest()} over its first {size} bytes "
                            f"(longer than the pinned {artifact.size})",
                        )
                    fh.write(chunk)
                self.bytes += size
                if size < artifact.size:
                    # A short body with a clean end: truncated by a proxy or the server.
                    raise _Transient(f"truncated download: {size} of {artifact.size} bytes")
                actual = digest.hexdigest()
                if actual != artifact.sha256:
                    raise ArtifactIntegrityError(artifact.coordinate, url, artifact.sha256, actual)
        except OSError as exc:
            raise BootstrapError(
                f"cannot write {dest} while fetching {artifact.coordinate} from {url}: {exc}"
            ) from exc


def copy_from_dir(artifact: Artifact, source_dir: Path, dest: Path) -> Path:
    candidates = [
        source_dir / artifact.filename,
        source_dir.joinpath(*PurePosixPath(artifact.repository_path).parts),
    ]
    source = next((c for c in candidates if c.is_file()), None)
    if source is None:
        raise ArtifactDownloadError(
            artifact.coordinate,
            candidates[0].as_uri() if candidates[0].is_absolute() else str(candidates[0]),
            f"not found in {source_dir} (looked for {artifact.filename} and "
            f"{artifact.repository_path})",
        )
    digest = hashlib.sha256()
    try:
        with source.open("rb") as src, atomic_writer(dest) as fh:
            for chunk in iter(lambda: src.read(CHUNK), b""):
                digest.update(chunk)
                fh.write(chunk)
            if digest.hexdigest() != artifact.sha256:
                raise ArtifactIntegrityError(
                    artifact.coordinate, str(source), artifact.sha256, digest.hexdigest()
                )
    except OSError as exc:
        raise BootstrapError(
            f"cannot copy {artifact.coordinate} from {source} to {dest}: {exc}"
        ) from exc
    return source
