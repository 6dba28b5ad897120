"""ferrokinesis without the engine: the build into the cache (a stand-in cargo, and the
real cargo against a registry that refuses connections), one build at a time under
the lock, nothing left of a failed build, cargo missing, and which Kinesis engine
gets which CBOR setting."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kclpy_local._cli import main
from kclpy_local._emulators import engines
from kclpy_local._emulators import ferrokinesis as fk
from kclpy_local._emulators.ferrokinesis import (
    BINARY,
    SOURCE_DIGEST,
    SOURCES,
    VERSION,
    Ferrokinesis,
    FerrokinesisInstallation,
    crate_dir,
    ensure_installed,
    find_installation,
    install_root,
    source_digest,
)
from kclpy_local._emulators.registry import PID_FILE
from kclpy_local._exceptions import (
    CargoNotFoundError,
    EmulatorError,
    FerrokinesisInstallError,
    InstallError,
    UsageError,
)

CARGO = fk.shutil.which("cargo")
DIRECTORY = f"{VERSION}-{SOURCE_DIGEST[:16]}"

# -- a stand-in cargo -------------------------------------------------------------------

FAKE_CARGO = """\
#!{python}
import json, os, sys, time
from pathlib import Path
argv = sys.argv[1:]
with Path(os.environ["FAKE_CARGO_LOG"]).open("a") as log:
    log.write(json.dumps(argv) + "\\n")
mode = os.environ.get("FAKE_CARGO_MODE", "ok")
time.sleep(float(os.environ.get("FAKE_CARGO_SLEEP", "0")))
target = Path(argv[argv.index("--target-dir") + 1])
(target / "release" / "deps").mkdir(parents=True)
(target / "release" / "deps" / "libaxum.rlib").write_bytes(b"x" * 1000)
if mode == "offline":
    print("    Updating crates.io index", file=sys.stderr)
    print("error: failed to download from `https://static.crates.io/crates/axum/0.8.9/download`", file=sys.stderr)
    print("Caused by:", file=sys.stderr)
    print("  [6] Couldn't resolve host name (Could not resolve host: static.crates.io)", file=sys.stderr)
    sys.exit(101)
if mode == "missing":
    print("error: failed to select a version for the requirement `ferrokinesis = \\"=0.7.0\\"`", file=sys.stderr)
    sys.exit(101)
if mode == "crash":
    print("error: could not compile `kclpy-local-ferrokinesis` (bin) due to 1 previous error", file=sys.stderr)
    sys.exit(101)
if mode == "nobinary":
    sys.exit(0)
bin_dir = Path(argv[argv.index("--root") + 1]) / "bin"
bin_dir.mkdir(parents=True)
binary = bin_dir / "{binary}"
binary.write_text("#!/bin/sh\\nexit 0\\n")
binary.chmod(0o755)
"""


@pytest.fixture
def fake_cargo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``cargo`` on PATH that logs its argv to the returned file; FAKE_CARGO_MODE picks
    what it does."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "cargo"
    script.write_text(FAKE_CARGO.format(python=sys.executable, binary=BINARY))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "cargo-calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_CARGO_LOG", str(log))
    return log


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def leftovers(cache: Path) -> list[str]:
    root = install_root(cache)
    return sorted(p.name for p in root.iterdir() if p.name != ".lock") if root.exists() else []


def test_the_sources_are_package_data_and_pin_the_crate() -> None:
    for name in SOURCES:
        assert (crate_dir() / name).is_file(), name
    manifest = (crate_dir() / "Cargo.toml").read_text()
    assert 'ferrokinesis = { version = "=0.7.0"' in manifest
    lock = (crate_dir() / "Cargo.lock").read_text()
    assert 'name = "ferrokinesis"\nversion = "0.7.0"' in lock
    # Every locked package comes from crates.io (or is the program itself).
    sources = {line for line in lock.splitlines() if line.startswith("source = ")}
    assert sources == {'source = "registry+https://github.com/rust-lang/crates.io-index"'}
    assert "127.0.0.1" in (crate_dir() / "src" / "main.rs").read_text()
    assert "0.0.0.0" not in (crate_dir() / "src" / "main.rs").read_text()
    assert source_digest() == SOURCE_DIGEST


def test_build_once_into_the_cache(fake_cargo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    inst = ensure_installed(cache)
    assert inst.root == cache / "ferrokinesis" / DIRECTORY
    assert inst.binary == inst.root / "bin" / BINARY and os.access(inst.binary, os.X_OK)
    assert stat.S_IMODE(inst.root.stat().st_mode) == 0o755
    assert leftovers(cache) == [DIRECTORY]  # the temporary directory was renamed
    [argv] = calls(fake_cargo)
    assert argv[:3] == ["install", "--locked", "--no-track"]
    prefix = Path(argv[argv.index("--root") + 1])
    assert prefix.parent == install_root(cache) and prefix.name.startswith(f".{DIRECTORY}-")
    assert Path(argv[argv.index("--path") + 1]) == prefix / "source"
    assert Path(argv[argv.index("--target-dir") + 1]) == prefix / ".target"
    assert argv[argv.index("--bin") + 1] == BINARY
    # The sources it was built from are kept beside it, and the build's target is gone.
    for name in SOURCES:
        assert (inst.root / "source" / name).read_bytes() == (crate_dir() / name).read_bytes()
    assert (inst.root / "source.sha256").read_text().strip() == SOURCE_DIGEST
    assert not (inst.root / ".target").exists()
    # Built: found without cargo, and a second call runs nothing.
    assert find_installation(cache) == inst
    assert ensure_installed(cache) == inst
    assert len(calls(fake_cargo)) == 1


def test_two_builders_at_once_build_once(fake_cargo: Path, tmp_path: Path) -> None:
    """Two processes ask for it together: one builds under the lock, the other waits
    and finds it built."""
    cache = tmp_path / "cache"
    script = (
        "import sys; from pathlib import Path; "
        "from kclpy_local._emulators.ferrokinesis import ensure_installed; "
        "print(ensure_installed(Path(sys.argv[1])).binary)"
    )
    env = {**os.environ, "FAKE_CARGO_SLEEP": "1.0"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(cache)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], results
    assert {out.strip() for out, _ in results} == {
        str(cache / "ferrokinesis" / DIRECTORY / "bin" / BINARY)
    }
    assert len(calls(fake_cargo)) == 1
    assert leftovers(cache) == [DIRECTORY]


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("missing", "crates.io has no ferrokinesis 0.7.0"),
        ("crash", "cargo install exited with code 101"),
        ("nobinary", f"not sound: {BINARY} is missing or not executable"),
    ],
)
def test_a_failed_build_leaves_nothing_behind(
    fake_cargo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, message: str
) -> None:
    monkeypatch.setenv("FAKE_CARGO_MODE", mode)
    cache = tmp_path / "cache"
    with pytest.raises(FerrokinesisInstallError, match=message) as caught:
        ensure_installed(cache)
    assert isinstance(caught.value, InstallError) and caught.value.exit_code == 8
    assert not caught.value.registry_unreachable
    assert leftovers(cache) == []  # no temporary directory, no half-built target
    assert find_installation(cache) is None


def test_an_unreachable_registry_is_named(
    fake_cargo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CARGO_MODE", "offline")
    with pytest.raises(FerrokinesisInstallError, match="crates.io is unreachable") as caught:
        ensure_installed(tmp_path / "cache")
    assert caught.value.registry_unreachable
    assert "Could not resolve host" in str(caught.value)
    assert caught.value.hint is not None and "registry" in caught.value.hint
    assert leftovers(tmp_path / "cache") == []


def test_a_broken_or_stale_build_is_replaced(fake_cargo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    inst = ensure_installed(cache)
    inst.binary.unlink()
    stale = install_root(cache) / f".{DIRECTORY}-dead.tmp"
    stale.mkdir()  # a killed builder's temporary directory
    assert find_installation(cache) is None
    assert ensure_installed(cache) == inst
    assert len(calls(fake_cargo)) == 2
    assert leftovers(cache) == [DIRECTORY]
    # A directory built from other sources (its stamp says so) is not taken for it.
    (inst.root / "source.sha256").write_text("0" * 64 + "\n")
    assert FerrokinesisInstallation.defect(inst.root) == (
        f"built from other sources (0000000000000000), expected {SOURCE_DIGEST[:16]}"
    )


@pytest.mark.skipif(CARGO is None, reason="needs cargo: cargo is not on PATH")
def test_real_cargo_against_a_registry_that_refuses(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a loopback port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    home = tmp_path / "cargo-home"  # nothing cached: cargo must ask the registry
    home.mkdir()
    (home / "config.toml").write_text(
        '[source.crates-io]\nreplace-with = "refusing"\n'
        f'[source.refusing]\nregistry = "sparse+http://127.0.0.1:{port}/"\n'
        "[net]\nretry = 0\n"
    )
    env = {**os.environ, "CARGO_HOME": str(home)}
    with pytest.raises(FerrokinesisInstallError, match="crates.io is unreachable") as caught:
        ensure_installed(tmp_path / "cache", env=env, timeout=120)
    assert caught.value.registry_unreachable
    assert leftovers(tmp_path / "cache") == []


# -- cargo missing ----------------------------------------------------------------------


def test_without_cargo_the_error_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no cargo
    monkeypatch.setenv("CARGO_HOME", str(tmp_path))
    assert fk.cargo_problem() == (
        "cargo is not on PATH nor in $CARGO_HOME/bin (needs cargo: Rust's build tool)"
    )
    with pytest.raises(CargoNotFoundError) as caught:
        ensure_installed(tmp_path / "cache")
    assert isinstance(caught.value, InstallError) and caught.value.exit_code == 8
    assert "cargo is not on PATH" in str(caught.value)
    assert "rustup.rs" in (caught.value.hint or "")
    with pytest.raises(CargoNotFoundError):
        Ferrokinesis(cache_dir=tmp_path / "cache").start()
    assert leftovers(tmp_path / "cache") == []


def test_a_built_engine_needs_no_cargo(
    fake_cargo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    inst = ensure_installed(cache)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.setenv("CARGO_HOME", str(tmp_path / "nothing"))
    assert ensure_installed(cache) == inst
    assert engines.first_use_note("ferrokinesis", cache) is None


def test_up_without_cargo_stops_moto_and_writes_no_pid_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import moto.server  # noqa: F401 - the test extra installs it

    monkeypatch.setenv("PATH", str(tmp_path))  # moto runs on this interpreter; no cargo
    monkeypatch.setenv("CARGO_HOME", str(tmp_path))
    monkeypatch.setenv("KCLPY_LOCAL_CACHE", str(tmp_path / "cache"))
    state = tmp_path / "state"
    code = main(["up", "--port", "0", "--kinesis", "ferrokinesis", "--state-dir", str(state)])
    out, err = capsys.readouterr()
    assert code == 8, err
    assert "kclpy-local: building ferrokinesis 0.7.0 with cargo into" in err
    assert (
        "error: the ferrokinesis engine is built with cargo on first use, and cargo is not on PATH"
        in err
    )
    assert "rustup.rs" in err and "Traceback" not in err
    assert out == ""
    assert not (state / PID_FILE).exists()
    log = (state / "emulator.log").read_text()
    port = int(log.split("Running on http://127.0.0.1:")[1].split()[0].strip("/"))
    with socket.socket() as sock:  # moto had started, and was stopped
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_the_kinesis_port_option_needs_a_kinesis_engine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up", "--kinesis-port", "4568"]) == 2
    assert "--kinesis-port needs --kinesis kinesis-mock or ferrokinesis" in capsys.readouterr().err


# -- the engines' table ---------------------------------------------------------------


def test_which_kinesis_engine_is_read_over_cbor() -> None:
    assert engines.KINESIS_ENGINES == ("moto", "kinesis-mock", "ferrokinesis")
    assert engines.cbor_disabled("ferrokinesis") is False
    for name in ("moto", "kinesis-mock", "localstack", "ministack", "no-such-engine"):
        assert engines.cbor_disabled(name) is True, name


def test_kinesis_engines_by_name(tmp_path: Path) -> None:
    engine = engines.make_kinesis_engine("ferrokinesis", 0, log_path=tmp_path / "f.log")
    assert isinstance(engine, Ferrokinesis) and engine.tls_port == 0
    assert engine.name == "ferrokinesis" and engine.version == VERSION
    with pytest.raises(
        UsageError, match="unknown Kinesis engine 'moto'; choose one of kinesis-mock, ferrokinesis"
    ):
        engines.make_kinesis_engine("moto")
    assert engines.is_kinesis_engine_process("ferrokinesis", os.getpid()) is False
    assert engines.is_kinesis_engine_process("no-such-engine", os.getpid()) is False
    with pytest.raises(EmulatorError, match="loopback only"):
        Ferrokinesis(host="0.0.0.0")


def test_the_command_line_of_the_engine(tmp_path: Path) -> None:
    inst = FerrokinesisInstallation(tmp_path / "built")
    engine = Ferrokinesis(installation=inst, shard_limit=7, operation_millis=5, region="eu-west-1")
    command = engine.command((4599,))
    assert list(command.argv) == [
        str(inst.binary),
        "--port",
        "4599",
        "--region",
        "eu-west-1",
        "--shard-limit",
        "7",
        "--operation-ms",
        "5",
    ]


def test_cargo_is_found_in_cargo_home_when_path_lacks_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rustup puts cargo in $CARGO_HOME/bin, which a shell that has not read rustup's
    profile lacks on PATH: cargo is looked for there too."""
    cargo = tmp_path / "cargo-home" / "bin" / "cargo"
    cargo.parent.mkdir(parents=True)
    cargo.write_text("#!/bin/sh\nexit 0\n")
    cargo.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.setenv("CARGO_HOME", str(tmp_path / "cargo-home"))
    assert fk.find_cargo() == str(cargo)
    assert fk.cargo_problem() is None
    cargo.chmod(0o644)  # not executable: not a cargo
    assert fk.find_cargo() is None
