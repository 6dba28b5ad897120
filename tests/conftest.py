"""Shared fixtures: one embedded emulator (moto on 127.0.0.1, a free port) per session,
and one cache for the whole suite.

The cache: the tests read and install the KCL jars, the launchers, kinesis-mock and
ferrokinesis in the per-user cache (``~/.cache/kclpy-local``, or
``$KCLPY_LOCAL_CACHE``), which ``scripts/test`` has bootstrapped for both KCL
generations (and where cargo exists, built ferrokinesis in) before pytest starts,
so nothing is downloaded or built a second time. ``$KCLPY_LOCAL_TEST_CACHE`` puts the
suite on another cache: it becomes ``$KCLPY_LOCAL_CACHE`` for the session, so the
fixtures, the key-table tests and every command the tests run agree on it.

In CI (``CI=true``) a skip is a failure unless its reason is a prerequisite the
suite cannot install itself (a Docker engine, a JDK, Node.js, cargo, the
platform): a skip for what ``scripts/test`` installs (Python packages, the KCL
jars from Maven Central, npm, PyPI and crates.io engines) means an outage or a
missing install step, and must not pass.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from kclpy_local import _env
from kclpy_local._emulators.ferrokinesis import (
    Ferrokinesis,
    FerrokinesisInstallation,
    cargo_problem,
)
from kclpy_local._emulators.ferrokinesis import ensure_installed as ensure_ferrokinesis
from kclpy_local._emulators.ferrokinesis import find_installation as find_ferrokinesis
from kclpy_local._emulators.kinesis_mock import (
    KinesisMock,
    KinesisMockInstallation,
    KinesisMockInstallError,
    ensure_installed,
    find_installation,
    node_problem,
)
from kclpy_local._emulators.ministack import (
    MiniStack,
    MiniStackInstallation,
    MiniStackInstallError,
)
from kclpy_local._emulators.ministack import ensure_installed as ensure_ministack
from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._env import default_cache_dir
from kclpy_local._exceptions import FerrokinesisInstallError

pytest_plugins = ["pytester"]

#: Reasons a skip may have in CI: what the machine has or has not, not what the
#: suite installs.
EXTERNAL_PREREQUISITES = re.compile(
    r"docker|testcontainers|no JDK|no usable JDK|no java|javap is not on PATH|Node\.js|node is not on PATH"
    r"|node and npm|npm is not on PATH|needs node|needs /proc|Linux's"
    r"|cargo is not on PATH|needs cargo",
    re.IGNORECASE,
)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _fail_installable_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not (report.skipped and _in_ci()):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    if EXTERNAL_PREREQUISITES.search(reason):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"skipped in CI, where the suite installs this prerequisite itself: {reason}"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.when in ("setup", "call") and not hasattr(report, "wasxfail"):
        _fail_installable_skip(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, None, None]:
    outcome = yield
    _fail_installable_skip(outcome.get_result())


def pytest_configure(config: pytest.Config) -> None:
    """``$KCLPY_LOCAL_TEST_CACHE``, when set, is the session's cache (see the docstring)."""
    explicit = _env.TEST_CACHE.get()
    if explicit:
        os.environ[_env.CACHE.name] = str(Path(explicit).expanduser().resolve())


def suite_cache() -> Path:
    """The one cache of the test session."""
    return default_cache_dir()


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmbeddedEmulator]:
    """moto's server for the whole session; state is shared between tests."""
    import moto.server  # noqa: F401 - the test extra installs it
    with EmbeddedEmulator(port=0) as emu:
        yield emu


@pytest.fixture
def fresh_emulator(emulator: EmbeddedEmulator) -> EmbeddedEmulator:
    """The session's emulator, wiped (every stream, table and metric) before the test."""
    emulator.reset()
    return emulator


# -- kinesis-mock: the Kinesis engine that gets resharding right ---------------------


@pytest.fixture(scope="session")
def kinesis_mock_cache() -> Path:
    """Where kinesis-mock is installed: the session's cache (installed there on first use)."""
    return suite_cache()


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


# -- ferrokinesis: the Kinesis engine whose records the daemon reads over CBOR ---------


@pytest.fixture(scope="session")
def ferrokinesis_installation() -> FerrokinesisInstallation:
    """ferrokinesis, built with cargo once per cache (``scripts/test`` builds it
    before the suite; this finds it there, or builds it on a cache without it).

    Skipped, with the reason, without cargo (when it is not built yet) or when
    crates.io cannot be reached at all.
    """
    cache = suite_cache()
    if find_ferrokinesis(cache) is None and (problem := cargo_problem()) is not None:
        pytest.skip(f"ferrokinesis needs cargo: {problem}")
    try:
        return ensure_ferrokinesis(cache)
    except FerrokinesisInstallError as exc:
        if exc.registry_unreachable:
            pytest.skip(f"crates.io unreachable: {exc}")
        raise


@pytest.fixture(scope="session")
def ferrokinesis(ferrokinesis_installation: FerrokinesisInstallation) -> Iterator[Ferrokinesis]:
    """ferrokinesis on a free loopback port for the whole session (Kinesis only).

    State is shared between tests: use :func:`fresh_ferrokinesis`, or unique stream
    names. DynamoDB and CloudWatch stay on moto (``emulator``).
    """
    with Ferrokinesis(installation=ferrokinesis_installation) as engine:
        yield engine


@pytest.fixture
def fresh_ferrokinesis(ferrokinesis: Ferrokinesis) -> Ferrokinesis:
    """The session's ferrokinesis with every stream deleted before the test."""
    ferrokinesis.reset()
    return ferrokinesis


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
