"""Which endpoint a command uses and why (``_emulators.endpoints.resolve``), and the
registry's rule for a command that asks for a Kinesis engine while ``up``'s runs
(``_emulators.registry.use_running``). Liveness is stubbed; the real processes are
in tests/integration/test_endpoint_line.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kclpy_local._emulators import endpoints, registry
from kclpy_local._emulators.endpoints import DEFAULT_ENDPOINT, Endpoint, resolve
from kclpy_local._emulators.registry import (
    EmulatorRecord,
    KinesisRecord,
    use_running,
    write_record,
)
from kclpy_local._exceptions import EmulatorError, UsageError

MOTO_URL = "http://127.0.0.1:4566"
KM_URL = "http://127.0.0.1:4568"
RECORD = EmulatorRecord(pid=101, port=4566, endpoint=MOTO_URL, started_at="", log_file="")
KINESIS = KinesisRecord(engine="kinesis-mock", version="0.6.2", pid=102, port=4568, tls_port=4567,
                        endpoint=KM_URL, log_file="")
WITH_KM = dataclasses.replace(RECORD, kinesis=KINESIS)


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("KCLPY_LOCAL_ENDPOINT", raising=False)
    monkeypatch.setenv("KCLPY_LOCAL_STATE", str(tmp_path / "state"))
    return tmp_path / "state"


def live(monkeypatch: pytest.MonkeyPatch, moto: bool = True, kinesis: bool = True) -> None:
    monkeypatch.setattr(endpoints, "record_is_live", lambda record: moto)
    monkeypatch.setattr(endpoints, "kinesis_is_live", lambda record: kinesis)
    monkeypatch.setattr(registry, "kinesis_is_live", lambda record: kinesis)


def test_the_flag_comes_first(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KCLPY_LOCAL_ENDPOINT", "http://127.0.0.1:2")
    write_record(state, RECORD)
    live(monkeypatch)
    found = resolve("http://127.0.0.1:1", "dynamodb")
    assert found == Endpoint("http://127.0.0.1:1", "flag", "from --endpoint", "dynamodb")
    assert found.describe() == "http://127.0.0.1:1 (from --endpoint)"


def test_then_the_variable(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_record(state, RECORD)
    live(monkeypatch)
    found = resolve(None, environ={"KCLPY_LOCAL_ENDPOINT": "http://127.0.0.1:2"})
    assert (found.url, found.source, found.reason) == (
        "http://127.0.0.1:2", "variable", "from $KCLPY_LOCAL_ENDPOINT")
    assert resolve("", environ={"KCLPY_LOCAL_ENDPOINT": ""}).source == "emulator"  # empty is unset


def test_then_the_running_emulator(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_record(state, RECORD)
    live(monkeypatch)
    for service in ("kinesis", "dynamodb", "cloudwatch"):
        found = resolve(None, service)  # type: ignore[arg-type]
        assert found.url == MOTO_URL and found.source == "emulator" and found.record == RECORD
        assert found.reason == f"running emulator moto, pid 101, from the state dir {state}"


def test_kinesis_on_the_engine_beside_moto(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_record(state, WITH_KM)
    live(monkeypatch)
    found = resolve(None)
    assert found.url == KM_URL
    assert found.reason == f"running emulator kinesis-mock for Kinesis, pid 102, from the state dir {state}"
    leases = resolve(None, "dynamodb")
    assert leases.url == MOTO_URL
    assert leases.reason == (f"running emulator moto, pid 101, from the state dir {state}; "
                             f"Kinesis is on kinesis-mock at {KM_URL}")
    # Its Kinesis engine gone: moto, and the line says so.
    live(monkeypatch, kinesis=False)
    found = resolve(None)
    assert found.url == MOTO_URL and found.reason.endswith("its kinesis-mock for Kinesis (pid 102) is gone")


def test_the_default_says_why(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = resolve(None)
    assert (found.url, found.source) == (DEFAULT_ENDPOINT, "default")
    assert found.reason == f"the default: no emulator recorded in the state dir {state}"
    write_record(state, RECORD)
    live(monkeypatch, moto=False)
    found = resolve(None)
    assert (found.url, found.source, found.record) == (DEFAULT_ENDPOINT, "default", None)
    assert found.reason == f"the default: the emulator recorded in the state dir {state} (pid 101) is gone"


def test_an_unknown_service_is_a_programming_error(state: Path) -> None:
    with pytest.raises(ValueError, match="unknown service 'sqs'"):
        resolve(None, "sqs")  # type: ignore[arg-type]


# -- the rule: never a second engine beside up's ---------------------------------------


def test_not_asked_or_the_same_kind_uses_the_running_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live(monkeypatch)
    assert use_running(RECORD, None, tmp_path) is RECORD
    assert use_running(RECORD, "moto", tmp_path) is RECORD
    assert use_running(WITH_KM, None, tmp_path) is WITH_KM
    assert use_running(WITH_KM, "kinesis-mock", tmp_path) is WITH_KM


@pytest.mark.parametrize(("record", "asked", "running"), [
    (RECORD, "kinesis-mock", "moto"),
    (WITH_KM, "moto", "kinesis-mock"),
    (RECORD, "ministack", "moto"),  # any engine name: the rule compares kinds only
])
def test_another_kind_is_refused_naming_both_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: EmulatorRecord, asked: str, running: str
) -> None:
    live(monkeypatch)
    with pytest.raises(UsageError) as info:
        use_running(record, asked, tmp_path)
    message = str(info.value)
    assert message.startswith(f"--kinesis {asked} would start a second Kinesis engine, but "
                              f"`kclpy-local up` started {running} for Kinesis at {record.kinesis_endpoint}")
    assert f"state dir {tmp_path}" in message and "put, leases and metrics use that one" in message
    assert info.value.exit_code == 2
    assert info.value.hint is not None
    assert f"drop --kinesis to use the running {running}" in info.value.hint
    assert "`kclpy-local down`" in info.value.hint


def test_a_recorded_engine_that_is_gone_is_an_emulator_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live(monkeypatch, kinesis=False)
    with pytest.raises(EmulatorError, match=r"the kinesis-mock that `kclpy-local up` started for Kinesis "
                                            r"\(pid 102, .*\) is gone") as info:
        use_running(WITH_KM, "kinesis-mock", tmp_path)
    assert info.value.exit_code == 8


def test_the_rule_holds_for_the_main_engine_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    live(monkeypatch)
    assert use_running(WITH_KM, "moto", tmp_path, "--engine", role="main") is WITH_KM
    with pytest.raises(UsageError) as info:
        use_running(WITH_KM, "ministack", tmp_path, "--engine", role="main")
    assert str(info.value).startswith(
        f"--engine ministack would start a second emulator, but `kclpy-local up` started moto at "
        f"{MOTO_URL} (pid 101, state dir {tmp_path})")
    assert info.value.hint is not None and "drop --engine to use the running moto" in info.value.hint
