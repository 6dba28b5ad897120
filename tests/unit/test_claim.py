"""The stream claim on lease tables in moto: a table tagged with one stream refuses another."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest

from kclpy_local import _aws
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
    assert _aws.read_stream_tag(dynamodb, "orders-app") == (True, "stream-a")
    assert check_stream(_values(endpoint, "stream-a")) == "stream-a"  # the same stream again
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
    assert _aws.read_stream_tag(dynamodb, "orders-app") == (True, "stream-a")


def test_an_untagged_table_is_claimed_at_the_next_start(fresh_emulator: EmbeddedEmulator,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    endpoint = fresh_emulator.endpoint_url
    dynamodb = _lease_table(endpoint, "orders-app")
    dynamodb.put_item(TableName="orders-app", Item={"leaseKey": {"S": "shardId-000000000000"},
                                                    "leaseCounter": {"N": "3"}, "checkpoint": {"S": "TRIM_HORIZON"}})
    with caplog.at_level(logging.WARNING):
        assert check_stream(_values(endpoint, "stream-a")) == "stream-a"
    assert caplog.text == ""  # nothing checkpointed: nothing to warn about
    assert _aws.read_stream_tag(dynamodb, "orders-app") == (True, "stream-a")
    with pytest.raises(StreamMismatchError):
        check_stream(_values(endpoint, "stream-b"))


def test_claiming_an_untagged_table_with_checkpoints_warns(fresh_emulator: EmbeddedEmulator,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    endpoint = fresh_emulator.endpoint_url
    dynamodb = _lease_table(endpoint, "orders-app")
    dynamodb.put_item(TableName="orders-app", Item={"leaseKey": {"S": "shardId-000000000000"},
                                                    "leaseCounter": {"N": "3"}, "checkpoint": {"S": "5"}})
    with caplog.at_level(logging.WARNING):
        assert check_stream(_values(endpoint, "stream-b")) == "stream-b"
    assert "lease table orders-app holds checkpoints but no stream tag" in caplog.text
    assert "`kclpy-local leases orders-app --delete`" in caplog.text


def test_a_claimed_table_is_not_claimed_again(fresh_emulator: EmbeddedEmulator,
                                              caplog: pytest.LogCaptureFixture) -> None:
    endpoint = fresh_emulator.endpoint_url
    dynamodb = _lease_table(endpoint, "orders-app")
    _aws.tag_stream(dynamodb, "orders-app", "stream-a")
    with caplog.at_level(logging.WARNING):
        assert claim_stream(_values(endpoint, "stream-b")) is True
    assert _aws.read_stream_tag(dynamodb, "orders-app") == (True, "stream-a")
    assert "lease table orders-app is tagged with stream stream-a, not stream-b" in caplog.text


def test_kcl3_names_the_table_and_the_stream_its_own_way() -> None:
    values = _values("http://127.0.0.1:1", "by-name", tableName="leases",
                     streamArn="arn:aws:kinesis:us-east-1:000000000000:stream/by-arn")
    one, three = lease_target(values, 1), lease_target(values, 3)
    assert one is not None and (one.table, one.stream) == ("orders-app", "by-name")
    assert three is not None and (three.table, three.stream) == ("leases", "by-arn")
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
