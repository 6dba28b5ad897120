"""The KCL generations as objects (``_config/generations.py``) and the one
properties pipeline (``_config/pipeline.py``) that run, daemon, properties check
and the fixtures share."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from kclpy_local._cli import main
from kclpy_local._cli import properties as _cli_properties
from kclpy_local._cli import run as _cli_run
from kclpy_local._config import pipeline
from kclpy_local._config.document import Problem
from kclpy_local._config.generations import (
    DEFAULT_GENERATION,
    GENERATIONS,
    KCL1,
    KCL3,
    Generation,
    generation,
    worker_generation,
)
from kclpy_local._config.kcl1_keys import KCL1_KEYS
from kclpy_local._config.kcl3_keys import KCL3_KEYS
from kclpy_local._config.pipeline import prepare
from kclpy_local._config.properties import validate_properties
from kclpy_local._config.translate import Translation, to_kcl3
from kclpy_local._exceptions import PropertiesError
from kclpy_local._jvm import daemon as _daemon
from kclpy_local._jvm.daemon import Daemon
from kclpy_local._jvm.jars import load_lock
from kclpy_local.testing import LocalStream, ProcessorRun

ROOT = Path(__file__).resolve().parents[2]
RECORDER = ROOT / "processors" / "recorder.py"
LOCAL = {
    "applicationName": "app",
    "streamName": "stream",
    "executableName": "python3 processor.py",
    "AWSCredentialsProvider": "DefaultAWSCredentialsProviderChain",
    "regionName": "us-east-1",
    "kinesisEndpoint": "http://127.0.0.1:4566",
    "dynamoDBEndpoint": "http://127.0.0.1:4566",
    "cloudWatchEndpoint": "http://127.0.0.1:4566",
    "initialLeaseSync": "eager",  # set: no start-up key to add (test_startup.py)
    "parentShardPollIntervalMillis": "500",
    "processorStart": "early",
    "dataFetchingStrategy": "DEFAULT",  # no prefetch: its pacing keys are not added either
}


def _write(path: Path, values: Mapping[str, str], profile: str = "local") -> Path:
    path.write_text(f"# kclpy-local: profile={profile}\n" + "".join(f"{k} = {v}\n" for k, v in values.items()))
    return path


# -- the generation objects --------------------------------------------------------


def test_every_generation_is_one_object_looked_up_by_number() -> None:
    assert dict(GENERATIONS) == {1: KCL1, 3: KCL3}
    assert generation(1) is KCL1 and generation(3) is KCL3 and generation(KCL3) is KCL3
    assert generation(DEFAULT_GENERATION).is_default and not KCL3.is_default
    with pytest.raises(ValueError, match="no key table for KCL generation 2"):
        generation(2)


def test_each_object_carries_its_key_table_decoders_and_translation() -> None:
    assert KCL1.keys is KCL1_KEYS and KCL3.keys is KCL3_KEYS
    # 3.x reads bean properties: the credentials prefix in any case, delegated beans.
    assert KCL3.lookup("awsCredentialsProvider") is not None and KCL1.lookup("awsCredentialsProvider") is None
    assert KCL3.lookup("pollingConfig.maxRecords") is KCL3.lookup("maxRecords")
    spec = KCL1.lookup("maxRecords")
    assert spec is not None and KCL1.check_value(spec, " 5") and not KCL3.check_value(spec, " 5")
    # 1.x runs a file as written; 3.x translates it from the 1.x form.
    assert not KCL1.translates and KCL3.translates
    unchanged = KCL1.translate(LOCAL, "local")
    assert unchanged == Translation(dict(LOCAL)) and not unchanged.changed
    assert KCL3.translate(LOCAL, "local") == to_kcl3(LOCAL, "local")


def test_each_object_names_its_lockfile_and_launcher_arguments() -> None:
    locks = resources.files("kclpy_local._jvm").joinpath("locks")
    for kcl in GENERATIONS.values():
        assert locks.joinpath(kcl.lockfile).is_file()
        assert load_lock(kcl.number).generation == kcl.number
        # The kclpy-local launchers take the properties file as their one argument.
        assert kcl.launcher_args("app.properties") == ["app.properties"]
    flagged = dataclasses.replace(KCL3, properties_flag="--properties-file")
    assert flagged.launcher_args("app.properties") == ["--properties-file", "app.properties"]


def test_each_object_says_what_the_guard_needs() -> None:
    assert (KCL1.other, KCL3.other) == (3, 1)
    assert worker_generation(True) is KCL3 and worker_generation(False) is KCL1
    assert KCL1.blocked_by_kcl3_items and not KCL3.blocked_by_kcl3_items
    assert (KCL1.label, KCL3.label) == ("1.x", "3.x")
    assert (KCL1.kcl_option, KCL3.kcl_option) == ("", " --kcl 3")
    assert (KCL1.check_option, KCL3.check_option) == ("", " --kcl 3 --translated")


def _shout(values: Mapping[str, str], profile: str | None, answers_cbor: object = None) -> Translation:
    out = {key: value.upper() if key == "streamName" else value for key, value in values.items()}
    return Translation(out, ("upper-cased streamName",))


def _no_dashes(key: str, value: str, line: int | None) -> list[Problem]:
    return [Problem(key, line, "error", "no dashes, says KCL 9")] if key == "streamName" and "-" in value else []


#: A generation that exists only in this test: one object, no other module touched.
KCL9 = dataclasses.replace(
    KCL1, number=9, check_entry=_no_dashes, translator=_shout, other=1, properties_flag="-p"
)


def test_a_third_generation_is_one_more_object(tmp_path: Path) -> None:
    assert isinstance(KCL9, Generation) and KCL9.label == "9.x" and KCL9.lockfile == "kcl9.json"
    assert KCL9.kcl_option == " --kcl 9" and KCL9.check_option == " --kcl 9 --translated"
    path = _write(tmp_path / "app.properties", {**LOCAL, "streamName": "my-stream"})
    problems = validate_properties({**LOCAL, "streamName": "my-stream"}, generation=KCL9)
    assert [(p.key, p.message) for p in problems] == [("streamName", "no dashes, says KCL 9")]
    prepared = prepare(path, generation=KCL9)
    assert prepared.values["streamName"] == "MY-STREAM"
    assert prepared.notes == ["kclpy-local: translated for KCL 3.x: upper-cased streamName"]
    assert [(p.key, p.line) for p in prepared.errors] == [("streamName", 3)]
    with pytest.raises(PropertiesError) as info:
        prepared.refuse("refused")
    assert info.value.hint == f"run: kclpy-local properties check {path} --kcl 9 --translated"


# -- the pipeline ------------------------------------------------------------------


def test_pipeline_overrides_substitutes_translates_and_validates(tmp_path: Path) -> None:
    path = _write(tmp_path / "app.properties", {**LOCAL, "streamName": "${STREAM:-fallback}", "x": "$${y}"})
    prepared = prepare(path, generation=3, overrides={"applicationName": "${literal}"}, environ={})
    assert prepared.values["streamName"] == "fallback"
    assert prepared.values["applicationName"] == "${literal}"  # overrides are literal
    assert prepared.values["x"] == "${y}"
    assert prepared.values["AWSCredentialsProvider"] == "DefaultCredentialsProvider"
    assert prepared.values["retrievalMode"] == "POLLING" and prepared.changed
    assert any("DefaultCredentialsProvider" in note for note in prepared.notes)
    assert dict(prepared.effective) == prepared.values
    # The unknown key x, found in the translated file, with the file's line.
    assert [(p.key, p.line) for p in prepared.problems if p.severity == "error"] == []
    assert ("x", 14) in [(p.key, p.line) for p in prepared.problems]


def test_pipeline_kcl1_runs_the_file_as_written(tmp_path: Path) -> None:
    path = _write(tmp_path / "app.properties", LOCAL)
    prepared = prepare(path, environ={})
    assert prepared.generation is KCL1 and prepared.values == LOCAL
    assert not prepared.changed and prepared.notes == [] and prepared.problems == ()
    assert prepared.checked.entries == prepared.source.entries


def test_pipeline_missing_variables(tmp_path: Path) -> None:
    path = _write(tmp_path / "app.properties", {**LOCAL, "streamName": "${NO_SUCH}"})
    # 1.x, validated: one problem with its line and a hint.
    (problem,) = prepare(path, environ={}).errors
    assert (problem.key, problem.line) == ("streamName", 3) and "export NO_SUCH" in (problem.hint or "")
    # Unvalidated, or before a translation: an error at once.
    for options in ({"validate": False}, {"generation": 3}):
        with pytest.raises(PropertiesError, match="environment variable NO_SUCH is not set"):
            prepare(path, environ={}, **options)  # type: ignore[arg-type]


def test_effective_values_are_the_pipelines_first_steps(tmp_path: Path) -> None:
    path = _write(tmp_path / "app.properties",
                  {**LOCAL, "streamName": "${STREAM:-fallback}", "maxRecords": "${NO_SUCH}"})
    values = pipeline.effective_values(path, overrides={"applicationName": "${literal}"}, environ={})
    assert values["streamName"] == "fallback"
    assert values["applicationName"] == "${literal}"  # overrides are literal
    assert values["maxRecords"] == "${NO_SUCH}"  # left for the validator to report
    assert pipeline.effective_values(path, environ={"STREAM": "chosen"})["streamName"] == "chosen"
    # The same values prepare() gives, where every variable is set.
    prepared = prepare(path, environ={"NO_SUCH": "10"})
    assert pipeline.effective_values(path, environ={"NO_SUCH": "10"}) == prepared.values


# -- the four callers share it ------------------------------------------------------


class _Called(Exception):
    pass


def _spy(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    real = pipeline.prepare

    def spy(path: Any, **options: Any) -> pipeline.Prepared:
        calls.append({"path": Path(path), **options})
        if options.get("validate", True) is False:
            return real(path, **options)
        raise _Called

    monkeypatch.setattr(module, "prepare", spy)
    return calls


def test_properties_check_uses_the_pipeline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = _spy(monkeypatch, _cli_properties)
    path = _write(tmp_path / "app.properties", LOCAL)
    with pytest.raises(_Called):
        main(["properties", "check", str(path), "--kcl", "3", "--translated"])
    assert calls == [{"path": path, "generation": KCL3, "profile": None, "translate": True}]


def test_run_uses_the_pipeline(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("KCLPY_LOCAL_APP", "KCLPY_LOCAL_STREAM", "KCLPY_LOCAL_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    calls = _spy(monkeypatch, _cli_run)
    assert main(["run", str(RECORDER), "--stream", "orders", "--kcl", "3", "--print-properties"]) == 0
    assert [(c["generation"], c["validate"]) for c in calls] == [(3, False)]
    assert calls[0]["overrides"]["streamName"] == "orders"
    assert "retrievalMode = POLLING" in capsys.readouterr().out


def test_daemon_and_the_fixtures_use_the_pipeline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = _spy(monkeypatch, _daemon)
    path = _write(tmp_path / "app.properties", LOCAL)
    with pytest.raises(_Called):
        Daemon(path, generation=3, guard=False).start()
    assert calls[-1]["path"] == path and calls[-1]["generation"] is KCL3
    processor = tmp_path / "processor.py"
    processor.write_text("")
    stream = LocalStream("s", "http://127.0.0.1:1")
    with pytest.raises(_Called):
        ProcessorRun(processor, stream, app="app", generation=3).start()
    assert calls[-1]["generation"] is KCL3
    assert calls[-1]["overrides"]["executableName"] == f"{sys.executable} {processor.resolve()}"
