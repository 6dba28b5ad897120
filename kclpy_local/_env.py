"""The environment variables kclpy-local reads: one table, one home each.

Every ``KCLPY_LOCAL_*`` variable is declared here once, with what it means;
code reads a variable through its :class:`Variable` (``CACHE.get()``), and the
README's table of variables is checked against :data:`VARIABLES` by the test
suite. The per-user directories that depend on them are computed here too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a processor imports this module and never needs pathlib
    from pathlib import Path

__all__ = [
    "APP",
    "CACHE",
    "DOWNLOAD_TIMEOUT",
    "ENDPOINT",
    "JAVA",
    "JVM_OPTIONS",
    "LEDGER",
    "LIFELINE",
    "LOCALSTACK_IMAGE",
    "LOG_LEVEL",
    "MAVEN_REPO",
    "ON_ERROR",
    "PROGRESS",
    "STATE",
    "STREAM",
    "STRICT",
    "TEST_CACHE",
    "TEST_ENDPOINT",
    "VARIABLES",
    "Variable",
    "default_cache_dir",
    "default_state_dir",
]


@dataclass(frozen=True, slots=True)
class Variable:
    """One environment variable: its name and what it does (a README table row)."""

    name: str
    meaning: str

    def get(self, environ: Mapping[str, str] | None = None) -> str | None:
        """Its value, or ``None`` when it is unset or empty."""
        value = (os.environ if environ is None else environ).get(self.name)
        return value or None

    def row(self) -> str:
        """The README's Markdown table row."""
        return f"| `{self.name}` | {self.meaning} |"


CACHE = Variable(
    "KCLPY_LOCAL_CACHE", "jar, launcher and engine cache (default `~/.cache/kclpy-local`)"
)
MAVEN_REPO = Variable("KCLPY_LOCAL_MAVEN_REPO", "Maven repository for bootstrap")
DOWNLOAD_TIMEOUT = Variable(
    "KCLPY_LOCAL_DOWNLOAD_TIMEOUT",
    "seconds all of one bootstrap's downloads may take together (default 900)",
)
JAVA = Variable(
    "KCLPY_LOCAL_JAVA", "the `java` to run the daemon with (before `JAVA_HOME` and `PATH`)"
)
JVM_OPTIONS = Variable(
    "KCLPY_LOCAL_JVM_OPTIONS",
    "the daemon JVM's options, split as a shell does (default `-XX:TieredStopAtLevel=1`: "
    "the quick compiler only, sooner to the first record; set it empty for the JVM's own)",
)
ON_ERROR = Variable("KCLPY_LOCAL_ON_ERROR", "`exit` (default) or `continue`")
STRICT = Variable(
    "KCLPY_LOCAL_STRICT", "`1`: check every daemon message against the full JSON Schemas"
)
LOG_LEVEL = Variable(
    "KCLPY_LOCAL_LOG_LEVEL",
    "processor log level (default INFO; logs go to stderr with the level)",
)
ENDPOINT = Variable(
    "KCLPY_LOCAL_ENDPOINT",
    "the commands' default endpoint; substituted into `properties/local.properties` "
    "(`${KCLPY_LOCAL_ENDPOINT:-http://127.0.0.1:4566}`)",
)
STREAM = Variable(
    "KCLPY_LOCAL_STREAM",
    "the stream name in `properties/local.properties` (default `kclpy-local-demo`)",
)
APP = Variable(
    "KCLPY_LOCAL_APP",
    "the application name in `properties/local.properties` (default `kclpy-local-demo`)",
)
STATE = Variable(
    "KCLPY_LOCAL_STATE",
    "where `up` and `run` keep pid files, logs and effective properties "
    "(default `~/.local/state/kclpy-local`)",
)
PROGRESS = Variable(
    "KCLPY_LOCAL_PROGRESS",
    "set by `run` and the fixtures: the file processors append progress events to",
)
LIFELINE = Variable(
    "KCLPY_LOCAL_LIFELINE",
    "internal, set by kclpy-local in each child it starts (do not set it): the inherited "
    "pipe whose end stops the child, as SIGTERM does, when the process that started it is gone",
)
LEDGER = Variable(
    "KCLPY_LOCAL_LEDGER",
    "the ledger file of the example processors (default `ledger.jsonl` in the working "
    "directory); `run` sets it to `ledger.jsonl` in the run directory unless it is set",
)
TEST_ENDPOINT = Variable(
    "KCLPY_LOCAL_TEST_ENDPOINT", "the pytest fixtures' endpoint instead of the embedded emulator"
)
TEST_CACHE = Variable(
    "KCLPY_LOCAL_TEST_CACHE",
    "kclpy-local's own test suite: the cache its tests install into and read "
    "(default: the per-user cache)",
)
LOCALSTACK_ENDPOINT = Variable(
    "LOCALSTACK_ENDPOINT",
    "the endpoint of `properties/localstack.properties` (default `http://127.0.0.1:4566`): "
    "LocalStack, or MiniStack from `kclpy-local up --engine ministack`",
)
LOCALSTACK_IMAGE = Variable(
    "KCLPY_LOCAL_LOCALSTACK_IMAGE",
    "the LocalStack image `up --localstack` and the tests start (default a pinned tag)",
)

#: Every variable, in the README's order.
VARIABLES: tuple[Variable, ...] = (
    CACHE,
    MAVEN_REPO,
    DOWNLOAD_TIMEOUT,
    JAVA,
    JVM_OPTIONS,
    ON_ERROR,
    STRICT,
    LOG_LEVEL,
    ENDPOINT,
    STREAM,
    APP,
    STATE,
    PROGRESS,
    LIFELINE,
    LEDGER,
    TEST_ENDPOINT,
    TEST_CACHE,
    LOCALSTACK_ENDPOINT,
    LOCALSTACK_IMAGE,
)


def _xdg(variable: str, *fallback: str) -> Path:
    from pathlib import Path

    xdg = os.environ.get(variable)
    return (Path(xdg).expanduser() if xdg else Path.home().joinpath(*fallback)) / "kclpy-local"


def default_cache_dir() -> Path:
    """``$KCLPY_LOCAL_CACHE``, ``$XDG_CACHE_HOME/kclpy-local`` or ``~/.cache/kclpy-local``."""
    explicit = CACHE.get()
    if explicit:
        return _expanded(explicit)
    return _xdg("XDG_CACHE_HOME", ".cache")


def default_state_dir() -> Path:
    """``$KCLPY_LOCAL_STATE``, ``$XDG_STATE_HOME/kclpy-local`` or ``~/.local/state/kclpy-local``."""
    explicit = STATE.get()
    if explicit:
        return _expanded(explicit)
    return _xdg("XDG_STATE_HOME", ".local", "state")


def _expanded(path: str) -> Path:
    from pathlib import Path

    return Path(path).expanduser()
