"""Running the KCL daemon (our launcher on the JVM) as a supervised child process.

:class:`Daemon` is a context manager::

    with Daemon("local.properties", log=print) as daemon:
        ...                      # the worker has reported STARTED
    # the JVM has been stopped: SIGTERM (graceful: processors get
    # shutdownRequested), then SIGKILL of its process group after stop_timeout

The JVM runs in a new session (its own process group, with the record
processor children it starts), with ``-Dfile.encoding=UTF-8`` and the argv
built as a list (:meth:`Daemon.argv`).  Its stdout and stderr are merged and
read line by line by a thread that keeps the last lines (for error messages)
and forwards each line to ``log``.  A file containing ``${VAR}`` references
(or ``overrides``) is substituted into a temporary copy first, which is
deleted when the daemon is stopped.  For KCL 3.x (``generation=3``) that copy
is also translated from the 1.x form (:mod:`kclpy_local._config.translate`), so the
file a 1.x daemon runs runs on 3.x too; each change is one log line
(``kclpy-local: translated for KCL 3.x: ...``).  All of it is the one properties
pipeline, :func:`kclpy_local._config.pipeline.prepare`.  On the ``local`` profile
the translation keeps the KCL's CloudWatch metrics on when the file's CloudWatch
endpoint answers the Smithy RPC v2 CBOR protocol (``answers_cbor``; by default
one request asks it, :func:`kclpy_local._aws.rpc_v2_cbor_problem`), and turns
them off otherwise.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Self, TextIO

from .. import _env
from .._config.generations import GENERATIONS, Generation
from .._config.generations import generation as _generation
from .._config.pipeline import prepare
from .._config.properties import LOCAL_PROFILE, write_temporary
from .._config.translate import AnswersCbor
from .._exceptions import (
    DaemonError,
    DaemonStartError,
    NotReadyError,
    ProcessError,
    PropertiesError,
    UsageError,
)
from .._process import Launch, Lifecycle, ManagedProcess, StopPolicy
from .._runtime.loop import check_environment
from .bootstrap import Installation, installation
from .discovery import find_tool
from .jars import DEFAULT_GENERATION, load_lock

__all__ = [
    "DEFAULT_JVM_OPTIONS",
    "LOCAL_PROFILE",
    "READY_MARKER",
    "Daemon",
    "LogSink",
    "cloudwatch_answers_cbor",
    "daemon_argv",
    "jvm_options",
    "known_generation",
    "processor_command",
]

log = logging.getLogger(__name__)

#: The line prefix every launcher prints once its worker is STARTED.
READY_MARKER = "kclpy-local: worker STARTED"
TAIL_LINES = 50

LogSink = Callable[[str], object] | TextIO
# SIGTERM to the JVM alone (its graceful shutdown stops the processors), then
# SIGKILL to its whole process group.
_STOP = StopPolicy(
    term_group=False,
    kill_note="the KCL daemon did not stop within %(grace)gs; killing it",
    logger_name=__name__,
)


def processor_command(processor: str | os.PathLike[str], python: str | None = None) -> str:
    """The ``executableName`` that runs ``processor``: a ``.py`` file with ``python``
    (default: this interpreter), anything else as an executable.

    :class:`DaemonError` when the file is missing, a directory, unreadable, not
    runnable, a ``.py`` file this interpreter cannot compile (checked only when it
    is the one that will run it), or its path has a space (the 1.x daemon splits
    ``executableName`` on single spaces): found before the JVM starts, not when the
    daemon's first child dies.
    """
    given = Path(processor)
    if given.is_dir():
        raise DaemonError(f"processor {given} is a directory, not a file")
    if not given.is_file():
        raise DaemonError(f"processor not found: {given}")
    path = given.resolve()
    if path.suffix == ".py":
        argv = [python or sys.executable, str(path)]
        _check_source(given, compiles=python is None)
    elif os.access(path, os.X_OK):
        argv = [str(path)]
    else:
        err = DaemonError(f"{given} is neither a .py file nor executable")
        err.hint = f"chmod +x {given}"
        raise err
    for part in argv:
        if any(ch.isspace() for ch in part):
            err = DaemonError(
                f"the KCL daemon splits executableName on spaces, and this path has one: {part!r}"
            )
            err.hint = "move the processor (or the Python environment) to a path without spaces"
            raise err
    return " ".join(argv)


def _check_source(path: Path, *, compiles: bool) -> None:
    """The processor script can be read (and, when ``compiles``, compiled)."""
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise DaemonError(f"cannot read processor {path}: {exc.strerror or exc}") from None
    if not compiles:
        return
    try:
        compile(source, str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f" line {exc.lineno}" if exc.lineno else ""
        err = DaemonError(f"processor {path}{where}: {type(exc).__name__}: {exc.msg}")
        err.hint = f"run `{sys.executable} -m py_compile {path}` to see it"
        raise err from None
    except ValueError as exc:  # null bytes, or not decodable in its declared encoding
        raise DaemonError(f"processor {path} is not Python source: {exc}") from None


def known_generation(number: int) -> Generation:
    """The generation ``number``; :class:`BootstrapError` (from the lockfiles) when
    kclpy-local has none, as when its jars are looked up."""
    if number not in GENERATIONS:
        load_lock(number)  # no lockfile either: the error names the known generations
    return _generation(number)


#: The daemon JVM's options unless ``KCLPY_LOCAL_JVM_OPTIONS`` is set: C1 only. On a
#: laptop or a CI runner the workers start, take their leases and answer their first
#: batches while C2 would still be compiling on the same cores (bench/bench_engines.py:
#: end to end from STARTED about a fifth faster); a local daemon never runs long
#: enough for C2's faster code to pay that back.
DEFAULT_JVM_OPTIONS: tuple[str, ...] = ("-XX:TieredStopAtLevel=1",)


def jvm_options(environ: Mapping[str, str] | None = None) -> list[str]:
    """The daemon JVM's options: ``KCLPY_LOCAL_JVM_OPTIONS`` split as a shell does when it
    is set (empty: none, the JVM's own defaults), else :data:`DEFAULT_JVM_OPTIONS`."""
    import shlex

    value = (os.environ if environ is None else environ).get(_env.JVM_OPTIONS.name)
    if value is None:
        return list(DEFAULT_JVM_OPTIONS)
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise UsageError(f"{_env.JVM_OPTIONS.name}={value!r} cannot be split: {exc}") from None


def daemon_argv(
    inst: Installation,
    properties: str | os.PathLike[str],
    *,
    java: str | os.PathLike[str],
    jvm_args: Sequence[str] = (),
) -> list[str]:
    """The command that runs ``inst``'s launcher on ``properties``."""
    return [
        str(java),
        "-Dfile.encoding=UTF-8",
        *jvm_args,
        "-cp",
        inst.classpath(),
        inst.main_class,
        *_generation(inst.generation).launcher_args(str(properties)),
    ]


def _check_executable(value: str, cwd: Path, env_path: str | None) -> None:
    """Fail early when ``executableName`` names a program or script that is not there."""
    if "${" in value:
        return
    tokens = value.split(" ")  # as the daemon splits it
    tokens = [t for t in tokens if t]
    if not tokens:
        raise PropertiesError("executableName is empty")
    program = tokens[0]
    if os.sep in program or (os.altsep and os.altsep in program):
        path = Path(program) if Path(program).is_absolute() else cwd / program
        if not path.is_file():
            raise PropertiesError(f"executableName {value!r}: {path} does not exist")
        if not os.access(path, os.X_OK):
            raise PropertiesError(f"executableName {value!r}: {path} is not executable")
    elif shutil.which(program, path=env_path) is None:
        raise PropertiesError(f"executableName {value!r}: {program!r} is not on PATH")
    for token in tokens[1:]:
        if token.startswith("-"):
            if token == "-m":
                break  # python -m module: nothing to check on disk
            continue
        if token.endswith(".py"):
            script = Path(token) if Path(token).is_absolute() else cwd / token
            if not script.is_file():
                raise PropertiesError(f"executableName {value!r}: {script} does not exist")
        break


def cloudwatch_answers_cbor(endpoint_url: str) -> bool:
    """Whether the CloudWatch at ``endpoint_url`` answers the Smithy RPC v2 CBOR
    protocol (one request; see :func:`kclpy_local._aws.rpc_v2_cbor_problem`)."""
    from .._aws import rpc_v2_cbor_problem  # boto3: only when a daemon starts

    return rpc_v2_cbor_problem(endpoint_url) is None


class Daemon(Lifecycle):
    """The KCL daemon of one generation running one properties file.

    ``env`` adds variables to the current environment; ``log`` receives every
    log line (a callable or a text file); ``ready_timeout`` bounds the wait for
    the STARTED line (``None``: wait as long as the JVM lives); ``stop_timeout``
    is the grace period between SIGTERM and SIGKILL.  ``validate`` refuses a
    file the properties validator reports errors for (for instance a local
    profile that would reach real AWS) before the JVM starts; ``overrides``
    replace keys in a temporary copy of the file.  With ``generation=3`` the
    copy is translated from the 1.x form and validated with the 3.x key table
    after translation.  ``guard`` refuses to start
    while workers of the other KCL generation hold live leases on the lease
    table (see :mod:`kclpy_local._jvm.guard`; read-only, skipped with a log
    line when the table cannot be read).  A lease table that holds another
    stream's checkpoints is always refused, and the table is tagged with the
    stream once the worker has started (:mod:`kclpy_local._jvm.claim`).
    ``answers_cbor`` says whether a CloudWatch endpoint answers the Smithy RPC v2
    CBOR protocol of KCL 3.x's AWS SDK (by default it is asked, once, when the
    translation needs to know).
    ``checks`` are called with the effective values before the JVM starts (after
    validation, before any request to the lease table) and refuse by raising, e.g.
    an engine that cannot serve the worker's enhanced fan-out.
    """

    def __init__(
        self,
        properties_path: str | os.PathLike[str],
        *,
        generation: int = DEFAULT_GENERATION,
        cache_dir: str | os.PathLike[str] | None = None,
        java: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        log: LogSink | None = None,
        ready_timeout: float | None = 60.0,
        stop_timeout: float = 30.0,
        jvm_args: Sequence[str] = (),
        cwd: str | os.PathLike[str] | None = None,
        overrides: Mapping[str, str] | None = None,
        installation: Installation | None = None,
        validate: bool = True,
        guard: bool = True,
        answers_cbor: AnswersCbor | None = None,
        checks: Sequence[Callable[[Mapping[str, str]], None]] = (),
    ) -> None:
        self.properties_path = Path(properties_path)
        if installation is not None and installation.generation != generation:
            if generation != DEFAULT_GENERATION:
                raise DaemonError(
                    f"generation={generation} but the installation is KCL {installation.generation}"
                )
            generation = installation.generation  # the installation says which KCL it is
        self.generation = generation
        self.cache_dir = cache_dir
        self.java = java
        self.env = dict(env or {})
        self.log = log
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.jvm_args = tuple(jvm_args)
        self.cwd = Path(cwd) if cwd is not None else Path.cwd()
        self.overrides = dict(overrides or {})
        self._installation = installation
        self.validate = validate
        self.guard = guard
        self.answers_cbor = answers_cbor or cloudwatch_answers_cbor
        self.checks = tuple(checks)
        self._java_path: str | None = None
        self._resolved: Path | None = None
        self._proc: ManagedProcess | None = None
        self._ready = threading.Event()
        self._values: Mapping[str, str] | None = None  # to tag the lease table once started

    # -- inspection ---------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def log_tail(self) -> tuple[str, ...]:
        """The last log lines (at most 50)."""
        return self._proc.tail() if self._proc is not None else ()

    def argv(self) -> list[str]:
        """The java command line (needs an installed generation and a java)."""
        if self._java_path is None:
            self._java_path = str(find_tool("java", explicit=self.java, min_major=8).path)
        if self._installation is None:
            self._installation = installation(self.generation, self.cache_dir)
        properties = self._resolved or self.properties_path
        jvm_args = [*jvm_options(self._environment()), *self.jvm_args]
        return daemon_argv(self._installation, properties, java=self._java_path, jvm_args=jvm_args)

    # -- lifecycle ----------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        environ = dict(os.environ)
        environ.update(self.env)
        return environ

    def _preflight(self, environ: Mapping[str, str]) -> None:
        """The properties pipeline (:func:`~kclpy_local._config.pipeline.prepare`): the
        file with the overrides, substituted, translated for the generation (one log
        line per change) and validated; a temporary copy when that changed anything."""
        if not self.properties_path.is_file():
            what = "is a directory" if self.properties_path.is_dir() else "not found"
            raise PropertiesError(f"properties file {what}: {self.properties_path}")
        check_environment(environ)  # what the record processors will read
        prepared = prepare(
            self.properties_path,
            generation=known_generation(self.generation),
            overrides=self.overrides,
            environ=environ,
            validate=self.validate,
            answers_cbor=self.answers_cbor,
        )
        prepared.refuse("refused before starting the JVM")
        for line in prepared.notes:
            self._forward(line)
        if prepared.changed:
            # In the system temp dir, never next to the user's file (often in a source tree).
            self._resolved = write_temporary(prepared.effective)
        values = prepared.values
        executable = values.get("executableName")
        if executable is None:
            raise PropertiesError(
                f"{self.properties_path}: no executableName (the command that runs the record processor)"
            )
        _check_executable(executable, self.cwd, environ.get("PATH"))
        for check in self.checks:
            check(values)
        from .claim import check_stream  # boto3: only when a daemon starts

        check_stream(values, self.generation)
        self._values = values
        if self.guard:
            from .guard import check_before_start  # boto3: only when a daemon starts

            check_before_start(values, self.generation)

    def start(self, *, wait_ready: bool = True) -> Self:
        """Start the JVM and (by default) wait for the STARTED line.

        On any failure the JVM is stopped before the error propagates.
        """
        if self._proc is not None:
            raise DaemonError("this Daemon has already been started")
        environ = self._environment()
        try:
            self._preflight(environ)
            argv = self.argv()
            log.info("starting the KCL daemon: %s", argv)
            self._proc = ManagedProcess(
                Launch(argv, env=environ, cwd=self.cwd),
                name="kcl-daemon",
                stop_policy=_STOP,
                tail_lines=TAIL_LINES,
                on_line=self._on_line,
            ).start()
            if wait_ready:
                self.wait_ready(self.ready_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _on_line(self, line: str) -> None:
        # Forwarded first: when start() returns, the log has seen the STARTED line.
        self._forward(line)
        if line.startswith(READY_MARKER) and not self._ready.is_set():
            self._ready.set()
            values = self._values
            if values is not None:  # off the reader thread: it must keep reading
                from .claim import claim_stream

                threading.Thread(
                    target=claim_stream,
                    args=(values, self.generation),
                    name="kclpy-local-claim",
                    daemon=True,
                ).start()

    def _forward(self, line: str) -> None:
        sink = self.log
        if sink is None:
            return
        try:
            if callable(sink):
                sink(line)
            else:
                sink.write(line + "\n")
                sink.flush()
        except Exception:  # a broken sink must not kill the reader
            log.debug("log sink failed", exc_info=True)

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the STARTED line; :class:`DaemonStartError` on exit or timeout."""
        proc = self._proc
        if proc is None:
            raise DaemonError("the daemon has not been started")
        try:
            proc.wait_ready(lambda: None if self._ready.is_set() else "no STARTED line", timeout)
        except NotReadyError as exc:
            if not exc.gone:
                raise DaemonStartError(
                    f"the KCL daemon did not report its worker STARTED within {timeout:g}s",
                    exc.log_tail,
                ) from exc
            if self._ready.is_set():  # STARTED, then it exited at once
                return
            raise DaemonStartError(
                f"the KCL daemon exited with code {exc.returncode} before its worker started",
                exc.log_tail,
            ) from exc

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the JVM to exit; its exit code, or ``None`` on timeout."""
        if self._proc is None:
            raise DaemonError("the daemon has not been started")
        return self._proc.wait(timeout)

    def terminate(self) -> None:
        """Ask the JVM to stop gracefully (SIGTERM to the JVM only), without waiting."""
        if self._proc is not None:
            # Once: a second SIGTERM means "exit now" to a launcher that watches no lifeline
            # (one it does watches is killed by stop() when it must be).
            self._proc.terminate()

    def stop(self, timeout: float | None = None) -> int | None:
        """Stop the daemon: SIGTERM, wait, then SIGKILL its process group; idempotent.

        The record processors are left to the JVM's graceful shutdown, and
        whatever of the process group survives the JVM is killed.
        """
        proc = self._proc
        grace = self.stop_timeout if timeout is None else timeout
        try:
            if proc is None:
                return None
            try:
                return proc.stop(grace)
            except ProcessError as exc:
                raise DaemonError(str(exc)) from exc
        finally:
            if self._resolved is not None:
                self._resolved.unlink(missing_ok=True)
                self._resolved = None
