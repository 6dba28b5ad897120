"""The pinned jar lockfiles: shape, completeness markers, validation."""

from __future__ import annotations

import copy
import importlib.util
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from kclpy_local._exceptions import BootstrapError
from kclpy_local._jvm.jars import (
    Artifact,
    available_generations,
    load_lock,
    parse_lock,
    sources_sha256,
)


def _raw(generation: int = 1) -> dict[str, Any]:
    text = resources.files("kclpy_local._jvm").joinpath("locks", f"kcl{generation}.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def test_generation_1_is_available() -> None:
    assert 1 in available_generations()


def test_kcl1_lock_pins_the_1_15_3_closure() -> None:
    lock = load_lock(1)
    assert lock.generation == 1
    assert lock.root == "com.amazonaws:amazon-kinesis-client:1.15.3"
    by_name = {(a.group, a.artifact): a for a in lock.artifacts}
    assert by_name[("com.amazonaws", "amazon-kinesis-client")].version == "1.15.3"
    assert by_name[("com.google.protobuf", "protobuf-java")].version == "4.31.0"
    for sdk in ("core", "kinesis", "dynamodb", "cloudwatch", "s3", "kms"):
        assert by_name[("com.amazonaws", f"aws-java-sdk-{sdk}")].version == "1.12.681"
    # the pom's direct dependencies and the transitive ones named in KCL_FACTS
    for needed in [
        ("com.google.guava", "guava"),
        ("org.apache.commons", "commons-lang3"),
        ("commons-logging", "commons-logging"),
        ("com.fasterxml.jackson.core", "jackson-core"),
        ("com.fasterxml.jackson.core", "jackson-databind"),
        ("com.fasterxml.jackson.dataformat", "jackson-dataformat-cbor"),
        ("org.apache.httpcomponents", "httpclient"),
        ("joda-time", "joda-time"),
        ("com.amazonaws", "jmespath-java"),
    ]:
        assert needed in by_name, needed
    assert len(lock.artifacts) == 26
    assert all(len(a.sha256) == 64 and a.size > 0 for a in lock.artifacts)


def test_kcl1_launcher_spec_and_source() -> None:
    lock = load_lock(1)
    assert lock.launcher.main_class == "dev.kclpylocal.kcl1.KclLocalLauncher"
    assert lock.launcher.java_release == 8
    source = lock.launcher_source().decode("utf-8")
    assert "package dev.kclpylocal.kcl1;" in source
    assert "public final class KclLocalLauncher" in source
    everything = "\n".join(text.decode("utf-8") for text in lock.launcher_sources().values())
    assert '"kclpy-local: worker STARTED"' in everything


def test_artifact_urls_follow_the_maven_layout() -> None:
    art = Artifact("com.google.guava", "guava", "33.2.0-jre", "0" * 64, 1)
    assert art.coordinate == "com.google.guava:guava:33.2.0-jre"
    assert art.filename == "guava-33.2.0-jre.jar"
    assert art.url("https://repo.example/maven2") == (
        "https://repo.example/maven2/com/google/guava/guava/33.2.0-jre/guava-33.2.0-jre.jar"
    )
    assert art.url("https://repo.example/maven2/") == art.url("https://repo.example/maven2")


def test_unknown_generation_names_the_known_ones() -> None:
    with pytest.raises(BootstrapError, match=r"generation 99 \(known: 1"):
        load_lock(99)


def _broken(mutate: Any) -> dict[str, Any]:
    data = copy.deepcopy(_raw())
    mutate(data)
    return data


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["artifacts"].append(dict(d["artifacts"][0])), "pinned twice"),
        (lambda d: d["artifacts"][0].update(sha256="abc"), "64 hex digits"),
        (lambda d: d["artifacts"][0].pop("sha256"), "has no 'sha256'"),
        (lambda d: d["artifacts"][0].update(size=0), "size must be positive"),
        (lambda d: d["artifacts"][0].update(version="1.0/../x"), "bad name"),
        (lambda d: d.update(root="a:b:c"), "not among the artifacts"),
        (lambda d: d.update(artifacts=[]), "pins no artifacts"),
        (lambda d: d["launcher"].update(main_class="not a class"), "bad main_class"),
        (lambda d: d.update(generation="1"), "generation must be int"),
    ],
)
def test_malformed_lockfiles_are_rejected(mutate: Any, message: str) -> None:
    with pytest.raises(BootstrapError, match=message):
        parse_lock(_broken(mutate), source="kcl1.json")


# -- KCL 3.x -----------------------------------------------------------------------


def test_generation_3_is_available() -> None:
    assert 3 in available_generations()


def test_kcl3_lock_pins_the_3_5_1_closure() -> None:
    lock = load_lock(3)
    assert lock.generation == 3
    assert lock.root == "software.amazon.kinesis:amazon-kinesis-client:3.5.1"
    by_name = {(a.group, a.artifact): a for a in lock.artifacts}
    assert by_name[("software.amazon.kinesis", "amazon-kinesis-client")].version == "3.5.1"
    # The only multilang jar the repository serves near 3.5.1; its classes are 3.5.1's but three settings.
    assert by_name[("software.amazon.kinesis", "amazon-kinesis-client-multilang")].version == "3.1.3"
    # One AWS SDK version for everything the KCL itself uses (the KCL 3.5.1 pom's awssdk.version).
    for sdk in ("kinesis", "dynamodb", "dynamodb-enhanced", "cloudwatch", "netty-nio-client", "sdk-core",
                "aws-core", "sts", "aws-cbor-protocol", "smithy-rpcv2-protocol"):
        assert by_name[("software.amazon.awssdk", sdk)].version == "2.41.21", sdk
    # The 3.5.1 multilang pom's direct dependencies, at its versions.
    for (group, artifact), version in {
        ("ch.qos.logback", "logback-classic"): "1.3.16",
        ("com.beust", "jcommander"): "1.82",
        ("commons-io", "commons-io"): "2.16.1",
        ("org.apache.commons", "commons-collections4"): "4.4",
        ("commons-beanutils", "commons-beanutils"): "1.11.0",
    }.items():
        assert by_name[(group, artifact)].version == version, artifact
    for needed in [("com.amazonaws", "dynamodb-lock-client"), ("software.amazon.glue", "schema-registry-serde"),
                   ("io.netty", "netty-codec-http2"), ("org.slf4j", "slf4j-api")]:
        assert needed in by_name, needed
    assert len(lock.artifacts) == 136
    assert all(len(a.sha256) == 64 and a.size > 0 for a in lock.artifacts)


def test_kcl3_launcher_spec_and_source() -> None:
    lock = load_lock(3)
    assert lock.launcher.main_class == "dev.kclpylocal.kcl3.KclLocalLauncher"
    assert lock.launcher.source == "_jvm/launchers/kcl3/KclLocalLauncher.java"
    assert lock.launcher.java_release == 8
    source = lock.launcher_source().decode("utf-8")
    assert "package dev.kclpylocal.kcl3;" in source
    assert "public final class KclLocalLauncher" in source
    source = "\n".join(text.decode("utf-8") for text in lock.launcher_sources().values())
    for literal in ('"kclpy-local: worker STARTED"', '"cloudWatchEndpoint"', '"isCBORProtocolDisabled"',
                    '"aws.cborEnabled"', '"initialLeaseSync"', '"dynamoDbLockBasedLeaderLeaseDurationInMillis"',
                    '"dynamoDbLockBasedLeaderHeartbeatPeriodInMillis"', '"maxInitializationAttempts"',
                    '"shardConsumerDispatchPollIntervalMillis"'):
        assert literal in source, literal


def test_launchers_share_the_common_sources() -> None:
    one, three = (load_lock(g) for g in (1, 3))
    assert one.launcher.shared_sources == ("_jvm/launchers/common", "_jvm/launchers/kcl1_multilang")
    assert three.launcher.shared_sources == ("_jvm/launchers/common",)
    sources1, sources3 = one.launcher_sources(), three.launcher_sources()
    # The generation's own source first, then the same shared files for both.
    assert next(iter(sources1)) == one.launcher.source
    assert next(iter(sources3)) == three.launcher.source
    shared1 = {path: text for path, text in sources1.items() if path.startswith("_jvm/launchers/common/")}
    shared3 = {path: text for path, text in sources3.items() if path != three.launcher.source}
    assert shared1 == shared3
    assert "_jvm/launchers/common/Launch.java" in shared1
    assert all(b"package dev.kclpylocal.common;" in text for text in shared1.values())
    # KCL 1.x's own folder: the class its multilang package lets override a processor's start.
    own1 = set(sources1) - set(shared1) - {one.launcher.source}
    assert own1 == {"_jvm/launchers/kcl1_multilang/EarlyStart.java"}
    assert one.launcher_sha256() == sources_sha256(sources1)


def test_sources_sha256_covers_every_file() -> None:
    base = {"a/Main.java": b"class Main {}", "common/Shared.java": b"class Shared {}"}
    digest = sources_sha256(base)
    assert sources_sha256(dict(base)) == digest
    assert sources_sha256({**base, "common/Shared.java": b"class Shared { }"}) != digest
    assert sources_sha256({**base, "common/Other.java": b""}) != digest
    assert sources_sha256({"a/Main.java": base["a/Main.java"]}) != digest
    renamed = {"a/Main.java": base["a/Main.java"], "common/Renamed.java": base["common/Shared.java"]}
    assert sources_sha256(renamed) != digest


def test_shared_sources_are_optional_and_checked() -> None:
    data = _broken(lambda d: d["launcher"].pop("shared_sources", None))
    assert parse_lock(data).launcher.shared_sources == ()
    for bad in ("_jvm/launchers/common", [1], [""]):
        data["launcher"]["shared_sources"] = bad
        with pytest.raises(BootstrapError, match="shared_sources must be a list of folders"):
            parse_lock(data)


def _lock_jars_script() -> Any:
    path = Path(__file__).resolve().parents[2] / "scripts" / "lock_jars.py"
    spec = importlib.util.spec_from_file_location("lock_jars", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lock_script_renders_the_kcl3_recipe() -> None:
    script = _lock_jars_script()
    raw = _raw(3)
    dependencies = script.pom_dependencies(raw["root"], raw["resolve"])
    assert dependencies[0] == ("software.amazon.kinesis:amazon-kinesis-client:3.5.1", True)
    assert ("software.amazon.kinesis:amazon-kinesis-client-multilang:3.1.3", False) in dependencies
    assert [t for _, t in dependencies].count(False) == 1
    pom = script.render_pom(dependencies)
    assert pom.count("<dependency>") == len(dependencies) == len(raw["resolve"]["dependencies"])
    assert pom.count("<exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion>") == 1
    # Without a recipe the pom depends on the root alone, as for KCL 1.x.
    assert script.pom_dependencies("g:a:1", None) == [("g:a:1", True)]
    assert script.render_pom([("g:a:1", True)]).count("<dependency>") == 1
