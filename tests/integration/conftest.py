"""Integration fixtures: one real KCL 1 installation per test session.

The jars are downloaded once per session into a temporary cache (or into
``$KCLPY_LOCAL_TEST_CACHE`` when set, to reuse one across sessions), or copied
from ``$KCLPY_LOCAL_TEST_JARS`` (a directory of jars) without network.
Tests that need it are skipped, with the reason, only when a JDK is missing or
the Maven repository cannot be reached at all.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kclpy_local._bootstrap import Installation, bootstrap
from kclpy_local._exceptions import ArtifactDownloadError, JavaNotFoundError


@pytest.fixture(scope="session")
def kcl_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    explicit = os.environ.get("KCLPY_LOCAL_TEST_CACHE")
    return Path(explicit) if explicit else tmp_path_factory.mktemp("kcl-cache")


@pytest.fixture(scope="session")
def kcl1(kcl_cache: Path) -> Installation:
    """KCL 1.15.3 jars and the compiled launcher, verified."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no JDK: `java` is not on PATH and JAVA_HOME is unset")
    try:
        return bootstrap(1, cache_dir=kcl_cache, from_dir=os.environ.get("KCLPY_LOCAL_TEST_JARS"))
    except JavaNotFoundError as exc:
        pytest.skip(f"no usable JDK to build the launcher: {exc}")
    except ArtifactDownloadError as exc:
        if "connection failed" in exc.reason:
            pytest.skip(f"Maven repository unreachable: {exc}")
        raise


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
