"""``kclpy-local leases`` through ``main()``, with lease items shaped as KCL 1.x writes them."""

from __future__ import annotations

import json
import re
import socket
from typing import Any

import moto.server  # noqa: F401 - the test extra installs it
import pytest

from kclpy_local import _aws
from kclpy_local._cli import main
from kclpy_local._emulators.moto import EmbeddedEmulator

SEQ = "49590338271490256608559692538361571095921575989136588898"


def after_endpoint(err: str) -> str:
    """stderr after its first line, which must be the endpoint line."""
    first, _, rest = err.partition("\n")
    assert re.fullmatch(r"kclpy-local: endpoint http://\S+ \(from --endpoint\)", first), err
    return rest


@pytest.fixture(autouse=True)
def _no_ambient_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KCLPY_LOCAL_ENDPOINT", raising=False)


def _table(emu: EmbeddedEmulator, name: str, *items: dict[str, Any]) -> None:
    """A lease table as KCL 1.x's LeaseManager creates it, holding ``items``."""
    dynamodb = _aws.client("dynamodb", emu.endpoint_url)
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
        ProvisionedThroughput={"ReadCapacityUnits": 10, "WriteCapacityUnits": 10},
    )
    for item in items:
        dynamodb.put_item(TableName=name, Item=item)


OWNED = {
    "leaseKey": {"S": "shardId-000000000002"},
    "leaseOwner": {"S": "worker-a"},
    "leaseCounter": {"N": "17"},
    "ownerSwitchesSinceCheckpoint": {"N": "1"},
    "checkpoint": {"S": SEQ},
    "checkpointSubSequenceNumber": {"N": "3"},
    "parentShardId": {"SS": ["shardId-000000000000", "shardId-000000000001"]},
}
UNOWNED = {
    "leaseKey": {"S": "shardId-000000000000"},
    "leaseCounter": {"N": "1"},
    "ownerSwitchesSinceCheckpoint": {"N": "0"},
    "checkpoint": {"S": "TRIM_HORIZON"},
    "checkpointSubSequenceNumber": {"N": "0"},
}


def test_table(fresh_emulator: EmbeddedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    _table(fresh_emulator, "app", OWNED, UNOWNED)
    assert main(["leases", "app", "--endpoint", fresh_emulator.endpoint_url]) == 0
    out, err = capsys.readouterr()
    assert after_endpoint(err) == ""
    checkpoint = f"{SEQ} (sub 3)"
    width = len(checkpoint)
    assert out.splitlines() == [
        f"shard                 owner     {'checkpoint'.ljust(width)}  counter  "
        "parents                                     switches",
        f"shardId-000000000000  -         {'TRIM_HORIZON'.ljust(width)}        1  "
        "-                                                  0",
        f"shardId-000000000002  worker-a  {checkpoint}       17  "
        "shardId-000000000000, shardId-000000000001         1",
    ]


def test_optional_columns_only_when_present(
    fresh_emulator: EmbeddedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = {"leaseKey": {"S": "shardId-000000000000"}, "leaseCounter": {"N": "4"}}
    pending = {
        "leaseKey": {"S": "shardId-000000000001"},
        "leaseOwner": {"S": "w"},
        "leaseCounter": {"N": "2"},
        "checkpoint": {"S": "5"},
        "pendingCheckpoint": {"S": "9"},
    }
    _table(fresh_emulator, "bare", bare)
    assert main(["leases", "bare", "--endpoint", fresh_emulator.endpoint_url]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "shard                 owner  checkpoint  counter  parents",
        "shardId-000000000000  -      -                 4  -",
    ]
    _table(fresh_emulator, "pending", bare, pending)
    assert main(["leases", "pending", "--endpoint", fresh_emulator.endpoint_url]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "shard                 owner  checkpoint  counter  parents  pending",
        "shardId-000000000000  -      -                 4  -        -",
        "shardId-000000000001  w      5                 2  -        9",
    ]


def test_json(fresh_emulator: EmbeddedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    bare = {"leaseKey": {"S": "shardId-000000000009"}, "leaseCounter": {"N": "4"}}
    _table(fresh_emulator, "app", OWNED, UNOWNED, bare)
    assert main(["leases", "app", "--endpoint", fresh_emulator.endpoint_url, "--json"]) == 0
    out, err = capsys.readouterr()
    assert after_endpoint(err) == ""
    assert json.loads(out) == [
        {
            "stream": None,
            "shard": "shardId-000000000000",
            "owner": None,
            "checkpoint": "TRIM_HORIZON",
            "checkpoint_sub_sequence": 0,
            "lease_counter": 1,
            "parent_shards": [],
            "owner_switches_since_checkpoint": 0,
            "pending_checkpoint": None,
        },
        {
            "stream": None,
            "shard": "shardId-000000000002",
            "owner": "worker-a",
            "checkpoint": SEQ,
            "checkpoint_sub_sequence": 3,
            "lease_counter": 17,
            "parent_shards": ["shardId-000000000000", "shardId-000000000001"],
            "owner_switches_since_checkpoint": 1,
            "pending_checkpoint": None,
        },
        {
            "stream": None,
            "shard": "shardId-000000000009",
            "owner": None,
            "checkpoint": None,
            "checkpoint_sub_sequence": 0,
            "lease_counter": 4,
            "parent_shards": [],
            "owner_switches_since_checkpoint": None,
            "pending_checkpoint": None,
        },
    ]


@pytest.mark.parametrize("as_json", [False, True])
def test_empty_table(
    fresh_emulator: EmbeddedEmulator, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    _table(fresh_emulator, "new")
    argv = ["leases", "new", "--endpoint", fresh_emulator.endpoint_url]
    assert main(argv + (["--json"] if as_json else [])) == 0
    out, err = capsys.readouterr()
    assert out == ("[]\n" if as_json else "")
    assert "lease table new has no leases yet" in err


def test_missing_table_exit_1(
    fresh_emulator: EmbeddedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = fresh_emulator.endpoint_url
    assert main(["leases", "nope", "--endpoint", endpoint]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert after_endpoint(err).splitlines() == [
        f"kclpy-local: error: no lease table nope at {endpoint}: "
        "has a worker of that application started?",
        "hint: APPLICATION is the applicationName of the daemon's properties; "
        "there are no tables there; check --endpoint and --region",
    ]
    _table(fresh_emulator, "orders-app")
    assert main(["leases", "orders", "--endpoint", endpoint, "--json"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "tables there: orders-app;" in err


def test_unreachable_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    assert main(["leases", "app", "--endpoint", endpoint]) == 8
    _, err = capsys.readouterr()
    assert after_endpoint(err).splitlines()[0] == f"kclpy-local: error: cannot reach {endpoint}"
    assert after_endpoint(err).splitlines()[1].startswith("hint: start the emulator with `kclpy-local up`")


def test_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["leases"])
    assert info.value.code == 2
    assert "the following arguments are required: APPLICATION" in capsys.readouterr().err
    assert main(["leases", "app", "--endpoint", "127.0.0.1:4566"]) == 2
    assert "invalid endpoint URL '127.0.0.1:4566'" in capsys.readouterr().err


def test_help_describes_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["leases", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Exit codes: 0 the table was read" in text
    assert "1 there is no such table" in text


def test_delete_removes_the_table(fresh_emulator: EmbeddedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    _table(fresh_emulator, "old-app", OWNED, UNOWNED)
    _table(fresh_emulator, "other-app", UNOWNED)
    endpoint = fresh_emulator.endpoint_url
    assert main(["leases", "old-app", "--delete", "--endpoint", endpoint]) == 0
    assert capsys.readouterr().err == (
        f"kclpy-local: endpoint {endpoint} (from --endpoint)\ndeleted lease table old-app at {endpoint}\n"
    )
    names = _aws.client("dynamodb", endpoint).list_tables()["TableNames"]
    assert names == ["other-app"]
    # Gone: a second delete finds nothing (exit 1, naming the tables there).
    assert main(["leases", "old-app", "--delete", "--endpoint", endpoint]) == 1
    assert "no lease table old-app at" in capsys.readouterr().err


def test_delete_is_refused_on_aws(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def no_client(*args: object, **kwargs: object) -> None:
        raise AssertionError("a client was made")

    monkeypatch.setattr(_aws, "client", no_client)
    endpoint = "https://dynamodb.us-east-1.amazonaws.com"
    assert main(["leases", "app", "--delete", "--endpoint", endpoint]) == 2
    err = capsys.readouterr().err
    assert f"kclpy-local: error: --delete is for local endpoints, not {endpoint}\nhint: " in err


def test_the_leases_of_several_streams(fresh_emulator: EmbeddedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    """KCL 3.x multi-stream leases (account:stream:creationEpoch:shardId): a stream column, the shard id."""

    def lease(stream: str, shard: str, checkpoint: str) -> dict[str, Any]:
        ident = f"123456789012:{stream}:1700000000"
        return {"leaseKey": {"S": f"{ident}:{shard}"}, "leaseCounter": {"N": "2"}, "checkpoint": {"S": checkpoint},
                "streamName": {"S": ident}, "shardId": {"S": shard}, "leaseOwner": {"S": "w"}}

    _table(fresh_emulator, "multi", lease("orders", "shardId-000000000000", "4"),
           lease("payments", "shardId-000000000000", "9"), lease("orders", "shardId-000000000001", "7"))
    assert main(["leases", "multi", "--endpoint", fresh_emulator.endpoint_url]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "stream    shard                 owner  checkpoint  counter  parents",
        "orders    shardId-000000000000  w      4                 2  -",
        "orders    shardId-000000000001  w      7                 2  -",
        "payments  shardId-000000000000  w      9                 2  -",
    ]
    assert main(["leases", "multi", "--endpoint", fresh_emulator.endpoint_url, "--json"]) == 0
    documents = json.loads(capsys.readouterr().out)
    assert [(d["stream"], d["shard"], d["checkpoint"]) for d in documents] == [
        ("orders", "shardId-000000000000", "4"),
        ("orders", "shardId-000000000001", "7"),
        ("payments", "shardId-000000000000", "9"),
    ]
