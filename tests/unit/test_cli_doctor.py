"""``kclpy-local doctor``: every check in a good and a bad situation, through ``main``."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import stat
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from kclpy_local._cli import doctor, main
from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._env import default_cache_dir
from kclpy_local._exceptions import BootstrapError
from kclpy_local._jvm.bootstrap import installation
from kclpy_local._jvm.cache import CacheLayout
from kclpy_local._jvm.discovery import JavaTool
from kclpy_local._jvm.jars import Artifact, Lock, load_lock
from kclpy_local._jvm.launcher import install_launcher

GOOD_PROPERTIES = """\
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

ORDER = [
    "python", "kclpy-local", "amazon-kclpy", "boto3", "moto", "java", "javac", "jars",
    "launcher", "kinesis-mock", "ferrokinesis", "ministack", "cbor", "fanout", "emulator",
]


def _launcher_jar(main_class: str | None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\n\r\n")
        if main_class is not None:
            zf.writestr(main_class.replace(".", "/") + ".class", b"\xca\xfe\xba\xbe")
    return buffer.getvalue()


@dataclass
class FakeCache:
    """A complete cache for a three-jar lockfile (the real launcher source)."""

    root: Path
    lock: Lock
    layout: CacheLayout

    def jar(self, index: int) -> Path:
        return self.layout.jars_dir / self.lock.artifacts[index].filename

    def install_launcher(self, main_class: str | None) -> None:
        jar = _launcher_jar(main_class)
        install_launcher(self.layout, self.lock, jar, self.lock.launcher_sources(), "test")


@pytest.fixture
def fake_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCache:
    payloads = {name: f"not really a jar: {name}\n".encode() * 40 for name in ("alpha", "beta", "gamma")}
    artifacts = tuple(
        Artifact("dev.test", name, "1.0", hashlib.sha256(data).hexdigest(), len(data))
        for name, data in payloads.items()
    )
    real = load_lock(1)
    lock = Lock(generation=1, root="dev.test:alpha:1.0", launcher=real.launcher, artifacts=artifacts)
    layout = CacheLayout(tmp_path / "cache", 1)
    layout.jars_dir.mkdir(parents=True)
    for artifact, data in zip(artifacts, payloads.values(), strict=True):
        (layout.jars_dir / artifact.filename).write_bytes(data)
    cache = FakeCache(tmp_path / "cache", lock, layout)
    cache.install_launcher(real.launcher.main_class)
    monkeypatch.setattr(doctor, "load_lock", lambda generation: lock)
    return cache


@pytest.fixture
def good_properties(tmp_path: Path) -> Path:
    path = tmp_path / "app.properties"
    path.write_text(GOOD_PROPERTIES)
    return path


@pytest.fixture
def dead_endpoint() -> str:
    """A loopback URL nothing listens on (a port bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def no_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing finds a java or javac: PATH is an empty directory, no JAVA_HOME."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.delenv("KCLPY_LOCAL_JAVA", raising=False)


@pytest.fixture
def needs_java() -> None:
    if not isinstance(doctor.find_java(), JavaTool):
        pytest.skip("no java >= 8 on this machine")


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, Any]]]:
    code = main(["doctor", "--json", *argv])
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return code, rows


def by_check(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (row,) = [r for r in rows if r["check"] == name]
    return row


# -- a good machine ------------------------------------------------------------


@pytest.mark.usefixtures("needs_java")
def test_all_good_exits_0_with_one_ok_line_per_check(
    fake_cache: FakeCache,
    good_properties: Path,
    emulator: EmbeddedEmulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["doctor", "--cache-dir", str(fake_cache.root), "--endpoint", emulator.endpoint_url,
            "--properties", str(good_properties)]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split(":")[0].split()[-1] for line in lines] == [*ORDER, "properties"]
    assert all(line.startswith("ok    ") for line in lines), out
    assert "fix:" not in out
    assert "nothing failed, no warnings" in err
    java = next(line for line in lines if " java: " in line)
    assert "Java " in java and " at " in java
    assert f"3 jars in {fake_cache.layout.jars_dir}, sha256 verified" in out
    assert fake_cache.lock.launcher.main_class in out
    assert f"{emulator.endpoint_url} answers (HTTP " in out
    assert "no problems (profile local)" in out


@pytest.mark.usefixtures("needs_java")
def test_json_is_a_list_of_check_status_finding_fix(
    fake_cache: FakeCache, emulator: EmbeddedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows = run_json(
        ["--cache-dir", str(fake_cache.root), "--endpoint", emulator.endpoint_url], capsys
    )
    assert code == 0
    assert [r["check"] for r in rows] == ORDER
    for row in rows:
        assert set(row) == {"check", "status", "finding", "fix"}
        assert row["status"] == "ok"
        assert row["fix"] is None


def test_real_cache_verifies_when_bootstrapped(
    emulator: EmbeddedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        installation(1, verify=False)
    except BootstrapError:
        pytest.skip("KCL 1 is not bootstrapped in the default cache")
    _, rows = run_json(
        ["--cache-dir", str(default_cache_dir()), "--endpoint", emulator.endpoint_url], capsys
    )
    jars = by_check(rows, "jars")
    assert jars["status"] == "ok", jars
    assert f"{len(load_lock(1).artifacts)} jars" in jars["finding"]
    assert by_check(rows, "launcher")["status"] == "ok"


# -- Java ------------------------------------------------------------------------


@pytest.mark.usefixtures("no_java")
def test_hidden_java_fails_but_javac_is_not_needed_once_built(
    fake_cache: FakeCache, dead_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["doctor", "--cache-dir", str(fake_cache.root), "--endpoint", dead_endpoint])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL  java: no `java` found to run the KCL daemon" in out
    assert "      fix: install a JDK" in out
    assert "ok    javac: " in out and "not needed while the launcher is built" in out


@pytest.mark.usefixtures("no_java")
def test_hidden_javac_fails_while_the_launcher_is_not_built(
    tmp_path: Path, dead_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows = run_json(["--cache-dir", str(tmp_path / "empty"), "--endpoint", dead_endpoint], capsys)
    assert code == 1
    javac = by_check(rows, "javac")
    assert javac["status"] == "FAIL"
    assert "kclpy-local bootstrap" in javac["finding"]
    assert "JAVA_HOME" in javac["fix"]


def test_too_old_java_is_named_with_its_version_and_place(
    tmp_path: Path, fake_cache: FakeCache, dead_endpoint: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    fake_java = tmp_path / "old" / "java"
    fake_java.parent.mkdir()
    fake_java.write_text("#!/bin/sh\necho 'java version \"1.7.0_80\"' >&2\n")
    fake_java.chmod(fake_java.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("KCLPY_LOCAL_JAVA", str(fake_java))
    code, rows = run_json(["--cache-dir", str(fake_cache.root), "--endpoint", dead_endpoint], capsys)
    assert code == 1
    java = by_check(rows, "java")
    assert java["status"] == "FAIL"
    assert str(fake_java) in java["finding"] and "Java 7" in java["finding"]


@pytest.mark.usefixtures("needs_java")
def test_java_home_is_reported_as_the_origin(
    fake_cache: FakeCache, dead_endpoint: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    found = doctor.find_java()
    assert isinstance(found, JavaTool)
    monkeypatch.delenv("KCLPY_LOCAL_JAVA", raising=False)
    monkeypatch.setenv("JAVA_HOME", str(found.path.resolve().parents[1]))
    _, rows = run_json(["--cache-dir", str(fake_cache.root), "--endpoint", dead_endpoint], capsys)
    java = by_check(rows, "java")
    assert java["status"] == "ok"
    assert f"Java {found.major}" in java["finding"] and "$JAVA_HOME" in java["finding"]


# -- the jar cache ---------------------------------------------------------------


def test_empty_cache_dir_is_not_installed(
    tmp_path: Path, dead_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    code, rows = run_json(["--cache-dir", str(empty), "--endpoint", dead_endpoint], capsys)
    assert code == 1
    jars = by_check(rows, "jars")
    assert jars["status"] == "FAIL"
    assert "KCL 1 is not installed" in jars["finding"]
    assert jars["fix"] == f"`kclpy-local bootstrap --cache-dir {empty}`"
    launcher = by_check(rows, "launcher")
    assert launcher["status"] == "FAIL" and "not built" in launcher["finding"]
    assert not empty.exists()  # the doctor creates nothing


def test_corrupt_and_truncated_jars_are_named(
    fake_cache: FakeCache, dead_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt = fake_cache.jar(1)
    corrupt.write_bytes(b"X" * corrupt.stat().st_size)  # same size, other content
    truncated = fake_cache.jar(2)
    truncated.write_bytes(truncated.read_bytes()[:10])
    code = main(["doctor", "--cache-dir", str(fake_cache.root), "--endpoint", dead_endpoint])
    out = capsys.readouterr().out
    assert code == 1
    (line,) = [ln for ln in out.splitlines() if " jars: " in ln]
    assert line.startswith(f"FAIL  jars: in {fake_cache.layout.jars_dir}: 2 of 3 jars do not match")
    assert f"{corrupt.name}: sha256 is {hashlib.sha256(corrupt.read_bytes()).hexdigest()}" in line
    assert fake_cache.lock.artifacts[1].sha256 in line
    assert f"{truncated.name}: size is 10 bytes" in line
    assert "fix: `kclpy-local bootstrap --cache-dir" in out
    assert not fake_cache.layout.stamps_path.exists()  # read-only: no stamps written


def test_missing_jar_is_named(
    fake_cache: FakeCache, dead_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_cache.jar(0).unlink()
    code, rows = run_json(["--cache-dir", str(fake_cache.root), "--endpoint", dead_endpoint], capsys)
    assert code == 1
    jars = by_check(rows, "jars")
    assert jars["status"] == "FAIL"
    assert "1 of 3 jars missing" in jars["finding"]
    assert fake_cache.jar(0).name in jars["finding"]


def test_missing_and_damaged_jars_are_all_named(
    fake_cache: FakeCache, dead_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_cache.jar(0).unlink()
    damaged = fake_cache.jar(2)
    damaged.write_bytes(b"X" * damaged.stat().st_size)
    code, rows = run_json(["--cache-dir", str(fake_cache.root), "--endpoint", dead_endpoint], capsys)
    assert code == 1
    jars = by_check(rows, "jars")
    assert jars["status"] == "FAIL"
    assert jars["finding"] == (
        f"in {fake_cache.layout.jars_dir}: 1 of 3 jars missing: {fake_cache.jar(0).name}; "
        f"1 of 3 jars do not match the lockfile: {damaged.name}: sha256 is "
        f"{hashlib.sha256(damaged.read_bytes()).hexdigest()}, expected {fake_cache.lock.artifacts[2].sha256}"
    )
    assert jars["fix"].endswith("(it replaces damaged jars)")


def test_launcher_without_its_main_class(
    fake_cache: FakeCache, dead_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_cache.install_launcher(None)
    code, rows = run_json(["--cache-dir", str(fake_cache.root), "--endpoint", dead_endpoint], capsys)
    assert code == 1
    launcher = by_check(rows, "launcher")
    assert launcher["status"] == "FAIL"
    assert f"has no {fake_cache.lock.launcher.main_class}" in launcher["finding"]
    assert launcher["fix"].startswith("delete it, then run `kclpy-local bootstrap")


def test_changed_launcher_jar(
    fake_cache: FakeCache, dead_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    jar = fake_cache.layout.launcher_jar
    with jar.open("ab") as fh:
        fh.write(b"tampered")
    _, rows = run_json(["--cache-dir", str(fake_cache.root), "--endpoint", dead_endpoint], capsys)
    launcher = by_check(rows, "launcher")
    assert launcher["status"] == "FAIL"
    assert "has changed" in launcher["finding"]


def test_unknown_generation_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["doctor", "--kcl", "99"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# -- the emulator ----------------------------------------------------------------


def test_unreachable_endpoint_is_a_warning_only(
    fake_cache: FakeCache, dead_endpoint: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(doctor, "find_java", lambda: JavaTool(Path("/opt/jdk/bin/java"), 17))
    code = main(["doctor", "--cache-dir", str(fake_cache.root), "--endpoint", dead_endpoint])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"warn  emulator: nothing answers at {dead_endpoint} (from --endpoint)" in out
    assert "fix: start the emulator with `kclpy-local up`, or point --endpoint" in out


def test_endpoint_from_the_environment(
    fake_cache: FakeCache, emulator: EmbeddedEmulator, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KCLPY_LOCAL_ENDPOINT", emulator.endpoint_url)
    _, rows = run_json(["--cache-dir", str(fake_cache.root)], capsys)
    row = by_check(rows, "emulator")
    assert row["status"] == "ok"
    assert emulator.endpoint_url in row["finding"]
    assert "$KCLPY_LOCAL_ENDPOINT" in row["finding"]


def test_non_http_endpoint() -> None:
    check = doctor.check_emulator("127.0.0.1:4566")
    assert check.status == "warn"
    assert "not an http(s) URL" in check.finding


# -- properties ------------------------------------------------------------------


def test_bad_properties_fail_with_line_and_hint(
    fake_cache: FakeCache, good_properties: Path, dead_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good_properties.write_text(
        GOOD_PROPERTIES.replace("streamName", "streamNme") + "maxRecords = 100 \nzzz = 1\n"
    )
    code = main(["doctor", "--cache-dir", str(fake_cache.root), "--endpoint", dead_endpoint,
                 "--properties", str(good_properties)])
    out = capsys.readouterr().out
    assert code == 1
    assert f"FAIL  properties: {good_properties}:3: streamNme: unknown key" in out
    assert "fix: did you mean 'streamName'?" in out
    assert f"FAIL  properties: {good_properties}:10: maxRecords:" in out
    assert f"warn  properties: {good_properties}:11: zzz: unknown key" in out
    assert "fix: edit line 11 of" in out
    assert f"FAIL  properties: {good_properties}: streamName: required key is missing" in out


def test_properties_warnings_only_exit_0(
    fake_cache: FakeCache, good_properties: Path, dead_endpoint: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(doctor, "find_java", lambda: JavaTool(Path("/opt/jdk/bin/java"), 17))
    good_properties.write_text(GOOD_PROPERTIES + "zzz = 1\n")
    code, rows = run_json(["--cache-dir", str(fake_cache.root), "--endpoint", dead_endpoint,
                           "--properties", str(good_properties)], capsys)
    assert code == 0
    (row,) = [r for r in rows if r["check"] == "properties"]
    assert row["status"] == "warn"


def test_missing_properties_file(
    tmp_path: Path, fake_cache: FakeCache, dead_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows = run_json(["--cache-dir", str(fake_cache.root), "--endpoint", dead_endpoint,
                           "--properties", str(tmp_path / "nope.properties")], capsys)
    assert code == 1
    row = by_check(rows, "properties")
    assert row["status"] == "FAIL" and "not found" in row["finding"]


# -- packages --------------------------------------------------------------------


def _hide_distribution(monkeypatch: pytest.MonkeyPatch, hidden: str) -> None:
    real = metadata.version

    def version(name: str) -> str:
        if name == hidden:
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "version", version)


def test_missing_moto_is_a_warning_with_the_extra_to_install(
    fake_cache: FakeCache, dead_endpoint: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(doctor, "find_java", lambda: JavaTool(Path("/opt/jdk/bin/java"), 17))
    _hide_distribution(monkeypatch, "moto")
    code = main(["doctor", "--cache-dir", str(fake_cache.root), "--endpoint", dead_endpoint])
    out = capsys.readouterr().out
    assert code == 0
    assert "warn  moto: not installed: the embedded emulator is unavailable" in out
    assert "      fix: pip install 'kclpy-local[emulator]'" in out


def test_missing_required_package_fails(
    fake_cache: FakeCache, dead_endpoint: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _hide_distribution(monkeypatch, "boto3")
    code, rows = run_json(["--cache-dir", str(fake_cache.root), "--endpoint", dead_endpoint], capsys)
    assert code == 1
    row = by_check(rows, "boto3")
    assert row == {"check": "boto3", "status": "FAIL", "finding": row["finding"],
                   "fix": "pip install boto3"}
    assert by_check(rows, "amazon-kclpy")["status"] == "ok"


def test_versions_are_reported(capsys: pytest.CaptureFixture[str]) -> None:
    from kclpy_local._version import __version__

    assert doctor.check_package("kclpy-local").finding.startswith(__version__)
    assert doctor.check_package("boto3").finding == metadata.version("boto3")
    python = doctor.check_python()
    assert python.status == "ok" and python.finding.startswith("Python 3.")


# -- the value object --------------------------------------------------------------


def test_check_render() -> None:
    assert doctor.Check("java", "ok", "Java 17 at /x").render() == "ok    java: Java 17 at /x"
    assert doctor.Check("jars", "FAIL", "gone", "do this").render() == (
        "FAIL  jars: gone\n      fix: do this"
    )
    with pytest.raises(AttributeError):
        doctor.Check("a", "ok", "b").status = "warn"  # type: ignore[misc]


def test_javac_lookup_without_java(no_java: None) -> None:
    assert doctor.check_javac(None, launcher_built=True, min_jdk=11).status == "ok"
    failed = doctor.check_javac(None, launcher_built=False, min_jdk=11)
    assert failed.status == "FAIL" and failed.fix is not None
    assert os.environ["PATH"].endswith("empty-bin")


def test_kinesis_mock_check_names_a_missing_node(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither node nor npm
    check = doctor.check_kinesis_mock(tmp_path)
    assert check.status == "warn"
    assert "node is not on PATH" in check.finding and "Node.js 20" in (check.fix or "")


def test_kinesis_mock_check_when_not_installed_yet(tmp_path: Path) -> None:
    import shutil

    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not on PATH")
    check = doctor.check_kinesis_mock(tmp_path / "empty-cache")
    assert check.status == "ok" and "installed on first use" in check.finding


def test_ferrokinesis_check_names_a_missing_cargo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no cargo
    monkeypatch.setenv("CARGO_HOME", str(tmp_path))
    check = doctor.check_ferrokinesis(tmp_path / "empty-cache")
    assert check.status == "warn"
    assert "it is not built, and cargo is not on PATH" in check.finding
    assert "--kinesis ferrokinesis" in (check.fix or "")


def test_ferrokinesis_check_when_not_built_yet(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    cargo = tmp_path / "bin" / "cargo"
    cargo.write_text("#!/bin/sh\nexit 1\n")
    cargo.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    check = doctor.check_ferrokinesis(tmp_path / "empty-cache")
    assert check.status == "ok"
    assert "cargo found; ferrokinesis 0.7.0 is built on first use" in check.finding


def test_ministack_check_when_not_installed_yet(tmp_path: Path) -> None:
    check = doctor.check_ministack(tmp_path / "empty-cache")
    assert check.status == "ok" and "ministack 1.5.33 is installed on first use" in check.finding


def test_the_fanout_check_names_every_engine_and_why() -> None:
    check = doctor.check_fanout()
    assert check.status == "ok"
    assert check.finding.startswith(
        "KCL 3.x enhanced fan-out (retrievalMode = FANOUT) works with kinesis-mock, ministack; "
        "run and daemon refuse the others before the JVM starts."
    )
    for engine, why in [("moto", "no SubscribeToShard"), ("kinesis-mock", "h2c"), ("ministack", "h2c")]:
        assert f"{engine}: " in check.finding and why in check.finding, engine


def test_the_cbor_check_names_every_engine_and_why() -> None:
    check = doctor.check_cbor()
    assert check.status == "ok"
    assert check.finding.startswith(
        "CBOR works with ferrokinesis (isCBORProtocolDisabled = false); keep it true on the others."
    )
    for engine, why in [
        ("moto", "HTTP 500"),
        ("kinesis-mock", "Data as text"),
        ("localstack", "kinesis-mock"),
        ("ministack", "cbor2"),
    ]:
        assert f"{engine}: " in check.finding and why in check.finding, engine
