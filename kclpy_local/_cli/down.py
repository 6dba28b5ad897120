"""``kclpy-local down``: stop the emulator that ``kclpy-local up`` started.

Stop the background emulator (SIGTERM, then SIGKILL) and remove its pid file;
with --localstack, docker compose down.

With ``up --kinesis kinesis-mock`` (or ``ferrokinesis``) that is moto and that
engine (its process group); one left running after moto went away is stopped too.

``down --localstack [--compose-file FILE]`` runs ``docker compose -f FILE down``.
"""

from __future__ import annotations

import argparse

from .._emulators import registry
from .._emulators.localstack import compose_down
from .._emulators.moto import stop_pid
from .._exceptions import UsageError
from . import _common
from ._common import directory, seconds
from .up import add_localstack_arguments, compose_file_of, state_dir_of

__all__ = ["register"]


def register(subparsers: _common.Subparsers) -> None:
    summary = "stop the emulator started by 'kclpy-local up'"
    p = _common.add_command(subparsers, "down", summary, _common.paragraph(__doc__, 1))
    p.add_argument("--state-dir", type=directory, default=None, help="where the pid file is")
    p.add_argument(
        "--timeout",
        type=seconds(),
        default=5.0,
        help="seconds to wait after SIGTERM (default 5)",
    )
    add_localstack_arguments(p, "stop")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.localstack:
        if args.state_dir is not None:
            raise UsageError("--localstack takes no --state-dir")
        compose_file = compose_file_of(args)
        compose_down(compose_file)
        print(f"LocalStack stopped ({compose_file})")
        return 0
    if args.compose_file is not None:
        raise UsageError("--compose-file needs --localstack")
    state_dir = state_dir_of(args)
    if not (state_dir / registry.PID_FILE).exists():
        print(f"no emulator running (no pid file in {state_dir})")
        return 0
    with registry.locked(state_dir):
        record = registry.read_record(state_dir)
        if record is None:
            registry.remove_record(state_dir)
            print("no emulator running (removed an unreadable pid file)")
            return 0
        kinesis_stopped = registry.stop_kinesis(record, timeout=args.timeout)
        if not registry.record_is_live(record):
            registry.remove_record(state_dir)
            print(f"no emulator running (pid {record.pid} is gone; removed its pid file)")
            if kinesis_stopped and record.kinesis is not None:
                kinesis = record.kinesis
                print(f"{kinesis.engine} stopped (pid {kinesis.pid}, {kinesis.endpoint})")
            return 0
        stop_pid(record.pid, timeout=args.timeout)
        registry.remove_record(state_dir)
    print(f"emulator stopped (pid {record.pid}, {record.endpoint})")
    if record.kinesis is not None:
        state = "stopped" if kinesis_stopped else "was already gone"
        kinesis = record.kinesis
        print(f"{kinesis.engine} {state} (pid {kinesis.pid}, {kinesis.endpoint})")
    return 0
