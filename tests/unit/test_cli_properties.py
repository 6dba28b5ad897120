"""``kclpy-local properties check|set|keys``, for KCL 1.x and (``--kcl 3``) KCL 3.x."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from kclpy_local._cli import main
from kclpy_local._config.kcl1_keys import KCL1_KEYS
from kclpy_local._config.kcl3_keys import KCL3_KEYS
from kclpy_local._config.properties import read_properties

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


# -- properties set ----------------------------------------------------------------

LAYOUT = """\
# kclpy-local: profile=local
! a bang comment

applicationName = app
streamName : stream
AWSCredentialsProvider EnvironmentVariableCredentialsProvider
executableName = python3 \\
    processor.py
regionName = us-east-1
kinesisEndpoint = ${KCLPY_TEST_ENDPOINT:-http://127.0.0.1:4566}
dynamoDBEndpoint = http://127.0.0.1:4566
cloudWatchEndpoint = http://127.0.0.1:4566
workerId = caf\\u00e9\\ \\=x
   # indented comment
maxRecords = 100
"""


@pytest.fixture
def layout_file(tmp_path: Path) -> Path:
    path = tmp_path / "app.properties"
    path.write_bytes(LAYOUT.encode("iso-8859-1"))
    return path


def test_set_changes_one_line_and_keeps_the_rest(
    layout_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["properties", "set", str(layout_file), "maxRecords=500", "streamName=other"]) == 0
    expected = LAYOUT.replace("maxRecords = 100", "maxRecords = 500").replace(
        "streamName : stream", "streamName = other"
    )
    assert layout_file.read_bytes() == expected.encode("iso-8859-1")
    _, err = capsys.readouterr()
    assert f"{layout_file}: set maxRecords, streamName" in err
    assert main(["properties", "check", str(layout_file)]) == 0
    capsys.readouterr()


def test_set_appends_new_keys_escaped_and_literal(
    layout_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["properties", "set", str(layout_file),
                 "processingLanguage=caf\u00e9 \u20ac", "userAgent=${CI_AGENT:-local}"])
    assert code == 0
    text = layout_file.read_bytes().decode("iso-8859-1")
    assert text.startswith(LAYOUT)
    # Escaped as java.util.Properties.store() does (':' and '=' too), read back literally.
    assert text[len(LAYOUT):] == (
        "processingLanguage = caf\\u00e9 \\u20ac\nuserAgent = ${CI_AGENT\\:-local}\n"
    )
    values = read_properties(layout_file).as_dict()
    assert values["processingLanguage"] == "caf\u00e9 \u20ac"
    assert values["userAgent"] == "${CI_AGENT:-local}"
    capsys.readouterr()


def test_unset_removes_every_line_of_a_key(
    layout_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["properties", "set", str(layout_file), "--unset", "workerId",
                 "--unset", "maxRecords"]) == 0
    expected = LAYOUT.replace("workerId = caf\\u00e9\\ \\=x\n", "").replace("maxRecords = 100\n", "")
    assert layout_file.read_text(encoding="iso-8859-1") == expected
    assert "unset workerId, maxRecords" in capsys.readouterr().err


def test_set_refuses_a_change_that_adds_errors(
    layout_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = layout_file.read_bytes()
    code = main(["properties", "set", str(layout_file), "maxRecrods=5",
                 "kinesisEndpoint=https://kinesis.us-east-1.amazonaws.com", "maxRecords=ten"])
    assert code == 2
    out, err = capsys.readouterr()
    assert "did you mean 'maxRecords'?" in out
    assert "AWS host, refused in the local profile" in out
    assert "'ten' is not a Java int" in out
    assert "not changed: the change introduces 3 errors" in err
    assert "--force" in err
    assert layout_file.read_bytes() == before
    assert [p.name for p in layout_file.parent.iterdir()] == [layout_file.name]


def test_set_force_writes_anyway(layout_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["properties", "set", "--force", str(layout_file), "maxRecords=ten"]) == 0
    out, _ = capsys.readouterr()
    assert "'ten' is not a Java int" in out
    assert "maxRecords = ten\n" in layout_file.read_text()


def test_existing_errors_do_not_block_a_set(
    layout_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout_file.write_text(LAYOUT.replace("maxRecords = 100", "maxRecords = 100 "))
    assert main(["properties", "check", str(layout_file)]) == 2
    assert main(["properties", "set", str(layout_file), "streamName=s2"]) == 0
    assert main(["properties", "set", str(layout_file), "maxRecords=100"]) == 0
    assert main(["properties", "check", str(layout_file)]) == 0
    capsys.readouterr()


def test_set_profile_option_applies_its_rules(
    layout_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["properties", "set", str(layout_file), "dynamoDBEndpoint=http://emulator.lan:4566"]
    assert main(args) == 2
    assert main([*args, "--profile", "localstack"]) == 0
    capsys.readouterr()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["maxRecords"], "is not KEY=VALUE"),
        (["=5"], "is not KEY=VALUE"),
        ([], "nothing to change"),
        (["--unset", "nope"], "cannot unset 'nope'"),
    ],
)
def test_set_usage_errors_exit_2(
    layout_file: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = layout_file.read_bytes()
    assert main(["properties", "set", str(layout_file), *argv]) == 2
    assert message in capsys.readouterr().err
    assert layout_file.read_bytes() == before


def test_set_on_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.properties"
    assert main(["properties", "set", str(missing), "a=b"]) == 2
    assert "not found" in capsys.readouterr().err
    assert not missing.exists()


def test_set_failure_leaves_the_file_whole(
    layout_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    before = layout_file.read_bytes()
    monkeypatch.setattr(os, "replace", fail)
    assert main(["properties", "set", str(layout_file), "maxRecords=7"]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert layout_file.read_bytes() == before
    assert [p.name for p in layout_file.parent.iterdir()] == [layout_file.name]


def test_set_through_a_symlink_keeps_the_link(
    layout_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout_file.chmod(0o600)
    link = layout_file.parent / "link.properties"
    link.symlink_to(layout_file.name)
    assert main(["properties", "set", str(link), "maxRecords=9"]) == 0
    assert link.is_symlink()
    assert "maxRecords = 9\n" in layout_file.read_text()
    assert stat.S_IMODE(layout_file.stat().st_mode) == 0o600
    capsys.readouterr()


# -- --kcl 3 ---------------------------------------------------------------------------

#: A 1.x local file as users write it (SDK v1 credentials, 1.x-only keys).
KCL1_LOCAL = GOOD.replace(
    "EnvironmentVariableCredentialsProvider", "DefaultAWSCredentialsProviderChain"
) + "leaseCleanupIntervalMillis = 10000\ntimestampAtInitialPositionInStream = 1700000000\n"


@pytest.fixture
def kcl1_file(tmp_path: Path) -> Path:
    path = tmp_path / "app.properties"
    path.write_text(KCL1_LOCAL)
    return path


def test_check_kcl3_reads_the_file_as_the_3x_daemon(kcl1_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["properties", "check", str(kcl1_file)]) == 0  # a good 1.x file
    capsys.readouterr()
    assert main(["properties", "check", str(kcl1_file), "--kcl", "3"]) == 2
    out, err = capsys.readouterr()
    assert f"{kcl1_file}:4: error: AWSCredentialsProvider: DefaultAWSCredentialsProviderChain is an AWS SDK " \
           "for Java v1 class" in out
    assert f"{kcl1_file}:10: warning: leaseCleanupIntervalMillis: ignored by KCL 3.x" in out
    assert f"{kcl1_file}:11: warning: timestampAtInitialPositionInStream: ignored by KCL 3.x" in out
    # No retrievalMode and no polling key: the 3.x daemon would read by enhanced fan-out.
    assert f"{kcl1_file}: warning: retrievalMode: retrievalMode DEFAULT with no polling key reads by " \
           "enhanced fan-out" in out
    assert "invalid (KCL 3.x; profile local; 1 error(s), 3 warning(s))" in err


def test_check_kcl3_translated_checks_what_kclpy_local_runs(
    kcl1_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["properties", "check", str(kcl1_file), "--kcl", "3", "--translated"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    notes = [line for line in err.splitlines() if line.startswith("kclpy-local: translated for KCL 3.x: ")]
    assert notes[0].endswith("translated AWSCredentialsProvider: DefaultAWSCredentialsProviderChain -> "
                             "DefaultCredentialsProvider")
    assert len(notes) == 5
    # Then the start-up keys of local endpoints, one line each.
    startup = [line for line in err.splitlines() if line.startswith("kclpy-local: local endpoints: added ")]
    assert len(startup) == 8
    assert "ok (KCL 3.x, translated; profile local; 0 error(s), 0 warning(s))" in err
    # What the translation cannot fix is still reported, with the file's line.
    kcl1_file.write_text(KCL1_LOCAL + "FailoverTimeMillis = 5000\n")
    assert main(["properties", "check", str(kcl1_file), "--kcl", "3", "--translated", "--json"]) == 2
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["kcl"] == 3 and result["errors"] == 1
    assert result["problems"][0]["key"] == "FailoverTimeMillis" and result["problems"][0]["line"] == 12
    assert len(result["translation"]) == 5 and len(result["local_startup"]) == 8
    assert "translated for KCL 3.x" not in err  # --json: the notes are in the object


def test_check_json_names_the_generation(good_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["properties", "check", "--json", str(good_file)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kcl"] == 1 and "translation" not in result


@pytest.mark.parametrize("argv", [["--translated"], ["--kcl", "2"], ["--kcl", "3", "--translated", "--kcl", "1"]])
def test_check_kcl_usage_errors(good_file: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(["properties", "check", str(good_file), *argv])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    capsys.readouterr()


def test_check_translated_needs_the_variables(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_VARIABLE", raising=False)
    path = tmp_path / "app.properties"
    path.write_text(GOOD.replace("stream\n", "${NO_SUCH_VARIABLE}\n", 1))
    assert main(["properties", "check", str(path), "--kcl", "3", "--translated"]) == 2
    assert "NO_SUCH_VARIABLE" in capsys.readouterr().err


def test_keys_listing_kcl3(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["properties", "keys", "--kcl", "3"]) == 0
    out = capsys.readouterr().out
    assert "AwsCredentialsProvider (required)\tAWSCredentialsProvider" in out
    assert "retrievalMode\tString\tdefault DEFAULT\t[kcl]" in out
    assert "fanoutConfig.consumerArn\tString" in out
    assert main(["properties", "keys", "--kcl", "3", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == [s.name for s in KCL3_KEYS]
    types = {r["name"]: r["type"] for r in rows}
    assert types["staleWorkerMetricsEntryCleanupDuration"].startswith("Duration")
    assert types["workerMetricsEMAAlpha"] == "double"


def test_set_kcl3_applies_the_3x_table(good_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good_file.write_text(GOOD + "retrievalMode = POLLING\n")
    # Valid for 1.x (first letter upper-cased), ignored by 3.x: refused with --kcl 3.
    assert main(["properties", "set", str(good_file), "FailoverTimeMillis=5000", "--kcl", "3"]) == 2
    assert "FailoverTimeMillis: unknown key (KCL 3.x key names are case-sensitive)" in capsys.readouterr().out
    assert main(["properties", "set", str(good_file), "workerMetricsReporterFreqInMillis=2000", "--kcl", "3"]) == 0
    assert read_properties(good_file).as_dict()["workerMetricsReporterFreqInMillis"] == "2000"
    # Without --kcl 3 the 1.x table applies, where that 3.x-only key is unknown.
    assert main(["properties", "set", str(good_file), "leaseAssignmentIntervalMillis=1000"]) == 2
    assert "leaseAssignmentIntervalMillis: unknown key" in capsys.readouterr().out
    assert main(["properties", "set", str(good_file), "leaseAssignmentIntervalMillis=1000", "--kcl", "3"]) == 0
