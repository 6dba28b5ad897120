"""The stream claim: a lease table holds the leases of the stream(s) it was started on.

A lease table is named after the application, not the stream, and its leases
after the shards (``shardId-000000000000``), which every stream has. Started
on stream B with the name of an application that ran on stream A, a worker
takes A's leases and resumes from A's checkpoints. On real Kinesis those
sequence numbers do not exist on B; on moto, whose sequence numbers are small
per-shard counters, they look valid, and the worker silently skips B's
records.

So kclpy-local tags each lease table with its stream (:class:`_aws.StreamClaim
<kclpy_local._aws.StreamClaim>`): :func:`claim_stream` once the worker has
STARTED (by then the KCL has created the table), and :func:`check_stream`
before a daemon starts, which refuses a table tagged with another stream
(:class:`~kclpy_local._exceptions.StreamMismatchError`, exit code 2) and
claims an existing table that has no tag yet. A table created before kclpy-local
tagged tables, or by a worker that never started, is therefore claimed by the
next stream started on it (with a warning when it holds checkpoints).

Several streams (KCL 3.x's ``streamNames``, the KCL's multi-stream mode) key
their leases by stream (``account:stream:creationEpoch:shardId``), so no
stream resumes from another's checkpoints; the table is tagged with all of
their names, and:

- a table of one stream refuses a start on several, and the other way round
  (the two kinds of lease keys do not mix; an untagged table's lease keys say
  which kind it holds);
- a start that names more streams than the table's claim extends the claim
  (a stream added to the application);
- a start that leaves out a stream of the claim is refused: the KCL keeps the
  streams it finds in the lease table, and its worker would go on processing
  the left-out stream's leases.

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
from .._aws import StreamClaim
from .._config.generations import generation as _generation
from .._exceptions import StreamMismatchError, UsageError

__all__ = ["LeaseTarget", "check_stream", "claim_stream", "lease_target"]

log = logging.getLogger(__name__)

_SKIPPED = (ClientError, BotoCoreError, UsageError, ValueError)


@dataclass(frozen=True, slots=True)
class LeaseTarget:
    """The lease table a daemon's properties use, its stream(s) and where it lives
    (``multi``: several streams, the KCL's multi-stream mode)."""

    table: str
    streams: tuple[str, ...]
    endpoint: str | None
    region: str
    multi: bool = False

    @property
    def stream(self) -> str:
        """The stream, or the streams separated by commas."""
        return ", ".join(self.streams)

    @property
    def claim(self) -> StreamClaim:
        return StreamClaim.of(self.streams, multi=self.multi)

    def client(self) -> Any:
        return _aws.client("dynamodb", self.endpoint, self.region, max_attempts=2, quick=True)


def lease_target(values: Mapping[str, str], generation: int = 1) -> LeaseTarget | None:
    """The lease table and stream(s) of resolved properties ``values``; ``None`` when
    either is not known (unset, or a variable left unsubstituted).

    The table is ``applicationName`` (KCL 3.x: ``tableName`` when set); the stream
    is ``streamName`` (KCL 3.x: the name in ``streamArn`` when set, or the names of
    ``streamNames``, several streams).
    """

    def value(key: str) -> str:
        return values.get(key, "").strip()

    kcl = _generation(generation)
    table = (value("tableName") if generation >= 3 else "") or value("applicationName")
    multi = kcl.several_streams(values)
    arn = value("streamArn") if generation >= 3 and not multi else ""
    streams = (arn.rsplit("/", 1)[-1],) if arn else kcl.streams(values)
    if multi and not all(part.strip() for part in values[str(kcl.streams_key)].split(",")):
        return None  # an empty name: the validator says why
    if not table or not streams or "${" in table + "".join(streams):
        return None
    return LeaseTarget(
        table=table,
        streams=streams,
        endpoint=value("dynamoDBEndpoint") or None,
        region=value("regionName") or "us-east-1",
        multi=multi,
    )


def _way_out(target: LeaseTarget) -> str:
    delete = (
        f"`kclpy-local leases {target.table} --delete`"
        if _aws.is_local_endpoint(target.endpoint)
        else "deleting the lease table"
    )
    what = f"streams {target.stream}" if target.multi else f"stream {target.stream!r}"
    return (
        f"start {what} under another application name "
        "(`kclpy-local run --app NEW`, or applicationName in the properties), or start "
        f"from scratch on this name by {delete}"
    )


def _mismatch(target: LeaseTarget, claimed: StreamClaim) -> StreamMismatchError | None:
    """Why a start on ``target`` must not use a table claimed by ``claimed``, or ``None``."""
    wanted = target.claim
    if not claimed.multi and not wanted.multi:
        if claimed.streams == wanted.streams:
            return None
        return StreamMismatchError(
            target.table, claimed.streams[0], target.stream, hint=_way_out(target)
        )
    if claimed.multi != wanted.multi:
        why = (
            "its leases are keyed by shard id, as for one stream; several streams key "
            "theirs by stream, and the two do not mix in one table"
            if wanted.multi
            else "its leases are keyed by stream (multi-stream mode), which a worker on "
            "one stream does not read"
        )
        return StreamMismatchError(
            target.table,
            claimed.describe(),
            wanted.describe(),
            hint=_way_out(target),
            message=f"lease table {target.table!r} holds the leases of {claimed.describe()}, "
            f"not of {wanted.describe()}: {why}",
        )
    left_out = [name for name in claimed.streams if name not in wanted.streams]
    if not left_out:
        return None
    return StreamMismatchError(
        target.table,
        claimed.describe(),
        wanted.describe(),
        hint=f"name {', '.join(left_out)} too, or {_way_out(target)}",
        message=f"lease table {target.table!r} holds the leases of {claimed.describe()}; "
        f"this start leaves out {', '.join(repr(s) for s in left_out)}, whose leases its "
        "worker would still process (the KCL keeps the streams it finds in the lease table)",
    )


def check_stream(values: Mapping[str, str], generation: int = 1) -> StreamClaim | None:
    """Before a daemon starts on resolved properties ``values``: the stream(s) its
    lease table is tagged with (``None``: no table yet, or the check was skipped).

    :class:`StreamMismatchError` when the table holds the leases of other streams
    (see the module); a table without the tag is claimed for these, and a claim of
    several streams is extended by the streams this start adds.
    """
    found = _tag(values, generation, before_start=True)
    if found is None:
        return None
    target, _, claimed = found
    if claimed is None:
        return None
    refused = _mismatch(target, claimed)
    if refused is not None:
        raise refused
    if target.multi and set(target.streams) - set(claimed.streams):
        extended = StreamClaim.of([*claimed.streams, *target.streams], multi=True)
        try:
            _aws.tag_stream_claim(target.client(), target.table, extended)
        except _SKIPPED as exc:
            log.warning("cannot tag lease table %s at %s: %s", target.table, target.endpoint, exc)
            return claimed
        log.info("lease table %s: the claim is now %s", target.table, extended.describe())
        return extended
    return claimed


def claim_stream(values: Mapping[str, str], generation: int = 1) -> bool:
    """Once the worker has started (the KCL has created its lease table): tag the
    table with the stream(s) unless it is tagged already; whether it carries the tag."""
    found = _tag(values, generation, before_start=False)
    if found is None:
        return False
    target, exists, claimed = found
    if claimed is not None and _mismatch(target, claimed) is not None:
        log.warning(
            "lease table %s is tagged with %s, not %s",
            target.table,
            claimed.describe(),
            target.claim.describe(),
        )
    return exists


def _tag(
    values: Mapping[str, str], generation: int, *, before_start: bool
) -> tuple[LeaseTarget, bool, StreamClaim | None] | None:
    """The lease target of ``values``, whether its table exists and the claim it is
    tagged with, a table without the tag being tagged with the target's claim first
    (before a start: with a warning when it holds checkpoints already, and
    :class:`StreamMismatchError` when its leases are keyed the other way, by shard id
    for one stream or by stream for several). ``None`` when there is no target, or
    when the table cannot be read or tagged (a warning says so)."""
    target = lease_target(values, generation)
    if target is None:
        return None
    other_kind: bool | None = None
    try:
        dynamodb = target.client()
        exists, claimed = _aws.read_stream_claim(dynamodb, target.table)
        if exists and claimed is None:
            leases = (
                _aws.read_leases(dynamodb, target.table, shard_leases_only=True)
                if before_start
                else []
            )
            kinds = {":" in lease.lease_key for lease in leases} - {target.multi}
            if kinds:
                other_kind = kinds.pop()
            else:
                checkpointed = any((lease.checkpoint or "").isdigit() for lease in leases)
                exists = _aws.tag_stream_claim(dynamodb, target.table, target.claim)
                claimed = target.claim
                if checkpointed:
                    log.warning(
                        "lease table %s holds checkpoints but no stream tag (a table from before "
                        "kclpy-local tagged them): claimed for %s; if they are another "
                        "stream's, %s",
                        target.table,
                        target.claim.describe(),
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
    if other_kind is not None:
        keyed = "by stream (several streams)" if other_kind else "by shard id (one stream)"
        raise StreamMismatchError(
            target.table,
            "untagged leases",
            target.claim.describe(),
            hint=_way_out(target),
            message=f"lease table {target.table!r} has no stream tag and holds leases keyed "
            f"{keyed}, which a worker on {target.claim.describe()} does not read",
        )
    return target, exists, claimed
