"""AWS helpers against a real moto server (and a few fakes for the error paths)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import moto.server  # noqa: F401 - the test extra installs it
import pytest

from kclpy_local import _aws
from kclpy_local._aws import Lease, PutBatch, PutResult
from kclpy_local._emulators.moto import EmbeddedEmulator, free_port
from kclpy_local._exceptions import EmulatorError, KclpyLocalError, PutRecordsError


@pytest.mark.parametrize(
    ("url", "local"),
    [
        (None, False),
        ("", False),
        ("http://127.0.0.1:4566", True),
        ("http://localhost:4566", True),
        ("http://localstack:4566", True),
        ("https://kinesis.us-east-1.amazonaws.com", False),
        ("https://dynamodb.cn-north-1.amazonaws.com.cn", False),
        ("https://AMAZONAWS.COM.", False),
    ],
)
def test_is_local_endpoint(url: str | None, local: bool) -> None:
    assert _aws.is_local_endpoint(url) is local


def test_local_clients_use_dummy_credentials() -> None:
    creds = _aws.session("http://127.0.0.1:4566").get_credentials()
    assert (creds.access_key, creds.secret_key) == ("test", "test")
    kinesis = _aws.client("kinesis", "http://127.0.0.1:4566", region="eu-west-1")
    assert kinesis.meta.region_name == "eu-west-1"
    assert kinesis.meta.endpoint_url == "http://127.0.0.1:4566"


def test_ensure_stream_creates_once(fresh_emulator: EmbeddedEmulator) -> None:
    kinesis = _aws.client("kinesis", fresh_emulator.endpoint_url)
    info = _aws.ensure_stream(kinesis, "orders", shards=3)
    assert info.status == "ACTIVE"
    assert len(info.shard_ids) == 3
    assert info.arn.endswith(":stream/orders")
    again = _aws.ensure_stream(kinesis, "orders", shards=5)
    assert again == info


def test_put_records_round_trip(fresh_emulator: EmbeddedEmulator) -> None:
    kinesis = _aws.client("kinesis", fresh_emulator.endpoint_url)
    info = _aws.ensure_stream(kinesis, "rt", shards=2)
    records = [(f"payload-{i}".encode(), f"key-{i}") for i in range(1203)]
    results = _aws.put_records(kinesis, "rt", iter(records))
    assert [(r.data, r.partition_key) for r in results] == records
    assert {r.shard_id for r in results} == set(info.shard_ids)

    got: dict[tuple[str, str], tuple[bytes, str]] = {}
    for shard_id in info.shard_ids:
        iterator = kinesis.get_shard_iterator(
            StreamName="rt", ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while True:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10000)
            for rec in page["Records"]:
                got[(shard_id, rec["SequenceNumber"])] = (rec["Data"], rec["PartitionKey"])
            if not page["Records"]:
                break
            iterator = page["NextShardIterator"]
    assert got == {(r.shard_id, r.sequence_number): (r.data, r.partition_key) for r in results}


class _FakeKinesis:
    """put_records that refuses the first ``refuse`` entries of each of its first calls."""

    def __init__(self, refusals: list[int]) -> None:
        self.refusals = refusals
        self.calls: list[list[dict[str, Any]]] = []

    def put_records(self, **kwargs: Any) -> dict[str, Any]:
        records: list[dict[str, Any]] = kwargs["Records"]
        self.calls.append(records)
        refuse = self.refusals.pop(0) if self.refusals else 0
        out = []
        for i, rec in enumerate(records):
            if i < refuse:
                out.append({"ErrorCode": "ProvisionedThroughputExceededException"})
            else:
                out.append({"ShardId": "shardId-0", "SequenceNumber": rec["PartitionKey"]})
        return {"Records": out, "FailedRecordCount": min(refuse, len(records))}


def test_put_records_batches_by_500() -> None:
    fake = _FakeKinesis([])
    results = _aws.put_records(fake, "s", ((b"x", str(i)) for i in range(1201)))
    assert [len(c) for c in fake.calls] == [500, 500, 201]
    assert [r.sequence_number for r in results] == [str(i) for i in range(1201)]


def test_put_records_batches_by_size() -> None:
    fake = _FakeKinesis([])
    big = b"x" * (1024 * 1024 - 10)
    _aws.put_records(fake, "s", ((big, str(i)) for i in range(11)))
    assert [len(c) for c in fake.calls] == [5, 5, 1]


def test_put_records_retries_refused_entries() -> None:
    fake = _FakeKinesis([3, 1])
    results = _aws.put_records(fake, "s", ((bytes([i]), str(i)) for i in range(10)), backoff=0)
    assert [len(c) for c in fake.calls] == [10, 3, 1]
    assert results == [PutResult("shardId-0", str(i), str(i), bytes([i])) for i in range(10)]


def test_put_records_gives_up() -> None:
    fake = _FakeKinesis([10] * 10)
    with pytest.raises(PutRecordsError) as info:
        _aws.put_records(fake, "s", [(b"a", "k")], max_attempts=3, backoff=0)
    assert len(fake.calls) == 3
    assert info.value.failed == (("ProvisionedThroughputExceededException", ""),)


def test_put_batches_reports_refusals_and_goes_on() -> None:
    fake = _FakeKinesis([2, 2, 2, 0])
    batches = list(
        _aws.put_batches(fake, "s", ((b"x", str(i)) for i in range(503)), max_attempts=3, backoff=0)
    )
    assert [len(c) for c in fake.calls] == [500, 2, 2, 3]
    first, second = batches
    assert first.failed == (("ProvisionedThroughputExceededException", ""),) * 2
    assert [r.partition_key for r in first.results] == [str(i) for i in range(2, 500)]
    assert second == PutBatch(tuple(PutResult("shardId-0", str(i), str(i), b"x") for i in range(500, 503)))


def test_put_batches_leaves_a_batch_unsent_when_the_input_fails() -> None:
    fake = _FakeKinesis([])

    def records() -> Any:
        for i in range(700):
            yield b"x", str(i)
        raise ValueError("bad line")

    sent = []
    with pytest.raises(ValueError, match="bad line"):
        for batch in _aws.put_batches(fake, "s", records()):
            sent.append(len(batch.results))
    assert sent == [500]
    assert [len(c) for c in fake.calls] == [500]


def test_put_records_stops_at_the_first_failed_batch() -> None:
    fake = _FakeKinesis([1] * 10)
    with pytest.raises(PutRecordsError):
        _aws.put_records(fake, "s", ((b"x", str(i)) for i in range(1000)), max_attempts=2, backoff=0)
    assert [len(c) for c in fake.calls] == [500, 1]


def test_client_retry_budget() -> None:
    default = _aws.client("kinesis", "http://127.0.0.1:4566")
    once = _aws.client("kinesis", "http://127.0.0.1:4566", max_attempts=1)
    assert default.meta.config.retries["total_max_attempts"] == 6
    assert once.meta.config.retries == {"total_max_attempts": 1, "mode": "standard"}
    assert once.meta.config.connect_timeout == default.meta.config.connect_timeout


def test_endpoint_errors_unreachable() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    kinesis = _aws.client("kinesis", endpoint, max_attempts=1)
    with pytest.raises(EmulatorError) as info, _aws.endpoint_errors(endpoint):
        kinesis.list_streams()
    assert str(info.value) == f"cannot reach {endpoint}"
    assert info.value.hint is not None
    assert "kclpy-local up" in info.value.hint
    assert info.value.exit_code == 8


def test_endpoint_errors_client_error(fresh_emulator: EmbeddedEmulator) -> None:
    kinesis = _aws.client("kinesis", fresh_emulator.endpoint_url)
    with pytest.raises(KclpyLocalError) as info, _aws.endpoint_errors(fresh_emulator.endpoint_url):
        kinesis.describe_stream_summary(StreamName="missing")
    assert str(info.value).startswith(
        f"DescribeStreamSummary failed at {fresh_emulator.endpoint_url}: ResourceNotFoundException: "
    )
    assert isinstance(info.value.__cause__, _aws.ClientError)
    assert _aws.error_code(info.value.__cause__) == "ResourceNotFoundException"


@pytest.mark.parametrize("url", ["localhost:4566", "127.0.0.1", "ftp://host", "http://"])
def test_endpoint_errors_refuse_a_malformed_url(url: str) -> None:
    with pytest.raises(KclpyLocalError) as info, _aws.endpoint_errors(url):
        pytest.fail("the block must not run")
    assert str(info.value) == f"invalid endpoint URL {url!r}"
    assert info.value.exit_code == 2
    assert KclpyLocalError.exit_code == 1


def _lease_table(dynamodb: Any, name: str) -> None:
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
        ProvisionedThroughput={"ReadCapacityUnits": 10, "WriteCapacityUnits": 10},
    )


def test_read_leases(fresh_emulator: EmbeddedEmulator) -> None:
    dynamodb = _aws.client("dynamodb", fresh_emulator.endpoint_url)
    _lease_table(dynamodb, "app")
    # Items as KCL 1.x's KinesisClientLeaseSerializer writes them.
    dynamodb.put_item(
        TableName="app",
        Item={
            "leaseKey": {"S": "shardId-000000000002"},
            "leaseOwner": {"S": "worker-a"},
            "leaseCounter": {"N": "17"},
            "ownerSwitchesSinceCheckpoint": {"N": "1"},
            "checkpoint": {"S": "49590338271490256608559692538361571095921575989136588898"},
            "checkpointSubSequenceNumber": {"N": "3"},
            "parentShardId": {"SS": ["shardId-000000000000", "shardId-000000000001"]},
        },
    )
    dynamodb.put_item(
        TableName="app",
        Item={
            "leaseKey": {"S": "shardId-000000000000"},
            "leaseCounter": {"N": "1"},
            "ownerSwitchesSinceCheckpoint": {"N": "0"},
            "checkpoint": {"S": "TRIM_HORIZON"},
            "checkpointSubSequenceNumber": {"N": "0"},
        },
    )
    leases = _aws.read_leases(dynamodb, "app")
    assert [lease.lease_key for lease in leases] == ["shardId-000000000000", "shardId-000000000002"]
    unowned, owned = leases
    assert unowned == Lease("shardId-000000000000", None, "TRIM_HORIZON", 0, 1, ())
    assert owned.owner == "worker-a"
    assert owned.lease_counter == 17
    assert owned.checkpoint == "49590338271490256608559692538361571095921575989136588898"
    assert owned.checkpoint_sub == 3
    assert owned.owner_switches == 1
    assert owned.parent_shard_ids == ("shardId-000000000000", "shardId-000000000001")
    assert owned.raw["leaseOwner"] == "worker-a"
    with pytest.raises(AttributeError):
        owned.owner = "worker-b"  # type: ignore[misc]


def test_read_leases_of_an_empty_table(fresh_emulator: EmbeddedEmulator) -> None:
    dynamodb = _aws.client("dynamodb", fresh_emulator.endpoint_url)
    _lease_table(dynamodb, "empty")
    assert _aws.read_leases(dynamodb, "empty") == []


def test_metrics(fresh_emulator: EmbeddedEmulator) -> None:
    cloudwatch = _aws.client("cloudwatch", fresh_emulator.endpoint_url)
    dims = [{"Name": "ShardId", "Value": "shardId-0"}, {"Name": "Operation", "Value": "Process"}]
    for value in (1.0, 2.0, 6.0):
        cloudwatch.put_metric_data(
            Namespace="app",
            MetricData=[{"MetricName": "RecordsProcessed", "Dimensions": dims, "Value": value}],
        )
    cloudwatch.put_metric_data(
        Namespace="app", MetricData=[{"MetricName": "Time", "Value": 5.0, "Unit": "Milliseconds"}]
    )
    metrics = _aws.list_metrics(cloudwatch, "app")
    assert metrics == [
        _aws.Metric("app", "RecordsProcessed", (("Operation", "Process"), ("ShardId", "shardId-0"))),
        _aws.Metric("app", "Time", ()),
    ]
    assert _aws.list_metrics(cloudwatch, "app", "Time") == [_aws.Metric("app", "Time", ())]
    now = datetime.now(UTC)
    (point,) = _aws.metric_statistics(
        cloudwatch,
        "app",
        "RecordsProcessed",
        {"ShardId": "shardId-0", "Operation": "Process"},
        start=now - timedelta(minutes=5),
        end=now + timedelta(minutes=5),
        period=3600,
    )
    assert (point.sample_count, point.sum, point.minimum, point.maximum) == (3, 9, 1, 6)
    assert point.average == 3
    assert point.timestamp.utcoffset() is not None
    assert _aws.list_metrics(cloudwatch, "other") == []
