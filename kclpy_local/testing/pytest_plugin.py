"""pytest fixtures for end-to-end tests of record processors (loaded automatically).

``kclpy_endpoint``
    A local AWS endpoint for the session: the embedded emulator (moto on a free
    loopback port), or the URL given with ``--kclpy-endpoint`` (LocalStack, say).
``kclpy_stream``
    A factory: ``kclpy_stream(shards=1, name=None)`` creates a fresh stream on
    that endpoint and returns a :class:`~kclpy_local.testing.LocalStream`.
``kclpy_processor``
    A factory: ``kclpy_processor("processors/mine.py", stream, env=..., overrides=...)``
    starts the real KCL daemon running the processor and returns a started
    :class:`~kclpy_local.testing.ProcessorRun`; it is stopped after the test.
``kclpy_installation``
    The KCL 1.x jars and launcher (``kclpy-local bootstrap``, done on first use).

A whole test::

    def test_orders_are_stored(kclpy_stream, kclpy_processor, tmp_path):
        stream = kclpy_stream(shards=2)
        run = kclpy_processor("processors/orders.py", stream, env={"OUT": str(tmp_path)})
        run.wait_processed(stream.put([b'{"id": 1}', b'{"id": 2}']))
        assert sorted(p.name for p in tmp_path.iterdir()) == ["1.json", "2.json"]

Tests are skipped, with the reason, only when a prerequisite is missing: no
JDK, or no moto for the embedded emulator (``pip install 'kclpy-local[emulator]'``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .. import _env

__all__ = [
    "kclpy_endpoint",
    "kclpy_installation",
    "kclpy_processor",
    "kclpy_stream",
    "pytest_addoption",
]

_ENDPOINT_OPTION = "--kclpy-endpoint"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kclpy-local")
    group.addoption(
        _ENDPOINT_OPTION,
        default=_env.TEST_ENDPOINT.get(),
        metavar="URL",
        help="run kclpy-local's fixtures against this endpoint instead of the embedded "
        "emulator (default: $KCLPY_LOCAL_TEST_ENDPOINT)",
    )


@pytest.fixture(scope="session")
def kclpy_endpoint(request: pytest.FixtureRequest) -> Iterator[str]:
    """The endpoint URL the other fixtures use."""
    explicit = request.config.getoption(_ENDPOINT_OPTION)
    if explicit:
        yield str(explicit)
        return
    from .._emulators.moto import EmbeddedEmulator, require_moto
    from .._exceptions import EmulatorError

    try:
        require_moto()
    except EmulatorError as exc:
        pytest.skip(f"no embedded emulator: {exc}")
    with EmbeddedEmulator(port=0) as emulator:
        yield emulator.endpoint_url


@pytest.fixture(scope="session")
def kclpy_installation() -> Any:
    """KCL 1.x installed and verified (downloads the pinned jars on first use)."""
    from .._exceptions import JavaNotFoundError
    from .._jvm.bootstrap import run_bootstrap

    try:
        return run_bootstrap(1, progress=False).installation
    except JavaNotFoundError as exc:
        pytest.skip(f"no usable JDK: {exc}")


@pytest.fixture
def kclpy_stream(kclpy_endpoint: str) -> Callable[..., Any]:
    """``kclpy_stream(shards=1, name=None) -> LocalStream``: a fresh stream."""
    from ._local import LocalStream

    def create(shards: int = 1, name: str | None = None) -> LocalStream:
        return LocalStream.create(kclpy_endpoint, name=name, shards=shards)

    return create


@pytest.fixture
def kclpy_processor(kclpy_installation: Any) -> Iterator[Callable[..., Any]]:
    """``kclpy_processor(path, stream, **options) -> ProcessorRun``, started; stopped afterwards."""
    from .._config.generations import DEFAULT_GENERATION
    from ._local import LocalStream, ProcessorRun

    runs: list[ProcessorRun] = []

    def start(
        processor: str | os.PathLike[str], stream: LocalStream, **options: Any
    ) -> ProcessorRun:
        if options.get("generation", DEFAULT_GENERATION) == DEFAULT_GENERATION:
            options.setdefault(
                "installation", kclpy_installation
            )  # the session's, of the default KCL
        # Another generation: the ProcessorRun finds (or is told) its installation.
        run = ProcessorRun(processor, stream, **options)
        runs.append(run)
        return run.start()

    yield start
    for run in reversed(runs):
        run.stop()
