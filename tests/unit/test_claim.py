"""The stream claim on lease tables in moto: a table tagged with one stream refuses another."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest

from kclpy_local import _aws
from kclpy_local._aws import StreamClaim
from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._exceptions import StreamMismatchError, UsageError
from kclpy_local._jvm.claim import check_stream, claim_stream, lease_target

pytest.importorskip("moto.server")


def _values(endpoint: str, stream: str, app: str = "orders-app", **extra: str) -> dict[str, str]:
    return {
        "applicationName": app,
        "streamName": stream,
        "dynamoDBEndpoint": endpoint,
        "regionName": "us-east-1",
        **extra,
    }


def _lease_table(endpoint: str, name: str) -> Any:
    dynamodb = _aws.client("dynamodb", endpoint)
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return dynamodb


def test_no_table_is_no_conflict_and_nothing_is_tagged(fresh_emulator: EmbeddedEmulator) -> None:
    endpoint = fresh_emulator.endpoint_url
    assert check_stream(_values(endpoint, "a")) is None
    assert claim_stream(_values(endpoint, "a")) is False  # the KCL has not created it
    assert _aws.client("dynamodb", endpoint).list_tables()["TableNames"] == []


def test_a_table_tagged_with_another_stream_is_refused(fresh_emulator: EmbeddedEmulator) -> None:
    endpoint = fresh_emulator.endpoint_url
    dynamodb = _lease_table(endpoint, "orders-app")
    assert claim_stream(_values(endpoint, "stream-a")) is True  # the worker on stream-a started
    assert _aws.read_stream_claim(dynamodb, "orders-app") == (True, StreamClaim(("stream-a",)))
    assert check_stream(_values(endpoint, "stream-a")) == StreamClaim(("stream-a",))  # the same stream again
    with pytest.raises(StreamMismatchError) as info:
        check_stream(_values(endpoint, "stream-b"))
    error = info.value
    assert isinstance(error, UsageError) and error.exit_code == 2
    assert (error.table, error.claimed, error.stream) == ("orders-app", "stream-a", "stream-b")
    assert str(error) == (
        "lease table 'orders-app' holds the checkpoints of stream 'stream-a', not of stream "
        "'stream-b': a worker on 'stream-b' would resume from 'stream-a''s checkpoints and skip records"
    )
    assert error.hint is not None
    assert "`kclpy-local run --app NEW`" in error.hint
    assert "`kclpy-local leases orders-app --delete`" in error.hint
    # The refusal changed nothing.
    assert _aws.read_stream_claim(dynamodb, "orders-app") == (True, StreamClaim(("stream-a",)))


def test_an_untagged_table_is_claimed_at_the_next_start(fresh_emulator: EmbeddedEmulator,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    endpoint = fresh_emulator.endpoint_url
    dynamodb = _lease_table(endpoint, "orders-app")
    dynamodb.put_item(TableName="orders-app", Item={"leaseKey": {"S": "shardId-000000000000"},
                                                    "leaseCounter": {"N": "3"}, "checkpoint": {"S": "TRIM_HORIZON"}})
    with caplog.at_level(logging.WARNING):
        assert check_stream(_values(endpoint, "stream-a")) == StreamClaim(("stream-a",))
    assert caplog.text == ""  # nothing checkpointed: nothing to warn about
    assert _aws.read_stream_claim(dynamodb, "orders-app") == (True, StreamClaim(("stream-a",)))
    with pytest.raises(StreamMismatchError):
        check_stream(_values(endpoint, "stream-b"))


def test_claiming_an_untagged_table_with_checkpoints_warns(fresh_emulator: EmbeddedEmulator,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    endpoint = fresh_emulator.endpoint_url
    dynamodb = _lease_table(endpoint, "orders-app")
    dynamodb.put_item(TableName="orders-app", Item={"leaseKey": {"S": "shardId-000000000000"},
                                                    "leaseCounter": {"N": "3"}, "checkpoint": {"S": "5"}})
    with caplog.at_level(logging.WARNING):
        assert check_stream(_values(endpoint, "stream-b")) == StreamClaim(("stream-b",))
    assert "lease table orders-app holds checkpoints but no stream tag" in caplog.text
    assert "`kclpy-local leases orders-app --delete`" in caplog.text


def test_a_claimed_table_is_not_claimed_again(fresh_emulator: EmbeddedEmulator,
                                              caplog: pytest.LogCaptureFixture) -> None:
    endpoint = fresh_emulator.endpoint_url
    dynamodb = _lease_table(endpoint, "orders-app")
    _aws.tag_stream_claim(dynamodb, "orders-app", StreamClaim(("stream-a",)))
    with caplog.at_level(logging.WARNING):
        assert claim_stream(_values(endpoint, "stream-b")) is True
    assert _aws.read_stream_claim(dynamodb, "orders-app") == (True, StreamClaim(("stream-a",)))
    assert "lease table orders-app is tagged with stream 'stream-a', not stream 'stream-b'" in caplog.text


def test_kcl3_names_the_table_and_the_stream_its_own_way() -> None:
    values = _values("http://127.0.0.1:1", "by-name", tableName="leases",
                     streamArn="arn:aws:kinesis:us-east-1:000000000000:stream/by-arn")
    one, three = lease_target(values, 1), lease_target(values, 3)
    assert one is not None and (one.table, one.streams, one.multi) == ("orders-app", ("by-name",), False)
    assert three is not None and (three.table, three.streams, three.multi) == ("leases", ("by-arn",), False)
    assert lease_target({**values, "applicationName": "${APP}"}) is None
    assert lease_target({"applicationName": "a"}) is None


def test_an_unreachable_table_skips_the_check(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with caplog.at_level(logging.WARNING):
        assert check_stream(_values(endpoint, "a")) is None
        assert claim_stream(_values(endpoint, "a")) is False
    assert f"stream check skipped: cannot read the tags of lease table orders-app at {endpoint}" in caplog.text


# -- several streams (KCL 3.x streamNames, the KCL's multi-stream mode) ---------------


def _multi(endpoint: str, names: str, app: str = "orders-app") -> dict[str, str]:
    values = _values(endpoint, "unused", app, streamNames=names)
    del values["streamName"]
    return values


def test_several_streams_are_claimed_together_and_may_grow(fresh_emulator: EmbeddedEmulator,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    endpoint = fresh_emulator.endpoint_url
    dynamodb = _lease_table(endpoint, "orders-app")
    assert claim_stream(_multi(endpoint, "b, a"), 3) is True
    claim = StreamClaim(("a", "b"), multi=True)
    assert _aws.read_stream_claim(dynamodb, "orders-app") == (True, claim)
    assert check_stream(_multi(endpoint, "a,b"), 3) == claim  # the same streams, in any order
    # A stream added to the application: the claim grows.
    grown = StreamClaim(("a", "b", "c"), multi=True)
    assert check_stream(_multi(endpoint, "c, a, b"), 3) == grown
    assert _aws.read_stream_claim(dynamodb, "orders-app") == (True, grown)
    # One left out: its leases would still be processed.
    with pytest.raises(StreamMismatchError) as info:
        check_stream(_multi(endpoint, "a, c"), 3)
    assert str(info.value) == (
        "lease table 'orders-app' holds the leases of streams 'a', 'b', 'c' (multi-stream); this "
        "start leaves out 'b', whose leases its worker would still process (the KCL keeps the "
        "streams it finds in the lease table)"
    )
    assert info.value.exit_code == 2 and info.value.hint is not None
    assert info.value.hint.startswith("name b too, or start streams a, c under another")
    assert _aws.read_stream_claim(dynamodb, "orders-app") == (True, grown)  # the refusal changed nothing


@pytest.mark.parametrize("first_multi", [False, True], ids=["one-then-several", "several-then-one"])
def test_one_stream_and_several_do_not_share_a_table(fresh_emulator: EmbeddedEmulator, first_multi: bool) -> None:
    endpoint = fresh_emulator.endpoint_url
    dynamodb = _lease_table(endpoint, "orders-app")
    single, multi = _values(endpoint, "a"), _multi(endpoint, "a, b")
    first, second = (multi, single) if first_multi else (single, multi)
    assert check_stream(first, 3) is not None
    with pytest.raises(StreamMismatchError) as info:
        check_stream(second, 3)
    if first_multi:
        assert "holds the leases of streams 'a', 'b' (multi-stream), not of stream 'a'" in str(info.value)
    else:
        assert "holds the leases of stream 'a', not of streams 'a', 'b' (multi-stream)" in str(info.value)
        assert "several streams key theirs by stream" in str(info.value)
    assert _aws.read_stream_claim(dynamodb, "orders-app")[1] == check_stream(first, 3)


@pytest.mark.parametrize(("key", "multi", "keyed"), [
    ("shardId-000000000000", True, "by shard id (one stream)"),
    ("123456789012:a:1700000000:shardId-000000000000", False, "by stream (several streams)"),
])
def test_an_untagged_table_of_the_other_kind_of_leases_is_refused(
    fresh_emulator: EmbeddedEmulator, key: str, multi: bool, keyed: str
) -> None:
    endpoint = fresh_emulator.endpoint_url
    dynamodb = _lease_table(endpoint, "orders-app")
    dynamodb.put_item(TableName="orders-app", Item={"leaseKey": {"S": key}, "leaseCounter": {"N": "1"},
                                                    "checkpoint": {"S": "7"}})
    values = _multi(endpoint, "a, b") if multi else _values(endpoint, "a")
    with pytest.raises(StreamMismatchError) as info:
        check_stream(values, 3)
    assert f"has no stream tag and holds leases keyed {keyed}" in str(info.value)
    assert _aws.read_stream_claim(dynamodb, "orders-app") == (True, None)  # not claimed


def test_an_untagged_table_of_multi_stream_leases_is_claimed_by_several_streams(
    fresh_emulator: EmbeddedEmulator
) -> None:
    endpoint = fresh_emulator.endpoint_url
    dynamodb = _lease_table(endpoint, "orders-app")
    dynamodb.put_item(TableName="orders-app", Item={
        "leaseKey": {"S": "123456789012:a:1700000000:shardId-000000000000"}, "leaseCounter": {"N": "1"},
        "checkpoint": {"S": "TRIM_HORIZON"}, "streamName": {"S": "123456789012:a:1700000000"},
        "shardId": {"S": "shardId-000000000000"}})
    assert check_stream(_multi(endpoint, "a, b"), 3) == StreamClaim(("a", "b"), multi=True)
    (lease,) = _aws.read_leases(dynamodb, "orders-app")
    assert (lease.stream, lease.shard_id) == ("a", "shardId-000000000000")


def test_many_long_stream_names_fit_in_the_tags(fresh_emulator: EmbeddedEmulator) -> None:
    """A tag value holds 256 characters: the names go on in further tags."""
    endpoint = fresh_emulator.endpoint_url
    dynamodb = _lease_table(endpoint, "orders-app")
    names = [f"{i:03d}-" + "s" * 124 for i in range(5)]  # 128 characters each
    claim = StreamClaim(tuple(names), multi=True)
    assert _aws.tag_stream_claim(dynamodb, "orders-app", claim)
    arn = dynamodb.describe_table(TableName="orders-app")["Table"]["TableArn"]
    tags = dynamodb.list_tags_of_resource(ResourceArn=arn)["Tags"]
    assert all(len(t["Value"]) <= 256 for t in tags) and len(tags) == 5
    assert _aws.read_stream_claim(dynamodb, "orders-app") == (True, claim)


def test_the_lease_target_of_several_streams() -> None:
    target = lease_target(_multi("http://127.0.0.1:1", " a , b,a"), 3)
    assert target is not None and (target.streams, target.multi) == (("a", "b"), True)
    assert target.claim == StreamClaim(("a", "b"), multi=True)
    assert lease_target(_multi("http://127.0.0.1:1", "a, ,b"), 3) is None  # the validator says why
    # KCL 1.x reads no streamNames: its target is streamName's.
    assert lease_target(_multi("http://127.0.0.1:1", "a, b"), 1) is None
