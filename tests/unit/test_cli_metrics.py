"""``kclpy-local metrics`` through ``main()``, with metric data put as the KCL puts it."""

from __future__ import annotations

import json
import re
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import moto.server  # noqa: F401 - the test extra installs it
import pytest

from kclpy_local import _aws
from kclpy_local._cli import main
from kclpy_local._cli.metrics import _period
from kclpy_local._emulators.moto import EmbeddedEmulator

SHARD = [{"Name": "ShardId", "Value": "shardId-000000000000"}, {"Name": "Operation", "Value": "ProcessTask"}]


def after_endpoint(err: str) -> str:
    """stderr after its first line, which must be the endpoint line."""
    first, _, rest = err.partition("\n")
    assert re.fullmatch(r"kclpy-local: endpoint http://\S+ \(from --endpoint\)", first), err
    return rest


@pytest.fixture(autouse=True)
def _no_ambient_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KCLPY_LOCAL_ENDPOINT", raising=False)


def _put(emu: EmbeddedEmulator, namespace: str, *data: dict[str, Any]) -> None:
    _aws.client("cloudwatch", emu.endpoint_url).put_metric_data(
        Namespace=namespace, MetricData=list(data)
    )


def _kcl_metrics(emu: EmbeddedEmulator) -> None:
    """Two flushes of a KCL 1.x worker: StatisticValues per metric, as CWPublisherRunnable sends."""
    for stats in ({"SampleCount": 3, "Sum": 30, "Minimum": 5, "Maximum": 15}, {"SampleCount": 1, "Sum": 2, "Minimum": 2, "Maximum": 2}):
        _put(
            emu,
            "app",
            {"MetricName": "RecordsProcessed", "Dimensions": SHARD, "StatisticValues": stats, "Unit": "Count"},
            {"MetricName": "Time", "Dimensions": SHARD, "StatisticValues": stats, "Unit": "Milliseconds"},
        )
    _put(
        emu,
        "app",
        {"MetricName": "RenewAllLeases.Time", "Dimensions": [{"Name": "Operation", "Value": "RenewAllLeases"}], "Value": 2.5, "Unit": "Milliseconds"},
        {"MetricName": "Old", "Value": 1, "Timestamp": datetime.now(UTC) - timedelta(hours=3)},
    )
    _put(emu, "other-app", {"MetricName": "Time", "Value": 1})


def test_table(fresh_emulator: EmbeddedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    _kcl_metrics(fresh_emulator)
    assert main(["metrics", "app", "--endpoint", fresh_emulator.endpoint_url]) == 0
    out, err = capsys.readouterr()
    assert after_endpoint(err) == ""
    dims = "Operation=ProcessTask, ShardId=shardId-000000000000"
    assert out.splitlines() == [
        f"metric               {'dimensions'.ljust(len(dims))}  unit          samples  sum  average  min  max",
        f"RecordsProcessed     {dims}  Count               4   32        8    2   15",
        f"RenewAllLeases.Time  {'Operation=RenewAllLeases'.ljust(len(dims))}  Milliseconds        1  2.5      2.5  2.5  2.5",
        f"Time                 {dims}  Milliseconds        4   32        8    2   15",
    ]


def test_since_widens_the_window(
    fresh_emulator: EmbeddedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    _kcl_metrics(fresh_emulator)
    argv = ["metrics", "app", "--endpoint", fresh_emulator.endpoint_url, "--json"]
    assert main(argv) == 0
    assert "Old" not in {m["name"] for m in json.loads(capsys.readouterr().out)}
    assert main([*argv, "--since", "240"]) == 0
    assert "Old" in {m["name"] for m in json.loads(capsys.readouterr().out)}


def test_json_and_name_filter(
    fresh_emulator: EmbeddedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    _kcl_metrics(fresh_emulator)
    argv = ["metrics", "app", "--endpoint", fresh_emulator.endpoint_url, "--json"]
    assert main([*argv, "--name", "RecordsProcessed", "--name", "RenewAllLeases.Time"]) == 0
    out, err = capsys.readouterr()
    assert after_endpoint(err) == ""
    assert json.loads(out) == [
        {
            "name": "RecordsProcessed",
            "dimensions": {"Operation": "ProcessTask", "ShardId": "shardId-000000000000"},
            "unit": "Count",
            "sample_count": 4,
            "sum": 32,
            "average": 8,
            "minimum": 2,
            "maximum": 15,
        },
        {
            "name": "RenewAllLeases.Time",
            "dimensions": {"Operation": "RenewAllLeases"},
            "unit": "Milliseconds",
            "sample_count": 1,
            "sum": 2.5,
            "average": 2.5,
            "minimum": 2.5,
            "maximum": 2.5,
        },
    ]


@pytest.mark.parametrize("as_json", [False, True])
def test_no_metrics_is_not_an_error(
    fresh_emulator: EmbeddedEmulator, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    _put(fresh_emulator, "someone-else", {"MetricName": "X", "Value": 1})
    endpoint = fresh_emulator.endpoint_url
    argv = ["metrics", "app", "--endpoint", endpoint]
    assert main(argv + (["--json"] if as_json else [])) == 0
    out, err = capsys.readouterr()
    assert out == ("[]\n" if as_json else "")
    note, hint = after_endpoint(err).splitlines()
    assert note == f"kclpy-local: no metrics in namespace app at {endpoint}"
    assert "metricsLevel is not NONE" in hint
    assert f"cloudWatchEndpoint = {endpoint}" in hint
    assert "metricsBufferTimeMillis" in hint
    assert hint.endswith("Namespaces with metrics here: someone-else")


def test_unknown_name_lists_the_names(
    fresh_emulator: EmbeddedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    _kcl_metrics(fresh_emulator)
    endpoint = fresh_emulator.endpoint_url
    assert main(["metrics", "app", "--endpoint", endpoint, "--name", "Nope"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert after_endpoint(err).splitlines() == [
        f"kclpy-local: no metrics named Nope in namespace app at {endpoint}",
        "hint: metric names there: Old, RecordsProcessed, RenewAllLeases.Time, Time",
    ]


def test_metrics_without_data_in_the_window(
    fresh_emulator: EmbeddedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    _kcl_metrics(fresh_emulator)
    endpoint = fresh_emulator.endpoint_url
    assert main(["metrics", "app", "--endpoint", endpoint, "--name", "Old", "--since", "5"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert after_endpoint(err).splitlines() == [
        f"kclpy-local: 1 metric(s) named Old in namespace app at {endpoint}, "
        "but none with data in the last 5 minute(s)",
        "hint: widen the window with --since MINUTES",
    ]


def test_unreachable_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    assert main(["metrics", "app", "--endpoint", endpoint]) == 8
    assert after_endpoint(capsys.readouterr().err).splitlines()[0] == f"kclpy-local: error: cannot reach {endpoint}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["metrics"], "the following arguments are required: APPLICATION"),
        (["metrics", "app", "--since", "0"], "argument --since: must be at least 1 minute, got 0"),
        (["metrics", "app", "--since", "1.5"], "argument --since: not a whole number of minutes"),
    ],
)
def test_bad_arguments(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("minutes", "period"),
    [(1, 60), (59.5, 3600), (60, 3600), (61, 7200), (24 * 60, 86400), (30 * 24 * 60, 2592000)],
)
def test_period_covers_the_window(minutes: float, period: int) -> None:
    assert _period(timedelta(minutes=minutes)) == period
