"""ferrokinesis: a Kinesis engine in Rust (crates.io ``ferrokinesis``, MIT) that reads CBOR.

Unlike every other engine here the Java SDK reads its records over CBOR, the
SDK's default: a daemon can run against it with ``isCBORProtocolDisabled =
false`` (:data:`CBOR_WORKS`). DynamoDB and CloudWatch stay on moto. It splits and
merges shards, and a closed parent returns its records, then no next iterator.
The library's last GetRecords answer there carries no ``ChildShards``, which KCL
1.15 requires (it refuses the answer, "GetRecordsResult is not valid", and retries
it for ever): the program of this package adds them (:data:`CHILD_SHARDS`), so a
worker gets past a split or merged shard as on kinesis-mock.

ferrokinesis's own binary listens on every interface with no option to change
that, so it is not used. The engine is a small program of this package
(``rust/ferrokinesis/``, package data: ``Cargo.toml``, ``Cargo.lock``,
``src/main.rs``) that serves the ferrokinesis library's router on 127.0.0.1
only, makes streams ACTIVE at once (and splits and merges take effect at once),
and stops on SIGTERM and at the end of its lifeline
(:data:`~kclpy_local._process.LIFELINE_VARIABLE`). It is built on first use
into the per-user cache (:func:`kclpy_local._env.default_cache_dir`)::

    <cache>/ferrokinesis/0.7.0-<digest>/bin/kclpy-local-ferrokinesis

with ``cargo install --locked`` (crates.io only, ``$CARGO_HOME`` as usual) into
a temporary directory that is renamed into place once the binary is there
(:func:`~kclpy_local._emulators._install.install_once`: one build at a time,
under a lock). ``<digest>`` is the sha256 of the program's sources, so a changed
program is built again beside the old one. :class:`Ferrokinesis` runs it::

    with Ferrokinesis(port=0) as engine:
        kinesis = boto3.client("kinesis", endpoint_url=engine.endpoint_url, ...)

:meth:`Ferrokinesis.wire_counts` tells how many Kinesis requests it served over
CBOR and over JSON (the program counts them), which shows the wire a client spoke.

Once it answers, its listening sockets are read from ``/proc``: one beyond
loopback stops it with an error.

Errors are :class:`~kclpy_local._exceptions.EmulatorError` (exit code 8):
:class:`~kclpy_local._exceptions.CargoNotFoundError` when it must be built and
cargo is not on PATH, :class:`~kclpy_local._exceptions.FerrokinesisInstallError`
when the build fails (``registry_unreachable`` when crates.io cannot be
reached), and :class:`~kclpy_local._emulators._engine.EmulatorStartError` (with
its last output lines) when it does not start.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Unpack

from .. import _process
from .._exceptions import (
    CargoNotFoundError,
    EmulatorError,
    FerrokinesisInstallError,
    ProcessError,
)
from .._process import Launch, StopPolicy
from ._engine import (
    DEFAULT_HOST,
    OPENER,
    Command,
    InstalledEngine,
    InstalledOptions,
    http_problem,
    runs,
)
from ._install import Installation, Installer

__all__ = [
    "BINARY",
    "CBOR_WORKS",
    "CHILD_SHARDS",
    "CRATE",
    "PACKAGE",
    "READY_PATH",
    "SOURCES",
    "SOURCE_DIGEST",
    "TERM_GRACE",
    "VERSION",
    "WIRE_PATH",
    "Ferrokinesis",
    "FerrokinesisInstallation",
    "cargo_problem",
    "crate_dir",
    "ensure_installed",
    "find_installation",
    "install_root",
    "is_ferrokinesis_process",
    "source_digest",
    "stop_group",
]

logger = logging.getLogger(__name__)

#: The crates.io package the engine is built from, and its pinned version
#: (``rust/ferrokinesis/Cargo.toml`` pins it with ``=``, ``Cargo.lock`` the rest).
PACKAGE = "ferrokinesis"
VERSION = "0.7.0"
#: The program of this package that serves it (the crate's name and its binary's).
CRATE = BINARY = "kclpy-local-ferrokinesis"
#: The files the program is built from, relative to :func:`crate_dir`.
SOURCES = ("Cargo.toml", "Cargo.lock", "src/main.rs")
#: Whether the Java SDK (v1 and v2) reads its records over CBOR: it does
#: (GetRecords answers carry each record's Data as a CBOR byte string).
CBOR_WORKS = True
#: Whether the GetRecords answer at a closed shard's end names its children
#: (``ChildShards``), which KCL 1.15 and 3.x require there: the library's 0.7.0
#: does not, the program of this package adds them.
CHILD_SHARDS = True
READY_PATH = "/_health/ready"
#: Where the program of this package answers its request counts by wire format.
WIRE_PATH = "/_kclpy-local/wire"
#: Seconds between SIGTERM and SIGKILL: it gives open connections one second.
TERM_GRACE = 3.0
#: The build runs for minutes on two cores; this bounds it.
BUILD_TIMEOUT = 1800.0
#: A stream, split or merge is done after this long (the program's default: 0).
OPERATION_MILLIS = 0
#: Open shards an account may have (ferrokinesis's own default is 10).
SHARD_LIMIT = 50

_NETWORK_WORDS = (
    "failed to download",
    "failed to query replaced source registry",
    "failed to fetch",
    "failed to get `",
    "Couldn't resolve host",
    "Could not resolve host",
    "spurious network error",
    "network failure",
    "[6] Could",
    "[7] Could",
    "[28] ",
)
_MISSING_WORDS = ("failed to select a version", "no matching package named")
_STOP = StopPolicy(
    max_grace=TERM_GRACE,
    kill_note="ferrokinesis pid %(pid)d still runs %(grace).1fs after SIGTERM; killing it",
    logger_name=__name__,
)


def crate_dir() -> Path:
    """The program's sources (package data)."""
    return Path(__file__).resolve().parent / "rust" / PACKAGE


def source_digest(directory: Path | None = None) -> str:
    """The sha256 of the program's sources (:data:`SOURCES`, names and contents)."""
    root = directory if directory is not None else crate_dir()
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update(name.encode() + b"\0")
        digest.update((root / name).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


#: :func:`source_digest` of the sources of this package, as the cache names it.
SOURCE_DIGEST = source_digest()


def find_cargo(env: Mapping[str, str] | None = None) -> str | None:
    """cargo on ``PATH``, else where rustup puts it (``$CARGO_HOME/bin``, by default
    ``~/.cargo/bin``: a shell that has not read rustup's profile lacks it on PATH);
    ``None`` when neither has it."""
    env = os.environ if env is None else env
    found = shutil.which("cargo", path=env.get("PATH"))
    if found is not None:
        return found
    home = env.get("CARGO_HOME") or str(Path.home() / ".cargo")
    return shutil.which("cargo", path=str(Path(home) / "bin"))


def cargo_problem() -> str | None:
    """Why the engine cannot be built here (``None``: cargo was found)."""
    if find_cargo() is None:
        return "cargo is not on PATH nor in $CARGO_HOME/bin (needs cargo: Rust's build tool)"
    return None


# -- the installation -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FerrokinesisInstallation(Installation):
    """A built engine: its binary and the sources it was built from."""

    directory = PACKAGE
    version = f"{VERSION}-{SOURCE_DIGEST[:16]}"
    label = f"{PACKAGE} {VERSION}"
    error = FerrokinesisInstallError

    #: Inside an installation: the sources it was built from, and their digest.
    SOURCE_DIR = "source"
    STAMP = "source.sha256"

    @property
    def binary(self) -> Path:
        return self.root / "bin" / BINARY

    @classmethod
    def defect(cls, root: Path) -> str | None:
        """``None`` if ``root`` holds the program built from this package's sources."""
        inst = cls(root)
        try:
            stamp = (root / cls.STAMP).read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return f"{PACKAGE} is not built"
        except (OSError, ValueError) as exc:
            return f"unreadable {cls.STAMP}: {exc}"
        if stamp != SOURCE_DIGEST:
            return f"built from other sources ({stamp[:16]}), expected {SOURCE_DIGEST[:16]}"
        if not inst.binary.is_file() or not os.access(inst.binary, os.X_OK):
            return f"{BINARY} is missing or not executable"
        return None


install_root = FerrokinesisInstallation.install_root
find_installation = FerrokinesisInstallation.find
_CARGO = Installer(
    FerrokinesisInstallation,
    "crates.io",
    _NETWORK_WORDS,
    "check the network and cargo's registry settings ($CARGO_HOME/config.toml)",
    missing_words=_MISSING_WORDS,
    missing_hint="check cargo's registry settings ($CARGO_HOME/config.toml)",
)


def ensure_installed(
    cache_dir: Path | None = None,
    *,
    timeout: float = BUILD_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> FerrokinesisInstallation:
    """The engine, built with cargo on first use.

    The sources are copied into a temporary directory beside the final one and
    ``cargo install --locked`` builds there (its target directory too, removed
    once the binary is in place); the directory is renamed into place once the
    binary and the sources' digest are there (see
    :func:`~kclpy_local._emulators._install.install_once`). ``env`` replaces the
    environment cargo runs with. :class:`CargoNotFoundError` when it must be
    built and cargo is not on PATH.
    """
    found = find_installation(cache_dir)
    if found is not None:
        return found
    cargo = find_cargo(env)
    if cargo is None:
        raise CargoNotFoundError()
    return FerrokinesisInstallation.install(
        cache_dir, lambda tmp: _cargo_install(cargo, tmp, timeout, env)
    )


def _cargo_install(cargo: str, prefix: Path, timeout: float, env: Mapping[str, str] | None) -> None:
    source = prefix / FerrokinesisInstallation.SOURCE_DIR
    for name in SOURCES:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(crate_dir() / name, source / name)
    target = prefix / ".target"
    argv = [
        cargo,
        "install",
        "--locked",
        "--no-track",
        "--path",
        str(source),
        "--root",
        str(prefix),
        "--target-dir",
        str(target),
        "--bin",
        BINARY,
    ]
    environ = dict(os.environ if env is None else env)
    environ.update(CARGO_TERM_COLOR="never", CARGO_TERM_PROGRESS_WHEN="never")
    environ.pop("CARGO_TARGET_DIR", None)
    launch = Launch(argv, env=environ, cwd=prefix, new_session=False)
    try:
        _CARGO.run(launch, timeout, what="cargo install")
    finally:
        shutil.rmtree(target, ignore_errors=True)
    (prefix / FerrokinesisInstallation.STAMP).write_text(
        source_digest(source) + "\n", encoding="ascii"
    )


def is_ferrokinesis_process(pid: int) -> bool | None:
    """Whether ``pid`` runs the engine; ``None`` when this cannot be told (no /proc)."""
    return runs(pid, f"/{BINARY}\x00".encode())


def stop_group(pid: int, timeout: float = 5.0) -> bool:
    """Stop the process group that ``pid`` leads (SIGTERM, then SIGKILL after
    :data:`TERM_GRACE` seconds); True if it ran."""
    try:
        return _process.stop_pid(pid, timeout, _STOP, group=True)
    except ProcessError as exc:
        raise EmulatorError(str(exc)) from exc


# -- the engine -----------------------------------------------------------------------


class Ferrokinesis(InstalledEngine[FerrokinesisInstallation]):
    """ferrokinesis on a loopback port, in a child process of its own process group.

    ``port=0`` picks a free port (retrying when another process takes it first).
    The engine is built into ``cache_dir`` (default: the per-user cache) on first
    use unless ``installation`` is given. ``operation_millis`` is how long stream
    creation, deletion, splits, merges etc. stay in progress (default 0: none);
    ``shard_limit`` how many open shards the account may have. Output and
    ``detach``: as for every :class:`EngineProcess`.
    """

    name = "ferrokinesis"
    label = "ferrokinesis"
    version = VERSION
    stop_policy = _STOP
    port_taken = ("address already in use", "addrinuse")
    check_sockets = True  # it binds 127.0.0.1 itself, and this checks it does
    ready_interval = 0.02

    def __init__(
        self,
        port: int = 0,
        host: str = DEFAULT_HOST,
        *,
        operation_millis: int = OPERATION_MILLIS,
        shard_limit: int = SHARD_LIMIT,
        region: str = "us-east-1",
        **options: Unpack[InstalledOptions[FerrokinesisInstallation]],
    ) -> None:
        super().__init__((port,), host, **options)
        if operation_millis < 0 or shard_limit < 1:
            raise EmulatorError("operation_millis must be 0 or more, shard_limit 1 or more")
        self._operation_millis = operation_millis
        self._shard_limit = shard_limit
        self._region = region

    @property
    def tls_port(self) -> int:
        """It serves plain HTTP only: 0 (kinesis-mock opens a TLS port too)."""
        return 0

    def argv(self, port: int) -> list[str]:
        """The command that runs the engine on ``port`` (needs :attr:`installation`)."""
        if self.installation is None:
            raise EmulatorError("ferrokinesis is not built yet")
        return [
            str(self.installation.binary),
            "--port",
            str(port),
            "--region",
            self._region,
            "--shard-limit",
            str(self._shard_limit),
            "--operation-ms",
            str(self._operation_millis),
        ]

    def install(self, cache_dir: Path | None) -> FerrokinesisInstallation:
        return ensure_installed(cache_dir)

    def command(self, ports: tuple[int, ...]) -> Command:
        return Command(self.argv(ports[0]), dict(os.environ))

    def ready_problem(self, timeout: float) -> str | None:
        """``None`` once its readiness probe answers 200."""
        return http_problem(self.endpoint_url + READY_PATH, timeout)

    def wire_counts(self, timeout: float = 5.0) -> dict[str, int]:
        """Kinesis API requests served since the start, by wire: ``{"cbor": N, "json": M}``."""
        import json

        with OPENER.open(self.endpoint_url + WIRE_PATH, timeout=timeout) as answer:
            counts = json.loads(answer.read())
        return {"cbor": int(counts["cbor"]), "json": int(counts["json"])}

    def reset(self, timeout: float = 30.0) -> None:
        """Delete every stream (of the default account and this region); wait until gone."""
        from .. import _aws

        _aws.delete_streams(_aws.client("kinesis", self.endpoint_url, self._region), timeout)
