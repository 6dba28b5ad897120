"""kinesis-mock: the fidelity engine for Kinesis (npm package ``kinesis-local``).

moto's Kinesis is fast but its resharding is wrong (records keep landing in a
closed parent, a drained closed shard never ends). kinesis-mock, the engine
LocalStack uses, gets resharding and iterators right; it is slower
(~1,000 puts/s) and runs on Node.js. DynamoDB and CloudWatch stay on moto.

The pinned package is installed on first use into the per-user cache
(:func:`kclpy_local._env.default_cache_dir`)::

    <cache>/kinesis-mock/0.6.2/node_modules/kinesis-local/main.js

with ``npm install`` into a temporary directory that is renamed into place
only once its version and the tarball's pinned sha512 check out (one installer
at a time, under a lock file). :class:`KinesisMock` runs it like
:class:`~kclpy_local._emulators.moto.EmbeddedEmulator` runs moto::

    with KinesisMock(port=0) as km:
        kinesis = boto3.client("kinesis", endpoint_url=km.endpoint_url, ...)

kinesis-mock always opens a TLS port besides the plain HTTP one and binds both
to every interface, with no setting to change that. Here both ports are free
loopback ports, and node runs with a preload (``js/loopback.js``, package data)
that rewrites every ``net.Server.listen`` onto 127.0.0.1; once the engine
answers, its listening sockets are read from ``/proc`` and a listener on any
other address stops it with an error.

Daemons read it over JSON (``isCBORProtocolDisabled = true``): its CBOR answers
to GetRecords carry each record's Data as text, which the Java SDK refuses
(:data:`CBOR_RECORDS_WORK`).

Errors are :class:`~kclpy_local._exceptions.EmulatorError` (exit code 8):
:class:`NodeNotFoundError` without node or npm, :class:`KinesisMockInstallError`
when the install fails (registry unreachable, wrong version or tarball), and
:class:`~kclpy_local._emulators.moto.EmulatorStartError` (with the engine's last
output lines) when it does not start.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Unpack

from .. import _process
from .._exceptions import EmulatorError, ProcessError
from .._files import Under
from .._process import Launch
from ._engine import (
    DEFAULT_HOST,
    OPENER,
    Command,
    InstalledEngine,
    InstalledOptions,
    Listener,
    listening_sockets,
    routine_kill,
    runs,
)
from ._install import Installation, Installer, InstallError

__all__ = [
    "CBOR_RECORDS_WORK",
    "DURATION_SETTINGS",
    "FANOUT_WORKS",
    "INTEGRITY",
    "NODE_HINT",
    "PACKAGE",
    "TERM_GRACE",
    "VERSION",
    "KinesisMock",
    "KinesisMockInstallError",
    "KinesisMockInstallation",
    "Listener",
    "NodeNotFoundError",
    "ensure_installed",
    "find_installation",
    "install_root",
    "is_kinesis_mock_process",
    "listening_sockets",
    "node_problem",
    "preload_path",
    "stop_group",
]

logger = logging.getLogger(__name__)

PACKAGE = "kinesis-local"
VERSION = "0.6.2"
#: The npm tarball's integrity (sha512), as the registry published it.
INTEGRITY = "sha512-mFlmksPMQP/A3nT22N2E8WzUbJcbEdxkCnhNCx2lHj20CW4vzuVH8zn5ByRg5LS5es8tvnx2mY1DpbZ5kw9PPQ=="
#: Whether the Java SDK (v1) can read records from it over CBOR. It cannot:
#: kinesis-mock 0.6.2 answers a CBOR GetRecords with each record's ``Data`` as a
#: base64 text string where CBOR needs a byte string, and the SDK's parser fails
#: ("Current token (VALUE_STRING) not VALUE_EMBEDDED_OBJECT"); every other call
#: works over CBOR. So daemons use JSON for it (``isCBORProtocolDisabled = true``).
CBOR_RECORDS_WORK = False
#: Whether a KCL 3.x worker can read it by enhanced fan-out. It can: kinesis-mock
#: serves RegisterStreamConsumer and SubscribeToShard (since 0.6.0), over HTTP/1.1
#: and HTTP/2 without TLS (h2c, prior knowledge) on its plain port and over HTTP/2 by
#: ALPN on its TLS port, whose self-signed certificate names no host.
FANOUT_WORKS = True
NODE_HINT = "install Node.js 20 with npm (e.g. apt-get install nodejs npm), then retry"
#: kinesis-mock's settings for how long each asynchronous operation takes
#: (500 ms by default); :class:`KinesisMock` sets them all to ``operation_millis``.
DURATION_SETTINGS = (
    "CREATE_STREAM_DURATION",
    "DELETE_STREAM_DURATION",
    "REGISTER_STREAM_CONSUMER_DURATION",
    "DEREGISTER_STREAM_CONSUMER_DURATION",
    "START_STREAM_ENCRYPTION_DURATION",
    "STOP_STREAM_ENCRYPTION_DURATION",
    "MERGE_SHARDS_DURATION",
    "SPLIT_SHARD_DURATION",
    "UPDATE_SHARD_COUNT_DURATION",
    "UPDATE_STREAM_MODE_DURATION",
)

#: Seconds between SIGTERM and SIGKILL when stopping it.
TERM_GRACE = 1.0
_NETWORK_CODES = (
    "ENOTFOUND",
    "EAI_AGAIN",
    "ECONNREFUSED",
    "ECONNRESET",
    "ETIMEDOUT",
    "ENETUNREACH",
    "EHOSTUNREACH",
    "ERR_SOCKET_TIMEOUT",
)
# SIGTERM to its process group; a SIGKILL after TERM_GRACE is routine, hence DEBUG.
_STOP = routine_kill("kinesis-mock", TERM_GRACE, __name__)


class NodeNotFoundError(EmulatorError):
    """``node`` (or, to install, ``npm``) is not on PATH."""

    def __init__(self, missing: str) -> None:
        self.missing = missing
        super().__init__(f"kinesis-mock needs Node.js: {missing} is not on PATH")
        self.hint = NODE_HINT


class KinesisMockInstallError(InstallError):
    """``npm install`` of the pinned package failed, or installed something else.

    ``registry_unreachable`` tells a network failure from the rest.
    """


# -- node and npm -------------------------------------------------------------------


def node_problem(*, need_npm: bool = True) -> str | None:
    """Why kinesis-mock cannot be installed and run here (``None``: it can)."""
    for tool in ("node", "npm") if need_npm else ("node",):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH ({NODE_HINT})"
    return None


def _which(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise NodeNotFoundError(tool)
    return path


def preload_path() -> Path:
    """The preload that keeps every listener of a node process on 127.0.0.1."""
    return Path(__file__).resolve().parent / "js" / "loopback.js"


# -- the installation -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KinesisMockInstallation(Installation):
    """An installed, checked ``kinesis-local`` package."""

    directory = "kinesis-mock"
    version = VERSION
    label = f"{PACKAGE}@{VERSION}"
    error = KinesisMockInstallError

    package_dir = Under("root", "node_modules", PACKAGE)
    main_js = Under("root", "node_modules", PACKAGE, "main.js")
    #: The self-signed certificate it needs (``KINESIS_MOCK_CERT_PATH``).
    cert_path = Under("root", "node_modules", PACKAGE, "server.json")

    @classmethod
    def defect(cls, root: Path) -> str | None:
        """``None`` if ``root`` holds the pinned package; else what is wrong with it."""
        inst = cls(root)
        try:
            meta = json.loads((inst.package_dir / "package.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return f"{PACKAGE} is not installed"
        except (OSError, ValueError) as exc:
            return f"unreadable package.json: {exc}"
        version = meta.get("version") if isinstance(meta, dict) else None
        if version != VERSION:
            return f"{PACKAGE} version is {version!r}, expected {VERSION!r}"
        try:
            lock = json.loads((root / "node_modules" / ".package-lock.json").read_text("utf-8"))
            integrity = lock["packages"][f"node_modules/{PACKAGE}"].get("integrity")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return "npm recorded no integrity for the package"
        if integrity != INTEGRITY:
            return f"the package's integrity is {integrity!r}, expected the pinned {INTEGRITY!r}"
        for path in (inst.main_js, inst.cert_path):
            if not path.is_file():
                return f"{path.name} is missing"
        return None


install_root = KinesisMockInstallation.install_root
find_installation = KinesisMockInstallation.find
_NPM = Installer(
    KinesisMockInstallation,
    "the npm registry",
    _NETWORK_CODES,
    "check the network and npm's registry setting (npm config get registry)",
    missing_words=("E404", "ETARGET"),
    missing_hint="check npm's registry setting (npm config get registry)",
)


def ensure_installed(
    cache_dir: Path | None = None,
    *,
    timeout: float = 300.0,
    env: Mapping[str, str] | None = None,
) -> KinesisMockInstallation:
    """The pinned package, installed with npm on first use.

    npm installs into a temporary directory next to the final one, which is
    renamed into place once the installed version and the tarball's integrity
    are the pinned ones; a broken installation is replaced (see
    :func:`~kclpy_local._emulators._install.install_once`). ``env`` replaces
    the environment npm runs with (for its registry settings).
    """
    found = find_installation(cache_dir)
    if found is not None:
        return found
    npm = _which("npm")
    return KinesisMockInstallation.install(
        cache_dir, lambda tmp: _npm_install(npm, tmp, timeout, env)
    )


def _npm_install(npm: str, prefix: Path, timeout: float, env: Mapping[str, str] | None) -> None:
    argv = [
        npm,
        "install",
        "--no-save",
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        "--prefix",
        str(prefix),
        f"{PACKAGE}@{VERSION}",
    ]
    environ = dict(os.environ if env is None else env)
    environ.setdefault("npm_config_update_notifier", "false")
    _NPM.run(Launch(argv, env=environ, cwd=prefix, new_session=False), timeout, what="npm install")


def is_kinesis_mock_process(pid: int) -> bool | None:
    """Whether ``pid`` runs kinesis-mock; ``None`` when this cannot be told (no /proc)."""
    return runs(pid, f"{PACKAGE}/main.js".encode())


def stop_group(pid: int, timeout: float = 5.0) -> bool:
    """Stop the process group that ``pid`` leads; True if it ran.

    SIGTERM, then SIGKILL after at most :data:`TERM_GRACE` seconds (kinesis-mock
    waits for its clients' idle keep-alive connections before it exits, and keeps
    nothing worth a longer wait), then up to ``timeout`` seconds for it to go. A
    process that does not lead its group is signalled alone.
    """
    try:
        return _process.stop_pid(pid, timeout, _STOP, group=True)
    except ProcessError as exc:
        raise EmulatorError(str(exc)) from exc


# -- readiness ------------------------------------------------------------------------


def _list_streams(endpoint_url: str, timeout: float) -> str | None:
    """``None`` when a ListStreams call answers 200 with a stream list; else why not."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    request = urllib.request.Request(
        endpoint_url.rstrip("/") + "/",
        data=b"{}",
        method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "Kinesis_20131202.ListStreams",
            "X-Amz-Date": stamp,
            # kinesis-mock needs a well-formed header; it checks no signature.
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential=test/{stamp[:8]}/us-east-1/kinesis/aws4_request, "
                "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0"
            ),
        },
    )
    try:
        with OPENER.open(request, timeout=timeout) as response:
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))
    if isinstance(body, dict) and "StreamNames" in body:
        return None
    return f"unexpected answer {body!r:.200}"


# -- the engine -----------------------------------------------------------------------


class KinesisMock(InstalledEngine[KinesisMockInstallation]):
    """kinesis-mock on a loopback port, in a child process of its own process group.

    ``port=0`` picks a free port (so does ``tls_port=0`` for the TLS port it
    always opens), retrying when another process takes one first. The pinned
    package is installed into ``cache_dir`` (default: the per-user cache) on
    first use unless ``installation`` is given. ``operation_millis`` is how long
    stream creation, deletion, splits, merges etc. stay in progress (kinesis-mock's
    own default is 500). ``streams`` maps stream names to shard counts created at
    start-up; ``env`` adds settings (``LOG_LEVEL``, ``SHARD_LIMIT``, ...). Output
    and ``detach``: as for every :class:`EngineProcess`.
    """

    name = "kinesis-mock"
    label = "kinesis-mock"
    version = VERSION
    stop_policy = _STOP
    port_taken = ("eaddrinuse", "already in use")
    check_sockets = True  # the preload keeps it on loopback, and this checks it does
    default_startup_timeout = 60.0

    def __init__(
        self,
        port: int = 0,
        host: str = DEFAULT_HOST,
        *,
        tls_port: int = 0,
        operation_millis: int = 100,
        streams: Mapping[str, int] | None = None,
        region: str = "us-east-1",
        env: Mapping[str, str] | None = None,
        **options: Unpack[InstalledOptions[KinesisMockInstallation]],
    ) -> None:
        super().__init__((port, tls_port), host, **options)
        if port and port == tls_port:
            raise EmulatorError("the plain and TLS ports must differ")
        self._operation_millis = operation_millis
        self._streams = dict(streams or {})
        self._region = region
        self._env = dict(env or {})

    @property
    def tls_port(self) -> int:
        """The HTTPS port kinesis-mock always opens too (self-signed certificate)."""
        return self.ports[1]

    def argv(self) -> list[str]:
        """The command that runs the engine (needs :attr:`installation`)."""
        if self.installation is None:
            raise EmulatorError("kinesis-mock is not installed yet")
        node = _which("node")
        return [node, "--require", str(preload_path()), str(self.installation.main_js)]

    def environment(self, port: int, tls_port: int) -> dict[str, str]:
        """The variables kinesis-mock is configured with (on top of this process's)."""
        if self.installation is None:
            raise EmulatorError("kinesis-mock is not installed yet")
        env = {
            "KINESIS_MOCK_PLAIN_PORT": str(port),
            "KINESIS_MOCK_TLS_PORT": str(tls_port),
            "KINESIS_MOCK_CERT_PATH": str(self.installation.cert_path),
            "AWS_REGION": self._region,
            "SHOULD_PERSIST_DATA": "false",
        }
        env.update(dict.fromkeys(DURATION_SETTINGS, f"{self._operation_millis}ms"))
        if self._streams:
            env["INITIALIZE_STREAMS"] = ",".join(f"{n}:{c}" for n, c in self._streams.items())
        env.update(self._env)
        return env

    def install(self, cache_dir: Path | None) -> KinesisMockInstallation:
        return ensure_installed(cache_dir)

    def prepare(self) -> None:
        _which("node")
        super().prepare()

    def command(self, ports: tuple[int, ...]) -> Command:
        assert self.installation is not None
        env = {**os.environ, **self.environment(*ports)}
        return Command(self.argv(), env, self.installation.package_dir)

    def ready_problem(self, timeout: float) -> str | None:
        """``None`` once a ListStreams call answers with a stream list."""
        return _list_streams(self.endpoint_url, timeout)

    def reset(self, timeout: float = 30.0) -> None:
        """Delete every stream (of the default account and this region); wait until gone."""
        from .. import _aws

        _aws.delete_streams(_aws.client("kinesis", self.endpoint_url, self._region), timeout)
