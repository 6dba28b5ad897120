"""End to end: the real JVM running KCL 1.15.3 through our launcher, a real local
AWS, real pipes to Python processors.

Every test runs on each target of the ``target`` fixture (``engine_target`` in
tests/integration/conftest.py): the embedded moto server, a moto started by
``kclpy-local up`` and known only by its URL, kinesis-mock (read over JSON) and
ferrokinesis (read over CBOR, and again over JSON) for Kinesis with moto for DynamoDB and CloudWatch,
and LocalStack in Docker (skipped without Docker). Sequence numbers are compared
as integers: kinesis-mock's and ferrokinesis's are 56-digit numbers, moto's
small per-shard counters.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import pytest

from kclpy_local import _aws
from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._jvm.bootstrap import Installation
from kclpy_local._jvm.daemon import Daemon

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def seq(value: object) -> int:
    """A sequence number as an integer (a string of up to 128 digits on the wire)."""
    return int(str(value))


def ledger(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Target(Protocol):
    """What a test needs of the ``target`` fixture's value."""

    kind: str
    kinesis_url: str
    aws_url: str
    profile: Path
    cbor: bool
    wire_counts: Callable[[], dict[str, int]] | None

    def name(self, base: str) -> str: ...

    def daemon_env(self) -> dict[str, str]: ...

    def overrides(self) -> dict[str, str]: ...


@pytest.fixture
def target(engine_target: Target) -> Target:
    """Each target with separate Kinesis and DynamoDB/CloudWatch endpoints."""
    return engine_target


class Run:
    """One application on a target: stream, ledger, and a way to start daemons."""

    def __init__(self, target: Target, kcl1: Installation, tmp: Path, name: str, shards: int) -> None:
        self.target = target
        self.kcl1 = kcl1
        self.app = target.name(f"app-{name}")
        self.stream = target.name(f"stream-{name}")
        self.ledger = tmp / "ledger.jsonl"
        self.log: list[str] = []
        self.kinesis = _aws.client("kinesis", target.kinesis_url)
        self.dynamodb = _aws.client("dynamodb", target.aws_url)
        _aws.ensure_stream(self.kinesis, self.stream, shards)

    def daemon(self, processor: str = "processors/recorder.py", **overrides: str) -> Daemon:
        env = {
            **DUMMY_CREDENTIALS,
            **self.target.daemon_env(),
            "KCLPY_LOCAL_APP": self.app,
            "KCLPY_LOCAL_STREAM": self.stream,
            "KCLPY_LOCAL_LEDGER": str(self.ledger),
        }
        return Daemon(
            self.target.profile,
            installation=self.kcl1,
            env=env,
            cwd=ROOT,
            log=self.log.append,
            ready_timeout=120,
            overrides={
                **self.target.overrides(),
                "executableName": f"{sys.executable} {ROOT / processor}",
                **overrides,
            },
        )

    def put(self, count: int, tag: str) -> list[_aws.PutResult]:
        records = [(f"{tag}-{i}-\u00e9\u00df-".encode() + bytes([i % 256, 0, 255]), f"pk-{tag}-{i % 7}") for i in range(count)]
        return _aws.put_records(self.kinesis, self.stream, records)

    def wait_processed(self, results: list[_aws.PutResult], timeout: float = 90) -> None:
        wanted = {(r.shard_id, seq(r.sequence_number)) for r in results}

        def done() -> bool:
            seen = {(e["shard"], seq(e["sequence_number"])) for e in ledger(self.ledger)}
            return wanted <= seen

        wait_for(done, timeout, f"{len(wanted)} records in the ledger")


@pytest.fixture
def run_factory(target: Target, kcl1: Installation, tmp_path: Path) -> Iterator[Callable[[str, int], Run]]:
    yield lambda name, shards: Run(target, kcl1, tmp_path, name, shards)


def test_records_exact_checkpoints_and_restart(run_factory: Callable[[str, int], Run]) -> None:
    run = run_factory("exact", 3)
    counts = run.target.wire_counts
    before = counts() if counts else None
    with run.daemon():
        first = run.put(60, "first")
        run.wait_processed(first)
        # Every record exactly as sent: bytes, partition key, sequence number.
        got = {(e["shard"], seq(e["sequence_number"])): e for e in ledger(run.ledger)}
        for r in first:
            entry = got[(r.shard_id, seq(r.sequence_number))]
            assert base64.b64decode(str(entry["data"])) == r.data
            assert entry["partition_key"] == r.partition_key
        # Checkpoints in the lease table equal the last processed sequence numbers.
        last: dict[str, int] = {}
        for r in first:
            last[r.shard_id] = max(last.get(r.shard_id, 0), seq(r.sequence_number))

        def checkpoints_landed() -> bool:
            leases = {lease.lease_key: lease.checkpoint for lease in _aws.read_leases(run.dynamodb, run.app)}
            checkpoints = {k: seq(v) for k, v in leases.items() if v is not None and v.isdigit()}
            return all(checkpoints.get(shard) == number for shard, number in last.items())

        wait_for(checkpoints_landed, 30, f"checkpoints {last}")
    assert len(ledger(run.ledger)) == len(first)

    # A restart resumes from the checkpoints: nothing checkpointed is processed again.
    with run.daemon():
        second = run.put(20, "second")
        run.wait_processed(second)
    entries = ledger(run.ledger)
    keys = [(e["shard"], seq(e["sequence_number"])) for e in entries]
    assert len(keys) == len(set(keys)) == len(first) + len(second), "a checkpointed record was processed twice"
    if counts and before is not None:
        # The engine counts requests by wire: the daemon spoke the one the target claims
        # (boto3, which put the records, speaks JSON).
        after = counts()
        spoke_cbor = after["cbor"] - before["cbor"]
        if run.target.cbor:
            assert spoke_cbor > 0, f"the daemon sent no CBOR request ({before} -> {after})"
        else:
            # Records were read from this engine, and not one request came over CBOR.
            assert spoke_cbor == 0, f"{spoke_cbor} CBOR requests with CBOR off ({before} -> {after})"
            assert after["json"] > before["json"], (before, after)


def test_cloudwatch_metrics_go_to_the_cloudwatch_endpoint(run_factory: Callable[[str, int], Run]) -> None:
    run = run_factory("metrics", 1)
    with EmbeddedEmulator(port=0) as metrics_emulator:
        with run.daemon(cloudWatchEndpoint=metrics_emulator.endpoint_url):
            run.wait_processed(run.put(10, "m"))
            cw = _aws.client("cloudwatch", metrics_emulator.endpoint_url)
            # The lease metrics may be published a flush before the processing ones.
            processing = {"RecordsProcessed", "DataBytesProcessed"}
            wait_for(lambda: bool(processing & {m.name for m in _aws.list_metrics(cw, run.app)}), 60,
                     f"KCL processing metrics in namespace {run.app}")
        names = {m.name for m in _aws.list_metrics(cw, run.app)}
        assert "RecordsProcessed" in names or "DataBytesProcessed" in names, names
    # On every target (LocalStack included) the metrics go to a second, embedded
    # emulator; the target's own CloudWatch must not see them.
    main_cw = _aws.client("cloudwatch", run.target.aws_url)
    assert _aws.list_metrics(main_cw, run.app) == [], "metrics reached the Kinesis/DynamoDB endpoint"


def test_amazon_kclpy_processor_unchanged_with_lease_loss(run_factory: Callable[[str, int], Run]) -> None:
    run = run_factory("kclpy", 1)
    with run.daemon("processors/kclpy_sample.py") as daemon:
        run.wait_processed(run.put(15, "k"))
        # Another worker takes the lease: the KCL 1.x daemon sends shutdown ZOMBIE.
        lease = _aws.read_leases(run.dynamodb, run.app)[0]
        run.dynamodb.update_item(
            TableName=run.app,
            Key={"leaseKey": {"S": lease.lease_key}},
            AttributeUpdates={
                "leaseOwner": {"Value": {"S": "another-worker"}, "Action": "PUT"},
                "leaseCounter": {"Value": {"N": "1000"}, "Action": "PUT"},
            },
        )
        wait_for(lambda: any("shutdown: ZOMBIE" in line for line in run.log), 60, "the ZOMBIE shutdown")
        time.sleep(2)
        assert daemon.returncode is None, "the daemon died on the 1.x shutdown message"
    assert not any("Child process exited with value: 1" in line for line in run.log)
