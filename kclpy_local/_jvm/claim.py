"""The stream claim: one lease table holds the checkpoints of one stream.

A lease table is named after the application, not the stream, and its leases
after the shards (``shardId-000000000000``), which every stream has. Started
on stream B with the name of an application that ran on stream A, a worker
takes A's leases and resumes from A's checkpoints. On real Kinesis those
sequence numbers do not exist on B; on moto, whose sequence numbers are small
per-shard counters, they look valid, and the worker silently skips B's
records.

So kclpy-local tags each lease table with its stream (:data:`_aws.STREAM_TAG
<kclpy_local._aws.STREAM_TAG>`): :func:`claim_stream` once the worker has
STARTED (by then the KCL has created the table), and :func:`check_stream`
before a daemon starts, which refuses a table tagged with another stream
(:class:`~kclpy_local._exceptions.StreamMismatchError`, exit code 2) and
claims an existing table that has no tag yet. A table created before kclpy-local
tagged tables, or by a worker that never started, is therefore claimed by the
next stream started on it (with a warning when it holds checkpoints).

Both read (and tag) with short timeouts and never stop a start they cannot
decide: when the table cannot be read or tagged (endpoint unreachable, no
credentials, no permission, an engine without tags) they log a line and go on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .. import _aws
from .._exceptions import StreamMismatchError, UsageError

__all__ = ["LeaseTarget", "check_stream", "claim_stream", "lease_target"]

log = logging.getLogger(__name__)

_SKIPPED = (ClientError, BotoCoreError, UsageError, ValueError)


@dataclass(frozen=True, slots=True)
class LeaseTarget:
    """The lease table a daemon's properties use, its stream and where it lives."""

    table: str
    stream: str
    endpoint: str | None
    region: str

    def client(self) -> Any:
        return _aws.client("dynamodb", self.endpoint, self.region, max_attempts=2, quick=True)


def lease_target(values: Mapping[str, str], generation: int = 1) -> LeaseTarget | None:
    """The lease table and stream of resolved properties ``values``; ``None`` when
    either is not known (unset, or a variable left unsubstituted).

    The table is ``applicationName`` (KCL 3.x: ``tableName`` when set); the stream
    is ``streamName`` (KCL 3.x: the name in ``streamArn`` when set).
    """

    def value(key: str) -> str:
        return values.get(key, "").strip()

    table = (value("tableName") if generation >= 3 else "") or value("applicationName")
    arn = value("streamArn") if generation >= 3 else ""
    stream = arn.rsplit("/", 1)[-1] if arn else value("streamName")
    if not table or not stream or "${" in table + stream:
        return None
    return LeaseTarget(
        table=table,
        stream=stream,
        endpoint=value("dynamoDBEndpoint") or None,
        region=value("regionName") or "us-east-1",
    )


def _way_out(target: LeaseTarget) -> str:
    delete = (
        f"`kclpy-local leases {target.table} --delete`"
        if _aws.is_local_endpoint(target.endpoint)
        else "deleting the lease table"
    )
    return (
        f"start stream {target.stream!r} under another application name "
        "(`kclpy-local run --app NEW`, or applicationName in the properties), or start it "
        f"from scratch on this name by {delete}"
    )


def check_stream(values: Mapping[str, str], generation: int = 1) -> str | None:
    """Before a daemon starts on resolved properties ``values``: the stream its lease
    table is tagged with (``None``: no table yet, or the check was skipped).

    :class:`StreamMismatchError` when the table is tagged with another stream; a
    table without the tag is claimed for this one.
    """
    found = _tag(values, generation, before_start=True)
    if found is None:
        return None
    target, _, claimed = found
    if claimed is not None and claimed != target.stream:
        raise StreamMismatchError(target.table, claimed, target.stream, hint=_way_out(target))
    return claimed


def claim_stream(values: Mapping[str, str], generation: int = 1) -> bool:
    """Once the worker has started (the KCL has created its lease table): tag the
    table with the stream unless it is tagged already; whether it carries the tag."""
    found = _tag(values, generation, before_start=False)
    if found is None:
        return False
    target, exists, claimed = found
    if claimed is not None and claimed != target.stream:
        log.warning(
            "lease table %s is tagged with stream %s, not %s", target.table, claimed, target.stream
        )
    return exists


def _tag(
    values: Mapping[str, str], generation: int, *, before_start: bool
) -> tuple[LeaseTarget, bool, str | None] | None:
    """The lease target of ``values``, whether its table exists and the stream it is
    tagged with, a table without the tag being tagged with the target's stream first
    (before a start, with a warning when it holds checkpoints already). ``None``
    when there is no target, or when the table cannot be read or tagged (a warning
    says so)."""
    target = lease_target(values, generation)
    if target is None:
        return None
    try:
        dynamodb = target.client()
        exists, claimed = _aws.read_stream_tag(dynamodb, target.table)
        if exists and claimed is None:
            checkpointed = before_start and any(
                (lease.checkpoint or "").isdigit()
                for lease in _aws.read_leases(dynamodb, target.table, shard_leases_only=True)
            )
            exists = _aws.tag_stream(dynamodb, target.table, target.stream)
            claimed = target.stream
            if checkpointed:
                log.warning(
                    "lease table %s holds checkpoints but no stream tag (a table from before "
                    "kclpy-local tagged them): claimed for stream %s; if they are another "
                    "stream's, %s",
                    target.table,
                    target.stream,
                    _way_out(target),
                )
    except _SKIPPED as exc:
        log.warning(
            "%s lease table %s at %s: %s",
            "stream check skipped: cannot read the tags of" if before_start else "cannot tag",
            target.table,
            target.endpoint or "AWS",
            exc,
        )
        return None
    return target, exists, claimed
