"""Start-up on local endpoints: the fast keys added where a file leaves them unset,
for both generations, through the one properties pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from kclpy_local._config.generations import GENERATIONS
from kclpy_local._config.pipeline import prepare
from kclpy_local._config.startup import KCL1_STARTUP, KCL3_STARTUP, local_endpoints, local_startup

LOCAL_ENDPOINTS = {
    "kinesisEndpoint": "http://127.0.0.1:4566",
    "dynamoDBEndpoint": "http://localhost:4566",
    "cloudWatchEndpoint": "http://[::1]:4566",
}
#: What people bring from production, with local endpoints and the CBOR switch.
USER_FILE = """\
applicationName = orders
streamName = orders
executableName = python3 processor.py
processingLanguage = python/3
initialPositionInStream = TRIM_HORIZON
AWSCredentialsProvider = DefaultAWSCredentialsProviderChain
regionName = us-east-1
isCBORProtocolDisabled = true
"""


def _user_file(tmp_path: Path, endpoints: dict[str, str], extra: str = "") -> Path:
    path = tmp_path / "orders.properties"
    lines = "".join(f"{key} = {url}\n" for key, url in endpoints.items())
    path.write_text(USER_FILE + lines + extra)
    return path


def test_local_endpoints_are_all_three_on_loopback() -> None:
    assert local_endpoints(LOCAL_ENDPOINTS)
    assert not local_endpoints({**LOCAL_ENDPOINTS, "cloudWatchEndpoint": "http://10.0.0.5:4566"})
    assert not local_endpoints({k: v for k, v in LOCAL_ENDPOINTS.items() if k != "cloudWatchEndpoint"})
    assert not local_endpoints({**LOCAL_ENDPOINTS, "kinesisEndpoint": "https://kinesis.us-east-1.amazonaws.com"})


@pytest.mark.parametrize(("number", "keys"), [(1, KCL1_STARTUP), (3, KCL3_STARTUP)], ids=["kcl1", "kcl3"])
def test_a_users_file_on_local_endpoints_gets_the_fast_start(tmp_path: Path, number: int, keys: tuple) -> None:  # type: ignore[type-arg]
    prepared = prepare(_user_file(tmp_path, LOCAL_ENDPOINTS), generation=number, environ={})
    assert prepared.errors == ()
    for spec in keys:
        assert prepared.values[spec.key] == spec.value
        assert prepared.effective[spec.key] == spec.value  # what the daemon is given
    assert prepared.changed
    lines = [line for line in prepared.notes if line.startswith("kclpy-local: local endpoints: added ")]
    assert len(lines) == len(keys)
    assert all("for the KCL's own)" in line for line in lines)


@pytest.mark.parametrize("number", [1, 3])
def test_a_key_the_file_sets_is_kept(tmp_path: Path, number: int) -> None:
    path = _user_file(tmp_path, LOCAL_ENDPOINTS, "initialLeaseSync = worker\n")
    prepared = prepare(path, generation=number, environ={})
    assert prepared.values["initialLeaseSync"] == "worker"
    assert not any("added initialLeaseSync" in line for line in prepared.notes)


@pytest.mark.parametrize("number", [1, 3])
def test_nothing_is_added_for_endpoints_elsewhere(tmp_path: Path, number: int) -> None:
    remote = {**LOCAL_ENDPOINTS, "cloudWatchEndpoint": "http://monitoring.internal:4566"}
    prepared = prepare(_user_file(tmp_path, remote), generation=number, environ={})
    added = {spec.key for spec in GENERATIONS[number].startup} - set(USER_FILE)
    assert not any(key in prepared.values for key in added if key not in ("failoverTimeMillis",))
    assert not any("local endpoints" in line for line in prepared.notes)


def test_the_leader_lock_stays_consistent_with_what_the_file_sets() -> None:
    values, _ = local_startup(KCL3_STARTUP, {**LOCAL_ENDPOINTS, "dynamoDbLockBasedLeaderHeartbeatPeriodInMillis": "12000"})
    assert values["dynamoDbLockBasedLeaderLeaseDurationInMillis"] == "60000"
    values, _ = local_startup(KCL3_STARTUP, {**LOCAL_ENDPOINTS, "dynamoDbLockBasedLeaderLeaseDurationInMillis": "1500"})
    assert values["dynamoDbLockBasedLeaderHeartbeatPeriodInMillis"] == "300"


def test_the_substituted_endpoint_counts(tmp_path: Path) -> None:
    path = _user_file(tmp_path, dict.fromkeys(LOCAL_ENDPOINTS, "${KCLPY_LOCAL_ENDPOINT:-http://127.0.0.1:4566}"))
    assert prepare(path, environ={}).values["initialLeaseSync"] == "eager"
    remote = prepare(path, environ={"KCLPY_LOCAL_ENDPOINT": "http://10.1.2.3:4566"})
    assert "initialLeaseSync" not in remote.values


def test_the_read_pacing_comes_only_with_the_prefetch_cache(tmp_path: Path) -> None:
    # A file that keeps the stock fetching: each worker loop reads from the engine,
    # so the 20 ms loop (and the cache's pacing) would only poll it harder.
    prepared = prepare(_user_file(tmp_path, LOCAL_ENDPOINTS, "dataFetchingStrategy = DEFAULT\n"), environ={})
    for key in ("readPause", "idleMillisBetweenCalls", "idleTimeBetweenReadsInMillis"):
        assert key not in prepared.values
    assert prepared.values["initialLeaseSync"] == "eager"
    # Prefetching, set by the file in any case: the pacing is added.
    prepared = prepare(_user_file(tmp_path, LOCAL_ENDPOINTS, "dataFetchingStrategy = prefetch_cached\n"), environ={})
    assert (prepared.values["readPause"], prepared.values["idleTimeBetweenReadsInMillis"]) == ("empty", "5")
    # A pause the file sets is kept, and the launcher's pacing still applies.
    prepared = prepare(_user_file(tmp_path, LOCAL_ENDPOINTS, "idleMillisBetweenCalls = 100\n"), environ={})
    assert (prepared.values["idleMillisBetweenCalls"], prepared.values["readPause"]) == ("100", "empty")


def test_read_pause_takes_only_its_two_values(tmp_path: Path) -> None:
    prepared = prepare(_user_file(tmp_path, LOCAL_ENDPOINTS, "readPause = sometimes\n"), environ={})
    assert [problem.key for problem in prepared.errors] == ["readPause"]
