"""kclpy-local put --stream NAME: put records into a Kinesis stream.

Where the records come from (one source):

    seq 1000 | kclpy-local put --stream orders          stdin, one record a line
    kclpy-local put --stream orders --file lines.txt    a file, one record a line
    kclpy-local put --stream orders --count 20000 --size 1000 --payload random

Lines lose their line ending (\\n or \\r\\n) and nothing else; empty lines
are skipped. --count N generates N records of --size bytes (default
100): numbered payloads (the default) are the record's number, 1 to N,
zero-padded to SIZE digits; random payloads are random base64 text.

JSON lines (--json-input): every line must be a JSON object. The record's
data is the line as sent, or with --data-field F the value of the top-level
field F (a string as UTF-8, anything else as compact JSON). (--json is the
output switch, as in the other commands.)

Partition keys: --partition-key-field F (JSON lines; a string or a number),
--partition-key KEY (the same for every record), else a random key per
record, which spreads the records over the shards.

Records go out with PutRecords, 500 (or 5 MiB) a call; entries the stream
refuses are retried with back-off. A file is checked completely before the first
put, so a bad line puts nothing; stdin is read and put batch by batch, each
batch checked before it is sent. A missing stream is an error unless
--create (with --shards N, default 1) creates it.

While putting, a progress line shows on stderr when stderr is a terminal. At
the end a summary line goes to stderr (records, bytes of data, seconds,
records/s); --json also prints a summary document on stdout: {"stream",
"endpoint", "count", "bytes", "seconds", "records_per_second", "failed",
"shards": {SHARD_ID: COUNT}}.

Exit codes: 0 every record was put; 1 some records were still refused after
the retries (the summary says how many), or the stream is missing or not
ACTIVE, or the endpoint refused a request; 2 bad arguments or bad input (the
error names the file and line; nothing of the file was put); 8 the endpoint
cannot be reached; 130 interrupted.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

from botocore.exceptions import ClientError

from .. import _aws
from .._exceptions import InputError, KclpyLocalError, PutRecordsError
from . import _common

__all__ = ["register", "run"]

#: Kinesis limit: data plus partition key of one record.
MAX_RECORD_BYTES = 1024 * 1024
#: Kinesis limit: partition key length, in Unicode characters.
MAX_KEY_CHARS = 256
#: PutRecords calls per batch before refused entries count as failed.
MAX_ATTEMPTS = 8
#: First back-off between those calls, in seconds (doubling, at most 2 s).
BACKOFF = 0.05
#: Seconds between progress line updates.
PROGRESS_INTERVAL = 0.2


def register(subparsers: _common.Subparsers) -> None:
    summary = "put records into a stream (stdin, a file, or generated)"
    p = _common.add_command(subparsers, "put", summary, __doc__, raw=True)
    p.add_argument(
        "--stream",
        required=True,
        metavar="NAME",
        type=_common.stream_name,
        help="the Kinesis stream",
    )
    _common.add_endpoint_arguments(p)
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--file", metavar="PATH", help="read records from PATH, one a line ('-': stdin)"
    )
    source.add_argument(
        "--count",
        metavar="N",
        type=_common.whole_number(1),
        help="generate N records instead of reading",
    )
    p.add_argument(
        "--size",
        metavar="BYTES",
        type=_common.whole_number(1),
        help="bytes per generated record (default 100)",
    )
    p.add_argument(
        "--payload",
        choices=("numbered", "random"),
        help="generated payloads: numbered (default) or random",
    )
    p.add_argument("--json-input", action="store_true", help="every line is a JSON object")
    p.add_argument("--data-field", metavar="FIELD", help="JSON lines: the data is this field")
    keys = p.add_mutually_exclusive_group()
    keys.add_argument(
        "--partition-key-field", metavar="FIELD", help="JSON lines: the partition key field"
    )
    keys.add_argument("--partition-key", metavar="KEY", help="this partition key for every record")
    p.add_argument("--create", action="store_true", help="create the stream when it is missing")
    p.add_argument(
        "--shards",
        metavar="N",
        type=_common.shard_count,
        help="shards of a stream --create makes (default 1)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=run)


# -- records ----------------------------------------------------------------------


def _random_key() -> str:
    return f"{random.getrandbits(128):032x}"


@dataclass(frozen=True, slots=True)
class _Shape:
    """How a line becomes a record."""

    json_input: bool = False
    data_field: str | None = None
    key_field: str | None = None
    key: str | None = None

    def partition_key(self) -> str:
        return self.key if self.key is not None else _random_key()


def _strip(raw: bytes) -> bytes:
    if raw.endswith(b"\n"):
        raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
    return raw


def _key_of(value: Any, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"field {name!r} must be a string or a number, not {_kind(value)}")
    key = str(value)
    if not 1 <= len(key) <= MAX_KEY_CHARS:
        raise ValueError(f"field {name!r}: a partition key has 1 to {MAX_KEY_CHARS} characters")
    return key


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", bool: "a boolean"}.get(type(value), "a value")


def _from_json(line: bytes, shape: _Shape) -> tuple[bytes, str]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    except ValueError as exc:  # not UTF-8
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"not a JSON object but {_kind(obj)}")
    data = line
    if shape.data_field is not None:
        if obj.get(shape.data_field) is None:
            raise ValueError(f"no field {shape.data_field!r} (or it is null)")
        value = obj[shape.data_field]
        data = (
            value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        ).encode()
    if shape.key_field is not None:
        if shape.key_field not in obj:
            raise ValueError(f"no field {shape.key_field!r}")
        return data, _key_of(obj[shape.key_field], shape.key_field)
    return data, shape.partition_key()


def _line_records(
    lines: Iterable[bytes], source: str, shape: _Shape
) -> Iterator[tuple[bytes, str]]:
    """``(data, key)`` per non-empty line; :class:`InputError` naming the line."""
    for number, raw in enumerate(lines, start=1):
        line = _strip(raw)
        if not line:
            continue
        try:
            if shape.json_input:
                data, key = _from_json(line, shape)
            else:
                data, key = line, shape.partition_key()
            size = len(data) + len(key.encode())
            if size > MAX_RECORD_BYTES:
                raise ValueError(
                    f"the record is {size} bytes with its partition key; "
                    f"Kinesis takes at most {MAX_RECORD_BYTES}"
                )
        except ValueError as exc:
            raise InputError(f"{source} line {number}: {exc}") from None
        yield data, key


def _generated(count: int, size: int, payload: str, shape: _Shape) -> Iterator[tuple[bytes, str]]:
    if payload == "random":
        raw = math.ceil(size * 3 / 4)
        for _ in range(count):
            yield base64.b64encode(os.urandom(raw))[:size], shape.partition_key()
    else:
        for number in range(1, count + 1):
            yield str(number).zfill(size).encode(), shape.partition_key()


def _stdin_lines() -> Iterable[bytes]:
    """stdin's lines as bytes (UTF-8 encoded when sys.stdin has no binary buffer)."""
    buffer: IO[bytes] | None = getattr(sys.stdin, "buffer", None)
    if buffer is not None:
        return buffer
    return (line.encode() for line in sys.stdin)


# -- the command ------------------------------------------------------------------


@dataclass(slots=True)
class _Tally:
    count: int = 0
    bytes: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    shards: Counter[str] = field(default_factory=Counter)

    def add(self, batch: _aws.PutBatch) -> None:
        self.count += len(batch.results)
        self.bytes += sum(len(r.data) for r in batch.results)
        self.shards.update(r.shard_id for r in batch.results)
        self.failed.extend(batch.failed)


class _Progress:
    """One self-overwriting line on ``stream``, only when it is a terminal."""

    def __init__(self, stream: TextIO, total: int | None) -> None:
        self._stream = stream
        self._total = total
        self._enabled = stream.isatty()
        self._width = 0
        self._last = 0.0

    def update(self, tally: _Tally, seconds: float) -> None:
        now = time.monotonic()
        if not self._enabled or now - self._last < PROGRESS_INTERVAL:
            return
        self._last = now
        text = f"put {tally.count}"
        if self._total:
            text += f" of {self._total} ({100 * tally.count // self._total}%)"
        rate = tally.count / seconds if seconds > 0 else 0.0
        text += f" records, {tally.bytes / 2**20:.1f} MiB, {rate:.0f} records/s"
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = len(text)

    def close(self) -> None:
        if self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0


def _shape(args: argparse.Namespace) -> _Shape:
    if not args.json_input:
        for flag, value in (
            ("--data-field", args.data_field),
            ("--partition-key-field", args.partition_key_field),
        ):
            if value is not None:
                raise InputError(f"{flag} needs --json-input")
    if args.count is None:
        for flag, value in (("--size", args.size), ("--payload", args.payload)):
            if value is not None:
                raise InputError(f"{flag} needs --count")
    elif args.json_input:
        raise InputError("--json-input reads lines; it does not go with --count")
    if args.shards is not None and not args.create:
        err = InputError("--shards needs --create")
        err.hint = "an existing stream keeps its shards; --create --shards N makes a new one"
        raise err
    key = args.partition_key
    if key is not None and not 1 <= len(key) <= MAX_KEY_CHARS:
        raise InputError(f"--partition-key must have 1 to {MAX_KEY_CHARS} characters")
    return _Shape(args.json_input, args.data_field, args.partition_key_field, key)


def _file_lines(path: Path) -> Iterator[bytes]:
    try:
        with path.open("rb") as handle:
            yield from handle
    except OSError as exc:
        err = InputError(f"cannot read {path}: {exc.strerror or exc}")
        err.hint = "--file takes a file of records, one a line ('-' for stdin)"
        raise err from None


def _source(
    args: argparse.Namespace, shape: _Shape
) -> tuple[Iterable[tuple[bytes, str]], int | None, bool]:
    """The records, how many (when known) and whether they come from a stream."""
    if args.count is not None:
        size = args.size or 100
        longest_key = len(shape.key.encode()) if shape.key is not None else 32
        if size + longest_key > MAX_RECORD_BYTES:
            raise InputError(
                f"--size {size}: a record and its partition key take at most "
                f"{MAX_RECORD_BYTES} bytes"
            )
        return _generated(args.count, size, args.payload or "numbered", shape), args.count, False
    if args.file is None or args.file == "-":
        return _line_records(_stdin_lines(), "stdin", shape), None, True
    path = Path(args.file)
    # Check every line before anything is put; count them for the progress line.
    try:
        total = sum(1 for _ in _line_records(_file_lines(path), str(path), shape))
    except InputError as exc:
        exc.hint = exc.hint or "nothing was put; fix the line and run again"
        raise
    return _line_records(_file_lines(path), str(path), shape), total, False


def _check_stream(kinesis: Any, args: argparse.Namespace, endpoint: str) -> None:
    name = args.stream
    try:
        summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    except ClientError as exc:
        if _aws.error_code(exc) != "ResourceNotFoundException":
            raise
        if not args.create:
            err = KclpyLocalError(f"stream {name} does not exist at {endpoint}")
            err.hint = (
                "create it with --create [--shards N], or check --stream, --endpoint, --region"
            )
            raise err from None
        shards = args.shards or 1
        _aws.ensure_stream(kinesis, name, shards)
        print(f"created stream {name} with {shards} shard(s)", file=sys.stderr)
        return
    if summary["StreamStatus"] == "CREATING":
        _aws.ensure_stream(kinesis, name)  # waits until ACTIVE
    elif summary["StreamStatus"] not in ("ACTIVE", "UPDATING"):
        raise KclpyLocalError(f"stream {name} is {summary['StreamStatus']}, records cannot be put")


def _summary_line(args: argparse.Namespace, tally: _Tally, seconds: float) -> str:
    rate = tally.count / seconds if seconds > 0 else 0.0
    text = (
        f"put {tally.count} records, {tally.bytes} bytes, to stream {args.stream} "
        f"in {seconds:.2f} s: {rate:.0f} records/s"
    )
    if tally.failed:
        text += f"; {len(tally.failed)} refused"
    return text


def run(args: argparse.Namespace) -> int:
    shape = _shape(args)
    endpoint = _common.endpoint_for(args.endpoint)
    with _aws.endpoint_errors(endpoint):
        records, total, streamed = _source(args, shape)
        # Fail fast on an unreachable endpoint; puts get the full retry budget.
        _check_stream(_aws.client("kinesis", endpoint, args.region, max_attempts=1), args, endpoint)
        kinesis = _aws.client("kinesis", endpoint, args.region)
        if streamed and sys.stdin.isatty():
            print("reading records from the terminal, one a line; end with Ctrl-D", file=sys.stderr)
        tally = _Tally()
        progress = _Progress(sys.stderr, total)
        started = time.monotonic()
        try:
            for batch in _aws.put_batches(
                kinesis, args.stream, records, max_attempts=MAX_ATTEMPTS, backoff=BACKOFF
            ):
                tally.add(batch)
                progress.update(tally, time.monotonic() - started)
        except InputError as exc:
            if streamed:
                exc.hint = (
                    f"{tally.count} record(s) of the lines before it were put in earlier "
                    "batches; the batch holding this line was not sent"
                )
            raise
        except KeyboardInterrupt:
            progress.close()
            print(_summary_line(args, tally, time.monotonic() - started), file=sys.stderr)
            raise
        finally:
            progress.close()
        seconds = time.monotonic() - started
    print(_summary_line(args, tally, seconds), file=sys.stderr)
    if args.json:
        _common.print_json(
            {
                "stream": args.stream,
                "endpoint": endpoint,
                "count": tally.count,
                "bytes": tally.bytes,
                "seconds": round(seconds, 3),
                "records_per_second": round(tally.count / seconds, 1) if seconds > 0 else None,
                "failed": len(tally.failed),
                "shards": dict(sorted(tally.shards.items())),
            }
        )
    if tally.failed:
        err = PutRecordsError(args.stream, tally.failed)
        err.hint = (
            f"each was sent {MAX_ATTEMPTS} times with back-off; the stream is throttled "
            "or failing: put fewer records at a time, or use more shards"
        )
        raise err
    return 0
