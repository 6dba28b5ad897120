"""boto3 helpers for tooling and tests: clients, streams, puts, leases, metrics.

This module is never imported by the processor runtime (it imports boto3).

Clients for an endpoint URL that is not an ``amazonaws.com`` host get dummy
static credentials, so a local run can never sign with, or reach, a real
account. Without an endpoint URL the default credential chain applies (real AWS).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypedDict, Unpack

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    HTTPClientError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.parsers import ResponseParserError

from .._exceptions import EmulatorError, KclpyLocalError, PutRecordsError, UsageError
from .._names import application_name_problem, region_name_problem, stream_name_problem

__all__ = [
    "DUMMY_CREDENTIALS",
    "LEASE_ENTITY",
    "STREAMS_TAG",
    "STREAM_TAG",
    "Datapoint",
    "Lease",
    "Metric",
    "PutBatch",
    "PutResult",
    "PutRetries",
    "StreamClaim",
    "StreamInfo",
    "application_name_problem",
    "check_endpoint_url",
    "client",
    "delete_lease_table",
    "delete_streams",
    "endpoint_errors",
    "ensure_stream",
    "error_code",
    "is_local_endpoint",
    "is_shard_lease",
    "list_metrics",
    "metric_statistics",
    "put_batches",
    "put_records",
    "read_leases",
    "read_stream_claim",
    "region_name_problem",
    "rpc_v2_cbor_problem",
    "session",
    "stream_name_problem",
    "subscribe_to_shard_problem",
    "tag_stream_claim",
]

logger = logging.getLogger(__name__)

#: Access key, secret key and session token used for every non-AWS endpoint.
DUMMY_CREDENTIALS = ("test", "test", "test")

MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 5 * 1024 * 1024
_CONFIG = Config(
    retries={"max_attempts": 5, "mode": "standard"},
    connect_timeout=5,
    read_timeout=60,
)
#: ``client(..., quick=True)``: short timeouts, for checks that must not hold a start up.
_QUICK = Config(connect_timeout=3, read_timeout=10)

# boto3 ships no type information; clients are plain objects here.
Client = Any


# -- clients ------------------------------------------------------------------


def check_endpoint_url(endpoint_url: str) -> str:
    """``endpoint_url`` if it is ``http(s)://HOST[:PORT]...``; else :class:`UsageError`.

    Refused before any client is made, so botocore never fails on it with a bare
    ``ValueError`` (a port over 65535, an unclosed IPv6 bracket).
    """
    try:
        parts = urllib.parse.urlsplit(endpoint_url)
        _ = parts.port  # raises ValueError when out of range or not a number
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError as exc:
        reason: str | None = str(exc)
        ok = False
    else:
        reason = None
    if not ok:
        why = f" ({reason})" if reason else ""
        raise UsageError(
            f"invalid endpoint URL {endpoint_url!r}{why}",
            hint="write it as http://HOST:PORT, e.g. http://127.0.0.1:4566",
        )
    return endpoint_url


def is_local_endpoint(endpoint_url: str | None) -> bool:
    """True for an endpoint URL whose host is not an AWS (``amazonaws.com``) host."""
    if not endpoint_url:
        return False
    try:
        hostname = urllib.parse.urlsplit(endpoint_url).hostname
    except ValueError:
        return False  # not a URL: never given dummy credentials (and refused by client())
    host = (hostname or "").lower().rstrip(".")
    return not (
        host.endswith((".amazonaws.com", ".amazonaws.com.cn"))
        or host in ("amazonaws.com", "amazonaws.com.cn")
    )


def session(endpoint_url: str | None = None, region: str = "us-east-1") -> Any:
    """A boto3 session; dummy static credentials when ``endpoint_url`` is local."""
    if is_local_endpoint(endpoint_url):
        key, secret, token = DUMMY_CREDENTIALS
        return boto3.session.Session(
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=token,
            region_name=region,
        )
    return boto3.session.Session(region_name=region)


def client(
    service: str,
    endpoint_url: str | None = None,
    region: str = "us-east-1",
    *,
    max_attempts: int | None = None,
    quick: bool = False,
) -> Client:
    """A boto3 client for ``service`` (``kinesis``, ``dynamodb``, ``cloudwatch``).

    ``max_attempts`` caps the calls per request, first one included (by default
    6: 5 retries); 1 or 2 make a client that reports an unreachable endpoint at
    once instead of after ~15 s of back-off. ``quick`` shortens the timeouts
    (3 s to connect, 10 s to read).
    """
    if endpoint_url is not None:
        check_endpoint_url(endpoint_url)
    config = _CONFIG
    if max_attempts is not None:
        retries = {"total_max_attempts": max_attempts, "mode": "standard"}
        config = config.merge(Config(retries=retries))
    if quick:
        config = config.merge(_QUICK)
    return session(endpoint_url, region).client(
        service, endpoint_url=endpoint_url, region_name=region, config=config
    )


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError (``ResourceNotFoundException``, ...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def endpoint_errors(endpoint_url: str | None) -> Iterator[None]:
    """Translate botocore errors escaping the block into this package's errors.

    A connection failure becomes :class:`EmulatorError` naming the endpoint; any
    other ClientError or botocore error becomes :class:`KclpyLocalError` with the
    operation and AWS error code. Handle the codes you expect inside the block.
    An endpoint URL that is not ``http(s)://HOST...`` is refused on entry
    (:func:`check_endpoint_url`, exit code 2).
    """
    where = endpoint_url or "AWS"
    if endpoint_url is not None:
        check_endpoint_url(endpoint_url)
    try:
        yield
    except (BotoConnectionError, HTTPClientError) as exc:
        detail = "" if isinstance(exc, EndpointConnectionError) else f": {exc}"
        err = EmulatorError(f"cannot reach {where}{detail}")
        err.hint = (
            "start the emulator with `kclpy-local up`, or pass --endpoint URL "
            "(or set $KCLPY_LOCAL_ENDPOINT)"
            if is_local_endpoint(endpoint_url)
            else "check the network, --region and your AWS credentials"
        )
        raise err from exc
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", "")
        raise KclpyLocalError(
            f"{exc.operation_name} failed at {where}: {error_code(exc)}: {message}"
        ) from exc
    except BotoCoreError as exc:
        raise KclpyLocalError(f"request to {where} failed: {exc}") from exc


# -- enhanced fan-out -------------------------------------------------------------

#: The errors Kinesis itself answers SubscribeToShard with: an engine that sends one
#: of them for a consumer that does not exist has the operation.
_SUBSCRIBE_ERRORS = frozenset(
    {
        "ResourceNotFoundException",
        "ResourceInUseException",
        "InvalidArgumentException",
        "LimitExceededException",
        "AccessDeniedException",
        "ValidationException",
    }
)
_PROBE_CONSUMER = "arn:aws:kinesis:{region}:000000000000:stream/kclpy-local-probe/consumer/probe:1"


def subscribe_to_shard_problem(endpoint_url: str, region: str = "us-east-1") -> str | None:
    """Why the engine at ``endpoint_url`` has no SubscribeToShard; ``None`` when it has
    it, or when it does not answer (a connection failure says nothing about it).

    One SubscribeToShard call (over HTTP/1.1) for a consumer that does not exist: an
    engine with the operation answers one of Kinesis's own errors for it (or an event
    stream); one without answers something else (moto: HTTP 500).
    """
    kinesis = client("kinesis", endpoint_url, region, max_attempts=1, quick=True)
    try:
        response = kinesis.subscribe_to_shard(
            ConsumerARN=_PROBE_CONSUMER.format(region=region),
            ShardId="shardId-000000000000",
            StartingPosition={"Type": "LATEST"},
        )
    except ClientError as exc:
        code = error_code(exc)
        if code in _SUBSCRIBE_ERRORS:
            return None
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        return f"it answers SubscribeToShard with HTTP {status} {code}".rstrip()
    except ResponseParserError:
        return None  # an event stream it sent (its first event was not the initial response)
    except (BotoConnectionError, HTTPClientError):
        return None
    except BotoCoreError as exc:
        return f"SubscribeToShard failed: {exc}"
    with contextlib.suppress(Exception):
        response["EventStream"].close()
    return None


# -- streams and records --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """A stream as ``DescribeStreamSummary`` and ``ListShards`` describe it."""

    name: str
    arn: str
    status: str
    """``CREATING``, ``ACTIVE``, ``UPDATING`` or ``DELETING``."""
    shard_ids: tuple[str, ...]
    """Every shard's id, open or closed, in the order ``ListShards`` gives them."""


@dataclass(frozen=True, slots=True)
class PutResult:
    """Where one record landed, in the order the records were given."""

    shard_id: str
    """The shard the partition key hashed to."""
    sequence_number: str
    partition_key: str
    data: bytes
    """The record's payload, as given."""


def _describe(kinesis: Client, name: str) -> StreamInfo:
    shard_ids: list[str] = []
    paginator = kinesis.get_paginator("list_shards")
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    if summary["StreamStatus"] in ("ACTIVE", "UPDATING"):
        for page in paginator.paginate(StreamName=name):
            shard_ids.extend(s["ShardId"] for s in page["Shards"])
    return StreamInfo(name, summary["StreamARN"], summary["StreamStatus"], tuple(shard_ids))


def ensure_stream(kinesis: Client, name: str, shards: int = 1, timeout: float = 30.0) -> StreamInfo:
    """Create stream ``name`` with ``shards`` shards unless it exists; wait until ACTIVE.

    An existing stream is left as it is, whatever its shard count.
    """
    try:
        kinesis.create_stream(StreamName=name, ShardCount=shards)
        logger.info("created stream %s with %d shard(s)", name, shards)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
    deadline = time.monotonic() + timeout
    while True:
        info = _describe(kinesis, name)
        if info.status == "ACTIVE":
            return info
        if info.status == "DELETING" or time.monotonic() >= deadline:
            raise KclpyLocalError(
                f"stream {name!r} is {info.status}, not ACTIVE, after {timeout:.1f}s"
            )
        time.sleep(0.1)


def delete_streams(kinesis: Client, timeout: float = 30.0) -> list[str]:
    """Delete every stream the client sees (an engine's reset); wait until they are
    gone and return their names. :class:`EmulatorError` if some are still there
    after ``timeout`` seconds."""
    names = [
        n for page in kinesis.get_paginator("list_streams").paginate() for n in page["StreamNames"]
    ]
    for name in names:
        try:
            kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
        except ClientError as exc:
            if error_code(exc) not in ("ResourceNotFoundException", "ResourceInUseException"):
                raise
    deadline = time.monotonic() + timeout
    left = list(names)
    while left:
        left = kinesis.list_streams().get("StreamNames", [])
        if left and time.monotonic() >= deadline:
            raise EmulatorError(f"streams {left} still exist after {timeout:.0f}s")
        if left:
            time.sleep(0.05)
    return names


def _batches(records: Iterable[tuple[bytes, str]]) -> Iterator[list[tuple[bytes, str]]]:
    batch: list[tuple[bytes, str]] = []
    size = 0
    for data, key in records:
        item = len(data) + len(key.encode())
        if batch and (len(batch) == MAX_BATCH_RECORDS or size + item > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append((data, key))
        size += item
    if batch:
        yield batch


@dataclass(frozen=True, slots=True)
class PutBatch:
    """One PutRecords batch after its retries.

    ``results`` are the accepted records in input order; ``failed`` holds an
    ``(error_code, error_message)`` pair per record still refused after the last
    attempt.
    """

    results: tuple[PutResult, ...]
    failed: tuple[tuple[str, str], ...] = ()


def _put_batch(
    kinesis: Client,
    stream: str,
    batch: Sequence[tuple[bytes, str]],
    max_attempts: int,
    backoff: float,
) -> PutBatch:
    done: list[PutResult | None] = [None] * len(batch)
    pending = list(range(len(batch)))
    failures: list[tuple[str, str]] = []
    for attempt in range(max_attempts):
        if attempt:
            time.sleep(min(backoff * 2 ** (attempt - 1), 2.0))
        response = kinesis.put_records(
            StreamName=stream,
            Records=[{"Data": batch[i][0], "PartitionKey": batch[i][1]} for i in pending],
        )
        failures = []
        retry: list[int] = []
        for index, entry in zip(pending, response["Records"], strict=True):
            if entry.get("ErrorCode"):
                retry.append(index)
                failures.append((entry["ErrorCode"], entry.get("ErrorMessage", "")))
            else:
                data, key = batch[index]
                done[index] = PutResult(entry["ShardId"], entry["SequenceNumber"], key, data)
        pending = retry
        if not pending:
            break
        logger.info("%d of %d record(s) refused; retrying", len(pending), len(batch))
    return PutBatch(tuple(r for r in done if r is not None), tuple(failures))


def put_batches(
    kinesis: Client,
    stream: str,
    records: Iterable[tuple[bytes, str]],
    *,
    max_attempts: int = 8,
    backoff: float = 0.05,
) -> Iterator[PutBatch]:
    """Put ``(data, partition_key)`` records with PutRecords, 500 (and 5 MiB) a call.

    ``records`` is consumed lazily, one batch at a time, and a batch is sent only
    once it is complete: an exception raised by the iterable while a batch fills
    leaves that batch unsent. Entries the service refuses (throttling, internal
    failure) are sent again with exponential back-off, up to ``max_attempts``
    calls per batch; what is still refused then is reported in
    :attr:`PutBatch.failed` and the next batch follows.
    """
    for batch in _batches(records):
        yield _put_batch(kinesis, stream, batch, max_attempts, backoff)


class PutRetries(TypedDict, total=False):
    """The retry options of :func:`put_batches`, which :func:`put_records` passes on."""

    max_attempts: int
    backoff: float


def put_records(
    kinesis: Client,
    stream: str,
    records: Iterable[tuple[bytes, str]],
    **retries: Unpack[PutRetries],
) -> list[PutResult]:
    """Put ``(data, partition_key)`` records with PutRecords, 500 (and 5 MiB) a call.

    Entries the service refuses (throttling, internal failure) are sent again
    with exponential back-off, up to ``max_attempts`` calls per batch; then
    :class:`PutRecordsError` (later batches are not sent). Results come back in
    input order. :func:`put_batches` is the same, batch by batch, without raising.
    """
    results: list[PutResult] = []
    for batch in put_batches(kinesis, stream, records, **retries):
        if batch.failed:
            raise PutRecordsError(stream, batch.failed)
        results.extend(batch.results)
    return results


# -- leases ---------------------------------------------------------------------


#: ``entityType`` of the shard leases in a KCL 3.x lease table. Its other items
#: are not leases: the leader lock (``LEADER``, key ``Leader``), the client version
#: state (``CLIENT_VERSION_MIGRATION``, key ``Migration3.0``) and one item per
#: worker with its metrics (``WORKER_METRIC_STATS``, keyed by the worker id).
#: KCL 1.x items have no ``entityType``.
LEASE_ENTITY = "LEASE"


@dataclass(frozen=True, slots=True)
class Lease:
    """One item of a KCL lease table (KCL 1.x's ``KinesisClientLeaseSerializer``; a KCL
    3.x shard lease has the same attributes and ``entityType`` ``LEASE``)."""

    lease_key: str
    owner: str | None
    checkpoint: str | None
    checkpoint_sub: int
    lease_counter: int
    parent_shard_ids: tuple[str, ...]
    owner_switches: int = 0
    pending_checkpoint: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def stream(self) -> str | None:
        """The stream of a KCL 3.x multi-stream lease (the name in its ``streamName``
        attribute, ``account:stream:creationEpoch``); ``None`` for a lease of one stream."""
        identifier = self.raw.get("streamName")
        if not isinstance(identifier, str):
            return None
        parts = identifier.split(":")
        return parts[1] if len(parts) == 3 else identifier

    @property
    def shard_id(self) -> str:
        """The shard: a multi-stream lease's ``shardId`` attribute, else the lease key."""
        shard = self.raw.get("shardId")
        return shard if isinstance(shard, str) else self.lease_key


def _plain(value: Mapping[str, Any]) -> Any:
    """A DynamoDB attribute value as a plain Python value."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return inner
    if kind == "N":
        number = Decimal(inner)
        return int(number) if number == number.to_integral_value() else number
    if kind == "SS":
        return sorted(inner)
    if kind == "NS":
        return sorted(Decimal(n) for n in inner)
    if kind == "BOOL":
        return bool(inner)
    if kind == "NULL":
        return None
    if kind == "L":
        return [_plain(v) for v in inner]
    if kind == "M":
        return {k: _plain(v) for k, v in inner.items()}
    return inner


def _lease(item: Mapping[str, Mapping[str, Any]]) -> Lease:
    raw = {k: _plain(v) for k, v in item.items()}
    parents = raw.get("parentShardId") or ()
    if isinstance(parents, str):
        parents = (parents,)
    return Lease(
        lease_key=str(raw["leaseKey"]),
        owner=raw.get("leaseOwner"),
        checkpoint=raw.get("checkpoint"),
        checkpoint_sub=int(raw.get("checkpointSubSequenceNumber", 0)),
        lease_counter=int(raw.get("leaseCounter", 0)),
        parent_shard_ids=tuple(parents),
        owner_switches=int(raw.get("ownerSwitchesSinceCheckpoint", 0)),
        pending_checkpoint=raw.get("pendingCheckpoint"),
        raw=raw,
    )


def is_shard_lease(lease: Lease) -> bool:
    """Whether an item of a lease table is a shard lease (not one of KCL 3.x's other items)."""
    return bool(lease.raw.get("entityType", LEASE_ENTITY) == LEASE_ENTITY)


def read_leases(dynamodb: Client, table: str, *, shard_leases_only: bool = False) -> list[Lease]:
    """Every item of the KCL lease table ``table`` (a consistent scan), sorted by lease key.

    ``shard_leases_only`` skips the items of a KCL 3.x table that are not shard
    leases (see :data:`LEASE_ENTITY`).
    """
    leases: list[Lease] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        leases.extend(_lease(item) for item in page["Items"])
    if shard_leases_only:
        leases = [lease for lease in leases if is_shard_lease(lease)]
    return sorted(leases, key=lambda lease: lease.lease_key)


#: The tag kclpy-local puts on a lease table of one stream: the stream whose checkpoints it holds.
STREAM_TAG = "kclpy-local:stream"
#: The tag of a lease table of several streams (the KCL's multi-stream mode): their names,
#: separated by spaces; names beyond a tag value's 256 characters go on in
#: ``kclpy-local:streams:2``, ``:3``...
STREAMS_TAG = "kclpy-local:streams"
_TAG_VALUE_LIMIT = 256


@dataclass(frozen=True, slots=True)
class StreamClaim:
    """The stream(s) whose leases a lease table holds, as kclpy-local tags it: one
    stream, whose leases are keyed by shard id; or (``multi``, the KCL's multi-stream
    mode) several, sorted, whose leases are keyed by stream and shard."""

    streams: tuple[str, ...]
    multi: bool = False

    @classmethod
    def of(cls, streams: Sequence[str], *, multi: bool) -> StreamClaim:
        return cls(tuple(sorted(set(streams))) if multi else tuple(streams[:1]), multi)

    def describe(self) -> str:
        """``stream 'a'``, ``streams 'a', 'b' (multi-stream)``."""
        if not self.multi:
            return f"stream {self.streams[0]!r}"
        return "streams " + ", ".join(repr(s) for s in self.streams) + " (multi-stream)"


def _table_arn(dynamodb: Client, table: str) -> str | None:
    try:
        return str(dynamodb.describe_table(TableName=table)["Table"]["TableArn"])
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def _streams_tag(part: int) -> str:
    return STREAMS_TAG if part == 1 else f"{STREAMS_TAG}:{part}"


def _claim_tags(claim: StreamClaim) -> list[dict[str, str]]:
    if not claim.multi:
        return [{"Key": STREAM_TAG, "Value": claim.streams[0]}]
    values: list[str] = []
    for name in claim.streams:  # a stream name is at most 128 characters
        if values and len(values[-1]) + 1 + len(name) <= _TAG_VALUE_LIMIT:
            values[-1] += " " + name
        else:
            values.append(name)
    return [{"Key": _streams_tag(i), "Value": value} for i, value in enumerate(values, 1)]


def read_stream_claim(dynamodb: Client, table: str) -> tuple[bool, StreamClaim | None]:
    """Whether lease table ``table`` exists, and the stream(s) its tags (:data:`STREAM_TAG`,
    :data:`STREAMS_TAG`) name (``None`` when it has neither)."""
    arn = _table_arn(dynamodb, table)
    if arn is None:
        return False, None
    tags: dict[str, str] = {}
    for page in dynamodb.get_paginator("list_tags_of_resource").paginate(ResourceArn=arn):
        tags.update({str(t.get("Key")): str(t.get("Value", "")) for t in page.get("Tags", [])})
    if STREAM_TAG in tags:
        return True, StreamClaim((tags[STREAM_TAG],))
    names: list[str] = []
    part = 1
    while _streams_tag(part) in tags:
        names += tags[_streams_tag(part)].split()
        part += 1
    if not names:
        return True, None
    return True, StreamClaim.of(names, multi=True)


def tag_stream_claim(dynamodb: Client, table: str, claim: StreamClaim) -> bool:
    """Tag lease table ``table`` with ``claim``; ``False`` when there is no such table."""
    arn = _table_arn(dynamodb, table)
    if arn is None:
        return False
    dynamodb.tag_resource(ResourceArn=arn, Tags=_claim_tags(claim))
    logger.info("tagged lease table %s with %s", table, claim.describe())
    return True


def delete_lease_table(dynamodb: Client, table: str) -> bool:
    """Delete lease table ``table`` (its leases and checkpoints); ``False`` when there
    is no such table."""
    try:
        dynamodb.delete_table(TableName=table)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return False
        raise
    logger.info("deleted lease table %s", table)
    return True


# -- metrics --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Metric:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Datapoint:
    timestamp: datetime
    unit: str | None
    sample_count: float | None = None
    sum: float | None = None
    average: float | None = None
    minimum: float | None = None
    maximum: float | None = None


def list_metrics(
    cloudwatch: Client, namespace: str, metric_name: str | None = None
) -> list[Metric]:
    """Distinct metrics of ``namespace`` (sorted; dimensions sorted by name)."""
    kwargs: dict[str, Any] = {"Namespace": namespace}
    if metric_name:
        kwargs["MetricName"] = metric_name
    seen: set[Metric] = set()
    for page in cloudwatch.get_paginator("list_metrics").paginate(**kwargs):
        for m in page["Metrics"]:
            dims = tuple(sorted((d["Name"], d["Value"]) for d in m.get("Dimensions", [])))
            seen.add(Metric(m["Namespace"], m["MetricName"], dims))
    return sorted(seen, key=lambda m: (m.name, m.dimensions))


#: ``ListMetrics`` of a namespace nobody publishes in, in the Smithy RPC v2 CBOR protocol:
#: the CBOR map ``{"Namespace": "kclpy-local/probe"}``.
_CBOR_PROBE_BODY = bytes.fromhex("a1694e616d657370616365716b636c70792d6c6f63616c2f70726f6265")
_CBOR_PROBE_PATH = "/service/GraniteServiceVersion20100801/operation/ListMetrics"


def rpc_v2_cbor_problem(
    endpoint_url: str, region: str = "us-east-1", timeout: float = 3.0
) -> str | None:
    """``None`` when the CloudWatch at ``endpoint_url`` answers the Smithy RPC v2 CBOR
    protocol (the only one the AWS SDK of KCL 3.x sends CloudWatch requests in), else
    why not, in words.

    One signed ``ListMetrics`` of a namespace nobody publishes in (dummy
    credentials), answered 200 with the ``smithy-protocol: rpc-v2-cbor`` header
    and a CBOR map (MiniStack without its optional ``cbor2`` answers with that
    header but JSON text, having dropped the request). Only local endpoints are
    asked (:func:`is_local_endpoint`); no proxy is used.
    """
    if not is_local_endpoint(endpoint_url):
        return "not a local endpoint (not asked)"
    parts = urllib.parse.urlsplit(endpoint_url)
    try:
        port = parts.port
    except ValueError as exc:
        return f"not an endpoint URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http(s) endpoint URL"
    url = endpoint_url.rstrip("/") + _CBOR_PROBE_PATH
    headers = {
        "smithy-protocol": "rpc-v2-cbor",
        "Content-Type": "application/cbor",
        "Accept": "application/cbor",
    }
    signed = AWSRequest("POST", url, data=_CBOR_PROBE_BODY, headers=headers)
    key, secret, _token = DUMMY_CREDENTIALS
    SigV4Auth(Credentials(key, secret), "monitoring", region).add_auth(signed)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname, port, timeout=timeout)
    try:
        connection.request(
            "POST", urllib.parse.urlsplit(url).path, _CBOR_PROBE_BODY, dict(signed.headers.items())
        )
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        return f"no answer ({exc})"
    finally:
        connection.close()
    marked = (response.getheader("smithy-protocol") or "").strip().lower() == "rpc-v2-cbor"
    if response.status != 200 or not marked:
        return f"HTTP {response.status}" + ("" if marked else " without an RPC v2 CBOR answer")
    if not body or body[0] >> 5 != 5:  # CBOR major type 5: a map
        return f"HTTP 200 marked rpc-v2-cbor, but the body is not a CBOR map ({body[:16]!r})"
    return None


_STATISTICS = ("SampleCount", "Sum", "Average", "Minimum", "Maximum")


def metric_statistics(
    cloudwatch: Client,
    namespace: str,
    metric_name: str,
    dimensions: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    period: int = 60,
    statistics: Sequence[str] = _STATISTICS,
) -> list[Datapoint]:
    """GetMetricStatistics for one metric; by default the last hour. Sorted by time."""
    now = datetime.now(UTC)
    end = end or now + timedelta(minutes=1)
    start = start or now - timedelta(hours=1)
    pairs = dimensions.items() if isinstance(dimensions, Mapping) else dimensions
    response = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=metric_name,
        Dimensions=[{"Name": k, "Value": v} for k, v in pairs],
        StartTime=start,
        EndTime=end,
        Period=period,
        Statistics=list(statistics),
    )
    points = [
        Datapoint(
            timestamp=p["Timestamp"].astimezone(UTC),
            unit=p.get("Unit"),
            sample_count=p.get("SampleCount"),
            sum=p.get("Sum"),
            average=p.get("Average"),
            minimum=p.get("Minimum"),
            maximum=p.get("Maximum"),
        )
        for p in response["Datapoints"]
    ]
    return sorted(points, key=lambda p: p.timestamp)
