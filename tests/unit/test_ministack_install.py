"""MiniStack's installation into the cache (real venv and pip, against a package index on
loopback), the shared install-once helper, the engine's settings and the registry's
engine field. No MiniStack runs here; tests/integration/test_ministack.py runs it."""

from __future__ import annotations

import http.server
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kclpy_local._emulators import _install, engines, ministack
from kclpy_local._emulators.ministack import (
    MiniStack,
    MiniStackInstallError,
    ensure_installed,
    find_installation,
)
from kclpy_local._emulators.registry import (
    EmulatorRecord,
    read_record,
    record_is_live,
    write_record,
)
from kclpy_local._exceptions import EmulatorError, UsageError


def fake_wheel() -> bytes:
    """A wheel named like the pinned one, whose bytes are not the pinned ones."""
    buffer = io.BytesIO()
    info = f"ministack-{ministack.VERSION}.dist-info"
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("ministack/__init__.py", "")
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: ministack\nVersion: {ministack.VERSION}\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return buffer.getvalue()


@pytest.fixture
def index(tmp_path: Path) -> Iterator[str]:
    """A package index on 127.0.0.1 that serves a forged ministack wheel."""
    root = tmp_path / "index"
    (root / "simple" / "ministack").mkdir(parents=True)
    (root / ministack.WHEEL).write_bytes(fake_wheel())
    (root / "simple" / "ministack" / "index.html").write_text(
        f'<html><body><a href="../../{ministack.WHEEL}">{ministack.WHEEL}</a></body></html>'
    )

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        server.server_close()


def pip_env(index_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_INDEX_URL=index_url, PIP_RETRIES="0", PIP_TIMEOUT="2", PIP_NO_CACHE_DIR="1")
    return env


def test_a_wheel_with_another_sha256_is_refused_and_nothing_is_left(
    index: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(MiniStackInstallError, match="not the pinned") as info:
        ensure_installed(cache, env=pip_env(index, monkeypatch), timeout=240)
    assert not info.value.registry_unreachable
    root = cache / "ministack"
    assert sorted(p.name for p in root.iterdir()) == [".lock"]  # no half-made installation
    assert find_installation(cache) is None


def test_an_unreachable_index_is_named_as_such(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    cache = tmp_path / "cache"
    with pytest.raises(MiniStackInstallError, match="package index is unreachable") as info:
        ensure_installed(cache, env=pip_env(f"http://127.0.0.1:{closed}/simple", monkeypatch), timeout=240)
    assert info.value.registry_unreachable
    assert info.value.hint is not None and "pip" in info.value.hint
    assert sorted(p.name for p in (cache / "ministack").iterdir()) == [".lock"]


def sound_installation(root: Path) -> None:
    """What ensure_installed leaves, without pip: the marker, an interpreter, the dist-info."""
    (root / "venv" / "bin").mkdir(parents=True)
    (root / "venv" / "bin" / "python").write_text("")
    (root / "venv" / "lib" / "python3.11" / "site-packages" / f"ministack-{ministack.VERSION}.dist-info").mkdir(
        parents=True
    )
    marker = {"version": ministack.VERSION, "sha256": ministack.WHEEL_SHA256}
    (root / "installed.json").write_text(json.dumps(marker))


def test_a_sound_installation_is_found(tmp_path: Path) -> None:
    root = tmp_path / "ministack" / ministack.VERSION
    sound_installation(root)
    found = find_installation(tmp_path)
    assert found is not None and found.python == root / "venv" / "bin" / "python"


@pytest.mark.parametrize(
    ("breakage", "defect"),
    [
        ("another-version", "another version"),
        ("another-sha256", "sha256"),
        ("no-python", "missing"),
        ("no-marker", "not installed"),
        ("no-dist-info", "not in the virtual environment"),
    ],
)
def test_a_broken_installation_is_not_used(tmp_path: Path, breakage: str, defect: str) -> None:
    root = tmp_path / "ministack" / ministack.VERSION
    sound_installation(root)
    marker = root / "installed.json"
    if breakage == "another-version":
        marker.write_text(json.dumps({"version": "0.1", "sha256": ministack.WHEEL_SHA256}))
    elif breakage == "another-sha256":
        marker.write_text(json.dumps({"version": ministack.VERSION, "sha256": "0" * 64}))
    elif breakage == "no-python":
        (root / "venv" / "bin" / "python").unlink()
    elif breakage == "no-marker":
        marker.unlink()
    else:
        next((root / "venv" / "lib").glob("python*/site-packages/*.dist-info")).rmdir()
    problem = ministack.MiniStackInstallation.defect(root)
    assert problem is not None and defect in problem
    assert find_installation(tmp_path) is None


def test_install_once_builds_once_and_replaces_a_broken_one(tmp_path: Path) -> None:
    built: list[Path] = []

    def defect(path: Path) -> str | None:
        return None if (path / "ok").is_file() else "no ok file"

    def build(tmp: Path) -> None:
        built.append(tmp)
        (tmp / "ok").write_text("1")

    def refuse(problem: str) -> Exception:
        return EmulatorError(problem)

    root = tmp_path / "engine"
    (root / "2.0").mkdir(parents=True)  # broken: no ok file
    (root / ".2.0-stale.tmp").mkdir()
    final = _install.install_once(root, "2.0", defect=defect, build=build, refuse=refuse, label="x")
    assert final == root / "2.0" and (final / "ok").is_file()
    assert _install.install_once(root, "2.0", defect=defect, build=build, refuse=refuse, label="x") == final
    assert len(built) == 1
    assert sorted(p.name for p in root.iterdir()) == [".lock", "2.0"]

    def bad_build(tmp: Path) -> None:
        (tmp / "junk").write_text("")

    with pytest.raises(EmulatorError, match="no ok file"):
        _install.install_once(root, "3.0", defect=defect, build=bad_build, refuse=refuse, label="x")
    assert not (root / "3.0").exists() and not list(root.glob(".3.0-*"))


def test_the_engine_binds_loopback_and_keeps_the_project_python_away(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    monkeypatch.setenv("EDGE_PORT", "4566")
    env = MiniStack(port=4599).environment(4599)
    assert env["BIND_HOST"] == "127.0.0.1" and env["GATEWAY_PORT"] == "4599"
    assert env["SERVICES"] == "kinesis,dynamodb,cloudwatch"
    assert env["IOT_MTLS_ENABLED"] == "0" and env["SFTP_ENABLED"] == "0"
    assert "PYTHONPATH" not in env and "EDGE_PORT" not in env
    with pytest.raises(EmulatorError, match="loopback"):
        MiniStack(host="0.0.0.0")
    with pytest.raises(EmulatorError, match="BIND_HOST"):
        MiniStack(env={"BIND_HOST": "0.0.0.0"})
    with pytest.raises(EmulatorError, match="invalid port"):
        MiniStack(port=70000)


def test_engines_by_name() -> None:
    assert engines.AWS_ENGINES == ("moto", "ministack")
    assert isinstance(engines.make_engine("ministack", 0), MiniStack)
    assert engines.make_engine("moto", 0).name == "moto"
    with pytest.raises(UsageError, match="unknown engine 'docker'"):
        engines.make_engine("docker", 0)
    assert engines.is_engine_process("no-such-engine", 1) is False
    assert {s.engine for s in engines.CBOR_SUPPORT} == {
        "moto", "kinesis-mock", "ferrokinesis", "localstack", "ministack"}


def test_the_registry_records_the_engine(tmp_path: Path) -> None:
    import os

    record = EmulatorRecord(os.getpid(), 1, "http://127.0.0.1:1", "now", "log", engine="ministack",
                            version=ministack.VERSION)
    write_record(tmp_path, record)
    data = json.loads((tmp_path / "emulator.json").read_text())
    assert (data["engine"], data["version"]) == ("ministack", ministack.VERSION)
    assert read_record(tmp_path) == record
    assert not record_is_live(record)  # this process is no MiniStack
    del data["engine"], data["version"]  # a pid file written before engines were recorded
    (tmp_path / "emulator.json").write_text(json.dumps(data))
    old = read_record(tmp_path)
    assert old is not None and (old.engine, old.version) == ("moto", "")
