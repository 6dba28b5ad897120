"""Integration fixtures: the real KCL 1 and KCL 3 installations of the test session.

They are the session's cache (tests/conftest.py: the per-user cache that
``scripts/test`` bootstrapped, or ``$KCLPY_LOCAL_TEST_CACHE``), checked and
completed by a bootstrap that finds everything in place and downloads nothing;
on a cache that lacks them the jars are downloaded once, or copied from
``$KCLPY_LOCAL_TEST_JARS`` (a directory of jars) without network.
Tests that need them are skipped, with the reason, only when a JDK is missing or
the Maven repository cannot be reached at all.

Local AWS targets for end-to-end tests (the ``target`` fixture): the session's
embedded emulator, wiped before each test; a moto started as a background
process by ``kclpy-local up`` and known only by its URL; LocalStack in Docker
(skipped, with the reason, without a Docker engine, or without
``LOCALSTACK_AUTH_TOKEN`` for an image that needs one).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kclpy_local import _env
from kclpy_local._emulators import localstack as _localstack
from kclpy_local._emulators.moto import DEFAULT_HOST, EmbeddedEmulator, wait_ready
from kclpy_local._env import default_cache_dir
from kclpy_local._exceptions import ArtifactDownloadError, EmulatorError, JavaNotFoundError
from kclpy_local._jvm.bootstrap import Installation, run_bootstrap


@pytest.fixture(scope="session")
def kcl_cache() -> Path:
    """The session's one cache (see tests/conftest.py)."""
    return default_cache_dir()


def _installed(generation: int, kcl_cache: Path) -> Installation:
    """KCL ``generation`` bootstrapped into the session's cache; skipped only when
    a JDK is missing or the Maven repository cannot be reached at all."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no JDK: `java` is not on PATH and JAVA_HOME is unset")
    try:
        return run_bootstrap(
            generation, cache_dir=kcl_cache, from_dir=os.environ.get("KCLPY_LOCAL_TEST_JARS")
        ).installation
    except JavaNotFoundError as exc:
        pytest.skip(f"no usable JDK to build the launcher: {exc}")
    except ArtifactDownloadError as exc:
        if "connection failed" in exc.reason:
            pytest.skip(f"Maven repository unreachable: {exc}")
        raise


@pytest.fixture(scope="session")
def kcl1(kcl_cache: Path) -> Installation:
    """KCL 1.15.3 jars and the compiled launcher, verified."""
    return _installed(1, kcl_cache)


@pytest.fixture(scope="session")
def java_bin() -> str:
    java = shutil.which("java")
    if java is None:
        home = os.environ.get("JAVA_HOME")
        if home and (Path(home) / "bin" / "java").exists():
            return str(Path(home) / "bin" / "java")
        pytest.skip("no JDK: `java` is not on PATH and JAVA_HOME is unset")
    return java


def closed_port() -> int:
    """A loopback port with nothing listening (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _unreachable_properties(directory: Path, **extra: str) -> Path:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    lines = {
        "applicationName": "kclpy-local-it",
        "streamName": "it",
        "executableName": f"{sys.executable} -c pass",
        "AWSCredentialsProvider": "SystemPropertiesCredentialsProvider",
        "regionName": "us-east-1",
        "kinesisEndpoint": endpoint,
        "dynamoDBEndpoint": endpoint,
        "cloudWatchEndpoint": endpoint,
        "isCBORProtocolDisabled": "true",
        "maxInitializationAttempts": "1",
        **extra,
    }
    path = directory / "unreachable.properties"
    path.write_text("".join(f"{k} = {v}\n" for k, v in lines.items()), encoding="ascii")
    return path


@pytest.fixture
def unreachable_properties(tmp_path: Path) -> Callable[..., Path]:
    """Write a properties file whose three endpoints refuse connections; keys override."""

    def make(**extra: str) -> Path:
        return _unreachable_properties(tmp_path, **extra)

    return make


# -- local AWS targets ------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
LOCAL_PROFILE = ROOT / "properties" / "local.properties"
LOCALSTACK_PROFILE = ROOT / "properties" / "localstack.properties"


def _cli() -> list[str]:
    """The kclpy-local command of this interpreter (its console script, else ``-m``)."""
    script = Path(sys.executable).with_name("kclpy-local")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "kclpy_local"]


@pytest.fixture(scope="session")
def cli_emulator_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server started in the background by ``kclpy-local up --port 0``; its URL.

    It is stopped with ``kclpy-local down`` at the end of the session. Nothing but
    the URL is known to the tests, so they cannot reset it: they use unique names.
    """
    import moto.server  # noqa: F401 - the test extra installs it
    state_dir = tmp_path_factory.mktemp("cli-emulator")
    up = subprocess.run(
        [*_cli(), "up", "--port", "0", "--state-dir", str(state_dir)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False,
    )
    try:
        if up.returncode != 0:
            pytest.fail(f"kclpy-local up exited with {up.returncode}:\n{up.stderr}")
        endpoint = up.stdout.strip()
        assert endpoint.startswith(f"http://{DEFAULT_HOST}:"), up.stdout
        yield endpoint
    finally:
        down = subprocess.run(
            [*_cli(), "down", "--state-dir", str(state_dir)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False,
        )
        assert down.returncode == 0, f"kclpy-local down exited with {down.returncode}: {down.stderr}"


def _localstack_container_class() -> type:
    try:
        from testcontainers.community.localstack import LocalStackContainer
    except ImportError:
        try:  # testcontainers before the community namespace
            from testcontainers.localstack import LocalStackContainer
        except ImportError:
            pytest.skip("needs testcontainers: pip install 'kclpy-local[localstack]'")
    return LocalStackContainer  # type: ignore[no-any-return]


def _container_logs(container: object, limit: int = 3000) -> str:
    try:
        out, err = container.get_logs()  # type: ignore[attr-defined]
    except Exception as exc:  # not created, or already gone
        return f"(no container logs: {exc})"
    return (out + err).decode(errors="replace")[-limit:]


@pytest.fixture(scope="session")
def localstack_endpoint() -> Iterator[str]:
    """LocalStack in Docker for the session (testcontainers); its endpoint URL.

    The image is the one docker-compose.yml pins (``$KCLPY_LOCAL_LOCALSTACK_IMAGE``
    overrides it), with Kinesis, DynamoDB and CloudWatch, port 4566 published on
    127.0.0.1 only and ``LOCALSTACK_AUTH_TOKEN`` passed in. Testcontainers' reaper
    container is not started (it would publish a port on every interface); the
    container is stopped when the session ends.
    """
    problem = _localstack.engine_problem()
    if problem is not None:
        pytest.skip(f"no Docker engine: {problem}")
    image = _localstack.configured_image()
    token = os.environ.get(_localstack.AUTH_TOKEN_ENV)
    if _localstack.image_needs_token(image) and not token:
        pytest.skip(
            f"LocalStack image {image} needs {_localstack.AUTH_TOKEN_ENV}, which is unset "
            f"(or set {_env.LOCALSTACK_IMAGE.name} to a community tag such as "
            "localstack/localstack:4.14.0)"
        )
    container_class = _localstack_container_class()
    from testcontainers.core.config import testcontainers_config

    try:
        container = container_class(image=image, region_name="us-east-1")
    except Exception as exc:  # docker-py finds no engine where the docker CLI did
        pytest.skip(f"no Docker engine: testcontainers cannot reach it: {exc} (see DOCKER_HOST)")
    ryuk_was_disabled = testcontainers_config.ryuk_disabled
    if "TESTCONTAINERS_RYUK_DISABLED" not in os.environ:
        testcontainers_config.ryuk_disabled = True
    container.with_services(*_localstack.SERVICES)
    container.with_env("KINESIS_LATENCY", "0")
    if token:
        container.with_env(_localstack.AUTH_TOKEN_ENV, token)
    # Published on loopback only, on a free port (docker-py reads (host_ip, None)).
    container.ports[str(_localstack.EDGE_PORT)] = (DEFAULT_HOST, None)
    try:
        try:
            container.start(timeout=300)
        except Exception as exc:
            pytest.fail(f"LocalStack ({image}) did not start: {exc}\n{_container_logs(container)}")
        port = container.get_exposed_port(_localstack.EDGE_PORT)
        endpoint = f"http://{DEFAULT_HOST}:{port}"
        try:
            wait_ready(endpoint, timeout=120, path=_localstack.HEALTH_PATH)
        except EmulatorError as exc:
            pytest.fail(f"LocalStack ({image}) does not answer: {exc}")
        yield endpoint
    finally:
        try:
            container.stop()
        finally:
            testcontainers_config.ryuk_disabled = ryuk_was_disabled


@dataclass(frozen=True)
class Target:
    """Where an end-to-end test's Kinesis, DynamoDB and CloudWatch live.

    ``profile`` is the properties file the daemon runs with (its endpoints come
    from ``KCLPY_LOCAL_ENDPOINT`` / ``LOCALSTACK_ENDPOINT``). When ``resets`` is
    true the target was wiped before the test; otherwise state from earlier
    tests is still there, and :meth:`name` makes names unique to the test.
    """

    kind: str
    endpoint_url: str
    profile: Path
    resets: bool
    run_id: str

    def name(self, base: str) -> str:
        """A stream, application or table name that no earlier test on this target used."""
        return base if self.resets else f"{base}-{self.run_id}"

    def daemon_env(self) -> dict[str, str]:
        """The variables the properties profiles read their endpoints from."""
        return {"KCLPY_LOCAL_ENDPOINT": self.endpoint_url, "LOCALSTACK_ENDPOINT": self.endpoint_url}


TARGETS = (
    "embedded",
    "endpoint",
    pytest.param("localstack", marks=pytest.mark.docker),
)


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> Target:
    """Each local AWS target in turn (see the module docstring)."""
    kind: str = request.param
    run_id = uuid.uuid4().hex[:10]
    if kind == "embedded":
        emulator: EmbeddedEmulator = request.getfixturevalue("fresh_emulator")
        return Target(kind, emulator.endpoint_url, LOCAL_PROFILE, True, run_id)
    if kind == "endpoint":
        endpoint: str = request.getfixturevalue("cli_emulator_endpoint")
        return Target(kind, endpoint, LOCAL_PROFILE, False, run_id)
    endpoint = request.getfixturevalue("localstack_endpoint")
    return Target(kind, endpoint, LOCALSTACK_PROFILE, False, run_id)


# -- targets whose Kinesis lives apart from DynamoDB and CloudWatch ---------------


@dataclass(frozen=True)
class EngineTarget:
    """A local AWS target with its Kinesis endpoint apart: ``kinesis_url`` serves
    Kinesis, ``aws_url`` DynamoDB and CloudWatch (the same URL on every target
    but ``kinesis-mock`` and ``ferrokinesis``, where Kinesis is that engine and
    the rest is moto).

    ``cbor`` is whether the daemon's Kinesis client speaks CBOR
    (``isCBORProtocolDisabled = false``); :meth:`overrides` are the properties
    that put the daemon on this target on top of ``profile``.
    """

    kind: str
    kinesis_url: str
    aws_url: str
    profile: Path
    resets: bool
    run_id: str
    cbor: bool
    #: The engine's request counts by wire format, where it keeps them (ferrokinesis).
    wire_counts: Callable[[], dict[str, int]] | None = None

    def name(self, base: str) -> str:
        """A stream, application or table name that no earlier test on this target used."""
        return base if self.resets else f"{base}-{self.run_id}"

    def daemon_env(self) -> dict[str, str]:
        """The variables the properties profiles read their endpoints from."""
        return {"KCLPY_LOCAL_ENDPOINT": self.aws_url, "LOCALSTACK_ENDPOINT": self.aws_url}

    def overrides(self) -> dict[str, str]:
        """Properties on top of ``profile``: the Kinesis endpoint and the CBOR switch."""
        extra = {"isCBORProtocolDisabled": "false" if self.cbor else "true"}
        if self.kinesis_url != self.aws_url:
            extra["kinesisEndpoint"] = self.kinesis_url
        return extra


ENGINE_TARGETS = (
    "embedded",
    "endpoint",
    "kinesis-mock",
    "ferrokinesis",
    "ferrokinesis-json",
    pytest.param("localstack", marks=pytest.mark.docker),
)


@pytest.fixture(params=ENGINE_TARGETS)
def engine_target(request: pytest.FixtureRequest) -> EngineTarget:
    """Each local AWS target in turn, kinesis-mock and ferrokinesis included (see
    :class:`EngineTarget`).

    ``kinesis-mock``: the session's kinesis-mock with every stream deleted and the
    session's moto wiped, before the test; the daemon reads Kinesis over JSON
    (kinesis-mock's CBOR records are not readable by the Java SDK, see
    ``kclpy_local._emulators.kinesis_mock.CBOR_RECORDS_WORK``). ``ferrokinesis``:
    the same with the session's ferrokinesis, read over CBOR (the SDK's default);
    ``ferrokinesis-json``: the same ferrokinesis read over JSON
    (``isCBORProtocolDisabled = true``), the daemon's other wire format.
    """
    from kclpy_local._emulators.engines import cbor_disabled

    kind: str = request.param
    run_id = uuid.uuid4().hex[:10]
    if kind in ("kinesis-mock", "ferrokinesis", "ferrokinesis-json"):
        engine_name = kind.removesuffix("-json")
        engine = request.getfixturevalue(f"fresh_{engine_name.replace('-', '_')}")
        moto: EmbeddedEmulator = request.getfixturevalue("fresh_emulator")
        cbor = engine_name == kind and not cbor_disabled(engine_name)
        return EngineTarget(kind, engine.endpoint_url, moto.endpoint_url, LOCAL_PROFILE, True,
                            run_id, cbor, getattr(engine, "wire_counts", None))
    if kind == "embedded":
        moto = request.getfixturevalue("fresh_emulator")
        return EngineTarget(kind, moto.endpoint_url, moto.endpoint_url, LOCAL_PROFILE, True,
                            run_id, False)
    if kind == "endpoint":
        endpoint: str = request.getfixturevalue("cli_emulator_endpoint")
        return EngineTarget(kind, endpoint, endpoint, LOCAL_PROFILE, False, run_id, False)
    endpoint = request.getfixturevalue("localstack_endpoint")
    # The LocalStack profile's own setting: Kinesis over JSON (LocalStack's Kinesis is
    # kinesis-mock, whose CBOR records the Java SDK cannot read).
    return EngineTarget(kind, endpoint, endpoint, LOCALSTACK_PROFILE, False, run_id, False)


@pytest.fixture(scope="session")
def kcl3(kcl_cache: Path) -> Installation:
    """KCL 3.x jars (amazon-kinesis-client 3.5.1 and its multilang daemon) and the 3.x launcher, verified."""
    return _installed(3, kcl_cache)
