"""Bootstrap against a real HTTP server on 127.0.0.1 serving a small fake lockfile.

The launcher build (javac) is replaced by a stub here; the real build is in
tests/integration/test_launcher.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kclpy_local._cli import main
from kclpy_local._exceptions import (
    ArtifactDownloadError,
    ArtifactIntegrityError,
    BootstrapError,
    UsageError,
)
from kclpy_local._jvm import bootstrap as _bootstrap
from kclpy_local._jvm.bootstrap import (
    DownloadRetry,
    default_cache_dir,
    installation,
    run_bootstrap,
)
from kclpy_local._jvm.cache import CacheLayout, atomic_writer, locked
from kclpy_local._jvm.fetch import (
    DEFAULT_DOWNLOAD_TIMEOUT,
    DEFAULT_REPOSITORY,
    download_timeout,
    resolve_repository,
)
from kclpy_local._jvm.jars import Artifact, LauncherSpec, Lock, load_lock, sources_sha256

# --------------------------------------------------------------------------- stub repository


@dataclass
class MavenStub:
    """A Maven repository on 127.0.0.1: files from ``root``, faults from ``plan``."""

    root: Path
    url: str = ""
    requests: list[str] = field(default_factory=list)
    plan: dict[str, list[Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Set when the server shuts down: stalled and trickling answers end.
    closing: threading.Event = field(default_factory=threading.Event)

    def fault(self, path: str) -> Any:
        with self.lock:
            self.requests.append(path)
            queue = self.plan.get(path)
            return queue.pop(0) if queue else None


def _handler(stub: MavenStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            rel = self.path.lstrip("/")
            fault = stub.fault(rel)
            target = stub.root / rel
            if isinstance(fault, tuple) and fault[0] == "stall":
                # A promised body that stops after a few bytes (until the server closes).
                self.send_response(200)
                self.send_header("Content-Length", str(fault[1]))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(b"x" * 100)
                    self.wfile.flush()
                    stub.closing.wait(30)
                return
            if isinstance(fault, int):
                self.send_response(fault)
                if fault == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if not target.is_file():
                self.send_error(404)
                return
            data = target.read_bytes()
            if fault == "slow":
                time.sleep(1.0)
            elif fault == "garbage":
                data = bytes(len(data))
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if fault == "trickle":  # 1 KiB every 0.05 s: no single read ever times out
                with contextlib.suppress(OSError):
                    for start in range(0, len(data), 1024):
                        if stub.closing.wait(0.05):
                            return
                        self.wfile.write(data[start : start + 1024])
                        self.wfile.flush()
                return
            if fault == "truncate":
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)

    return Handler


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[MavenStub]:
    repo = MavenStub(tmp_path / "repo")
    repo.root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(repo))
    server.daemon_threads = True
    repo.url = f"http://127.0.0.1:{server.server_address[1]}/maven2"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield repo
    finally:
        repo.closing.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


# --------------------------------------------------------------------------- fake lock


def _artifact(group: str, name: str, data: bytes) -> Artifact:
    return Artifact(group, name, "1.0", hashlib.sha256(data).hexdigest(), len(data))


@dataclass
class Fake:
    lock: Lock
    payloads: dict[str, bytes]
    stub: MavenStub
    cache: Path
    sleeps: list[float]
    builds: list[str]

    def path(self, index: int) -> str:
        return "maven2/" + self.lock.artifacts[index].repository_path

    def run(self, **kwargs: Any) -> _bootstrap.BootstrapResult:
        kwargs.setdefault("repository", self.stub.url)
        kwargs.setdefault("retry", DownloadRetry(attempts=4, base_delay=0.25, max_delay=1.0, timeout=0.4))
        return run_bootstrap(
            1, cache_dir=self.cache, lock=self.lock, sleep=self.sleeps.append, progress=False, **kwargs
        )

    def jar(self, index: int) -> Path:
        return self.cache / "kcl1" / "jars" / self.lock.artifacts[index].filename


@pytest.fixture
def fake(stub: MavenStub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fake:
    monkeypatch.delenv("KCLPY_LOCAL_MAVEN_REPO", raising=False)
    monkeypatch.delenv("KCLPY_LOCAL_CACHE", raising=False)
    payloads = {
        "alpha": os.urandom(1000),
        "beta": os.urandom(200_000),  # several read chunks
        "gamma": b"tiny",
    }
    artifacts = tuple(_artifact("org.example", name, data) for name, data in payloads.items())
    for art in artifacts:
        dest = stub.root / "maven2" / art.repository_path
        dest.parent.mkdir(parents=True)
        dest.write_bytes(payloads[art.artifact])
    lock = Lock(
        generation=1,
        root="org.example:alpha:1.0",
        launcher=LauncherSpec(
            main_class="dev.kclpylocal.kcl1.KclLocalLauncher",
            source="_jvm/launchers/kcl1/KclLocalLauncher.java",
            java_release=8,
            min_jdk=11,
        ),
        artifacts=artifacts,
    )
    builds: list[str] = []

    def compile_stub(lock: Lock, jars: tuple[Path, ...], sources: Mapping[str, bytes], **_: Any) -> tuple[bytes, str]:
        builds.append(sources_sha256(sources))
        return b"PK-fake-launcher", "stub"

    monkeypatch.setattr(_bootstrap, "compile_launcher", compile_stub)
    return Fake(lock, payloads, stub, tmp_path / "cache", [], builds)


# --------------------------------------------------------------------------- tests


def test_cold_install_downloads_verifies_and_builds(fake: Fake) -> None:
    result = fake.run()
    assert result.summary.downloaded == tuple(a.coordinate for a in fake.lock.artifacts)
    assert result.summary.requests == 3
    assert result.summary.launcher_built
    assert fake.builds and len(fake.builds) == 1
    inst = result.installation
    for art, path in zip(fake.lock.artifacts, inst.jars, strict=True):
        assert path.read_bytes() == fake.payloads[art.artifact]
    assert inst.launcher_jar.read_bytes() == b"PK-fake-launcher"
    assert inst.classpath().split(os.pathsep) == [str(inst.launcher_jar), *map(str, inst.jars)]
    leftovers = [p for p in (fake.cache / "kcl1").rglob("*") if p.name.endswith(".part")]
    assert leftovers == []


def test_second_run_makes_no_request_and_is_fast(fake: Fake) -> None:
    fake.run()
    before = len(fake.stub.requests)
    started = time.monotonic()
    result = fake.run()
    assert time.monotonic() - started < 1.0
    assert len(fake.stub.requests) == before
    assert result.summary.requests == 0
    assert not result.summary.launcher_built
    assert len(result.summary.reused) == 3


def test_retries_429_and_503_with_backoff(fake: Fake) -> None:
    fake.stub.plan[fake.path(1)] = [429, 503]
    result = fake.run()
    assert fake.stub.requests.count(fake.path(1)) == 3
    assert fake.sleeps == [0.25, 0.5]
    assert "org.example:beta:1.0" in result.summary.downloaded


def test_retries_a_timeout(fake: Fake) -> None:
    fake.stub.plan[fake.path(0)] = ["slow"]
    fake.run()
    assert fake.stub.requests.count(fake.path(0)) == 2
    assert fake.jar(0).read_bytes() == fake.payloads["alpha"]


def test_retries_a_truncated_body(fake: Fake) -> None:
    fake.stub.plan[fake.path(1)] = ["truncate"]
    fake.run()
    assert fake.stub.requests.count(fake.path(1)) == 2
    assert fake.jar(1).read_bytes() == fake.payloads["beta"]


def test_gives_up_after_bounded_attempts_naming_artifact_and_url(fake: Fake) -> None:
    fake.stub.plan[fake.path(2)] = [503] * 10
    with pytest.raises(ArtifactDownloadError) as info:
        fake.run()
    err = info.value
    assert err.artifact == "org.example:gamma:1.0"
    assert err.url == f"{fake.stub.url}/{fake.lock.artifacts[2].repository_path}"
    assert "HTTP 503" in str(err) and "4 attempts" in str(err)
    assert err.url in str(err) and err.artifact in str(err)
    assert fake.stub.requests.count(fake.path(2)) == 4
    assert fake.sleeps == [0.25, 0.5, 1.0]
    assert not fake.jar(2).exists()


def test_404_is_not_retried(fake: Fake) -> None:
    (fake.stub.root / fake.path(0)).unlink()
    with pytest.raises(ArtifactDownloadError, match=r"org\.example:alpha:1\.0.*HTTP 404"):
        fake.run()
    assert fake.stub.requests.count(fake.path(0)) == 1
    assert fake.sleeps == []


def test_connection_refused_is_retried_then_reported(fake: Fake) -> None:
    with pytest.raises(ArtifactDownloadError, match="connection failed") as info:
        fake.run(repository="http://127.0.0.1:9/maven2")
    assert info.value.url.startswith("http://127.0.0.1:9/maven2/org/example/alpha/")
    assert len(fake.sleeps) == 3


def test_sha_mismatch_is_never_put_in_place(fake: Fake) -> None:
    fake.stub.plan[fake.path(0)] = ["garbage"]
    with pytest.raises(ArtifactIntegrityError) as info:
        fake.run()
    err = info.value
    assert err.artifact == "org.example:alpha:1.0"
    assert err.location.endswith("/org/example/alpha/1.0/alpha-1.0.jar")
    assert err.expected == fake.lock.artifacts[0].sha256
    assert err.actual == hashlib.sha256(bytes(1000)).hexdigest()
    assert not fake.jar(0).exists()
    assert list(fake.jar(0).parent.glob("*.part")) == []


def test_corrupt_cached_jar_is_detected_and_replaced(fake: Fake) -> None:
    fake.run()
    jar = fake.jar(1)
    data = bytearray(jar.read_bytes())
    data[100] ^= 0xFF  # same size, new content, new mtime
    jar.write_bytes(bytes(data))
    os.utime(jar, ns=(jar.stat().st_atime_ns, jar.stat().st_mtime_ns + 1_000_000))
    result = fake.run()
    assert result.summary.replaced == ("org.example:beta:1.0",)
    assert result.summary.requests == 1
    assert jar.read_bytes() == fake.payloads["beta"]


def test_truncated_cached_jar_is_detected_by_size(fake: Fake) -> None:
    fake.run()
    jar = fake.jar(0)
    jar.write_bytes(jar.read_bytes()[:10])
    with pytest.raises(ArtifactIntegrityError, match=r"size is 10 bytes") as info:
        installation(1, fake.cache, lock=fake.lock)
    assert info.value.hint and "kclpy-local bootstrap" in info.value.hint
    result = fake.run()
    assert result.summary.replaced == ("org.example:alpha:1.0",)


def test_offline_reports_damage_and_absence_instead_of_fetching(fake: Fake) -> None:
    fake.run()
    fake.jar(2).write_bytes(b"TINY")  # same size as b"tiny"
    with pytest.raises(ArtifactIntegrityError, match=r"org\.example:gamma:1\.0"):
        fake.run(offline=True)
    fake.jar(2).unlink()
    requests = len(fake.stub.requests)
    with pytest.raises(ArtifactDownloadError, match="offline") as info:
        fake.run(offline=True)
    assert info.value.artifact == "org.example:gamma:1.0"
    assert len(fake.stub.requests) == requests


def test_from_dir_flat_and_maven_layout(fake: Fake, tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    for art in fake.lock.artifacts:
        (flat / art.filename).write_bytes(fake.payloads[art.artifact])
    result = fake.run(from_dir=flat, repository="http://127.0.0.1:9/unused")
    assert len(result.summary.copied) == 3
    assert fake.stub.requests == []
    # a Maven repository layout (e.g. ~/.m2/repository) works too
    for jar in (fake.cache / "kcl1" / "jars").glob("*.jar"):
        jar.unlink()
    result = fake.run(from_dir=fake.stub.root / "maven2")
    assert len(result.summary.copied) == 3
    assert fake.stub.requests == []


def test_from_dir_missing_or_bad_jar_is_named(fake: Fake, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "alpha-1.0.jar").write_bytes(fake.payloads["alpha"])
    (src / "beta-1.0.jar").write_bytes(b"not beta")
    with pytest.raises(ArtifactIntegrityError) as bad:
        fake.run(from_dir=src)
    assert bad.value.artifact == "org.example:beta:1.0"
    assert bad.value.location == str(src / "beta-1.0.jar")
    (src / "beta-1.0.jar").write_bytes(fake.payloads["beta"])
    with pytest.raises(ArtifactDownloadError, match=r"gamma-1\.0\.jar") as missing:
        fake.run(from_dir=src)
    assert missing.value.artifact == "org.example:gamma:1.0"
    assert fake.stub.requests == []


def test_installation_before_bootstrap_says_how_to_install(fake: Fake) -> None:
    with pytest.raises(BootstrapError, match="not installed") as info:
        installation(1, fake.cache, lock=fake.lock)
    assert info.value.hint == "run `kclpy-local bootstrap`"
    fake.run()
    inst = installation(1, fake.cache, lock=fake.lock)
    assert inst.main_class == "dev.kclpylocal.kcl1.KclLocalLauncher"
    assert installation(1, fake.cache, verify="full", lock=fake.lock) == inst


def test_launcher_is_rebuilt_when_its_source_changes(fake: Fake) -> None:
    fake.run()
    stamp = fake.cache / "kcl1" / "launcher.json"
    data = json.loads(stamp.read_text())
    data["source_sha256"] = "0" * 64
    stamp.write_text(json.dumps(data))
    with pytest.raises(BootstrapError, match="another source"):
        installation(1, fake.cache, lock=fake.lock)
    result = fake.run()
    assert result.summary.launcher_built
    assert len(fake.builds) == 2


def test_stamp_avoids_rehashing_until_mtime_changes(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.run()
    hashed: list[Path] = []
    real = _bootstrap.check_cached.__globals__["sha256_file"]

    def counting(path: Path) -> str:
        hashed.append(path)
        digest: str = real(path)
        return digest

    monkeypatch.setitem(_bootstrap.check_cached.__globals__, "sha256_file", counting)
    installation(1, fake.cache, lock=fake.lock)
    assert hashed == []
    os.utime(fake.jar(0), ns=(0, 0))
    installation(1, fake.cache, lock=fake.lock)
    assert hashed == [fake.jar(0)]


def test_atomic_writer_leaves_old_file_and_no_temp_on_failure(tmp_path: Path) -> None:
    dest = tmp_path / "x.jar"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_writer(dest) as fh:
        fh.write(b"new, partial")
        raise RuntimeError("interrupted")
    assert dest.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jar"]
    with atomic_writer(dest) as fh:
        fh.write(b"new")
    assert dest.read_bytes() == b"new"


def test_repository_and_cache_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KCLPY_LOCAL_MAVEN_REPO", raising=False)
    assert resolve_repository() == DEFAULT_REPOSITORY == "https://repo1.maven.org/maven2/"
    monkeypatch.setenv("KCLPY_LOCAL_MAVEN_REPO", "http://mirror.test/m2")
    assert resolve_repository() == "http://mirror.test/m2/"
    assert resolve_repository("http://flag.test/x/") == "http://flag.test/x/"
    monkeypatch.delenv("KCLPY_LOCAL_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "kclpy-local"
    monkeypatch.setenv("KCLPY_LOCAL_CACHE", str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("KCLPY_LOCAL_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "kclpy-local"


def test_repository_from_environment_is_used(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KCLPY_LOCAL_MAVEN_REPO", fake.stub.url)
    fake.run(repository=None)
    assert len(fake.stub.requests) == 3


def test_progress_off_a_terminal_is_one_line_per_download(fake: Fake) -> None:
    """stderr not a terminal (CI): the downloads, one line each, nothing for a warm cache."""
    quiet = io.StringIO()
    run_bootstrap(1, cache_dir=fake.cache, lock=fake.lock, repository=fake.stub.url,
                  progress=None, progress_stream=quiet)
    lines = quiet.getvalue().splitlines()
    assert lines[:3] == [
        "kclpy-local: [ 1/3] alpha-1.0.jar: downloading 0.0 MiB",
        "kclpy-local: [ 2/3] beta-1.0.jar: downloading 0.2 MiB",
        "kclpy-local: [ 3/3] gamma-1.0.jar: downloading 0.0 MiB",
    ]
    assert lines[3:] == [
        "kclpy-local: building the launcher (not built)",
        f"kclpy-local: launcher built: {fake.cache / 'kcl1' / 'launcher.jar'}",
    ]
    warm = io.StringIO()
    run_bootstrap(1, cache_dir=fake.cache, lock=fake.lock, repository=fake.stub.url,
                  progress=None, progress_stream=warm)
    assert warm.getvalue() == ""
    loud = io.StringIO()
    run_bootstrap(1, cache_dir=fake.cache, lock=fake.lock, repository=fake.stub.url,
                  progress=True, progress_stream=loud)
    assert "[ 1/3] alpha-1.0.jar: cached" in loud.getvalue()
    off = io.StringIO()
    fake.jar(0).unlink()
    run_bootstrap(1, cache_dir=fake.cache, lock=fake.lock, repository=fake.stub.url,
                  progress=False, progress_stream=off)
    assert off.getvalue() == ""


def test_progress_has_a_line_per_step_of_a_large_jar(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_bootstrap, "PROGRESS_STEP", 50_000)
    out = io.StringIO()
    run_bootstrap(1, cache_dir=fake.cache, lock=fake.lock, repository=fake.stub.url,
                  progress=None, progress_stream=out)
    steps = [line for line in out.getvalue().splitlines() if "beta-1.0.jar: " in line and " of " in line]
    # 200 000 bytes: a line at 50 000, 100 000 and 150 000 bytes or just past them.
    assert len(steps) == 3, out.getvalue()
    assert all(line.endswith(" of 0.2 MiB") for line in steps)


# --------------------------------------------------------------------------- the deadline


def test_a_trickling_download_ends_at_the_overall_deadline(fake: Fake) -> None:
    fake.stub.plan[fake.path(1)] = ["trickle"] * 10  # 200 KB at 20 KiB/s: 10 s each
    started = time.monotonic()
    with pytest.raises(ArtifactDownloadError) as info:
        fake.run(timeout=1.0)
    assert time.monotonic() - started < 5
    assert info.value.artifact == "org.example:beta:1.0"
    assert "the downloads took longer than 1 s in all ($KCLPY_LOCAL_DOWNLOAD_TIMEOUT" in str(info.value)
    assert fake.stub.requests.count(fake.path(1)) == 1
    assert not fake.jar(1).exists()
    assert list((fake.cache / "kcl1").rglob("*.part")) == []


def test_no_retry_is_started_past_the_deadline(fake: Fake) -> None:
    fake.stub.plan[fake.path(0)] = [503] * 10
    with pytest.raises(ArtifactDownloadError, match=r"HTTP 503 Service Unavailable \(no time left for attempt 2"):
        fake.run(timeout=0.2, retry=DownloadRetry(attempts=5, base_delay=0.5, timeout=0.4))
    assert fake.stub.requests.count(fake.path(0)) == 1
    assert fake.sleeps == []


@pytest.mark.parametrize("value", ["soon", "0", "-5", "nan", "inf"])
def test_a_bad_download_timeout_is_a_usage_error(
    fake: Fake, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("KCLPY_LOCAL_DOWNLOAD_TIMEOUT", value)
    with pytest.raises(UsageError, match=f"KCLPY_LOCAL_DOWNLOAD_TIMEOUT must be a number of seconds above 0, not '{value}'"):
        fake.run()
    assert fake.stub.requests == []


def test_the_download_timeout_comes_from_the_environment(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KCLPY_LOCAL_DOWNLOAD_TIMEOUT", "0.5")
    fake.stub.plan[fake.path(1)] = ["trickle"]
    with pytest.raises(ArtifactDownloadError, match="longer than 0.5 s in all"):
        fake.run()
    assert download_timeout() == 0.5
    monkeypatch.delenv("KCLPY_LOCAL_DOWNLOAD_TIMEOUT")
    assert download_timeout() == DEFAULT_DOWNLOAD_TIMEOUT == 900


# --------------------------------------------------------------------------- leftovers and the lock


def test_leftovers_of_a_killed_bootstrap_are_removed(fake: Fake) -> None:
    jars = fake.cache / "kcl1" / "jars"
    jars.mkdir(parents=True)
    part = jars / ".beta-1.0.jar.k2j4h1.part"
    part.write_bytes(b"half a jar")
    build = fake.cache / "kcl1" / ".build-x81ka"
    (build / "classes").mkdir(parents=True)
    launcher_part = fake.cache / "kcl1" / ".launcher.jar.u7e2.part"
    launcher_part.write_bytes(b"PK")
    out = io.StringIO()
    run_bootstrap(1, cache_dir=fake.cache, lock=fake.lock, repository=fake.stub.url,
                  progress=None, progress_stream=out)
    assert not part.exists() and not build.exists() and not launcher_part.exists()
    assert "kclpy-local: removed .beta-1.0.jar.k2j4h1.part, left by an interrupted bootstrap" in out.getvalue()
    assert sorted(p.name for p in jars.iterdir()) == [".verified.json", "alpha-1.0.jar", "beta-1.0.jar",
                                                     "gamma-1.0.jar"]


def test_a_second_bootstrap_waits_for_the_first_and_keeps_its_temporary_files(fake: Fake) -> None:
    layout = CacheLayout(fake.cache, 1)
    layout.jars_dir.mkdir(parents=True)
    live = layout.jars_dir / ".alpha-1.0.jar.live.part"
    done = threading.Event()
    errors: list[BaseException] = []

    def second() -> None:
        try:
            fake.run()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    with locked(layout):  # a bootstrap at work, writing its temporary file
        live.write_bytes(b"being written")
        thread = threading.Thread(target=second)
        thread.start()
        assert not done.wait(0.5)
        assert live.exists()
        assert fake.stub.requests == []
    thread.join(10)
    assert done.is_set() and errors == []
    assert not live.exists()  # its writer is gone now: a leftover
    assert len(fake.stub.requests) == 3


def _wait_for(predicate: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_during_a_download_removes_the_partial_file(
    stub: MavenStub, tmp_path: Path, signum: int
) -> None:
    """The real command, the real lockfile, a repository whose first jar never ends."""
    first = load_lock(1).artifacts[0]
    stub.plan[f"maven2/{first.repository_path}"] = [("stall", first.size)]
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("KCLPY_LOCAL_DOWNLOAD_TIMEOUT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kclpy_local", "bootstrap", "--cache-dir", str(cache),
         "--repository", stub.url],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        jars = cache / "kcl1" / "jars"
        _wait_for(lambda: any(jars.glob("*.part")) or proc.poll() is not None, 30, "the partial file")
        assert proc.poll() is None
        # The body has started arriving (the line of the first jar is written before it).
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "kclpy-local: interrupted" in err and "Traceback" not in err
    assert f"[ 1/{len(load_lock(1).artifacts)}] {first.filename}: downloading" in err
    assert list(jars.iterdir()) == []


def test_library_logging_is_silent() -> None:
    for name in ("kclpy_local._jvm.bootstrap", "kclpy_local._jvm.fetch", "kclpy_local._jvm.cache",
                 "kclpy_local._jvm.launcher", "kclpy_local._jvm.daemon"):
        assert logging.getLogger(name).handlers == []


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def cli_lock(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> Fake:
    monkeypatch.setattr(_bootstrap, "load_lock", lambda generation=1: fake.lock)
    return fake


def test_cli_bootstrap_json(cli_lock: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bootstrap", "--cache-dir", str(cli_lock.cache), "--repository", cli_lock.stub.url,
                 "--json", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    payload = json.loads(out)
    assert payload["generation"] == 1
    assert payload["main_class"] == "dev.kclpylocal.kcl1.KclLocalLauncher"
    assert len(payload["jars"]) == 3
    assert payload["summary"]["requests"] == 3
    assert payload["classpath"].split(os.pathsep)[0].endswith("launcher.jar")
    code = main(["bootstrap", "--cache-dir", str(cli_lock.cache), "--repository", cli_lock.stub.url])
    assert code == 0
    assert "3 already cached" in capsys.readouterr().out


def test_cli_bootstrap_failure_exit_code_names_artifact_and_url(
    cli_lock: Fake, capsys: pytest.CaptureFixture[str]
) -> None:
    (cli_lock.stub.root / cli_lock.path(2)).unlink()
    code = main(["bootstrap", "--cache-dir", str(cli_lock.cache), "--repository", cli_lock.stub.url])
    err = capsys.readouterr().err
    assert code == 5
    assert "org.example:gamma:1.0" in err
    assert f"{cli_lock.stub.url}/org/example/gamma/1.0/gamma-1.0.jar" in err


def test_cli_bootstrap_offline_and_from(cli_lock: Fake, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bootstrap", "--cache-dir", str(cli_lock.cache), "--offline"])
    assert code == 5
    assert "offline" in capsys.readouterr().err
    code = main(["bootstrap", "--cache-dir", str(cli_lock.cache), "--from",
                 str(cli_lock.stub.root / "maven2")])
    assert code == 0
    assert "3 copied" in capsys.readouterr().out
    assert cli_lock.stub.requests == []


def test_generation_3_installs_beside_generation_1(fake: Fake) -> None:
    """A second generation is its own cache directory and launcher; warm, it makes no request."""
    spec3 = load_lock(3).launcher
    lock3 = dataclasses.replace(fake.lock, generation=3, launcher=spec3)
    fake.run()

    def run3() -> _bootstrap.BootstrapResult:
        return run_bootstrap(3, cache_dir=fake.cache, lock=lock3, repository=fake.stub.url,
                             sleep=fake.sleeps.append, progress=False)

    cold = run3()
    assert cold.summary.requests == 3 and cold.summary.launcher_built
    inst = cold.installation
    assert inst.generation == 3
    assert inst.main_class == "dev.kclpylocal.kcl3.KclLocalLauncher"
    assert inst.launcher_jar == fake.cache / "kcl3" / "launcher.jar"
    assert all(path.parent == fake.cache / "kcl3" / "jars" for path in inst.jars)
    assert json.loads((fake.cache / "kcl3" / "launcher.json").read_text())["source"] == "_jvm/launchers/kcl3/KclLocalLauncher.java"
    warm = run3()
    assert warm.summary.requests == 0 and not warm.summary.launcher_built
    assert installation(3, fake.cache, lock=lock3) == inst
    # Generation 1 is untouched.
    assert installation(1, fake.cache, lock=fake.lock).main_class == "dev.kclpylocal.kcl1.KclLocalLauncher"
    assert len(fake.builds) == 2
