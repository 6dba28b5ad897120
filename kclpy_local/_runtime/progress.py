"""Progress events from record processors, and the board that sums them up.

When the environment variable ``KCLPY_LOCAL_PROGRESS`` names a file, every
processor process run by :func:`kclpy_local.run` (or the ``KCLProcess``
drop-in) appends one JSON line per event to it: the shard it was given (and
its stream, when the daemon names it: one application may consume several
streams, whose shard ids repeat), each
batch (record count, ``millisBehindLatest``, last sequence number), each
checkpoint the daemon accepted, and how the shard ended.  Each event is a
single ``write`` on a descriptor opened with ``O_APPEND``, so processes of
different shards never interleave within a line.  ``kclpy-local run`` sets
the variable and reads the file with :class:`ProgressBoard`.

Reporting never disturbs processing: an event that cannot be written is
dropped (and reporting switched off) rather than raised.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, replace
from typing import Any

from .. import _env

__all__ = ["PROGRESS_ENV", "ProgressBoard", "ProgressWriter", "ShardProgress"]

PROGRESS_ENV = _env.PROGRESS.name
_log = logging.getLogger(__name__)


class ProgressWriter:
    """Appends this process's events to the progress file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._pid = os.getpid()
        self._shard: str | None = None
        self._stream: str | None = None

    @classmethod
    def from_env(cls) -> ProgressWriter | None:
        """A writer for ``$KCLPY_LOCAL_PROGRESS``, or ``None`` when it is unset or unusable."""
        path = _env.PROGRESS.get()
        if not path:
            return None
        try:
            return cls(path)
        except OSError as exc:
            _log.warning("progress reporting off: cannot open %s: %s", path, exc)
            return None

    def _emit(self, event: str, **fields: Any) -> None:
        if self._fd is None:
            return
        head: dict[str, Any] = {"event": event, "shard": self._shard}
        if self._stream is not None:
            head["stream"] = self._stream
        line = json.dumps(
            {**head, "pid": self._pid, "t": time.time(), **fields},
            separators=(",", ":"),
        )
        try:
            os.write(self._fd, (line + "\n").encode())
        except OSError as exc:
            _log.warning("progress reporting off: %s", exc)
            self.close()

    def initialized(
        self, shard_id: str, sequence_number: str | None, stream_name: str | None = None
    ) -> None:
        self._shard = shard_id
        self._stream = stream_name
        self._emit("initialize", seq=sequence_number)

    def batch(
        self, count: int, millis_behind_latest: int | None, last_sequence: str | None
    ) -> None:
        self._emit("records", n=count, behind=millis_behind_latest, seq=last_sequence)

    def checkpointed(self, sequence_number: str | None, sub_sequence_number: int | None) -> None:
        self._emit("checkpoint", seq=sequence_number, sub=sub_sequence_number)

    def ended(self, how: str) -> None:
        self._emit("end", how=how)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


@dataclass(frozen=True, slots=True)
class ShardProgress:
    """What is known about one shard's processing so far (``stream``: the shard's
    stream, when the daemon named it)."""

    shard_id: str
    state: str = "initializing"
    records: int = 0
    millis_behind_latest: int | None = None
    last_sequence_number: str | None = None
    checkpoint: str | None = None
    pid: int | None = None
    updated_at: float = 0.0
    first_record_at: float | None = None
    stream: str | None = None


class ProgressBoard:
    """Reads the progress file incrementally and keeps one :class:`ShardProgress` per
    shard (per stream and shard: the shards of several streams have the same ids)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from pathlib import Path  # here: a processor writes progress, only readers need it

        self.path = Path(path)
        self._offset = 0
        self._partial = b""
        self._shards: dict[tuple[str, str], ShardProgress] = {}
        self.bad_lines = 0

    def poll(self) -> bool:
        """Read what was appended since the last call; whether anything changed."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return False
        if not chunk:
            return False
        self._offset += len(chunk)
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        changed = False
        for line in lines:
            if line.strip():
                changed = self._apply(line) or changed
        return changed

    def _apply(self, line: bytes) -> bool:
        try:
            event = json.loads(line)
            shard = event["shard"]
            kind = event["event"]
        except (ValueError, KeyError, TypeError):
            self.bad_lines += 1
            return False
        stream = event.get("stream")
        if not isinstance(shard, str) or not isinstance(stream, str | None):
            return False
        key = (stream or "", shard)
        current = self._shards.get(key) or ShardProgress(shard, stream=stream)
        stamp = float(event.get("t") or 0.0)
        if kind == "initialize":
            updated = replace(current, state="processing", pid=event.get("pid"), updated_at=stamp)
        elif kind == "records":
            count = int(event.get("n") or 0)
            updated = replace(
                current,
                state="processing",
                records=current.records + count,
                millis_behind_latest=event.get("behind"),
                last_sequence_number=event.get("seq") or current.last_sequence_number,
                updated_at=stamp,
                first_record_at=current.first_record_at
                if current.first_record_at is not None or count == 0
                else stamp,
            )
        elif kind == "checkpoint":
            updated = replace(
                current, checkpoint=event.get("seq") or current.checkpoint, updated_at=stamp
            )
        elif kind == "end":
            updated = replace(current, state=str(event.get("how") or "ended"), updated_at=stamp)
        else:
            self.bad_lines += 1
            return False
        self._shards[key] = updated
        return True

    def shards(self) -> list[ShardProgress]:
        """Every shard seen, by stream, then shard id."""
        return [self._shards[key] for key in sorted(self._shards)]

    @property
    def total_records(self) -> int:
        return sum(s.records for s in self._shards.values())

    @property
    def first_record_at(self) -> float | None:
        stamps = [s.first_record_at for s in self._shards.values() if s.first_record_at is not None]
        return min(stamps) if stamps else None
