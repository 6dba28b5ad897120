"""``kclpy-local properties check|keys``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kclpy_local._cli import main
from kclpy_local._kcl_keys import KCL1_KEYS

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
# kclpy-local: profile=local
applicationName = app
streamName = stream
AWSCredentialsProvider = EnvironmentVariableCredentialsProvider
executableName = python3 processor.py
regionName = us-east-1
kinesisEndpoint = http://127.0.0.1:4566
dynamoDBEndpoint = http://127.0.0.1:4566
cloudWatchEndpoint = http://127.0.0.1:4566
"""


@pytest.fixture
def good_file(tmp_path: Path) -> Path:
    path = tmp_path / "app.properties"
    path.write_text(GOOD)
    return path


def test_clean_file_exits_0(good_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["properties", "check", str(good_file)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "ok (profile local; 0 error(s), 0 warning(s))" in err


def test_warnings_are_printed_exit_0(good_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good_file.write_text(GOOD + "someUnrelatedKey = 1\n")
    assert main(["properties", "check", str(good_file)]) == 0
    out, _ = capsys.readouterr()
    assert f"{good_file}:10: warning: someUnrelatedKey: unknown key" in out


def test_errors_exit_2_and_all_are_listed(
    good_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good_file.write_text(
        GOOD.replace("streamName", "streamNme").replace(
            "http://127.0.0.1:4566", "https://x.amazonaws.com"
        )
        + "maxRecords = 100 \n"
    )
    assert main(["properties", "check", str(good_file)]) == 2
    out, err = capsys.readouterr()
    assert "did you mean 'streamName'?" in out
    assert out.count("AWS host") == 3
    assert "maxRecords" in out
    assert "invalid" in err


def test_profile_option_overrides_comment(
    good_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good_file.write_text(GOOD.replace("http://127.0.0.1:4566", "http://emulator.lan:4566"))
    assert main(["properties", "check", str(good_file)]) == 2
    assert main(["properties", "check", "--profile", "localstack", str(good_file)]) == 0
    capsys.readouterr()


def test_json_output(good_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good_file.write_text(GOOD + "callProcessRecordsEvenForEmptyRecordList = true \n")
    assert main(["properties", "check", "--json", str(good_file)]) == 2
    result = json.loads(capsys.readouterr().out)
    assert result["profile"] == "local"
    assert result["errors"] == 1
    assert result["warnings"] == 0
    (problem,) = result["problems"]
    assert problem == {
        "key": "callProcessRecordsEvenForEmptyRecordList",
        "line": 10,
        "severity": "error",
        "message": problem["message"],
        "hint": "remove the whitespace around the value",
    }


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["properties", "check", str(tmp_path / "nope.properties")]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.parametrize("profile", ["local", "localstack", "aws"])
def test_shipped_profiles(
    profile: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KCLPY_LOCAL_ENDPOINT", raising=False)
    monkeypatch.delenv("LOCALSTACK_ENDPOINT", raising=False)
    assert main(["properties", "check", str(REPO / "properties" / f"{profile}.properties")]) == 0
    assert f"profile {profile};" in capsys.readouterr().err


def test_keys_listing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["properties", "keys"]) == 0
    out = capsys.readouterr().out
    assert "applicationName (required)\tString" in out
    assert main(["properties", "keys", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == [s.name for s in KCL1_KEYS]
    assert {r["name"]: r["type"] for r in rows}["isCBORProtocolDisabled"] == "boolean"


def test_subcommand_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["properties"])
    assert info.value.code == 2
    capsys.readouterr()
