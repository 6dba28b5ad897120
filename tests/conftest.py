"""Shared fixtures: one embedded emulator (moto on 127.0.0.1, a free port) per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kclpy_local._emulators.ministack import (
    MiniStack,
    MiniStackInstallation,
    MiniStackInstallError,
)
from kclpy_local._emulators.ministack import ensure_installed as ensure_ministack
from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._emulators.kinesis_mock import (
    KinesisMock,
    KinesisMockInstallation,
    KinesisMockInstallError,
    ensure_installed,
    find_installation,
    node_problem,
)

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmbeddedEmulator]:
    """moto's server for the whole session; state is shared between tests."""
    pytest.importorskip("moto.server", reason="needs pip install 'kclpy-local[emulator]'")
    with EmbeddedEmulator(port=0) as emu:
        yield emu


@pytest.fixture
def fresh_emulator(emulator: EmbeddedEmulator) -> EmbeddedEmulator:
    """The session's emulator, wiped (every stream, table and metric) before the test."""
    emulator.reset()
    return emulator


# -- kinesis-mock: the Kinesis engine that gets resharding right ---------------------


@pytest.fixture(scope="session")
def kinesis_mock_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where kinesis-mock is installed: ``$KCLPY_LOCAL_TEST_CACHE``, else a session dir."""
    explicit = os.environ.get("KCLPY_LOCAL_TEST_CACHE")
    return Path(explicit) if explicit else tmp_path_factory.mktemp("kinesis-mock-cache")


@pytest.fixture(scope="session")
def kinesis_mock_installation(kinesis_mock_cache: Path) -> KinesisMockInstallation:
    """The pinned kinesis-local, installed with npm on first use.

    Skipped, with the reason, without Node.js (node, or npm when it is not
    installed yet) or when the npm registry cannot be reached at all.
    """
    problem = node_problem(need_npm=find_installation(kinesis_mock_cache) is None)
    if problem is not None:
        pytest.skip(f"kinesis-mock needs Node.js: {problem}")
    try:
        return ensure_installed(kinesis_mock_cache)
    except KinesisMockInstallError as exc:
        if exc.registry_unreachable:
            pytest.skip(f"npm registry unreachable: {exc}")
        raise


@pytest.fixture(scope="session")
def kinesis_mock(kinesis_mock_installation: KinesisMockInstallation) -> Iterator[KinesisMock]:
    """kinesis-mock on a free loopback port for the whole session (Kinesis only).

    State is shared between tests: use :func:`fresh_kinesis_mock`, or unique
    stream names. DynamoDB and CloudWatch stay on moto (``emulator``).
    """
    with KinesisMock(installation=kinesis_mock_installation) as engine:
        yield engine


@pytest.fixture
def fresh_kinesis_mock(kinesis_mock: KinesisMock) -> KinesisMock:
    """The session's kinesis-mock with every stream deleted before the test."""
    kinesis_mock.reset()
    return kinesis_mock


# -- MiniStack: LocalStack's protocol on one port, without Docker ----------------------


@pytest.fixture(scope="session")
def ministack_installation() -> MiniStackInstallation:
    """The pinned MiniStack, installed once into the per-user cache (its own venv).

    Skipped, with the reason, only when the package index cannot be reached.
    """
    try:
        return ensure_ministack()
    except MiniStackInstallError as exc:
        if exc.registry_unreachable:
            pytest.skip(f"the package index is unreachable, so MiniStack cannot be installed: {exc}")
        raise


@pytest.fixture(scope="session")
def ministack(ministack_installation: MiniStackInstallation) -> Iterator[MiniStack]:
    """MiniStack on a free 127.0.0.1 port for the whole session (Kinesis, DynamoDB, CloudWatch)."""
    with MiniStack(installation=ministack_installation) as engine:
        yield engine


@pytest.fixture
def fresh_ministack(ministack: MiniStack) -> MiniStack:
    """The session's MiniStack, wiped (every stream, table and metric) before the test."""
    ministack.reset()
    return ministack
