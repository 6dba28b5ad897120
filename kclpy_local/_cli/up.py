"""``kclpy-local up``: start the embedded emulator in the background.

Start moto in server mode on 127.0.0.1 (Kinesis, DynamoDB, CloudWatch), or with
--localstack LocalStack in Docker (docker compose up -d --wait). The endpoint
URL is printed on stdout. With --kinesis kinesis-mock or --kinesis ferrokinesis,
Kinesis is served by that engine on a second loopback port, and its URL is a
second line (--json: one JSON document with every endpoint).

The emulator's state (a pid file and its log) lives in a per-user state
directory: ``--state-dir``, else ``$KCLPY_LOCAL_STATE``, else
``$XDG_STATE_HOME/kclpy-local``, else ``~/.local/state/kclpy-local``. The pid
file is JSON: ``{"pid", "port", "endpoint", "started_at", "log_file", "engine"}``.

``up`` prints the endpoint URL on stdout (and nothing else there), so that
``ENDPOINT=$(kclpy-local up)`` works. Running it again while the emulator
answers only reports it (exit 0); a pid file naming a dead process is removed.

``up --kinesis kinesis-mock`` starts kinesis-mock (npm ``kinesis-local``,
installed into the per-user cache on first use; needs Node.js) beside moto, on
a second loopback port (``--kinesis-port``, default any free port): Kinesis is
served there, DynamoDB and CloudWatch stay on moto. ``up --kinesis
ferrokinesis`` does the same with ferrokinesis (crates.io, built with cargo
into the per-user cache on first use), the one engine whose records the
daemon reads over CBOR. stdout then has two
lines, the moto endpoint and the Kinesis endpoint; ``--json`` prints one JSON
document instead (``endpoint``, ``kinesis_endpoint``, ``dynamodb_endpoint``,
``cloudwatch_endpoint``, ``kinesis_engine``, pids), with or without
``--kinesis``. The pid file then also has ``"kinesis": {"engine", "version",
"pid", "port", "tls_port", "endpoint", "log_file"}``; ``down`` stops both.

``up --engine ministack`` starts MiniStack instead of moto (PyPI ``ministack``,
installed on first use into a virtual environment of its own in the per-user
cache): LocalStack's wire protocol on one loopback port, without Docker, for
``properties/localstack.properties`` (set ``LOCALSTACK_ENDPOINT`` to the URL
printed). The pid file then says ``"engine": "ministack"``.

``up --localstack [--compose-file FILE]`` starts LocalStack instead, with
``docker compose -f FILE up -d --wait`` (default FILE: ``docker-compose.yml`` in
the current directory), and prints its endpoint URL the same way. Without a
docker CLI or a reachable Docker engine it fails with exit code 8.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from .._emulators.engines import (
    AWS_ENGINES,
    DEFAULT_ENGINE,
    KINESIS_ENGINES,
    Engine,
    KinesisEngine,
    check_answers,
    first_use_note,
    make_engine,
    make_kinesis_engine,
    version_of,
)
from .._emulators.localstack import DEFAULT_COMPOSE_FILE, compose_up
from .._emulators.moto import DEFAULT_PORT
from .._emulators.registry import (
    LOG_FILE,
    PID_FILE,
    EmulatorRecord,
    KinesisRecord,
    check_state_dir,
    kinesis_is_live,
    kinesis_log_file,
    locked,
    read_record,
    record_is_live,
    remove_record,
    stop_kinesis,
    write_record,
)
from .._env import default_state_dir
from .._exceptions import EmulatorError, UsageError
from . import _common
from ._common import directory, port_number, seconds

__all__ = ["register"]

logger = logging.getLogger(__name__)


def state_dir_of(args: argparse.Namespace) -> Path:
    chosen: Path | None = args.state_dir
    return check_state_dir(chosen if chosen is not None else default_state_dir())


def register(subparsers: _common.Subparsers) -> None:
    summary = "start the embedded emulator (moto) in the background, or LocalStack"
    p = _common.add_command(subparsers, "up", summary, _common.paragraph(__doc__, 1))
    p.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help="port to serve (0: any free port)"
    )
    p.add_argument("--foreground", action="store_true", help="run in this terminal until Ctrl-C")
    p.add_argument(
        "--state-dir", type=directory, default=None, help="where the pid file and log go"
    )
    p.add_argument(
        "--timeout",
        type=seconds(zero=False),
        default=None,
        help="seconds to wait for readiness (default 30; 600 with --localstack, "
        "which may pull the image first)",
    )
    add_engine_argument(p)
    p.add_argument(
        "--kinesis",
        choices=KINESIS_ENGINES,
        default="moto",
        help="the Kinesis engine: moto (default), or kinesis-mock (needs Node.js; installs "
        "kinesis-local on first use) or ferrokinesis (needs cargo; built on first use) "
        "beside moto on a second port",
    )
    p.add_argument(
        "--kinesis-port",
        type=port_number,
        default=0,
        metavar="PORT",
        help="the --kinesis engine's port (default 0: any free port)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the endpoints and pids as one JSON document instead of URL lines",
    )
    add_localstack_arguments(p, "start")
    p.set_defaults(func=run)


def add_engine_argument(parser: argparse.ArgumentParser) -> None:
    """``--engine moto|ministack`` (shared with ``run``)."""
    parser.add_argument(
        "--engine",
        choices=AWS_ENGINES,
        default=None,
        help="what serves Kinesis, DynamoDB and CloudWatch on the port: moto (default), or "
        "MiniStack, LocalStack-compatible without Docker (installs ministack into the "
        "cache on first use)",
    )


def engine_of(args: argparse.Namespace) -> str:
    chosen: str | None = args.engine
    return chosen if chosen is not None else DEFAULT_ENGINE


def add_localstack_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    """``--localstack`` and ``--compose-file FILE`` (shared with ``down``)."""
    parser.add_argument(
        "--localstack",
        action="store_true",
        help=f"{verb} LocalStack with docker compose instead (needs Docker)",
    )
    parser.add_argument(
        "--compose-file",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"the compose file for --localstack (default: ./{DEFAULT_COMPOSE_FILE})",
    )


def compose_file_of(args: argparse.Namespace) -> Path:
    chosen: Path | None = args.compose_file
    return chosen if chosen is not None else Path(DEFAULT_COMPOSE_FILE)


def run(args: argparse.Namespace) -> int:
    if args.localstack:
        if args.kinesis != "moto" or args.kinesis_port or args.engine is not None:
            raise UsageError("--localstack takes no --engine, --kinesis or --kinesis-port")
        return _run_localstack(args)
    if args.compose_file is not None:
        raise UsageError("--compose-file needs --localstack")
    if args.kinesis_port and args.kinesis == "moto":
        raise UsageError("--kinesis-port needs --kinesis kinesis-mock or ferrokinesis")
    if engine_of(args) != "moto" and args.kinesis != "moto":
        raise UsageError(f"--engine {args.engine} serves Kinesis itself; it takes no --kinesis")
    if args.timeout is None:
        args.timeout = 30.0
    state_dir = state_dir_of(args)
    if args.foreground:
        return _run_foreground(args, state_dir)
    with locked(state_dir):
        existing = _existing(state_dir, args)
        if existing is not None:
            return existing
        emulator, engine, record = _start(args, state_dir, detach=True)
        pid = emulator.release()
        if engine is not None:
            engine.release()
    _print_endpoints(args, record)
    print(
        f"emulator started{_engine_label(record)}: pid {pid}, ready in "
        f"{emulator.startup_seconds or 0.0:.2f}s, log {record.log_file}; "
        "stop it with: kclpy-local down",
        file=sys.stderr,
    )
    if engine is not None and record.kinesis is not None:
        print(
            f"{engine.label} {engine.version} started for Kinesis: pid {record.kinesis.pid}, "
            f"ready in {engine.startup_seconds or 0.0:.2f}s, log {record.kinesis.log_file}",
            file=sys.stderr,
        )
    return 0


def _engine_label(record: EmulatorRecord) -> str:
    """`` (MiniStack 1.5.33)`` for an engine other than moto."""
    if record.engine == DEFAULT_ENGINE:
        return ""
    return f" ({record.engine} {record.version})".replace("ministack", "MiniStack")


def _start(
    args: argparse.Namespace, state_dir: Path, *, detach: bool
) -> tuple[Engine, KinesisEngine | None, EmulatorRecord]:
    """Start the engine (and a Kinesis engine when asked) and write the pid file; what
    started is stopped again when a later step fails. ``detach``: they may outlive
    this process."""
    log_path = state_dir / LOG_FILE
    emulator = make_engine(
        engine_of(args), args.port, log_path=log_path, detach=detach, startup_timeout=args.timeout
    )
    emulator.start()
    engine: KinesisEngine | None = None
    try:
        engine = _start_kinesis(args, state_dir, detach=detach)
        record = _write(state_dir, emulator, log_path, engine)
    except BaseException:
        if engine is not None:
            engine.stop()
        emulator.stop()
        raise
    return emulator, engine, record


def _start_kinesis(
    args: argparse.Namespace, state_dir: Path, *, detach: bool
) -> KinesisEngine | None:
    """Start the Kinesis engine ``--kinesis`` asks for (none for moto)."""
    if args.kinesis == "moto":
        return None
    engine = make_kinesis_engine(
        args.kinesis,
        args.kinesis_port,
        log_path=state_dir / kinesis_log_file(args.kinesis),
        detach=detach,
        startup_timeout=args.timeout,
    )
    note = first_use_note(args.kinesis)
    if note is not None:
        print(f"kclpy-local: {note}", file=sys.stderr, flush=True)
    return engine.start()


def _print_json(document: dict[str, object]) -> None:
    print(json.dumps(document, indent=2, sort_keys=True))


def _print_endpoints(args: argparse.Namespace, record: EmulatorRecord) -> None:
    """The moto endpoint, then the Kinesis one if it differs (or one JSON document)."""
    if args.json:
        _print_json(
            {
                "endpoint": record.endpoint,
                "kinesis_endpoint": record.kinesis_endpoint,
                "dynamodb_endpoint": record.endpoint,
                "cloudwatch_endpoint": record.endpoint,
                "engine": record.engine,
                "kinesis_engine": record.kinesis.engine if record.kinesis else record.engine,
                "pid": record.pid,
                "kinesis_pid": record.kinesis.pid if record.kinesis else record.pid,
                "started_at": record.started_at,
            }
        )
        return
    print(record.endpoint)
    if record.kinesis is not None:
        if args.kinesis != "moto":
            print(record.kinesis.endpoint)
        else:  # one line, as scripts that did not ask for a Kinesis engine expect
            print(
                f"note: Kinesis is served by {record.kinesis.engine} at {record.kinesis.endpoint}",
                file=sys.stderr,
            )


def _run_localstack(args: argparse.Namespace) -> int:
    if args.foreground or args.port != DEFAULT_PORT or args.state_dir is not None:
        raise UsageError(
            "--localstack takes no --foreground, --port or --state-dir "
            "(the compose file sets the port)"
        )
    compose_file = compose_file_of(args)
    endpoint = compose_up(compose_file, timeout=args.timeout or 600.0)
    if args.json:
        _print_json(
            {
                "endpoint": endpoint,
                "kinesis_endpoint": endpoint,
                "dynamodb_endpoint": endpoint,
                "cloudwatch_endpoint": endpoint,
                "kinesis_engine": "localstack",
            }
        )
    else:
        print(endpoint)
    option = "" if args.compose_file is None else f" --compose-file {compose_file}"
    print(
        f"LocalStack is up ({compose_file}); stop it with: kclpy-local down --localstack{option}",
        file=sys.stderr,
    )
    return 0


def _existing(state_dir: Path, args: argparse.Namespace) -> int | None:
    """Report an emulator that already runs (0), fail on a hung one, clean a stale file."""
    record = read_record(state_dir)
    if record is None:
        if (state_dir / PID_FILE).exists():
            remove_record(state_dir)
        return None
    if not record_is_live(record):
        print(f"removing stale pid file (pid {record.pid} is gone)", file=sys.stderr)
        if stop_kinesis(record) and record.kinesis is not None:
            print(
                f"stopped its {record.kinesis.engine} (pid {record.kinesis.pid})",
                file=sys.stderr,
            )
        remove_record(state_dir)
        return None
    try:
        check_answers(record.engine, record.endpoint)
    except EmulatorError as exc:
        err = EmulatorError(f"emulator pid {record.pid} is running but does not answer: {exc}")
        err.hint = "stop it with: kclpy-local down"
        raise err from exc
    if args.engine is not None and args.engine != record.engine:
        err = EmulatorError(f"an emulator already runs (pid {record.pid}) on {record.engine}")
        err.hint = f"stop it with: kclpy-local down, then: kclpy-local up --engine {args.engine}"
        raise err
    if args.kinesis != "moto":
        running = record.kinesis.engine if record.kinesis is not None else "moto"
        if running != args.kinesis:
            err = EmulatorError(
                f"an emulator already runs (pid {record.pid}) with Kinesis on {running}"
            )
            err.hint = (
                f"stop it with: kclpy-local down, then: kclpy-local up --kinesis {args.kinesis}"
            )
            raise err
        if not kinesis_is_live(record):
            err = EmulatorError(
                f"the emulator's {running} (pid {record.kinesis and record.kinesis.pid}) is gone"
            )
            err.hint = "stop the rest with: kclpy-local down"
            raise err
    _print_endpoints(args, record)
    print(
        f"emulator already running: pid {record.pid}, since {record.started_at}",
        file=sys.stderr,
    )
    return 0


def _write(
    state_dir: Path,
    emulator: Engine,
    log_path: Path,
    engine: KinesisEngine | None = None,
) -> EmulatorRecord:
    assert emulator.pid is not None
    kinesis = None
    if engine is not None:
        assert engine.pid is not None
        kinesis = KinesisRecord(
            engine=engine.name,
            version=engine.version,
            pid=engine.pid,
            port=engine.port,
            tls_port=engine.tls_port,
            endpoint=engine.endpoint_url,
            log_file=str(state_dir / kinesis_log_file(engine.name)),
        )
    record = EmulatorRecord(
        pid=emulator.pid,
        port=emulator.port,
        endpoint=emulator.endpoint_url,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        log_file=str(log_path),
        kinesis=kinesis,
        engine=emulator.name,
        version=version_of(emulator),
    )
    write_record(state_dir, record)
    return record


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _run_foreground(args: argparse.Namespace, state_dir: Path) -> int:
    with locked(state_dir):
        existing = _existing(state_dir, args)
        if existing is not None:
            return existing
        emulator, engine, record = _start(args, state_dir, detach=False)
    pid = emulator.pid
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    failed: Engine | KinesisEngine = emulator
    try:
        _print_endpoints(args, record)
        sys.stdout.flush()
        print(
            f"emulator running in the foreground: pid {pid}, log {record.log_file}; Ctrl-C stops it",
            file=sys.stderr,
            flush=True,
        )
        if engine is None:
            code = emulator.wait()
        else:
            while True:  # until one of the two exits
                code = emulator.wait(0.5)
                if code is not None:
                    break
                code = engine.wait(0.0)
                if code is not None:
                    failed = engine
                    break
    except KeyboardInterrupt:
        code = None
    finally:
        signal.signal(signal.SIGTERM, previous)
        if engine is not None:
            engine.stop()
        emulator.stop()
        remove_record(state_dir, pid)
    if code is None or code in (0, -signal.SIGTERM, -signal.SIGINT):
        print("emulator stopped", file=sys.stderr)
        return 0
    tail = "\n".join(f"  {ln}" for ln in failed.output_tail())
    name = "the emulator" if failed is emulator else failed.label
    raise EmulatorError(f"{name} exited with code {code}\n{tail}".rstrip())
