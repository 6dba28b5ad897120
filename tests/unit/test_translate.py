"""Translating a KCL 1.x properties file for KCL 3.x: each rule, idempotence, the
notes, and where it runs (Daemon(generation=3), ``daemon --kcl 3``, ``run --kcl 3``)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

import javaproperties
import pytest

from kclpy_local._cli import main
from kclpy_local._config.kcl1_keys import SDK2_ONLY_PROVIDERS
from kclpy_local._config.kcl3_keys import KCL1_ONLY_KEYS, SDK1_TO_SDK2_PROVIDERS
from kclpy_local._config.properties import (
    effective_properties,
    read_properties,
    validate_properties,
)
from kclpy_local._config.translate import (
    DROPPED_KEYS,
    RENAMED_KEYS,
    Translation,
    apply_translation,
    note_lines,
    to_kcl3,
)
from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._exceptions import PropertiesError
from kclpy_local._jvm import daemon as _daemon
from kclpy_local._jvm.daemon import READY_MARKER, Daemon

ROOT = Path(__file__).resolve().parents[2]
PROFILES = sorted((ROOT / "properties").glob("*.properties"))
RECORDER = ROOT / "processors" / "recorder.py"
NOTE = "kclpy-local: translated for KCL 3.x: "

#: A 1.x file for AWS: no profile rule applies.
BASE = {
    "applicationName": "app",
    "streamName": "stream",
    "executableName": "python3 processor.py",
    "AWSCredentialsProvider": "EnvironmentVariableCredentialsProvider",
    "regionName": "us-east-1",
}
#: The same as written for 3.x: translating it changes nothing.
BASE3 = {**BASE, "retrievalMode": "POLLING"}
LOCAL = {
    **BASE,
    "kinesisEndpoint": "http://127.0.0.1:4566",
    "dynamoDBEndpoint": "http://127.0.0.1:4566",
    "cloudWatchEndpoint": "http://127.0.0.1:4566",
}


def changed(translation: Translation, before: Mapping[str, str]) -> dict[str, str | None]:
    """What the translation set (``None``: removed)."""
    after = translation.values
    diff: dict[str, str | None] = {k: v for k, v in after.items() if before.get(k) != v}
    diff.update({k: None for k in before if k not in after})
    return diff


# -- the rules -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("v1", "v2"),
    [
        ("DefaultAWSCredentialsProviderChain", "DefaultCredentialsProvider"),
        ("SystemPropertiesCredentialsProvider", "SystemPropertyCredentialsProvider"),
        ("com.amazonaws.auth.DefaultAWSCredentialsProviderChain", "DefaultCredentialsProvider"),
        ("com.amazonaws.auth.EnvironmentVariableCredentialsProvider", "EnvironmentVariableCredentialsProvider"),
        ("com.amazonaws.auth.profile.ProfileCredentialsProvider|dev", "ProfileCredentialsProvider|dev"),
        ("WebIdentityTokenCredentialsProvider", "WebIdentityTokenFileCredentialsProvider"),
        ("EC2ContainerCredentialsProviderWrapper", "ContainerCredentialsProvider"),
        ("STSAssumeRoleSessionCredentialsProvider|arn:aws:iam::1:role/r|s",
         "StsAssumeRoleCredentialsProvider|arn:aws:iam::1:role/r|s"),
    ],
)
def test_sdk_v1_providers_become_sdk_v2(v1: str, v2: str) -> None:
    result = to_kcl3({**BASE3, "AWSCredentialsProvider": v1}, "aws")
    assert changed(result, {**BASE3, "AWSCredentialsProvider": v1}) == {"AWSCredentialsProvider": v2}
    assert result.notes == (f"translated AWSCredentialsProvider: {v1} -> {v2}",)


def test_the_example_note() -> None:
    result = to_kcl3({**BASE3, "AWSCredentialsProvider": "DefaultAWSCredentialsProviderChain"}, None)
    assert note_lines(result) == [
        NOTE + "translated AWSCredentialsProvider: DefaultAWSCredentialsProviderChain -> DefaultCredentialsProvider"
    ]


@pytest.mark.parametrize(
    "name",
    [
        "EnvironmentVariableCredentialsProvider",
        "ProfileCredentialsProvider|dev",
        "DefaultCredentialsProvider",
        "SystemPropertyCredentialsProvider",
        "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider",
        "org.example.MyProvider",
        # Nothing to translate into: left for the validator to report.
        "AWSStaticCredentialsProvider",
        "ClasspathPropertiesFileCredentialsProvider",
    ],
)
def test_other_providers_are_left_alone(name: str) -> None:
    values = {**BASE3, "AWSCredentialsProvider": name}
    assert to_kcl3(values, "aws") == Translation(values)


def test_a_provider_list_keeps_its_layout_and_each_key_its_spelling() -> None:
    values = {
        **BASE3,
        "AWSCredentialsProvider": "SystemPropertiesCredentialsProvider, EnvironmentVariableCredentialsProvider",
        "AWSCredentialsProviderDynamoDB": "DefaultAWSCredentialsProviderChain",
        "awsCredentialsProviderCloudWatch": "DefaultCredentialsProvider",
    }
    result = to_kcl3(values, "aws")
    assert changed(result, values) == {
        "AWSCredentialsProvider": "SystemPropertyCredentialsProvider, EnvironmentVariableCredentialsProvider",
        "AWSCredentialsProviderDynamoDB": "DefaultCredentialsProvider",
    }
    assert len(result.notes) == 2


def test_the_reverse_provider_table_inverts_the_named_v2_entries() -> None:
    for v2, v1 in SDK2_ONLY_PROVIDERS.items():
        if v1 is not None:
            assert SDK1_TO_SDK2_PROVIDERS[v1] == v2
    assert all(name not in SDK1_TO_SDK2_PROVIDERS for name in SDK2_ONLY_PROVIDERS)


def test_polling_is_added_unless_a_retrieval_mode_is_set() -> None:
    result = to_kcl3(BASE, "aws")
    assert changed(result, BASE) == {"retrievalMode": "POLLING"}
    (note,) = result.notes
    assert note.startswith("added retrievalMode = POLLING") and "SubscribeToShard" in note
    for mode in ("FANOUT", "DEFAULT", "polling"):
        values = {**BASE, "retrievalMode": mode}
        assert to_kcl3(values, "aws") == Translation(values)


@pytest.mark.parametrize("position", ["AT_TIMESTAMP", "at_timestamp", None])
def test_at_timestamp(position: str | None) -> None:
    values = {**BASE3, "timestampAtInitialPositionInStream": " 1700000000"}
    if position is not None:
        values["initialPositionInStream"] = position
    result = to_kcl3(values, "aws")
    expected: dict[str, str | None] = {
        "timestampAtInitialPositionInStream": None,
        "initialPositionInStreamExtended": "1700000000",
    }
    if position is not None:
        expected["initialPositionInStream"] = None
    assert changed(result, values) == expected
    (note,) = result.notes
    assert note.startswith(
        "translated timestampAtInitialPositionInStream = 1700000000 -> initialPositionInStreamExtended = 1700000000"
    )
    assert ("AT_TIMESTAMP dropped" in note) is (position is not None)
    assert not [p for p in validate_properties(result.values, generation=3, environ={}) if p.severity == "error"]


def test_a_timestamp_with_another_position_is_left_for_the_validator() -> None:
    values = {**BASE3, "timestampAtInitialPositionInStream": "1700000000", "initialPositionInStream": "LATEST"}
    # Which one was meant is unclear (KCL 1.x refuses the pair too): nothing changes,
    # and the 3.x validator says the timestamp is ignored.
    assert to_kcl3(values, "aws") == Translation(values)
    (problem,) = validate_properties(values, generation=3, environ={})
    assert problem.key == "timestampAtInitialPositionInStream" and problem.severity == "warning"


def test_at_timestamp_alone_is_left_for_the_validator() -> None:
    values = {**BASE3, "initialPositionInStream": "AT_TIMESTAMP"}
    assert to_kcl3(values, "aws") == Translation(values)
    (problem,) = validate_properties(values, generation=3, environ={})
    assert problem.severity == "error" and "initialPositionInStreamExtended" in (problem.hint or "")


@pytest.mark.parametrize(("old", "value", "new", "translated"), [
    ("skipShardSyncAtStartupIfLeasesExist", "true", "skipShardSyncAtWorkerInitializationIfLeasesExist", "true"),
    ("gracefulLeaseHandoff", "FALSE", "isGracefulLeaseHandoffEnabled", "false"),
])
def test_renamed_keys(old: str, value: str, new: str, translated: str) -> None:
    values = {**BASE3, old: value}
    result = to_kcl3(values, "aws")
    assert changed(result, values) == {old: None, new: translated}
    assert result.notes == (f"translated {old} = {translated} -> {new} = {translated}",)
    # When the 3.x key is there already, it wins.
    values = {**BASE3, old: value, new: "x"}
    result = to_kcl3(values, "aws")
    assert changed(result, values) == {old: None}
    assert result.notes == (f"dropped {old} = {translated}: {new} is set",)


def test_renamed_keys_cover_the_translated_timestamp() -> None:
    assert set(RENAMED_KEYS) <= set(KCL1_ONLY_KEYS)
    assert set(KCL1_ONLY_KEYS) - set(RENAMED_KEYS) == DROPPED_KEYS


@pytest.mark.parametrize(("idle", "after"), [("100", "200"), ("199", "200"), ("200", None), ("250", None)])
def test_idle_time_is_raised_to_the_3x_minimum(idle: str, after: str | None) -> None:
    values = {**BASE3, "idleTimeBetweenReadsInMillis": idle}
    result = to_kcl3(values, "aws")
    assert changed(result, values) == ({"idleTimeBetweenReadsInMillis": after} if after else {})


def test_keys_3x_does_not_read_are_dropped_in_one_note() -> None:
    values = {**BASE3, "leaseCleanupIntervalMillis": "1", "http.proxyHost": "proxy", "userAgent": "me",
              "someTypo": "kept"}
    result = to_kcl3(values, "aws")
    assert changed(result, values) == {"leaseCleanupIntervalMillis": None, "http.proxyHost": None, "userAgent": None}
    assert result.notes == ("dropped keys KCL 3.x does not read: leaseCleanupIntervalMillis, http.proxyHost, userAgent",)


def test_local_profile_turns_metrics_off_with_the_reason() -> None:
    """Nobody says the CloudWatch endpoint answers Smithy RPC v2 CBOR: metrics off."""
    values = {**LOCAL, "retrievalMode": "POLLING"}
    result = to_kcl3(values, "local")
    assert changed(result, values) == {"metricsLevel": "NONE"}
    (note,) = result.notes
    assert note.startswith("added metricsLevel = NONE (local profile): the AWS SDK of KCL 3.x sends "
                           "CloudWatch metrics in the Smithy RPC v2 CBOR protocol only")
    assert "as on the embedded moto" in note
    result = to_kcl3({**values, "metricsLevel": "summary"}, "local")
    assert result.values["metricsLevel"] == "NONE"
    assert result.notes[0].startswith("translated metricsLevel = summary -> NONE: ")
    # LocalStack and AWS speak the protocol: no change there.
    for profile in ("localstack", "aws", None):
        assert to_kcl3({**values, "metricsLevel": "SUMMARY"}, profile).notes == ()


def test_local_profile_keeps_metrics_where_cloudwatch_answers_cbor() -> None:
    """The CloudWatch endpoint is asked, once, by its URL; where it answers, the file's
    metricsLevel (or KCL 3.x's default) stays; where it does not, the note names it."""
    values = {**LOCAL, "retrievalMode": "POLLING", "cloudWatchEndpoint": " http://127.0.0.1:4999 "}
    asked: list[str] = []

    def answers(url: str) -> bool:
        asked.append(url)
        return url == "http://127.0.0.1:4999"

    assert to_kcl3(values, "local", answers) == Translation(values)
    assert asked == ["http://127.0.0.1:4999"]
    summary = {**values, "metricsLevel": "SUMMARY"}
    assert to_kcl3(summary, "local", answers) == Translation(summary)
    # The 3.x spelling of the endpoint is read too.
    builder = {k: v for k, v in values.items() if k != "cloudWatchEndpoint"}
    builder["cloudWatchClient.endpointOverride"] = "http://127.0.0.1:4999"
    assert to_kcl3(builder, "local", answers).notes == ()
    # Another endpoint does not answer: off, naming it.
    other = {**values, "cloudWatchEndpoint": "http://127.0.0.1:5000"}
    result = to_kcl3(other, "local", answers)
    assert changed(result, other) == {"metricsLevel": "NONE"}
    assert result.notes == (
        "added metricsLevel = NONE (local profile): the AWS SDK of KCL 3.x sends CloudWatch metrics in "
        "the Smithy RPC v2 CBOR protocol only, which the CloudWatch endpoint http://127.0.0.1:5000 "
        "does not answer",
    )
    assert to_kcl3(result.values, "local", answers) == Translation(result.values)  # idempotent
    # Only the local profile asks; NONE in the file is never asked about.
    asked.clear()
    for profile in ("localstack", "aws", None):
        to_kcl3(values, profile, answers)
    to_kcl3({**values, "metricsLevel": "NONE"}, "local", answers)
    assert asked == []


# -- idempotence and the shipped files --------------------------------------------------


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_shipped_files_translate_to_valid_3x_files_once(path: Path) -> None:
    document = read_properties(path)
    profile = "local" if path.stem == "local" else ("localstack" if path.stem == "localstack" else "aws")
    values = dict(effective_properties(path, environ={}))
    result = to_kcl3(values, profile)
    assert result.changed
    problems = validate_properties(result.values, profile=profile, generation=3, environ={})
    assert problems == [], problems
    again = to_kcl3(result.values, profile)
    assert again == Translation(result.values)
    assert document.path == path


@pytest.mark.parametrize("profile", ["local", "localstack", "aws", None])
def test_a_file_written_for_3x_passes_unchanged(profile: str | None) -> None:
    values = {
        **LOCAL,
        "AwsCredentialsProvider": "DefaultCredentialsProvider",
        "retrievalMode": "POLLING",
        "metricsLevel": "NONE",
        "initialPositionInStreamExtended": "1700000000",
        "skipShardSyncAtWorkerInitializationIfLeasesExist": "true",
    }
    assert to_kcl3(values, profile) == Translation(values)


def test_everything_at_once_is_idempotent() -> None:
    values = {
        **LOCAL,
        "AWSCredentialsProvider": "com.amazonaws.auth.SystemPropertiesCredentialsProvider",
        "timestampAtInitialPositionInStream": "1700000000",
        "initialPositionInStream": "AT_TIMESTAMP",
        "gracefulLeaseHandoff": "true",
        "idleTimeBetweenReadsInMillis": "50",
        "metricsLevel": "DETAILED",
        "garbageLeaseCleanupThresholdMillis": "5",
    }
    first = to_kcl3(values, "local")
    assert len(first.notes) == 7  # the 6 start-up keys come after the translation (test_startup.py)
    assert to_kcl3(first.values, "local") == Translation(first.values)
    assert validate_properties(first.values, profile="local", generation=3, environ={}) == []


def test_apply_translation_keeps_comments_and_layout() -> None:
    text = (
        "# kclpy-local: profile=local\n"
        "# The stream.\n"
        "streamName:stream\n"
        "AWSCredentialsProvider = DefaultAWSCredentialsProviderChain\n"
        "# Gone.\n"
        "leaseCleanupIntervalMillis = 5\n"
        "applicationName=app\n"
    )
    document = javaproperties.PropertiesFile.loads(text)
    translation = to_kcl3(dict(document), "aws")
    apply_translation(document, translation)
    assert document.dumps() == (
        "# kclpy-local: profile=local\n"
        "# The stream.\n"
        "streamName:stream\n"
        "AWSCredentialsProvider=DefaultCredentialsProvider\n"
        "# Gone.\n"
        "applicationName=app\n"
        "retrievalMode=POLLING\n"
    )
    assert dict(document) == translation.values


# -- Daemon(generation=3) ----------------------------------------------------------------


def _fake_jvm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's command: print the properties file it is given, then the ready line."""

    def argv(self: Daemon) -> list[str]:
        path = self._resolved or self.properties_path
        script = (
            "import sys; sys.stdout.write(open(sys.argv[1], encoding='latin-1').read()); "
            f"print({READY_MARKER!r}); sys.stdout.flush()"
        )
        return [sys.executable, "-c", script, str(path)]

    monkeypatch.setattr(_daemon.Daemon, "argv", argv)


def _local_file(tmp_path: Path, **extra: str) -> Path:
    lines = {
        **LOCAL,
        "executableName": f"{sys.executable} {RECORDER}",
        "AWSCredentialsProvider": "DefaultAWSCredentialsProviderChain",
        "leaseCleanupIntervalMillis": "10000",
        **extra,
    }
    path = tmp_path / "local.properties"
    path.write_text("# kclpy-local: profile=local\n" + "".join(f"{k} = {v}\n" for k, v in lines.items()))
    return path


def test_daemon_generation_3_runs_a_translated_copy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_jvm(monkeypatch)
    path = _local_file(tmp_path)
    before = path.read_bytes()
    lines: list[str] = []
    asked: list[str] = []
    daemon = Daemon(path, generation=3, log=lines.append, guard=False, overrides={"maxRecords": "500"},
                    answers_cbor=lambda url: bool(asked.append(url)))
    with daemon:
        daemon.wait(30)
        resolved = daemon._resolved
        assert resolved is not None and resolved != path
    assert not resolved.exists()
    assert path.read_bytes() == before
    notes = [line for line in lines if line.startswith(NOTE)]
    assert notes[0] == (NOTE + "translated AWSCredentialsProvider: DefaultAWSCredentialsProviderChain -> "
                        "DefaultCredentialsProvider")
    assert NOTE + "dropped keys KCL 3.x does not read: leaseCleanupIntervalMillis" in notes
    ran = dict(javaproperties.loads("\n".join(line for line in lines if not line.startswith("kclpy-local"))))
    assert ran["AWSCredentialsProvider"] == "DefaultCredentialsProvider"
    assert ran["retrievalMode"] == "POLLING" and ran["metricsLevel"] == "NONE"
    assert asked == ["http://127.0.0.1:4566"]  # the file's CloudWatch endpoint, which does not answer
    assert ran["maxRecords"] == "500"
    assert "leaseCleanupIntervalMillis" not in ran


def test_daemon_generation_3_keeps_metrics_where_cloudwatch_answers_cbor(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_emulator: EmbeddedEmulator
) -> None:
    """By default the Daemon asks the file's CloudWatch endpoint: the embedded moto answers."""
    _fake_jvm(monkeypatch)
    endpoint = fresh_emulator.endpoint_url
    path = _local_file(tmp_path, kinesisEndpoint=endpoint, dynamoDBEndpoint=endpoint, cloudWatchEndpoint=endpoint)
    lines: list[str] = []
    with Daemon(path, generation=3, log=lines.append, guard=False) as daemon:
        daemon.wait(30)
    ran = dict(javaproperties.loads("\n".join(line for line in lines if not line.startswith("kclpy-local"))))
    assert ran["cloudWatchEndpoint"] == endpoint and "metricsLevel" not in ran
    assert not any("metricsLevel" in line for line in lines if line.startswith(NOTE))


def test_daemon_generation_1_is_not_translated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_jvm(monkeypatch)
    path = _local_file(tmp_path, initialLeaseSync="eager", parentShardPollIntervalMillis="500",
                       processorStart="early", dataFetchingStrategy="DEFAULT")  # nothing to add
    lines: list[str] = []
    with Daemon(path, log=lines.append, guard=False) as daemon:
        daemon.wait(30)
        assert daemon._resolved is None
    assert not [line for line in lines if line.startswith(NOTE)]
    assert "AWSCredentialsProvider = DefaultAWSCredentialsProviderChain" in lines


def test_daemon_generation_3_validates_after_translation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_jvm(monkeypatch)
    # What the translation fixes is no error; what it cannot fix is one, with the file's line.
    path = _local_file(tmp_path, retrievalMode="POLLING", FailoverTimeMillis="5000")
    daemon = Daemon(path, generation=3, guard=False)
    with pytest.raises(PropertiesError) as info:
        daemon.start()
    message = str(info.value)
    assert "refused before starting the JVM" in message
    assert f"{path}:12: error: FailoverTimeMillis: unknown key" in message
    assert "retrievalMode" not in message
    assert "AWSCredentialsProvider" not in message
    assert info.value.hint == f"run: kclpy-local properties check {path} --kcl 3 --translated"
    assert daemon._resolved is None
    # validate=False starts it anyway.
    with Daemon(path, generation=3, guard=False, validate=False, log=[].append) as started:
        assert started.wait(30) == 0


def test_daemon_generation_3_keeps_a_literal_dollar_brace(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_jvm(monkeypatch)
    path = _local_file(tmp_path, processingLanguage="$${not a variable}")
    lines: list[str] = []
    with Daemon(path, generation=3, guard=False, log=lines.append) as daemon:
        daemon.wait(30)
    ran = dict(javaproperties.loads("\n".join(line for line in lines if not line.startswith("kclpy-local"))))
    assert ran["processingLanguage"] == "${not a variable}"


# -- the CLI -------------------------------------------------------------------------------


def test_daemon_command_prints_the_notes_on_stderr(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_jvm(monkeypatch)
    path = _local_file(tmp_path)
    assert main(["daemon", str(path), "--kcl", "3", "--no-generation-guard"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    notes = [line for line in err.splitlines() if line.startswith(NOTE)]
    assert notes[0] == (NOTE + "translated AWSCredentialsProvider: DefaultAWSCredentialsProviderChain -> "
                        "DefaultCredentialsProvider")
    assert NOTE + "added retrievalMode = POLLING: KCL 1.x polls with GetRecords; KCL 3.x would use enhanced " \
                  "fan-out (SubscribeToShard)" in notes
    assert "AWSCredentialsProvider = DefaultCredentialsProvider" in err
    # Generation 1: no translation.
    assert main(["daemon", str(path), "--no-generation-guard"]) == 0
    assert NOTE not in capsys.readouterr().err


@pytest.fixture
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KCLPY_LOCAL_APP", "KCLPY_LOCAL_STREAM", "KCLPY_LOCAL_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("_clean_env")
def test_run_print_properties_shows_the_translated_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(RECORDER), "--stream", "orders", "--kcl", "3", "--print-properties"]) == 0
    out, err = capsys.readouterr()
    assert "translated for KCL 3.x" in out.splitlines()[0]
    props = dict(javaproperties.loads(out))
    assert props["retrievalMode"] == "POLLING"
    # The embedded engine answers KCL 3.x's CloudWatch protocol: metrics stay on, and no one is asked.
    assert "metricsLevel" not in props
    assert not any("metricsLevel" in line for line in err.splitlines())
    assert props["workerMetricsReporterFreqInMillis"] == "500"  # local endpoints: the fast start
    assert props["streamName"] == "orders"
    assert not set(props) & set(KCL1_ONLY_KEYS)
    notes = [line for line in err.splitlines() if line.startswith(NOTE)]
    assert (NOTE + "dropped keys KCL 3.x does not read: dataFetchingStrategy, readPause, "
            "idleMillisBetweenCalls, processorStart, leaseCleanupIntervalMillis") in notes
    assert validate_properties(props, profile="local", generation=3, environ={}) == []
    # The same command for 1.x prints the file untranslated, and no note.
    assert main(["run", str(RECORDER), "--stream", "orders", "--print-properties"]) == 0
    out, err = capsys.readouterr()
    assert "retrievalMode" not in dict(javaproperties.loads(out))
    assert NOTE not in err
