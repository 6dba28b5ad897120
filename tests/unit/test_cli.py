"""Conventions every command keeps, checked through the entry point."""

from __future__ import annotations

import pytest

from kclpy_local._cli import ORDER, commands, main


def test_every_module_is_a_listed_command() -> None:
    assert set(commands()) == set(ORDER)


@pytest.mark.parametrize("command", commands())
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: kclpy-local {command}")
    assert len(out.splitlines()) > 3


@pytest.mark.parametrize("command", commands())
def test_an_unknown_option_is_a_usage_error(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--no-such-option"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    # argparse reports a missing required argument before an unknown option.
    assert f"kclpy-local {command}: error:" in err or "error: unrecognized arguments: --no-such-option" in err


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    err = capsys.readouterr().err
    for command in commands():
        assert command in err


def test_commands_find_the_kinesis_engine_beside_the_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    from kclpy_local._cli import _common
    from kclpy_local._emulators.registry import EmulatorRecord, KinesisRecord

    record = EmulatorRecord(
        pid=1, port=4566, endpoint="http://127.0.0.1:4566", started_at="", log_file="",
        kinesis=KinesisRecord(engine="kinesis-mock", version="0.6.2", pid=2, port=4568, tls_port=4567,
                              endpoint="http://127.0.0.1:4568", log_file=""),
    )
    monkeypatch.delenv(_common.ENDPOINT_ENV, raising=False)
    monkeypatch.setattr(_common, "read_record", lambda state_dir: record)
    monkeypatch.setattr(_common, "record_is_live", lambda r: True)
    monkeypatch.setattr(_common, "kinesis_is_live", lambda r: True)
    assert _common.resolve_endpoint(None) == "http://127.0.0.1:4568"
    assert _common.resolve_endpoint(None, "dynamodb") == "http://127.0.0.1:4566"
    assert _common.resolve_endpoint(None, "cloudwatch") == "http://127.0.0.1:4566"
    assert _common.resolve_endpoint("http://127.0.0.1:1") == "http://127.0.0.1:1"
    monkeypatch.setattr(_common, "kinesis_is_live", lambda r: False)
    assert _common.resolve_endpoint(None) == "http://127.0.0.1:4566"
