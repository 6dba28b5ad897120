"""kclpy-local leases APPLICATION: show the KCL lease table of an application.

A KCL worker keeps one lease per shard in a DynamoDB table named after its
applicationName; APPLICATION is that name. One row per shard lease (a KCL 3.x
table also holds the leader lock, the client version and each worker's
metrics: those items are left out, and counted on stderr):

    shard                 owner     checkpoint         counter  parents               switches
    shardId-000000000000  worker-a  TRIM_HORIZON            12  -                            0
    shardId-000000000001  -         4959... (sub 3)          4  shardId-000000000000         1

The leases of an application on several streams (KCL 3.x's streamNames, the
KCL's multi-stream mode) are keyed account:stream:creationEpoch:shardId: their
rows start with a stream column, and shard is the shard id.

checkpoint is the sequence number the application checkpointed (or
TRIM_HORIZON, LATEST, SHARD_END), with (sub N) when its sub-sequence number
is not 0; counter is the lease counter, which the owner bumps on every
renewal; parents are the parent shards; switches (owner switches since
the last checkpoint) and pending (a pending checkpoint) appear when any
lease has them. --json prints a list of objects instead: {"stream", "shard",
"owner", "checkpoint", "checkpoint_sub_sequence", "lease_counter",
"parent_shards", "owner_switches_since_checkpoint", "pending_checkpoint"}
(stream null for the leases of one stream; the last two null when the lease
has no such attribute).

--delete deletes the lease table instead (on a local endpoint only): every
lease and checkpoint of the application goes, and its next worker starts
from initialPositionInStream. Stop the application's workers first. It is
the way out when the table holds another stream's checkpoints (a start on a
new stream under an old application name is refused).

Exit codes: 0 the table was read (also when it holds no lease yet) or
deleted; 1 there is no such table (no worker of that application has started against this
endpoint; a state to report, not a usage mistake) or the endpoint refused the
request; 2 bad arguments (an invalid --endpoint URL too; --delete on an AWS
endpoint); 8 the endpoint cannot be reached.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from botocore.exceptions import ClientError

from .. import _aws
from .._aws import Lease
from .._exceptions import KclpyLocalError, UsageError
from . import _common
from ._table import Column, render

__all__ = ["lease_document", "register", "run"]

_COLUMNS = (
    Column("shard"),
    Column("owner"),
    Column("checkpoint"),
    Column("counter", numeric=True),
    Column("parents"),
)
_STREAM = Column("stream")
_SWITCHES = Column("switches", numeric=True)
_PENDING = Column("pending")


def register(subparsers: _common.Subparsers) -> None:
    summary = "show the lease table of a KCL application (owners, checkpoints)"
    p = _common.add_application_command(
        subparsers,
        "leases",
        summary,
        __doc__,
        application="the KCL applicationName",
        listing="leases",
    )
    p.add_argument(
        "--delete",
        action="store_true",
        help="delete the lease table (every lease and checkpoint; local endpoints only)",
    )
    p.set_defaults(func=run)


def _checkpoint(lease: Lease) -> str | None:
    if lease.checkpoint is None:
        return None
    if lease.checkpoint_sub:
        return f"{lease.checkpoint} (sub {lease.checkpoint_sub})"
    return lease.checkpoint


def lease_document(lease: Lease) -> dict[str, Any]:
    """One lease as the JSON object ``--json`` prints."""
    switches = lease.owner_switches if "ownerSwitchesSinceCheckpoint" in lease.raw else None
    return {
        "stream": lease.stream,
        "shard": lease.shard_id,
        "owner": lease.owner,
        "checkpoint": lease.checkpoint,
        "checkpoint_sub_sequence": lease.checkpoint_sub,
        "lease_counter": lease.lease_counter,
        "parent_shards": list(lease.parent_shard_ids),
        "owner_switches_since_checkpoint": switches,
        "pending_checkpoint": lease.pending_checkpoint,
    }


def _table(leases: list[Lease]) -> str:
    columns = list(_COLUMNS)
    with_stream = any(lease.stream is not None for lease in leases)
    if with_stream:
        columns.insert(0, _STREAM)
    with_switches = any("ownerSwitchesSinceCheckpoint" in lease.raw for lease in leases)
    with_pending = any(lease.pending_checkpoint is not None for lease in leases)
    if with_switches:
        columns.append(_SWITCHES)
    if with_pending:
        columns.append(_PENDING)
    rows = []
    for lease in leases:
        row: list[object] = [
            *([lease.stream] if with_stream else []),
            lease.shard_id,
            lease.owner,
            _checkpoint(lease),
            lease.lease_counter,
            ", ".join(lease.parent_shard_ids),
        ]
        if with_switches:
            present = "ownerSwitchesSinceCheckpoint" in lease.raw
            row.append(lease.owner_switches if present else None)
        if with_pending:
            row.append(lease.pending_checkpoint)
        rows.append(row)
    return render(columns, rows)


def _missing_table(dynamodb: Any, table: str, endpoint: str) -> KclpyLocalError:
    err = KclpyLocalError(
        f"no lease table {table} at {endpoint}: has a worker of that application started?"
    )
    try:
        names = dynamodb.list_tables(Limit=20).get("TableNames", [])
    except ClientError:
        names = []
    there = f"tables there: {', '.join(names)}" if names else "there are no tables there"
    err.hint = (
        f"APPLICATION is the applicationName of the daemon's properties; {there}; "
        "check --endpoint and --region"
    )
    return err


def _delete(dynamodb: Any, table: str, endpoint: str) -> int:
    with _aws.endpoint_errors(endpoint):
        if not _aws.delete_lease_table(dynamodb, table):
            raise _missing_table(dynamodb, table, endpoint)
    print(f"deleted lease table {table} at {endpoint}", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    endpoint = _common.endpoint_for(args.endpoint, "dynamodb")
    if args.delete and not _aws.is_local_endpoint(endpoint):
        raise UsageError(
            f"--delete is for local endpoints, not {endpoint}",
            hint="delete a lease table on AWS with the AWS console or CLI",
        )
    with _aws.endpoint_errors(endpoint):
        dynamodb = _aws.client("dynamodb", endpoint, args.region, max_attempts=2)
        if args.delete:
            return _delete(dynamodb, args.application, endpoint)
        try:
            items = _aws.read_leases(dynamodb, args.application)
        except ClientError as exc:
            if _aws.error_code(exc) != "ResourceNotFoundException":
                raise
            raise _missing_table(dynamodb, args.application, endpoint) from exc
    leases = [item for item in items if _aws.is_shard_lease(item)]
    others = len(items) - len(leases)
    if args.json:
        _common.print_json([lease_document(lease) for lease in leases])
    elif leases:
        print(_table(leases))
    if not leases:
        print(
            f"lease table {args.application} has no leases yet "
            "(the first worker creates them at its first shard sync)",
            file=sys.stderr,
        )
    if others and not args.json:
        noun = "item" if others == 1 else "items"
        print(
            f"({others} KCL 3.x {noun} that are not shard leases left out: the leader lock, "
            "the client version, the workers' metrics)",
            file=sys.stderr,
        )
    return 0
