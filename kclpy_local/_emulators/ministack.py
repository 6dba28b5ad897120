"""MiniStack: a LocalStack-compatible engine that runs without Docker (PyPI ``ministack``, MIT).

One loopback port serves Kinesis, DynamoDB and CloudWatch, like LocalStack's
edge port, so ``properties/localstack.properties`` runs against it unchanged
(``LOCALSTACK_ENDPOINT`` names its URL). MiniStack pins its own botocore, so it
gets a virtual environment of its own in the per-user cache
(:func:`kclpy_local._env.default_cache_dir`), never the project's::

    <cache>/ministack/1.5.33/venv/bin/python -m ministack

installed on first use with ``python -m venv`` and pip into a temporary
directory that is renamed into place once the wheel's pinned sha256 and the
installed version check out, one installer at a time, under a lock
(:func:`kclpy_local._emulators._install.install_once`). :class:`MiniStack` runs it::

    with MiniStack(port=0) as engine:
        kinesis = boto3.client("kinesis", endpoint_url=engine.endpoint_url, ...)
        engine.reset()

It binds every interface unless told otherwise: it is started with
``BIND_HOST=127.0.0.1``, only the three services (``SERVICES``), no IoT MQTT or
SFTP listener and no persistence, and once it answers its listening sockets are
read from ``/proc``: one beyond loopback stops it with an error.

CBOR: MiniStack's Kinesis reads and writes CBOR only when the optional
``cbor2`` package is installed; the pinned installation has no ``cbor2``, so a
daemon reads it over JSON (``isCBORProtocolDisabled = true``, the LocalStack
profile's default): with CBOR on, every Kinesis call answers
``SerializationException`` (:data:`CBOR_WORKS`).

Errors are :class:`~kclpy_local._exceptions.EmulatorError` (exit code 8):
:class:`MiniStackInstallError` when the install fails (``registry_unreachable``
when PyPI cannot be reached) and
:class:`~kclpy_local._emulators.moto.EmulatorStartError` (with the engine's
last output lines) when it does not start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Unpack

from .._exceptions import EmulatorError
from .._process import Launch
from ._engine import (
    DEFAULT_HOST,
    Command,
    InstalledEngine,
    InstalledOptions,
    http_problem,
    post,
    routine_kill,
    runs,
)
from ._install import Installation, Installer, InstallError

__all__ = [
    "CBOR_WORKS",
    "ENVIRONMENT",
    "FANOUT_WORKS",
    "PACKAGE",
    "READY_PATH",
    "RESET_PATH",
    "VERSION",
    "WHEEL",
    "WHEEL_SHA256",
    "MiniStack",
    "MiniStackInstallError",
    "MiniStackInstallation",
    "ensure_installed",
    "find_installation",
    "install_root",
    "is_ministack_process",
]

logger = logging.getLogger(__name__)

PACKAGE = "ministack"
VERSION = "1.5.33"
WHEEL = f"{PACKAGE}-{VERSION}-py3-none-any.whl"
#: The wheel's sha256, as PyPI serves it.
WHEEL_SHA256 = "36f9158cbe7eb7a3f910ccf1c052c98204511164249b783682f7a96ef56b0bba"
#: Whether a daemon can read Kinesis from the pinned installation over CBOR. It
#: cannot: MiniStack decodes CBOR with the optional ``cbor2`` package, which is
#: not installed, and answers every CBOR request with ``SerializationException``.
CBOR_WORKS = False
#: Whether a KCL 3.x worker can read it by enhanced fan-out. It can: MiniStack
#: serves RegisterStreamConsumer and SubscribeToShard, over HTTP/1.1 and HTTP/2
#: without TLS (h2c, prior knowledge) on its one port.
FANOUT_WORKS = True
READY_PATH = "/_ministack/ready"
RESET_PATH = "/_ministack/reset"
#: What MiniStack is started with, on top of this process's environment.
ENVIRONMENT = {
    "BIND_HOST": DEFAULT_HOST,
    "SERVICES": "kinesis,dynamodb,cloudwatch",
    "IOT_MTLS_ENABLED": "0",  # else an MQTT listener on 0.0.0.0:8883 (with cryptography)
    "SFTP_ENABLED": "0",
    "PERSIST_STATE": "0",
    "LOCALSTACK_PERSISTENCE": "0",
    "PYTHONUNBUFFERED": "1",
}
#: Variables of this process that must not reach MiniStack's interpreter (or pip).
_FOREIGN_PYTHON = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
_DROPPED = (*_FOREIGN_PYTHON, "EDGE_PORT", "GATEWAY_PORT")

TERM_GRACE = 2.0
_MARKER = "installed.json"
# pip's words for a registry it cannot reach.
_NETWORK_WORDS = (
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "Connection refused",
    "ConnectTimeoutError",
    "Read timed out",
    "No matching distribution found",
    "Could not find a version that satisfies",
)
_STOP = routine_kill("MiniStack", TERM_GRACE, __name__)


class MiniStackInstallError(InstallError):
    """Installing the pinned MiniStack failed; ``registry_unreachable`` tells a
    network failure from the rest."""


# -- the installation -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MiniStackInstallation(Installation):
    """An installed, checked MiniStack in a virtual environment of its own."""

    directory = PACKAGE
    version = VERSION
    label = f"{PACKAGE} {VERSION}"
    error = MiniStackInstallError

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def python(self) -> Path:
        """The environment's interpreter (the only entry point used: the venv was
        built elsewhere and renamed, so its scripts' shebangs are stale)."""
        return self.venv / "bin" / "python"

    @classmethod
    def defect(cls, root: Path) -> str | None:
        """``None`` if ``root`` holds the pinned MiniStack; else what is wrong with it."""
        inst = cls(root)
        try:
            marker = json.loads((root / _MARKER).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return f"{PACKAGE} is not installed"
        except (OSError, ValueError) as exc:
            return f"unreadable {_MARKER}: {exc}"
        if not isinstance(marker, dict) or marker.get("version") != VERSION:
            return f"{_MARKER} names another version than {VERSION}"
        if marker.get("sha256") != WHEEL_SHA256:
            return f"the wheel's sha256 is {marker.get('sha256')!r}, expected the pinned one"
        if not inst.python.exists():  # a dangling link when its base Python went away
            return f"{inst.python} is missing"
        found = list(inst.venv.glob(f"lib/python*/site-packages/{PACKAGE}-{VERSION}.dist-info"))
        if not found:
            return f"{PACKAGE} {VERSION} is not in the virtual environment"
        return None


install_root = MiniStackInstallation.install_root
find_installation = MiniStackInstallation.find
_PIP = Installer(
    MiniStackInstallation,
    "the package index",
    _NETWORK_WORDS,
    "check the network and pip's index setting (pip config list)",
)


def ensure_installed(
    cache_dir: Path | None = None,
    *,
    timeout: float = 600.0,
    env: Mapping[str, str] | None = None,
    python: str = sys.executable,
) -> MiniStackInstallation:
    """The pinned MiniStack, installed on first use.

    ``python -m venv`` makes the environment, pip downloads the pinned wheel,
    whose sha256 is checked, and installs it with its dependencies from the
    package index pip is configured with (``env`` replaces the environment pip
    runs with: ``PIP_INDEX_URL`` and the like).
    """
    return MiniStackInstallation.install(cache_dir, lambda tmp: _build(tmp, python, timeout, env))


def _build(tmp: Path, python: str, timeout: float, env: Mapping[str, str] | None) -> None:
    deadline = time.monotonic() + timeout
    inst = MiniStackInstallation(tmp)
    _run([python, "-m", "venv", str(inst.venv)], deadline, env, "python -m venv")
    downloads = tmp / "download"
    pip = [str(inst.python), "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run(
        [*pip, "download", "--no-deps", "--quiet", "-d", str(downloads), f"{PACKAGE}=={VERSION}"],
        deadline,
        env,
        "pip download",
    )
    wheel = downloads / WHEEL
    if not wheel.is_file():
        names = sorted(p.name for p in downloads.iterdir()) if downloads.is_dir() else []
        raise MiniStackInstallError(f"pip downloaded {names or 'nothing'}, not {WHEEL}")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise MiniStackInstallError(
            f"{WHEEL} has sha256 {digest}, not the pinned {WHEEL_SHA256}; refusing to install it"
        )
    _run([*pip, "install", "--quiet", str(wheel)], deadline, env, "pip install")
    wheel.unlink()
    downloads.rmdir()
    marker = {"package": PACKAGE, "version": VERSION, "sha256": digest, "python": python}
    (tmp / _MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def _run(argv: list[str], deadline: float, env: Mapping[str, str] | None, what: str) -> None:
    environ = {
        k: v for k, v in (os.environ if env is None else env).items() if k not in _FOREIGN_PYTHON
    }
    launch = Launch(argv, env=environ, new_session=False)
    _PIP.run(launch, deadline - time.monotonic(), what=what)


def is_ministack_process(pid: int) -> bool | None:
    """Whether ``pid`` runs MiniStack; ``None`` when this cannot be told (no /proc)."""
    return runs(pid, b"-m\x00ministack\x00")


# -- the engine -----------------------------------------------------------------------


class MiniStack(InstalledEngine[MiniStackInstallation]):
    """MiniStack on one loopback port, in a child process of its own process group.

    ``port=0`` picks a free port, retrying when another process takes it first.
    The pinned version is installed into ``cache_dir`` (default: the per-user
    cache) on first use unless ``installation`` is given. ``env`` adds settings
    (``AUTH=true`` makes it check credentials, ``LOG_LEVEL``...). Output and
    ``detach``: as for every :class:`EngineProcess`.
    """

    name = "ministack"
    label = "MiniStack"
    version = VERSION
    stop_policy = _STOP
    port_taken = ("already in use",)
    check_sockets = True  # BIND_HOST keeps it on loopback, and this checks it does
    default_startup_timeout = 60.0

    def __init__(
        self,
        port: int = 0,
        host: str = DEFAULT_HOST,
        *,
        env: Mapping[str, str] | None = None,
        **options: Unpack[InstalledOptions[MiniStackInstallation]],
    ) -> None:
        super().__init__((port,), host, **options)
        self._env = dict(env or {})
        if "BIND_HOST" in self._env:
            raise EmulatorError("MiniStack binds 127.0.0.1 only; BIND_HOST cannot be set")

    def environment(self, port: int) -> dict[str, str]:
        """This process's environment, as MiniStack is started with it."""
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
        env.update(ENVIRONMENT)
        env.update(self._env)
        env["GATEWAY_PORT"] = str(port)
        return env

    def install(self, cache_dir: Path | None) -> MiniStackInstallation:
        return ensure_installed(cache_dir)

    def command(self, ports: tuple[int, ...]) -> Command:
        assert self.installation is not None
        argv = [str(self.installation.python), "-m", PACKAGE]
        return Command(argv, self.environment(ports[0]), self.installation.root)

    def ready_problem(self, timeout: float) -> str | None:
        """``None`` once ``GET /_ministack/ready`` answers 200; else why not."""
        return http_problem(self.endpoint_url + READY_PATH, timeout)

    def reset(self, timeout: float = 30.0) -> None:
        """Wipe every stream, table and metric (``POST /_ministack/reset``)."""
        post(
            self.endpoint_url + RESET_PATH,
            timeout,
            failure=f"cannot reset MiniStack at {self.endpoint_url}",
        )
