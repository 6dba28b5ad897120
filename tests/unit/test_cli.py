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

