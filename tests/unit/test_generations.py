"""The generation guard on lease tables shaped as KCL 1.15.3 and KCL 3.5.1 leave them.

The items below are copies of what the real workers wrote on moto (the
integration test tests/integration/test_cutover.py runs the real thing): a
KCL 1.x table holds leases only; a KCL 3.x worker adds ``Leader``,
``Migration3.0`` and a ``WORKER_METRIC_STATS`` item per worker, and marks the
leases it creates with ``entityType = LEASE``. Renewals are simulated by
incrementing ``leaseCounter`` between the guard's scans.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import moto.server  # noqa: F401 - the test extra installs it
import pytest

from kclpy_local import _aws
from kclpy_local._cli import main
from kclpy_local._emulators.moto import EmbeddedEmulator, free_port
from kclpy_local._exceptions import DaemonError, JavaNotFoundError
from kclpy_local._jvm import daemon as _daemon
from kclpy_local._jvm.bootstrap import Installation
from kclpy_local._jvm.daemon import Daemon
from kclpy_local._jvm.guard import (
    GenerationConflictError,
    GuardResult,
    OtherWorker,
    check_before_start,
    check_generations,
    classify,
)

TABLE = "app-guard"
SHARDS = [f"shardId-00000000000{i}" for i in range(3)]


def lease_1x(shard: str, owner: str | None, counter: int = 4, checkpoint: str = "16") -> dict[str, Any]:
    """A lease as KCL 1.x writes it (no entityType)."""
    item: dict[str, Any] = {
        "leaseKey": {"S": shard},
        "leaseCounter": {"N": str(counter)},
        "checkpoint": {"S": checkpoint},
        "checkpointSubSequenceNumber": {"N": "0"},
        "ownerSwitchesSinceCheckpoint": {"N": "0"},
        "startingHashKey": {"S": "0"},
        "endingHashKey": {"S": "170141183460469231731687303715884105727"},
    }
    if owner is not None:
        item["leaseOwner"] = {"S": owner}
    return item


def lease_3x(shard: str, owner: str | None, counter: int = 12) -> dict[str, Any]:
    """A lease as KCL 3.x writes it (entityType LEASE, throughput)."""
    return {**lease_1x(shard, owner, counter), "entityType": {"S": "LEASE"},
            "throughputKBps": {"S": "0.024994"}}


def worker_metrics(worker: str) -> dict[str, Any]:
    return {"leaseKey": {"S": worker}, "entityType": {"S": "WORKER_METRIC_STATS"}, "opr": {"M": {}},
            "sts": {"M": {}}, "lut": {"N": "1795636456"}, "slu": {"N": "1795636456"}, "sup": {"N": "1"}}


LEADER = {"leaseKey": {"S": "Leader"}, "ownerName": {"S": "w3"}, "entityType": {"S": "LEADER"},
          "recordVersionNumber": {"S": "dc254058-d596-4e6d-8a6e-86ae84937b94"},
          "leaseDuration": {"S": "10000"}}
MIGRATION = {"leaseKey": {"S": "Migration3.0"}, "cv": {"S": "CLIENT_VERSION_3X"}, "mb": {"S": "w3"},
             "entityType": {"S": "CLIENT_VERSION_MIGRATION"}, "mts": {"N": "1795636450409"},
             "h": {"L": [{"M": {"cv": {"S": "CLIENT_VERSION_INIT"}, "mb": {"S": "w3"},
                                "mts": {"N": "1795636450407"}}}]}}


@pytest.fixture
def dynamodb(fresh_emulator: EmbeddedEmulator) -> Any:
    return _aws.client("dynamodb", fresh_emulator.endpoint_url)


def make_table(dynamodb: Any, *items: Mapping[str, Any], table: str = TABLE) -> None:
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for item in items:
        dynamodb.put_item(TableName=table, Item=dict(item))


def renew(dynamodb: Any, shard: str, owner: str | None = None, table: str = TABLE) -> None:
    """What a lease renewal (or a take, with ``owner``) does to the item."""
    updates = {"leaseCounter": {"Action": "ADD", "Value": {"N": "1"}}}
    if owner is not None:
        updates["leaseOwner"] = {"Action": "PUT", "Value": {"S": owner}}
    dynamodb.update_item(TableName=table, Key={"leaseKey": {"S": shard}}, AttributeUpdates=updates)


def renew_all(dynamodb: Any, shards: Sequence[str]) -> None:
    for shard in shards:
        renew(dynamodb, shard)


class FakeTime:
    """A clock and a sleep for the guard: each sleep advances the clock and runs ``on_sleep``."""

    def __init__(self, on_sleep: Callable[[], object] = lambda: None) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.on_sleep()


def check(dynamodb: Any, generation: int, fake: FakeTime, **options: Any) -> GuardResult:
    return check_generations(dynamodb, TABLE, generation, clock=fake.clock, sleep=fake.sleep,
                             **options)


# -- telling the generations apart --------------------------------------------------


def plain(*items: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{k: _aws._plain(v) for k, v in item.items()} for item in items]


def test_classify_a_kcl3_table() -> None:
    view = classify(plain(LEADER, MIGRATION, lease_1x(SHARDS[0], "w3", 7), lease_3x(SHARDS[1], "w3", 9),
                          lease_3x(SHARDS[2], None, 1), worker_metrics("w3")))
    assert view.leases == {SHARDS[0]: ("w3", 7), SHARDS[1]: ("w3", 9), SHARDS[2]: (None, 1)}
    assert view.metric_workers == {"w3"}
    assert view.kcl3_items == (("Leader", "LEADER"), ("Migration3.0", "CLIENT_VERSION_MIGRATION"),
                               ("w3", "WORKER_METRIC_STATS"))
    assert view.held_by(3) == {SHARDS[0]: ("w3", 7), SHARDS[1]: ("w3", 9)}
    assert view.held_by(1) == {}


def test_classify_a_kcl1_table() -> None:
    view = classify(plain(lease_1x(SHARDS[0], "w1"), lease_1x(SHARDS[1], None)))
    assert view.kcl3_items == ()
    assert view.held_by(1) == {SHARDS[0]: ("w1", 4)}
    assert view.generation_of("w1") == 1


# -- liveness ---------------------------------------------------------------------------


def test_a_missing_table_is_no_conflict(dynamodb: Any) -> None:
    fake = FakeTime()
    result = check(dynamodb, 3, fake)
    assert result == GuardResult(TABLE, 3, table_exists=False)
    assert not result.refused and result.message() == ""
    assert fake.sleeps == []


def test_same_generation_owners_are_not_watched(dynamodb: Any) -> None:
    make_table(dynamodb, lease_1x(SHARDS[0], "w1"), lease_1x(SHARDS[1], "w2"))
    fake = FakeTime()
    result = check(dynamodb, 1, fake)
    assert not result.refused
    assert (result.live, result.idle, result.scans, fake.sleeps) == ((), (), 1, [])


def test_released_leases_are_not_watched(dynamodb: Any) -> None:
    """What a 1.x worker stopped gracefully through the launcher leaves: no owners."""
    make_table(dynamodb, *(lease_1x(s, None, 7) for s in SHARDS))
    fake = FakeTime()
    assert not check(dynamodb, 3, fake).refused
    assert fake.sleeps == []


def test_after_the_cutover_a_3x_restart_watches_nothing(dynamodb: Any) -> None:
    make_table(dynamodb, MIGRATION, LEADER, worker_metrics("w3"), lease_1x(SHARDS[0], "w3", 12),
               lease_1x(SHARDS[1], "w3", 12))
    fake = FakeTime()
    result = check(dynamodb, 3, fake)
    assert not result.refused and result.scans == 1


def test_live_1x_workers_refuse_3x(dynamodb: Any) -> None:
    make_table(dynamodb, lease_1x(SHARDS[0], "w1"), lease_1x(SHARDS[1], "w1"), lease_1x(SHARDS[2], "w2"))
    # w1 renews both of its leases; w2 was killed and renews nothing.
    fake = FakeTime(lambda: renew_all(dynamodb, SHARDS[:2]))
    result = check(dynamodb, 3, fake, failover_ms=5000, poll=0.5)
    assert result.live == (OtherWorker("w1", tuple(SHARDS[:2])),)
    assert result.idle == (OtherWorker("w2", (SHARDS[2],)),)
    assert result.refused
    assert result.message() == (
        "refusing to start KCL 3.x: KCL 1.x worker w1 holds live leases on table app-guard "
        "(shards shardId-000000000000, shardId-000000000001); stop every 1.x worker first, "
        "then start 3.x"
    )
    # w2's lease never moved: the guard watched for half of failoverTimeMillis.
    assert sum(fake.sleeps) == pytest.approx(2.5)
    assert result.watched == pytest.approx(2.5)


def test_several_live_workers_are_named(dynamodb: Any) -> None:
    make_table(dynamodb, lease_1x(SHARDS[0], "w1"), lease_1x(SHARDS[1], "w2"))
    fake = FakeTime(lambda: renew_all(dynamodb, SHARDS[:2]))
    result = check(dynamodb, 3, fake)
    assert result.message().startswith(
        "refusing to start KCL 3.x: KCL 1.x workers w1, w2 hold live leases on table app-guard "
        "(shards shardId-000000000000, shardId-000000000001);"
    )
    # Every watched lease moved at the first look again: no need to wait longer.
    assert result.scans == 2 and fake.sleeps == [0.5]
    assert isinstance(GenerationConflictError(result), DaemonError)
    assert "--no-generation-guard" in result.hint()


def test_stopped_workers_do_not_refuse(dynamodb: Any) -> None:
    """A 1.x worker stopped without handing its leases over: owners stay until they expire."""
    make_table(dynamodb, lease_1x(SHARDS[0], "w1"), lease_1x(SHARDS[1], "w1"))
    fake = FakeTime()
    result = check(dynamodb, 3, fake, window=1.0, poll=0.25)
    assert not result.refused
    assert result.idle == (OtherWorker("w1", tuple(SHARDS[:2])),)
    assert result.scans == 5 and sum(fake.sleeps) == pytest.approx(1.0)


def test_leases_taken_by_this_generation_are_not_live(dynamodb: Any) -> None:
    make_table(dynamodb, worker_metrics("w3"), lease_1x(SHARDS[0], "w1"), lease_1x(SHARDS[1], None))
    fake = FakeTime(lambda: renew(dynamodb, SHARDS[0], owner="w3"))
    result = check(dynamodb, 3, fake)
    assert not result.refused and result.live == () and result.idle == ()


def test_live_3x_workers_refuse_1x(dynamodb: Any) -> None:
    make_table(dynamodb, LEADER, MIGRATION, worker_metrics("w3"), worker_metrics("w4"),
               lease_3x(SHARDS[0], "w3"), lease_3x(SHARDS[1], "w4"), lease_3x(SHARDS[2], "w4"))
    fake = FakeTime(lambda: renew_all(dynamodb, SHARDS))
    result = check(dynamodb, 1, fake)
    assert result.live == (OtherWorker("w3", (SHARDS[0],)), OtherWorker("w4", tuple(SHARDS[1:])))
    assert result.message() == (
        "refusing to start KCL 1.x: KCL 3.x workers w3, w4 hold live leases on table app-guard "
        "(shards shardId-000000000000, shardId-000000000001, shardId-000000000002); "
        "stop every 3.x worker first, then start 1.x"
    )


def test_1x_cannot_read_a_table_3x_has_used(dynamodb: Any) -> None:
    """Stopped 3.x workers leave Migration3.0 and their metrics: 1.x would never initialize."""
    make_table(dynamodb, MIGRATION, worker_metrics("w3"), lease_3x(SHARDS[0], "w3"))
    fake = FakeTime()
    result = check(dynamodb, 1, fake, window=0.5)
    assert result.live == () and result.refused
    assert result.message() == (
        "refusing to start KCL 1.x: table app-guard holds KCL 3.x items that KCL 1.x cannot read "
        "(Migration3.0, worker metrics of w3): its worker would never initialize"
    )
    assert "delete those items" in result.hint()
    # 3.x itself reads it.
    assert not check(dynamodb, 3, FakeTime()).refused


def test_workers_in_a_legacy_metrics_table_are_3x(dynamodb: Any) -> None:
    """KCL 3.0-3.4 kept worker metrics in <app>-WorkerMetricStats (key wid); 3.5 goes on using it."""
    make_table(dynamodb, lease_1x(SHARDS[0], "w3"), lease_1x(SHARDS[1], "w1"))
    dynamodb.create_table(
        TableName=f"{TABLE}-WorkerMetricStats",
        KeySchema=[{"AttributeName": "wid", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "wid", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName=f"{TABLE}-WorkerMetricStats",
                      Item={"wid": {"S": "w3"}, "lut": {"N": "1795636456"}})
    fake = FakeTime(lambda: renew_all(dynamodb, SHARDS[:2]))
    result = check(dynamodb, 3, fake)
    assert result.live == (OtherWorker("w1", (SHARDS[1],)),)
    result = check(dynamodb, 1, FakeTime(lambda: renew_all(dynamodb, SHARDS[:2])))
    assert result.live == (OtherWorker("w3", (SHARDS[0],)),)
    assert result.kcl3_items == ()


def test_many_leases_are_shortened() -> None:
    keys = tuple(f"shardId-{i:012d}" for i in range(9))
    result = GuardResult("t", 3, live=(OtherWorker("w1", keys),))
    assert result.message() == (
        "refusing to start KCL 3.x: KCL 1.x worker w1 holds live leases on table t (shards "
        + ", ".join(keys[:6]) + " and 3 more); stop every 1.x worker first, then start 3.x"
    )


def test_one_lease_is_singular() -> None:
    result = GuardResult("t", 3, live=(OtherWorker("w1", ("shardId-000000000000",)),))
    assert "(shard shardId-000000000000);" in result.message()


def test_bad_generation() -> None:
    with pytest.raises(ValueError, match="generation must be 1 or 3"):
        check_generations(None, "t", 2)


# -- before a daemon starts -------------------------------------------------------------


@pytest.fixture
def renewing(dynamodb: Any) -> Iterator[Callable[[Sequence[str]], None]]:
    """Renew the given leases every 0.2 s in a thread, as a live worker does."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(shards: Sequence[str]) -> None:
        def loop() -> None:
            while not stop.wait(0.2):
                for shard in shards:
                    renew(dynamodb, shard)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        threads.append(thread)

    yield start
    stop.set()
    for thread in threads:
        thread.join(5)


def values(endpoint: str, **extra: str) -> dict[str, str]:
    return {"applicationName": TABLE, "dynamoDBEndpoint": endpoint, "regionName": "us-east-1",
            "failoverTimeMillis": "2000", **extra}


def test_check_before_start_raises(
    dynamodb: Any, fresh_emulator: EmbeddedEmulator, renewing: Callable[[Sequence[str]], None]
) -> None:
    make_table(dynamodb, lease_1x(SHARDS[0], "w1"))
    renewing([SHARDS[0]])
    with pytest.raises(GenerationConflictError) as info:
        check_before_start(values(fresh_emulator.endpoint_url), 3)
    assert str(info.value).startswith("refusing to start KCL 3.x: KCL 1.x worker w1 holds")
    assert info.value.exit_code == DaemonError.exit_code
    assert info.value.result.live == (OtherWorker("w1", (SHARDS[0],)),)


def test_check_before_start_skips_what_it_cannot_read(caplog: pytest.LogCaptureFixture) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    assert check_before_start(values(closed), 3) is None
    assert "generation guard skipped: cannot read lease table app-guard" in caplog.text
    assert check_before_start(values(closed, applicationName="${APP}"), 3) is None
    assert check_before_start(values(closed), 2) is None


def write_props(tmp_path: Path, endpoint: str) -> Path:
    (tmp_path / "proc.py").write_text("pass\n")
    path = tmp_path / "app.properties"
    lines = {**values(endpoint), "streamName": "s", "executableName": "python3 proc.py",
             "AWSCredentialsProvider": "EnvironmentVariableCredentialsProvider",
             "kinesisEndpoint": endpoint, "cloudWatchEndpoint": endpoint}
    path.write_text("".join(f"{k} = {v}\n" for k, v in lines.items()), encoding="utf-8")
    return path


@pytest.fixture
def fake_installation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Installation:
    inst = Installation(generation=3, jars=(tmp_path / "a.jar",), launcher_jar=tmp_path / "l.jar",
                        main_class="dev.example.Main")
    monkeypatch.setattr(_daemon, "installation", lambda generation=1, cache_dir=None: inst)
    return inst


@pytest.mark.usefixtures("fake_installation")
def test_daemon_refuses_before_the_jvm(
    dynamodb: Any, renewing: Callable[[Sequence[str]], None], tmp_path: Path
) -> None:
    make_table(dynamodb, lease_1x(SHARDS[0], "w1"), lease_1x(SHARDS[1], "w2"))
    renewing(SHARDS[:2])
    props = write_props(tmp_path, dynamodb.meta.endpoint_url)
    missing_java = tmp_path / "no" / "java"
    daemon = Daemon(props, generation=3, java=missing_java, cwd=tmp_path, validate=False)
    with pytest.raises(GenerationConflictError, match=r"KCL 1\.x workers w1, w2 hold live leases"):
        daemon.start()
    assert daemon.pid is None
    # Without the guard it gets as far as looking for java.
    daemon = Daemon(props, generation=3, java=missing_java, cwd=tmp_path, validate=False, guard=False)
    with pytest.raises(JavaNotFoundError):
        daemon.start()


@pytest.mark.usefixtures("fake_installation")
def test_cli_flag(
    dynamodb: Any, renewing: Callable[[Sequence[str]], None], tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_table(dynamodb, lease_1x(SHARDS[0], "w1"))
    renewing([SHARDS[0]])
    props = write_props(tmp_path, dynamodb.meta.endpoint_url)
    monkeypatch.chdir(tmp_path)
    java = str(tmp_path / "no" / "java")
    assert main(["daemon", str(props), "--kcl", "3", "--no-validate", "--java", java]) == 7
    err = capsys.readouterr().err
    assert "refusing to start KCL 3.x: KCL 1.x worker w1 holds live leases on table app-guard" in err
    assert "hint: a stopped or killed 1.x worker stops renewing" in err
    code = main(["daemon", str(props), "--kcl", "3", "--no-validate", "--java", java,
                 "--no-generation-guard"])
    assert code == JavaNotFoundError.exit_code
    assert "refusing" not in capsys.readouterr().err
