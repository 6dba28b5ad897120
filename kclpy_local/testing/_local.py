"""A processor under test, end to end: a stream on a local endpoint and the real
KCL daemon running the processor on it.

These are what the pytest fixtures hand out (see :mod:`kclpy_local.testing`),
and can be used without pytest::

    with EmbeddedEmulator(port=0) as emulator:
        stream = LocalStream.create(emulator.endpoint_url, shards=2)
        with ProcessorRun("processors/mine.py", stream) as run:
            run.wait_processed(stream.put([b"a", b"b"]))

Progress comes from the processor process itself (``KCLPY_LOCAL_PROGRESS``),
so :meth:`ProcessorRun.wait_processed` works for any processor that runs on
``kclpy_local.run`` or the ``KCLProcess`` drop-in.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from .. import _aws
from .._exceptions import DaemonError
from .._jvm.bootstrap import Installation
from .._jvm.daemon import LOCAL_PROFILE, Daemon, processor_command
from .._jvm.jars import DEFAULT_GENERATION
from .._process import Lifecycle
from .._runtime.progress import PROGRESS_ENV, ProgressBoard, ShardProgress

__all__ = ["LocalStream", "ProcessorRun", "unique_name"]

_DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


def unique_name(prefix: str = "test") -> str:
    """``prefix`` plus a short random suffix: stream and application names that never clash."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True, slots=True)
class LocalStream:
    """A Kinesis stream on a local endpoint."""

    name: str
    endpoint_url: str
    shard_ids: tuple[str, ...] = field(default=())
    region: str = "us-east-1"

    @classmethod
    def create(
        cls,
        endpoint_url: str,
        *,
        name: str | None = None,
        shards: int = 1,
        region: str = "us-east-1",
    ) -> LocalStream:
        """Create the stream (unless it exists) and wait until it is ACTIVE."""
        name = name or unique_name("stream")
        with _aws.endpoint_errors(endpoint_url):
            info = _aws.ensure_stream(_aws.client("kinesis", endpoint_url, region), name, shards)
        return cls(name, endpoint_url, info.shard_ids, region)

    def put(
        self,
        records: Iterable[bytes | str | tuple[bytes | str, str]],
        *,
        partition_key: str | None = None,
    ) -> list[_aws.PutResult]:
        """Put records (bytes, str as UTF-8, or ``(data, partition_key)`` pairs) in batches.

        A record without a key gets ``partition_key``, else a random one.  Returns
        where each record landed, in order; every record was accepted or
        :class:`~kclpy_local.PutRecordsError` is raised.
        """
        prepared: list[tuple[bytes, str]] = []
        for item in records:
            data, key = (
                item if isinstance(item, tuple) else (item, partition_key or uuid.uuid4().hex)
            )
            prepared.append((data.encode() if isinstance(data, str) else data, key))
        with _aws.endpoint_errors(self.endpoint_url):
            kinesis = _aws.client("kinesis", self.endpoint_url, self.region)
            return _aws.put_records(kinesis, self.name, prepared)


class ProcessorRun(Lifecycle):
    """The KCL daemon (our launcher on the JVM) running one processor on one stream.

    Starts from the built-in local profile (or ``properties``) with the stream,
    the endpoint, the application name (a fresh one unless ``app`` is given) and
    the processor filled in; ``overrides`` replace further keys and ``env`` adds
    to the processor's environment.  :meth:`start` returns once the worker has
    STARTED; :meth:`stop` shuts it down gracefully.  ``generation`` selects the
    KCL: 1 (KCL 1.x, the default) or 3, which runs the same properties on KCL 3.x
    (translated from the 1.x form, see :mod:`kclpy_local._config.translate`).
    As a context manager it is stopped (and its work directory removed) even
    when the start fails.
    """

    def __init__(
        self,
        processor: str | os.PathLike[str],
        stream: LocalStream,
        *,
        app: str | None = None,
        properties: str | os.PathLike[str] | None = None,
        overrides: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        installation: Installation | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        ready_timeout: float = 120.0,
        generation: int = DEFAULT_GENERATION,
    ) -> None:
        self.stream = stream
        self.app = app or unique_name("app")
        self._workdir = tempfile.TemporaryDirectory(prefix="kclpy-local-test-")
        self.progress_path = Path(self._workdir.name) / "progress.jsonl"
        self.log: list[str] = []
        endpoint = stream.endpoint_url
        settings = {
            "executableName": processor_command(processor),
            "applicationName": self.app,
            "streamName": stream.name,
            "regionName": stream.region,
            "kinesisEndpoint": endpoint,
            "dynamoDBEndpoint": endpoint,
            "cloudWatchEndpoint": endpoint,
            **(overrides or {}),
        }
        environ = {**_DUMMY_CREDENTIALS, **(env or {}), PROGRESS_ENV: str(self.progress_path)}
        self.daemon = Daemon(
            properties if properties is not None else LOCAL_PROFILE,
            generation=generation,
            installation=installation,
            cache_dir=cache_dir,
            env=environ,
            overrides=settings,
            log=self.log.append,
            ready_timeout=ready_timeout,
            cwd=cwd,
        )
        self._board = ProgressBoard(self.progress_path)

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> Self:
        self.daemon.start()
        return self

    def stop(self, timeout: float | None = None) -> int | None:
        """Graceful shutdown (processors get ``shutdownRequested``); the exit code."""
        try:
            return self.daemon.stop(timeout)
        finally:
            self._workdir.cleanup()

    # -- observation --------------------------------------------------------

    def progress(self) -> list[ShardProgress]:
        """Per shard: records processed, lag, last checkpoint, state."""
        self._board.poll()
        return self._board.shards()

    def leases(self) -> list[_aws.Lease]:
        """The shard leases of the application's lease table, as the KCL wrote them
        (KCL 3.x's leader lock, client version and worker metrics items left out)."""
        with _aws.endpoint_errors(self.stream.endpoint_url):
            dynamodb = _aws.client("dynamodb", self.stream.endpoint_url, self.stream.region)
            return _aws.read_leases(dynamodb, self.app, shard_leases_only=True)

    def wait_processed(self, records: Sequence[_aws.PutResult], timeout: float = 60.0) -> None:
        """Wait until the processor has returned from the batches holding ``records``.

        Raises :class:`AssertionError` after ``timeout`` seconds (naming the
        shards still behind) and :class:`DaemonError` if the daemon exits first.
        """
        wanted: dict[str, int] = {}
        for record in records:
            wanted[record.shard_id] = max(
                wanted.get(record.shard_id, -1), int(record.sequence_number)
            )
        deadline = time.monotonic() + timeout
        while True:
            done = {s.shard_id: s for s in self.progress()}
            behind = {
                shard: sequence
                for shard, sequence in wanted.items()
                if shard not in done
                or done[shard].last_sequence_number is None
                or int(done[shard].last_sequence_number or -1) < sequence
            }
            if not behind:
                return
            code = self.daemon.returncode
            if code is not None:
                tail = "\n".join(f"  {line}" for line in self.daemon.log_tail()[-20:])
                raise DaemonError(
                    f"the daemon exited with code {code} before the records were processed:\n{tail}"
                )
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"not processed within {timeout}s: "
                    + ", ".join(f"{shard} up to {seq}" for shard, seq in sorted(behind.items()))
                )
            time.sleep(0.2)
