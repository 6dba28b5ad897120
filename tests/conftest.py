"""Shared fixtures: one embedded emulator (moto on 127.0.0.1, a free port) per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kclpy_local._emulator import EmbeddedEmulator

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
