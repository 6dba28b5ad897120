"""``kclpy-local doctor``: check that this machine can run the KCL daemon locally.

Check what running the KCL daemon locally needs and say how to fix what is
missing. Exit 0 when nothing failed (warnings allowed), 1 otherwise.

::

    kclpy-local doctor [--properties FILE] [--endpoint URL] [--kcl N]
                       [--cache-dir DIR] [--json]

Checks, in this order: the Python version; the installed kclpy-local,
amazon-kclpy, boto3 and moto (moto is optional: without it the embedded emulator
is unavailable); ``java`` (Java 8 or newer runs the daemon); ``javac`` (needed
only to build the launcher, so its absence fails only while the launcher is not
built); the jar cache (every jar of the generation's lockfile present and its
sha256 verified, nothing is downloaded or rewritten); the launcher (built from
the current source, intact, and holding its main class); the optional engines
kinesis-mock (Node.js), ferrokinesis (built with cargo) and MiniStack (installed
on first use); which Kinesis
engines a daemon can read over CBOR (``isCBORProtocolDisabled = false``);
which serve a KCL 3.x worker's enhanced fan-out (``retrievalMode = FANOUT``);
whether anything
answers HTTP at the endpoint (``--endpoint``, else ``$KCLPY_LOCAL_ENDPOINT``,
else the emulator of ``kclpy-local up``, else the default); and, with
``--properties FILE``, every problem the properties validator finds.

Each check prints one line ``ok|warn|FAIL  <check>: <finding>``, followed by an
indented ``fix: <what to do>`` line when it is not ok; a summary goes to
stderr. ``--json`` prints a JSON list of ``{"check", "status", "finding",
"fix"}`` objects instead (``fix`` is ``null`` for ok).

Exit codes: 0 when no check failed (warnings allowed), 1 when one did, 2 on a
usage error.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import urllib.error
import urllib.request
import zipfile
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

from .. import _env
from .._config.generations import GENERATIONS
from .._config.properties import Problem, detect_profile, read_properties, validate_properties
from .._emulators import ferrokinesis, ministack
from .._emulators.endpoints import Endpoint, resolve
from .._emulators.engines import CBOR_SUPPORT
from .._emulators.fanout import FANOUT_SUPPORT
from .._emulators.kinesis_mock import VERSION as KINESIS_MOCK_VERSION
from .._emulators.kinesis_mock import find_installation, node_problem
from .._emulators.moto import INSTALL_HINT as EMULATOR_INSTALL_HINT
from .._emulators.moto import require_moto
from .._env import default_cache_dir
from .._exceptions import KclpyLocalError, PropertiesError
from .._jvm.cache import CacheLayout, Stamps, check_cached
from .._jvm.discovery import JavaTool, find_tool
from .._jvm.jars import DEFAULT_GENERATION, Lock, load_lock
from .._jvm.launcher import launcher_problem
from .._version import __version__
from . import _common
from ._common import (
    DEFAULT_ENDPOINT,
    announce_endpoint,
    endpoint_url,
    print_json,
)

__all__ = [
    "Check",
    "check_emulator",
    "check_jars",
    "check_java",
    "check_javac",
    "check_launcher",
    "check_package",
    "check_properties",
    "check_python",
    "find_java",
    "register",
    "run_checks",
]

Status = Literal["ok", "warn", "FAIL"]

MIN_PYTHON = (3, 11)
MIN_JAVA = 8
PROBE_TIMEOUT = 1.0
_RUN_DAEMON = "run the KCL daemon"
_BUILD_LAUNCHER = "build the KCL launcher"
# No proxy for the probe: a loopback emulator must not be reached through HTTP_PROXY.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one check."""

    check: str
    """What was checked (``java``, ``jars``, ``emulator``, ...)."""
    status: Status
    finding: str
    fix: str | None = None
    """What to do when the status is not ok."""

    def render(self) -> str:
        """``status  check: finding`` and, when not ok, an indented ``fix:`` line."""
        text = f"{self.status:<4}  {self.check}: {self.finding}"
        if self.status != "ok" and self.fix:
            text += f"\n      fix: {self.fix}"
        return text


# -- Python and packages ---------------------------------------------------------


def check_python() -> Check:
    """The running interpreter and whether it is new enough."""
    found = f"Python {platform.python_version()} ({sys.executable})"
    if sys.version_info < MIN_PYTHON:
        need = ".".join(str(n) for n in MIN_PYTHON)
        return Check(
            "python",
            "FAIL",
            f"{found}; kclpy-local needs {need} or newer",
            f"run kclpy-local with Python {need}+",
        )
    return Check("python", "ok", found)


def _installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def check_package(distribution: str) -> Check:
    """An installed distribution's version; moto is optional (warn), the others are not."""
    if distribution == "kclpy-local":
        here = Path(__file__).resolve().parents[1]
        return Check(distribution, "ok", f"{__version__} (from {here})")
    version = _installed_version(distribution)
    if distribution == "moto":
        if version is None:
            return Check(
                "moto",
                "warn",
                "not installed: the embedded emulator is unavailable",
                EMULATOR_INSTALL_HINT,
            )
        try:
            require_moto()
        except KclpyLocalError as exc:
            return Check("moto", "warn", f"{version}, but {exc}", exc.hint)
        return Check("moto", "ok", f"{version} (embedded emulator available)")
    if version is None:
        return Check(
            distribution,
            "FAIL",
            "not installed (kclpy-local requires it)",
            f"pip install {distribution}",
        )
    return Check(distribution, "ok", version)


# -- Java ----------------------------------------------------------------------


def find_java() -> JavaTool | KclpyLocalError:
    """The ``java`` the daemon would run with, or why there is none."""
    try:
        return find_tool("java", min_major=MIN_JAVA, purpose=_RUN_DAEMON)
    except KclpyLocalError as exc:
        return exc


def _origin(path: Path, name: str, near: Path | None = None) -> str:
    """Which lookup rule of :mod:`kclpy_local._jvm.discovery` found ``path``."""
    if near is not None and path == near.parent / name:
        return "next to java"
    explicit = _env.JAVA.get()
    if explicit and name == "java" and Path(explicit) == path:
        return "$KCLPY_LOCAL_JAVA"
    home = os.environ.get("JAVA_HOME")
    if home and Path(home) / "bin" / name == path:
        return "$JAVA_HOME"
    return "PATH"


def check_java(found: JavaTool | KclpyLocalError) -> Check:
    """``java`` present and at least Java 8."""
    if isinstance(found, KclpyLocalError):
        return Check("java", "FAIL", str(found), found.hint)
    return Check(
        "java",
        "ok",
        f"Java {found.major} at {found.path} (found via {_origin(found.path, 'java')}; "
        f"Java {MIN_JAVA}+ runs the daemon)",
    )


def check_javac(java: JavaTool | None, *, launcher_built: bool, min_jdk: int) -> Check:
    """``javac`` of at least ``min_jdk``; only needed while the launcher is not built."""
    near = java.path.resolve() if java is not None else None
    try:
        javac = find_tool(
            "javac",
            near=near,
            min_major=min_jdk,
            purpose=_BUILD_LAUNCHER,
        )
    except KclpyLocalError as exc:
        if launcher_built:
            return Check("javac", "ok", f"{exc}; not needed while the launcher is built")
        return Check("javac", "FAIL", f"{exc}; `kclpy-local bootstrap` needs it once", exc.hint)
    return Check(
        "javac",
        "ok",
        f"Java {javac.major} at {javac.path} (found via {_origin(javac.path, 'javac', near)}; "
        f"JDK {min_jdk}+ builds the launcher)",
    )


# -- the jar cache -------------------------------------------------------------


def _bootstrap_command(generation: int, cache_dir: Path | None) -> str:
    command = "kclpy-local bootstrap"
    if generation in GENERATIONS:
        command += GENERATIONS[generation].kcl_option
    else:  # no such generation: the lockfile check says so
        command += f" --kcl {generation}"
    if cache_dir is not None:
        command += f" --cache-dir {cache_dir}"
    return f"`{command}`"


def check_jars(lock: Lock, layout: CacheLayout, fix: str) -> Check:
    """Every jar of ``lock`` in the cache, its sha256 re-computed and compared.

    Read-only: the verification stamps are consulted by nobody and not saved.
    """
    stamps = Stamps(layout.stamps_path)
    missing: list[str] = []
    damaged: list[str] = []
    for artifact in lock.artifacts:
        path = layout.jars_dir / artifact.filename
        try:
            problem = check_cached(path, artifact, stamps, verify="full")
        except OSError as exc:
            problem = f"unreadable ({exc.strerror or exc})"
        if problem == "missing":
            missing.append(artifact.filename)
        elif problem is not None:
            damaged.append(
                f"{artifact.filename}: {problem}, expected {artifact.sha256}"
                if problem.startswith("sha256")
                else f"{artifact.filename}: {problem}"
            )
    total = len(lock.artifacts)
    if len(missing) == total:
        return Check(
            "jars", "FAIL", f"KCL {lock.generation} is not installed in {layout.base}", fix
        )
    # Every missing and every damaged jar is named, whichever there are.
    found = []
    if missing:
        found.append(f"{len(missing)} of {total} jars missing: {', '.join(missing)}")
    if damaged:
        found.append(
            f"{len(damaged)} of {total} jars do not match the lockfile: {'; '.join(damaged)}"
        )
    if found:
        return Check(
            "jars",
            "FAIL",
            f"in {layout.jars_dir}: {'; '.join(found)}",
            f"{fix} (it replaces damaged jars)" if damaged else fix,
        )
    return Check(
        "jars",
        "ok",
        f"{total} jars in {layout.jars_dir}, sha256 verified against the KCL "
        f"{lock.generation} lockfile ({lock.root})",
    )


def check_launcher(lock: Lock, layout: CacheLayout, fix: str) -> Check:
    """The launcher built from the current source, intact, with its main class."""
    try:
        source_sha = lock.launcher_sha256()
    except KclpyLocalError as exc:
        return Check("launcher", "FAIL", str(exc), "reinstall kclpy-local")
    problem = launcher_problem(layout, lock, source_sha, verify="full")
    if problem is not None:
        return Check("launcher", "FAIL", f"{layout.launcher_jar} is {problem}", fix)
    entry = lock.launcher.main_class.replace(".", "/") + ".class"
    try:
        with zipfile.ZipFile(layout.launcher_jar) as jar:
            present = entry in jar.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        return Check(
            "launcher",
            "FAIL",
            f"{layout.launcher_jar} cannot be read as a jar: {exc}",
            f"delete it, then run {fix}",
        )
    if not present:
        return Check(
            "launcher",
            "FAIL",
            f"{layout.launcher_jar} has no {lock.launcher.main_class}",
            f"delete it, then run {fix}",
        )
    return Check("launcher", "ok", f"{layout.launcher_jar} has {lock.launcher.main_class}")


# -- the emulator ----------------------------------------------------------------


def check_emulator(
    endpoint: str, origin: str = "from --endpoint", timeout: float = PROBE_TIMEOUT
) -> Check:
    """One HTTP request to ``endpoint``: any HTTP answer, whatever its status, is ok."""
    fix = "start the emulator with `kclpy-local up`, or point --endpoint at a running one"
    if not endpoint.startswith(("http://", "https://")):
        return Check("emulator", "warn", f"{endpoint!r} ({origin}) is not an http(s) URL", fix)
    try:
        with _OPENER.open(endpoint.rstrip("/") + "/", timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check("emulator", "warn", f"nothing answers at {endpoint} ({origin}): {reason}", fix)
    return Check("emulator", "ok", f"{endpoint} answers (HTTP {status}; {origin})")


# -- properties ------------------------------------------------------------------


def _problem_check(problem: Problem, path: Path) -> Check:
    where = f"{path}:{problem.line}" if problem.line is not None else str(path)
    subject = f"{problem.key}: " if problem.key else ""
    status: Status = "FAIL" if problem.severity == "error" else "warn"
    fix = problem.hint or (
        f"edit line {problem.line} of {path}" if problem.line is not None else f"edit {path}"
    )
    return Check("properties", status, f"{where}: {subject}{problem.message}", fix)


def check_properties(path: Path) -> tuple[Check, ...]:
    """One check per problem of the validator (errors FAIL), or one ok."""
    try:
        document = read_properties(path)
    except PropertiesError as exc:
        return (Check("properties", "FAIL", str(exc), exc.hint or "pass an existing file"),)
    profile = detect_profile(document)
    problems = validate_properties(document, profile=profile)
    if not problems:
        return (Check("properties", "ok", f"{path}: no problems (profile {profile or 'none'})"),)
    return tuple(_problem_check(problem, path) for problem in problems)


# -- all together ----------------------------------------------------------------


def check_kinesis_mock(cache_dir: Path | None = None) -> Check:
    """Node.js and npm, and whether the pinned kinesis-mock is installed (optional engine)."""
    problem = node_problem()
    if problem is not None:
        return Check(
            "kinesis-mock",
            "warn",
            f"the kinesis-mock engine is unavailable: {problem}",
            "install Node.js 20 (with npm) to use `--kinesis kinesis-mock`",
        )
    installed = find_installation(cache_dir)
    if installed is None:
        return Check(
            "kinesis-mock",
            "ok",
            f"node and npm found; kinesis-local {KINESIS_MOCK_VERSION} is installed on first use",
        )
    return Check(
        "kinesis-mock", "ok", f"kinesis-local {KINESIS_MOCK_VERSION} installed in {installed.root}"
    )


def check_ferrokinesis(cache_dir: Path | None = None) -> Check:
    """Whether ferrokinesis is built, or cargo is there to build it (optional engine)."""
    label = f"{ferrokinesis.PACKAGE} {ferrokinesis.VERSION}"
    installed = ferrokinesis.find_installation(cache_dir)
    if installed is not None:
        return Check("ferrokinesis", "ok", f"{label} built in {installed.root}")
    problem = ferrokinesis.cargo_problem()
    if problem is not None:
        return Check(
            "ferrokinesis",
            "warn",
            f"the ferrokinesis engine is unavailable: it is not built, and {problem}",
            "install Rust with cargo (https://rustup.rs) to use `--kinesis ferrokinesis`",
        )
    return Check(
        "ferrokinesis",
        "ok",
        f"cargo found; {label} is built on first use (`--kinesis ferrokinesis`, from crates.io, "
        "a few minutes)",
    )


def check_ministack(cache_dir: Path | None = None) -> Check:
    """Whether the pinned MiniStack is installed (optional engine, installed on first use)."""
    installed = ministack.find_installation(cache_dir)
    if installed is None:
        return Check(
            "ministack",
            "ok",
            f"{ministack.PACKAGE} {ministack.VERSION} is installed on first use "
            "(`--engine ministack`, from the package index)",
        )
    return Check(
        "ministack", "ok", f"{ministack.PACKAGE} {ministack.VERSION} installed in {installed.root}"
    )


def check_cbor() -> Check:
    """Which Kinesis engines a daemon can read over CBOR (``isCBORProtocolDisabled = false``)."""
    works = [s.engine for s in CBOR_SUPPORT if s.works]
    details = "; ".join(f"{s.engine}: {s.why}" for s in CBOR_SUPPORT if not s.works)
    if works:
        verdict = (
            f"CBOR works with {', '.join(works)} (isCBORProtocolDisabled = false); "
            "keep it true on the others"
        )
    else:
        verdict = (
            "no local engine reads CBOR (isCBORProtocolDisabled = false); keep it true locally"
        )
    return Check("cbor", "ok", f"{verdict}. {details}")


def check_fanout() -> Check:
    """Which Kinesis engines serve a KCL 3.x worker's enhanced fan-out (``retrievalMode = FANOUT``)."""
    works = [s.engine for s in FANOUT_SUPPORT if s.works]
    details = "; ".join(f"{s.engine}: {s.why}" for s in FANOUT_SUPPORT)
    return Check(
        "fanout",
        "ok",
        f"KCL 3.x enhanced fan-out (retrievalMode = FANOUT) works with {', '.join(works)}; "
        f"run and daemon refuse the others before the JVM starts. {details}",
    )


def run_checks(
    *,
    generation: int = DEFAULT_GENERATION,
    cache_dir: Path | None = None,
    endpoint: str | Endpoint | None = None,
    properties: Path | None = None,
) -> list[Check]:
    """Every check, in report order; ``endpoint`` is ``--endpoint`` or the endpoint
    already resolved (:func:`kclpy_local._emulators.endpoints.resolve`)."""
    checks = [check_python()]
    checks += [check_package(name) for name in ("kclpy-local", "amazon-kclpy", "boto3", "moto")]
    java = find_java()
    checks.append(check_java(java))
    layout = CacheLayout(cache_dir if cache_dir is not None else default_cache_dir(), generation)
    fix = _bootstrap_command(generation, cache_dir)
    lock: Lock | None = None
    try:
        lock = load_lock(generation)
    except KclpyLocalError as exc:
        cache_checks = [Check("jars", "FAIL", str(exc), "reinstall kclpy-local")]
    else:
        cache_checks = [check_jars(lock, layout, fix), check_launcher(lock, layout, fix)]
    checks.append(
        check_javac(
            java if isinstance(java, JavaTool) else None,
            launcher_built=lock is not None and cache_checks[-1].status == "ok",
            min_jdk=lock.launcher.min_jdk if lock is not None else MIN_JAVA,
        )
    )
    checks += cache_checks
    checks.append(check_kinesis_mock(cache_dir))
    checks.append(check_ferrokinesis(cache_dir))
    checks.append(check_ministack(cache_dir))
    checks.append(check_cbor())
    checks.append(check_fanout())
    resolved = endpoint if isinstance(endpoint, Endpoint) else resolve(endpoint)
    checks.append(check_emulator(resolved.url, resolved.reason))
    if properties is not None:
        checks += check_properties(properties)
    return checks


def register(subparsers: _common.Subparsers) -> None:
    summary = "check Python, packages, Java, the jar cache, the emulator and a properties file"
    p = _common.add_command(subparsers, "doctor", summary, _common.paragraph(__doc__, 1))
    _common.add_properties_option(p, "also validate this daemon .properties file")
    p.add_argument(
        "--endpoint",
        metavar="URL",
        type=endpoint_url,
        default=None,
        help=f"emulator endpoint to probe (default: ${_env.ENDPOINT.name}, else the emulator "
        f"started by `kclpy-local up`, else {DEFAULT_ENDPOINT})",
    )
    _common.add_kcl_argument(p, "KCL generation whose jars to verify (default: %(default)s)")
    _common.add_cache_dir_argument(p)
    p.add_argument(
        "--json", action="store_true", help="print a JSON list of {check, status, finding, fix}"
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    endpoint = resolve(args.endpoint)
    announce_endpoint(endpoint)
    checks = run_checks(
        generation=args.kcl,
        cache_dir=args.cache_dir,
        endpoint=endpoint,
        properties=args.properties,
    )
    failed = sum(1 for c in checks if c.status == "FAIL")
    warned = sum(1 for c in checks if c.status == "warn")
    if args.json:
        print_json([asdict(c) for c in checks])
    else:
        for check in checks:
            print(check.render())
        verdict = f"{failed} failed" if failed else "nothing failed"
        warnings = f"{warned} warning(s)" if warned else "no warnings"
        print(f"kclpy-local doctor: {verdict}, {warnings}", file=sys.stderr)
    return 1 if failed else 0
