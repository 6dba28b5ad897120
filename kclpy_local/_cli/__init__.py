"""The ``kclpy-local`` command line.

Each command lives in its own module of this package and exposes
``register(subparsers)``, which adds a sub-parser whose ``func`` default is a
callable ``(argparse.Namespace) -> int``.

Exit codes: 0 success; 1 generic failure; 2 usage or properties error; 3 protocol
error; 4 processor failure; 5 bootstrap error; 6 java missing; 7 daemon error;
8 emulator error; 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

from .._exceptions import KclpyLocalError
from .._version import __version__

__all__ = ["main"]

# The order --help lists commands in; any other public module of this package
# (a name without a leading underscore) is a command too, listed after these.
ORDER: tuple[str, ...] = (
    "run",
    "put",
    "leases",
    "metrics",
    "up",
    "down",
    "daemon",
    "bootstrap",
    "properties",
    "doctor",
    "validate",
)


def commands() -> tuple[str, ...]:
    """Module names under kclpy_local._cli that define a command, in --help order."""
    found = {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
    known = tuple(name for name in ORDER if name in found)
    return known + tuple(sorted(found - set(ORDER)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kclpy-local",
        description="Run Python Kinesis record processors under the real KCL daemon, locally.",
    )
    parser.add_argument("--version", action="version", version=f"kclpy-local {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (repeat for debug)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in commands():
        module = importlib.import_module(f"{__name__}.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    level = (
        logging.WARNING
        if args.verbose == 0
        else (logging.INFO if args.verbose == 1 else logging.DEBUG)
    )
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        code: int = args.func(args)
    except KclpyLocalError as exc:
        print(f"kclpy-local: error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("kclpy-local: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        # Not foreseen by the command (those name the file and the fix): one line
        # naming the file and what the system said, the traceback only with -vv.
        logging.getLogger(__name__).debug("unexpected error", exc_info=True)
        print(f"kclpy-local: error: {exc}", file=sys.stderr)
        return 1
    return code
