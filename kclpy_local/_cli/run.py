"""``kclpy-local run PROCESSOR.py``: run a record processor locally, in one command.

Starts the embedded emulator (moto on 127.0.0.1:4566, or a free port when
that is taken) unless an endpoint is given: ``--endpoint``, else
``$KCLPY_LOCAL_ENDPOINT``, else the emulator ``kclpy-local up`` started.  It
creates the stream when it is missing (on a local endpoint only), writes the effective properties (a profile, ``--properties``
or the built-in local one, plus this command's overrides), starts the KCL
daemon on them and shows live progress per shard: records processed, lag
(``millisBehindLatest``) and the last checkpoint.

With the LocalStack profile (``--properties properties/localstack.properties``)
nothing is started: the daemon goes to the file's endpoints
(``$LOCALSTACK_ENDPOINT``, default 127.0.0.1:4566) unless ``--endpoint`` is
given. ``--engine moto|ministack`` starts that engine for the run (unless
``--endpoint`` is given), whatever the profile or a running ``kclpy-local up``
says; MiniStack is LocalStack-compatible without Docker, installed into the
cache on first use.

``--kinesis kinesis-mock`` puts Kinesis on kinesis-mock (started for the run on
a free loopback port) while DynamoDB and CloudWatch stay on moto or the
endpoint; it needs Node.js and installs the pinned ``kinesis-local`` into the
cache on first use.  ``--kinesis ferrokinesis`` does the same with ferrokinesis
(built with cargo into the cache on first use). The daemon reads Kinesis over
CBOR where the engine's records can be read so (ferrokinesis), over JSON
elsewhere (``isCBORProtocolDisabled``), unless ``--set
isCBORProtocolDisabled=...`` says otherwise.  When ``kclpy-local up`` runs,
its engines are used: a ``--kinesis`` of the same kind as the engine ``up`` started for Kinesis is that
one (nothing is started), another kind is refused (exit 2), since ``put``,
``leases`` and ``metrics`` would know only one of two engines.

The endpoint and why it was chosen (``--endpoint``, ``$KCLPY_LOCAL_ENDPOINT``,
the emulator ``up`` started, or the embedded emulator started for the run) is
one line on stderr: ``kclpy-local: endpoint URL (REASON)``.

``--kcl 3`` runs the same properties on KCL 3.x: the effective file is
translated from the 1.x form (SDK v2 credentials providers, polling, the
local start-up keys...), one line per change on stderr (``kclpy-local:
translated for KCL 3.x: ...``); ``--print-properties`` shows the translated file.

Several ``--stream`` options (with ``--kcl 3``) run one application on several
streams, the KCL's multi-stream mode: each stream is created (``--shards``
each) and named in ``streamNames``; the leases are kept per stream
(``account:stream:creationEpoch:shardId``), each record processor is told its
shard's stream, and the progress table has a stream column. A properties file
with ``streamNames`` does the same without ``--stream``; one ``--stream`` runs
that stream alone.

Ctrl-C (or SIGTERM) asks the daemon for a graceful shutdown: each record
processor gets ``shutdownRequested`` and may checkpoint; a second Ctrl-C kills
the daemon.  The last line says how it stopped, in words, with the daemon's
exit status (``stopped gracefully: 2 lease(s) released for another worker to
take (daemon exit status 143 = SIGTERM, as asked)``); the run then exits 0.
Each run has a directory of its own (``runs/<app>-<time>-<pid>`` in the state
directory, or ``--run-dir``, which one run at a time may hold) for the
effective properties, the progress file, the processors' ledger
(``$KCLPY_LOCAL_LEDGER`` unless it is set) and the daemon's log,
``daemon.log`` (``--log -`` sends it to stderr); its last lines are shown when it fails,
with the reason when the log names one (a record processor that failed or
timed out).  While the endpoint does not answer the daemon keeps retrying, and
the run says so once, and again when it answers.

``--restart`` supervises the daemon: when it exits with an error (not after a
requested stop) it is started again after a back-off (``--backoff`` seconds,
doubled after each restart up to 30 s, back to the start after 60 s of
running), at most ``--max-restarts`` times, with one line per restart naming
the exit code and the reason.  The new daemon resumes from the last
checkpoints; the progress counts accumulate across restarts.  Ctrl-C during
a back-off stops at once.

Everything that can be refused is refused before anything starts or any
request is sent: the options, and the effective properties as the run would
give them to the daemon (an endpoint the profile does not allow, a bad
``--set`` value, a key KCL 3.x cannot run). A lease table that holds another
stream's checkpoints (an application name used before on another stream) is
refused before the daemon starts. So is enhanced fan-out (``--kcl 3 --set
retrievalMode=FANOUT``) on a Kinesis engine that cannot serve it: moto, the
default, is refused by name; kinesis-mock (``--kinesis kinesis-mock``) and MiniStack
(``--engine ministack``) serve it; an endpoint of unknown kind is asked.

Exit codes: the daemon's, the last one's with ``--restart`` (0 after a
graceful shutdown that completed; 4 when a record processor failed or timed
out; 3 when the worker never started; 128+N when it died of signal N); 2 for bad
arguments or properties, a lease table of another stream, or a run directory
another run holds; 5/6 when the jars or Java are missing; 8 when the
emulator cannot be started or the endpoint cannot be reached.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

import javaproperties

from .. import _aws, _env
from .._config.generations import GENERATIONS, Generation
from .._config.keyspec import java_trim
from .._config.pipeline import Overrides, effective_values, prepare
from .._config.properties import detect_profile, read_properties, write_properties
from .._emulators.endpoints import DEFAULT_ENDPOINT, DEFAULT_REASON, Endpoint, resolve
from .._emulators.engines import (
    CLOUDWATCH_CBOR,
    KINESIS_ENGINES,
    cbor_disabled,
    first_use_note,
    make_engine,
    make_kinesis_engine,
)
from .._emulators.fanout import check_engine
from .._emulators.moto import DEFAULT_HOST, DEFAULT_PORT, ensure_port_free, free_port
from .._emulators.registry import use_running
from .._env import default_state_dir
from .._exceptions import DaemonError, EmulatorError, PropertiesError
from .._jvm.daemon import LOCAL_PROFILE, Daemon, known_generation, processor_command
from .._jvm.jars import DEFAULT_GENERATION
from .._jvm.rundir import open_run_directory
from .._jvm.supervise import DaemonLog, OutageWatch, RestartPolicy, Supervisor, endpoint_answers
from .._runtime.loop import check_environment
from .._runtime.progress import PROGRESS_ENV, ProgressBoard, ShardProgress
from . import _common
from ._common import (
    application_name,
    directory,
    endpoint_url,
    log_file,
    port_number,
    seconds,
    shard_count,
    stream_name,
)
from .up import add_engine_argument, engine_of

__all__ = ["RUN_PROFILE", "register"]

#: The built-in properties used when ``--properties`` is not given.
RUN_PROFILE = LOCAL_PROFILE
#: --restart: the back-off doubles up to this (or --backoff, if larger).
MAX_BACKOFF = 30.0
#: --restart: a daemon that ran this long before failing resets the back-off.
HEALTHY_AFTER = 60.0
DEFAULT_MAX_RESTARTS = 5
DEFAULT_BACKOFF = 1.0
_ENDPOINT_KEYS = ("kinesisEndpoint", "dynamoDBEndpoint", "cloudWatchEndpoint")
_CBOR_KEY = "isCBORProtocolDisabled"
_DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def register(subparsers: _common.Subparsers) -> None:
    summary = "run a record processor under the KCL daemon against the embedded emulator"
    p = _common.add_command(subparsers, "run", summary, _common.paragraph(__doc__, 1))
    p.add_argument(
        "processor",
        type=Path,
        metavar="PROCESSOR",
        help="the processor script (run with this Python) or an executable",
    )
    p.add_argument(
        "--stream",
        dest="streams",
        action="append",
        metavar="NAME",
        type=stream_name,
        help="the Kinesis stream (default: the properties' streamName, or streamNames); "
        "repeat it for one application on several streams (KCL 3.x, --kcl 3)",
    )
    p.add_argument(
        "--shards",
        type=shard_count,
        default=1,
        metavar="N",
        help="shard count of each stream created (default: %(default)s)",
    )
    p.add_argument(
        "--app",
        metavar="NAME",
        type=application_name,
        help="applicationName, also the lease table (default: the properties' value, "
        "or PROCESSOR's file name without suffix)",
    )
    _common.add_properties_option(
        p, "a properties file to start from (default: the built-in local profile)"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one property (repeatable)",
    )
    p.add_argument(
        "--endpoint",
        metavar="URL",
        type=endpoint_url,
        help="use this endpoint for Kinesis, DynamoDB and CloudWatch instead of "
        "starting the embedded emulator",
    )
    add_engine_argument(p)
    p.add_argument(
        "--kinesis",
        choices=KINESIS_ENGINES,
        default=None,
        help="the Kinesis engine: moto, or kinesis-mock (needs Node.js, installs "
        "kinesis-local on first use) or ferrokinesis (needs cargo, built on first use; "
        "read over CBOR), started for this run on a free loopback port; DynamoDB and "
        "CloudWatch stay on moto or the endpoint; default: the one `kclpy-local up` "
        "started, else moto. With `up` running, another kind than its engine is refused",
    )
    p.add_argument(
        "--port",
        type=port_number,
        default=None,
        metavar="PORT",
        help="the embedded emulator's port (default: 4566 if free, else any free port; "
        "0: any free port)",
    )
    p.add_argument(
        "--print-properties",
        action="store_true",
        help="print the effective properties and exit without starting anything",
    )
    _common.add_kcl_argument(
        p, "KCL generation (default: %(default)s); 3 translates the properties from the 1.x form"
    )
    p.add_argument(
        "--run-dir",
        type=directory,
        metavar="DIR",
        help="where the effective properties, the daemon log, the progress file and "
        "the ledger go (default: a new directory per run in the state directory)",
    )
    p.add_argument(
        "--log",
        metavar="FILE",
        type=log_file,
        help="the daemon's log file ('-' for stderr; default: daemon.log in the run directory)",
    )
    _common.add_cache_dir_argument(p, "the bootstrap cache directory")
    _common.add_java_argument(p)
    p.add_argument(
        "--ready-timeout",
        type=seconds(zero=False),
        default=None,
        metavar="SECONDS",
        help="give up when the worker has not started by then (default: wait)",
    )
    p.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="do not show per-shard progress",
    )
    _common.add_guard_argument(p)
    p.add_argument(
        "--restart",
        action="store_true",
        help="start the daemon again when it exits with an error (not after Ctrl-C), "
        "after a back-off; it resumes from the last checkpoints",
    )
    p.add_argument(
        "--max-restarts",
        type=int,
        default=None,
        metavar="N",
        help=f"with --restart: restart at most N times (default: {DEFAULT_MAX_RESTARTS})",
    )
    p.add_argument(
        "--backoff",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"with --restart: the first wait, doubled after each restart up to "
        f"{MAX_BACKOFF:.0f} s (or SECONDS if larger) and back to SECONDS after "
        f"{HEALTHY_AFTER:.0f} s of running (default: {DEFAULT_BACKOFF:g})",
    )
    p.set_defaults(func=_run)


# -- planning ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything decided before anything is started."""

    base: Path
    profile: str | None
    executable: str
    overrides: Overrides
    environ: Mapping[str, str]
    #: The streams (several: one application on several streams, KCL 3.x).
    streams: tuple[str, ...]
    app: str
    embedded: bool
    create_stream: bool
    #: Where the endpoint came from (``None``: the properties file's own endpoints).
    found: Endpoint | None = None
    #: The Kinesis engine to start for this run (``None``: none beside the endpoint).
    kinesis: str | None = None
    #: Endpoints of engines this run or ``up`` started whose CloudWatch answers the
    #: Smithy RPC v2 CBOR protocol (KCL 3.x's metrics); any other endpoint is asked.
    cbor_cloudwatch: frozenset[str] = frozenset()
    #: The keys ``--set`` gave (they win over what an engine asks for).
    explicit: frozenset[str] = frozenset()

    @property
    def stream(self) -> str:
        """The stream, or the streams separated by commas."""
        return ", ".join(self.streams)

    @property
    def several(self) -> bool:
        """Whether the run consumes several streams."""
        return len(self.streams) > 1


def _parse_overrides(items: list[str]) -> dict[str, str | None]:
    result: dict[str, str | None] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise _usage(f"--set expects KEY=VALUE, not {item!r}")
        result[key.strip()] = value.strip()
    return result


def _usage(message: str, hint: str | None = None) -> PropertiesError:
    exc = PropertiesError(message)
    exc.hint = hint
    return exc


def plan(args: argparse.Namespace, environ: Mapping[str, str]) -> Plan:
    check_environment(environ)  # the processors' KCLPY_LOCAL_* settings
    base: Path = args.properties if args.properties is not None else RUN_PROFILE
    if not base.is_file():
        what = "is a directory" if base.is_dir() else "not found"
        raise _usage(f"properties file {what}: {base}")
    profile = detect_profile(read_properties(base))
    overrides = _parse_overrides(args.overrides)
    explicit = frozenset(overrides)
    try:
        overrides["executableName"] = processor_command(args.processor)
    except DaemonError as exc:
        raise _usage(str(exc), exc.hint) from None

    env = dict(environ)
    kcl = known_generation(args.kcl)
    given: list[str] = args.streams or []
    _stream_overrides(given, kcl, overrides)
    if args.app:
        overrides["applicationName"] = args.app
    default_app = args.app or _SAFE_NAME.sub("-", args.processor.stem) or "kclpy-local"
    env.setdefault(_env.APP.name, default_app)
    # The file's values as the daemon gets them: substituted (the application
    # name may use ${KCLPY_LOCAL_APP}), with this command's options.
    values = effective_values(base, overrides=overrides, environ=env)
    # The built-in profile's stream is only a placeholder: a run names its stream.
    streams = kcl.streams(values) if given or args.properties is not None else ()
    if not streams:
        several = [g for g in GENERATIONS.values() if g.several_streams(values)]
        if several and args.properties is not None:
            raise _usage(
                f"{base} names several streams ({several[0].streams_key}): KCL "
                f"{several[0].label} runs them",
                hint=f"add{several[0].kcl_option}",
            )
        raise _usage("no stream: give --stream NAME (the properties file has no streamName)")
    if len(streams) == 1 and not kcl.several_streams(values):
        env.setdefault(_env.STREAM.name, streams[0])

    found = None
    # The LocalStack profile goes where its file says, unless told to start an engine.
    own_endpoints = args.endpoint is None and profile == "localstack" and args.engine is None
    if own_endpoints:
        for key in _ENDPOINT_KEYS:
            if value := values.get(key):
                overrides[key] = value
    elif args.endpoint or profile != "aws":
        found = resolve(args.endpoint, "dynamodb", environ=environ)
    target = found.url if found is not None and found.source != "default" else None
    embedded = found is not None and target is None
    if target is not None:
        for key in _ENDPOINT_KEYS:
            overrides[key] = target
        env[_env.ENDPOINT.name] = target
    start_kinesis = None if args.kinesis == "moto" else args.kinesis
    cbor_cloudwatch: frozenset[str] = frozenset()
    if found is not None and found.record is not None:
        if found.record.engine in CLOUDWATCH_CBOR:
            cbor_cloudwatch = frozenset({found.record.endpoint})
        # `kclpy-local up` runs: its engines, or a refusal (never a second engine).
        use_running(found.record, args.engine, default_state_dir(), "--engine", role="main")
        record = use_running(found.record, args.kinesis, default_state_dir())
        start_kinesis = None
        if record.kinesis is not None:
            overrides["kinesisEndpoint"] = record.kinesis.endpoint
            if _CBOR_KEY not in explicit:
                overrides[_CBOR_KEY] = str(cbor_disabled(record.kinesis.engine)).lower()
    endpoint = target or overrides.get("kinesisEndpoint") or values.get("kinesisEndpoint")
    local = embedded or _aws.is_local_endpoint(endpoint)
    if local:
        for key, value in _DUMMY_CREDENTIALS.items():
            env.setdefault(key, value)
    return Plan(
        base=base,
        profile=profile,
        executable=str(overrides["executableName"]),
        overrides=overrides,
        environ=env,
        streams=streams,
        app=values.get("applicationName") or default_app,
        embedded=embedded,
        create_stream=local,
        found=found,
        kinesis=start_kinesis,
        cbor_cloudwatch=cbor_cloudwatch,
        explicit=explicit,
    )


def _stream_overrides(given: list[str], kcl: Generation, overrides: dict[str, str | None]) -> None:
    """The overrides for the ``--stream`` options ``given``: one names ``streamName`` (and
    removes the file's other stream keys), several name the generation's key for several
    streams (and remove ``streamName`` and ``streamArn``); none leaves the file's."""
    duplicates = sorted({name for name in given if given.count(name) > 1})
    if duplicates:
        raise _usage(f"--stream {duplicates[0]} is given twice")
    if len(given) == 1:
        overrides["streamName"] = given[0]
        for other in GENERATIONS.values():
            if other.streams_key is not None:
                overrides[other.streams_key] = None
    elif given:
        if kcl.streams_key is None:
            able = next(g for g in GENERATIONS.values() if g.streams_key is not None)
            raise _usage(
                f"several --stream options: one application on several streams is the KCL's "
                f"multi-stream mode, which KCL {able.label} has and KCL {kcl.label} has not",
                hint=f"add{able.kcl_option}",
            )
        overrides[kcl.streams_key] = ", ".join(given)
        overrides["streamName"] = None
        overrides["streamArn"] = None


def _embedded_port(requested: int | None) -> int:
    """The requested port; by default 4566 (where the other commands look) when it is free."""
    if requested is not None:
        return requested
    try:
        ensure_port_free(DEFAULT_HOST, DEFAULT_PORT)
    except EmulatorError:
        return 0
    return DEFAULT_PORT


def _with_endpoint(the_plan: Plan, endpoint: str, engine: str | None = None) -> Plan:
    """The plan on ``endpoint`` for all three services (the embedded ``engine``'s)."""
    overrides = {**the_plan.overrides, **dict.fromkeys(_ENDPOINT_KEYS, endpoint)}
    known = the_plan.cbor_cloudwatch | ({endpoint} if engine in CLOUDWATCH_CBOR else set())
    return replace(
        the_plan,
        overrides=overrides,
        environ={**the_plan.environ, _env.ENDPOINT.name: endpoint},
        cbor_cloudwatch=frozenset(known),
    )


def _answers_cbor(the_plan: Plan) -> Callable[[str], bool]:
    """Whether a CloudWatch endpoint answers the Smithy RPC v2 CBOR protocol: known for
    the engines this run or ``up`` started, asked (one request) of any other."""
    return lambda url: url in the_plan.cbor_cloudwatch or _aws.rpc_v2_cbor_problem(url) is None


def write_effective(the_plan: Plan, path: Path, generation: int = DEFAULT_GENERATION) -> Path:
    """Write the effective properties to ``path`` atomically (temp file, then rename);
    for KCL 3.x translated from the 1.x form, with one line per change on stderr."""
    document = _effective(the_plan, generation)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_properties(path, document)
    return path


def _effective(the_plan: Plan, kcl: int) -> javaproperties.PropertiesFile:
    """The effective properties (the properties pipeline, unvalidated: the daemon
    validates what it is given); for KCL 3.x translated (the notes on stderr)."""
    # The profile is the file's own, as the plan's is.
    prepared = prepare(
        the_plan.base,
        generation=kcl,
        overrides=the_plan.overrides,
        environ=the_plan.environ,
        validate=False,
        answers_cbor=_answers_cbor(the_plan),
    )
    for line in prepared.notes:
        print(line, file=sys.stderr)
    return prepared.effective


def _endpoint_of(the_plan: Plan) -> str | None:
    return the_plan.overrides.get("kinesisEndpoint") or the_plan.environ.get(_env.ENDPOINT.name)


# -- running ---------------------------------------------------------------------


def _with_kinesis(the_plan: Plan, kinesis_endpoint: str, engine: str) -> Plan:
    """Kinesis on the engine ``engine`` at ``kinesis_endpoint``, over CBOR where the
    Java SDK reads its records so (ferrokinesis), over JSON elsewhere (kinesis-mock's
    CBOR GetRecords answers carry each record's Data as text, which the SDK
    refuses); a ``--set isCBORProtocolDisabled`` stays as given."""
    overrides = {**the_plan.overrides, "kinesisEndpoint": kinesis_endpoint}
    if _CBOR_KEY not in the_plan.explicit:
        overrides[_CBOR_KEY] = str(cbor_disabled(engine)).lower()
    return replace(the_plan, overrides=overrides)


def _where(the_plan: Plan, embedded: str | None = None) -> str:
    """The endpoint line's text (``URL (REASON)``): what the plan found, or the
    embedded emulator (``embedded``: ``pid N`` once started) and why."""
    found = the_plan.found
    if found is None:
        return (
            f"{_endpoint_of(the_plan) or 'AWS'} "
            f"(the properties file's own endpoints: {the_plan.base})"
        )
    if not the_plan.embedded:
        return found.describe()
    url = the_plan.overrides.get("dynamoDBEndpoint") or DEFAULT_ENDPOINT
    why = found.reason.removeprefix(f"{DEFAULT_REASON}: ")
    pid = f", {embedded}" if embedded else ""
    text = f"{url} (embedded emulator started for this run{pid}: {why}"
    if embedded and url != DEFAULT_ENDPOINT:
        text += f"; other commands need --endpoint {url}"
    return text + ")"


@contextlib.contextmanager
def _emulator(
    the_plan: Plan,
    port: int,
    log_path: Path,
    kinesis: str | None = None,
    aws_engine: str = "moto",
) -> Iterator[Plan]:
    """Start what the run needs of its own (the embedded engine, a Kinesis engine)
    and say on stderr, in one line, which endpoint the run uses and why."""
    if kinesis not in (None, "moto") and not the_plan.create_stream:
        raise _usage(f"--kinesis {kinesis} is for local runs; these properties reach AWS")
    if kinesis not in (None, "moto") and aws_engine != "moto":
        raise _usage(f"--engine {aws_engine} serves Kinesis itself; it takes no --kinesis")
    with contextlib.ExitStack() as stack:
        live = the_plan
        where = _where(the_plan)
        if the_plan.embedded:
            # A session of its own: Ctrl-C in the terminal must not stop the emulator
            # before the processors have checkpointed.
            emulator = make_engine(aws_engine, port, log_path=log_path, session=True)
            emulator.start()
            stack.callback(emulator.stop)
            live = _with_endpoint(the_plan, emulator.endpoint_url, aws_engine)
            where = _where(live, f"pid {emulator.pid}")
        if kinesis not in (None, "moto"):  # in a process group of its own, too
            engine = make_kinesis_engine(kinesis, log_path=log_path.with_name(f"{kinesis}.log"))
            note = first_use_note(kinesis)
            if note is not None:
                print(f"kclpy-local: {note}", file=sys.stderr, flush=True)
            engine.start()
            stack.callback(engine.stop)
            live = _with_kinesis(live, engine.endpoint_url, kinesis)
            where += (
                f"; Kinesis on {kinesis} at {engine.endpoint_url} (started for this run, "
                f"pid {engine.pid}; other commands need --endpoint {engine.endpoint_url})"
            )
        print(f"kclpy-local: endpoint {where}", file=sys.stderr)
        yield live


def _ensure_streams(the_plan: Plan, shards: int) -> list[_aws.StreamInfo]:
    """Each stream of the run, created first when missing (on a local endpoint)."""
    endpoint = _endpoint_of(the_plan)
    with _aws.endpoint_errors(endpoint):
        kinesis = _aws.client("kinesis", endpoint, max_attempts=2)
        if the_plan.create_stream:
            return [_aws.ensure_stream(kinesis, name, shards) for name in the_plan.streams]
        return [_aws._describe(kinesis, name) for name in the_plan.streams]
    raise AssertionError("unreachable")  # pragma: no cover


class _View:
    """The run's console on stderr: notices, and per-shard progress redrawn in place
    on a terminal, lines otherwise (a :class:`~kclpy_local._jvm.supervise.Console`)."""

    def __init__(self, stream: TextIO, enabled: bool, several: bool = False) -> None:
        self._stream = stream
        self._enabled = enabled
        self._several = several
        self._tty = stream.isatty()
        self._drawn = 0
        self._last_line = ""
        self._last_print = 0.0

    def show(self, board: ProgressBoard, changed: bool) -> None:
        """Called on every tick; draws when something changed (lines at most every 2 s)."""
        if not self._enabled:
            return
        if self._tty:
            if not changed:
                return
            lines = render(board.shards(), self._several)
            if self._drawn:
                self._stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._stream.write("\n".join(lines) + "\n")
            self._drawn = len(lines)
        else:
            line = "progress: " + "; ".join(_summary(s, self._several) for s in board.shards())
            now = time.monotonic()
            if line != self._last_line and now - self._last_print >= 2.0:
                self._stream.write(line + "\n")
                self._last_line, self._last_print = line, now
        self._stream.flush()

    def forget(self) -> None:
        """Print below the table from now on."""
        self._drawn = 0

    def say(self, text: str) -> None:
        print(f"kclpy-local: {text}", file=self._stream)

    def summary(self, shard: ShardProgress) -> str:
        return _summary(shard, self._several)


def _summary(shard: ShardProgress, several: bool = False) -> str:
    lag = "?" if shard.millis_behind_latest is None else f"{shard.millis_behind_latest}ms"
    where = f"{shard.stream or '?'}/{shard.shard_id}" if several else shard.shard_id
    return f"{where} {shard.records} records, lag {lag}, checkpoint {shard.checkpoint or '-'}"


def render(shards: list[ShardProgress], several: bool = False) -> list[str]:
    """The progress table's lines (``several``: a stream column first)."""
    header: tuple[str, ...] = ("shard", "state", "records", "lag ms", "checkpoint")
    if several:
        header = ("stream", *header)
    rows = [
        (
            *((s.stream or "?",) if several else ()),
            s.shard_id,
            s.state,
            str(s.records),
            "-" if s.millis_behind_latest is None else str(s.millis_behind_latest),
            s.checkpoint or "-",
        )
        for s in shards
    ]
    if not rows:
        return ["waiting for the first shard to be assigned ..."]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in [header, *rows]
    ]


def _refuse_early(the_plan: Plan, args: argparse.Namespace) -> None:
    """Refuse, before anything starts and before any request is sent, what the run
    would be refused later: the options, and the effective properties as the
    daemon would get them (the embedded engines' endpoints are on loopback)."""
    if args.shards < 1:
        raise _usage(f"--shards must be 1 or more, not {args.shards}")
    if args.kinesis not in (None, "moto") and not the_plan.create_stream:
        raise _usage(f"--kinesis {args.kinesis} is for local runs; these properties reach AWS")
    checked = the_plan
    if checked.embedded:
        checked = _with_endpoint(checked, f"http://{DEFAULT_HOST}:{DEFAULT_PORT}")
    if the_plan.kinesis is not None:
        checked = _with_kinesis(checked, f"http://{DEFAULT_HOST}:{DEFAULT_PORT}", the_plan.kinesis)
    prepared = prepare(
        checked.base, generation=args.kcl, overrides=checked.overrides, environ=checked.environ
    )
    try:
        prepared.refuse("refused before anything started (the file with this command's options)")
    except PropertiesError as exc:
        exc.hint = "show the effective properties with --print-properties"
        raise
    if prepared.generation.reads_by_fanout(prepared.values):
        engine, endpoint = _kinesis_engine(the_plan, engine_of(args))
        region = java_trim(prepared.values.get("regionName", "")) or "us-east-1"
        http2 = prepared.generation.local_kinesis_http2(prepared.values)
        check_engine(engine, endpoint, region, http2=http2)


def _kinesis_engine(the_plan: Plan, aws_engine: str) -> tuple[str | None, str | None]:
    """The kind of engine that will serve the run's Kinesis (``None``: unknown) and its
    endpoint (``None``: one started for the run)."""
    if the_plan.kinesis is not None:
        return the_plan.kinesis, None
    if the_plan.found is not None and the_plan.found.record is not None:
        record = the_plan.found.record
        return record.kinesis_engine, record.kinesis_endpoint
    if the_plan.embedded:
        return aws_engine, None
    return None, _endpoint_of(the_plan)


def restart_policy(args: argparse.Namespace) -> RestartPolicy | None:
    """The back-off of ``--restart``; ``None`` without it."""
    if not args.restart:
        for given, flag in ((args.max_restarts, "--max-restarts"), (args.backoff, "--backoff")):
            if given is not None:
                raise _usage(f"{flag} is for --restart", hint="add --restart")
        return None
    max_restarts = DEFAULT_MAX_RESTARTS if args.max_restarts is None else args.max_restarts
    backoff = DEFAULT_BACKOFF if args.backoff is None else args.backoff
    if max_restarts < 0:
        raise _usage(f"--max-restarts must be 0 or more, not {max_restarts}")
    if not 0 <= backoff < float("inf"):  # also refuses nan
        raise _usage(f"--backoff must be 0 or more seconds, not {backoff:g}")
    return RestartPolicy(
        max_restarts=max_restarts,
        initial=backoff,
        maximum=max(MAX_BACKOFF, backoff),
        healthy_after=HEALTHY_AFTER,
    )


def _probe(the_plan: Plan) -> Callable[[], bool] | None:
    """Whether every local endpoint of the run answers; ``None`` for AWS endpoints."""
    urls = sorted({url for key in _ENDPOINT_KEYS if (url := the_plan.overrides.get(key))})
    if not urls or not all(_aws.is_local_endpoint(url) for url in urls):
        return None
    return lambda: all(endpoint_answers(url) for url in urls)


def _run(args: argparse.Namespace) -> int:
    known_generation(args.kcl)  # no such KCL: the error before anything starts
    policy = restart_policy(args)
    the_plan = plan(args, os.environ)
    if args.print_properties:
        shown = (
            the_plan
            if not the_plan.embedded
            else _with_endpoint(
                the_plan,
                f"http://{DEFAULT_HOST}:{_embedded_port(args.port) or free_port()}",
                engine_of(args),
            )
        )
        where = _where(shown)
        if the_plan.kinesis is not None:
            shown = _with_kinesis(shown, f"http://{DEFAULT_HOST}:{free_port()}", the_plan.kinesis)
            where += f"; Kinesis on a {the_plan.kinesis} started for the run"
        print(f"kclpy-local: endpoint {where}", file=sys.stderr)
        document = _effective(shown, args.kcl)
        kcl = known_generation(args.kcl)
        translated = f", translated for KCL {kcl.label}" if kcl.translates else ""
        sys.stdout.write(
            f"# effective properties: {shown.base} plus kclpy-local run's overrides{translated}\n"
        )
        if the_plan.embedded:
            sys.stdout.write("# (the embedded emulator's port is chosen when it starts)\n")
        sys.stdout.write(document.dumps(separator=" = ", ensure_ascii=True))
        return 0

    _refuse_early(the_plan, args)
    started = time.time()
    err = sys.stderr

    with contextlib.ExitStack() as stack:
        run_dir = stack.enter_context(open_run_directory(the_plan.app, explicit=args.run_dir))
        print(f"kclpy-local: run directory: {run_dir}", file=err)
        progress_path = run_dir / "progress.jsonl"
        progress_path.write_bytes(b"")  # this run's, empty until its processors write
        properties_path = run_dir / "effective.properties"
        if args.log == "-":
            log_stream: TextIO = err
        else:
            log_path = Path(args.log) if args.log else run_dir / "daemon.log"
            log_stream = stack.enter_context(log_path.open("w", encoding="utf-8"))
            print(f"kclpy-local: daemon log: {log_path}", file=err)
        live = stack.enter_context(
            _emulator(
                the_plan,
                _embedded_port(args.port),
                run_dir / "emulator.log",
                the_plan.kinesis,
                engine_of(args),
            )
        )
        infos = _ensure_streams(live, args.shards)
        for info in infos:
            if info.shard_ids and len(info.shard_ids) != args.shards and args.shards != 1:
                print(
                    f"kclpy-local: stream {info.name!r} exists with {len(info.shard_ids)} "
                    f"shard(s); --shards {args.shards} ignored",
                    file=err,
                )
        ledger = _env.LEDGER.get(live.environ) or str(run_dir / "ledger.jsonl")
        print(
            f"kclpy-local: ${_env.LEDGER.name} (the example processors' ledger): {ledger}", file=err
        )
        live = replace(
            live,
            environ={**live.environ, PROGRESS_ENV: str(progress_path), _env.LEDGER.name: ledger},
        )
        write_effective(live, properties_path, args.kcl)
        sink = DaemonLog(log_stream, OutageWatch(_probe(live)))

        def make_daemon() -> Daemon:
            return Daemon(
                properties_path,
                **_common.daemon_options(args),
                env=live.environ,
                log=sink,
                answers_cbor=_answers_cbor(live),
                ready_timeout=args.ready_timeout,
                cwd=Path.cwd(),
            )

        streams = ", ".join(f"{i.name!r} ({len(i.shard_ids)} shard(s))" for i in infos)
        print(
            f"kclpy-local: application {live.app!r}, stream{'s' if live.several else ''} "
            f"{streams}, processor {live.executable}",
            file=err,
        )
        print(f"kclpy-local: effective properties: {properties_path}", file=err)
        supervisor = Supervisor(
            sink=sink,
            board=ProgressBoard(progress_path),
            console=_View(err, args.progress, live.several),
            started=started,
            ready_timeout=args.ready_timeout,
            policy=policy,
        )
        return supervisor.run(make_daemon)
    raise AssertionError("unreachable")  # pragma: no cover
