"""What several commands share: the command's parser, argument types, the options
several commands take, the endpoint line and JSON output.

The argument types refuse a bad value while the arguments are parsed, so the
command exits with 2 and argparse's one line naming the option
(``kclpy-local run: error: argument --shards: must be at least 1, got 0``)
before anything starts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias, TypedDict

from .. import _aws
from .._emulators import endpoints
from .._emulators.endpoints import DEFAULT_ENDPOINT, Endpoint, Service
from .._jvm.jars import DEFAULT_GENERATION, available_generations

__all__ = [
    "DEFAULT_ENDPOINT",
    "MAX_SECONDS",
    "MAX_SHARDS",
    "DaemonOptions",
    "Subparsers",
    "add_application_argument",
    "add_cache_dir_argument",
    "add_command",
    "add_endpoint_arguments",
    "add_guard_argument",
    "add_java_argument",
    "add_kcl_argument",
    "announce_endpoint",
    "application_name",
    "daemon_options",
    "directory",
    "endpoint_for",
    "endpoint_url",
    "log_file",
    "paragraph",
    "port_number",
    "print_json",
    "readable_file",
    "region_name",
    "seconds",
    "shard_count",
    "stream_name",
    "whole_number",
]

#: What ``register(subparsers)`` of every command gets.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
CACHE_DIR_HELP = (
    "cache directory (default: $KCLPY_LOCAL_CACHE, $XDG_CACHE_HOME/kclpy-local "
    "or ~/.cache/kclpy-local)"
)


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free port) to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range (0 to 65535)")
    return port


def whole_number(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from ``minimum`` to ``maximum`` (inclusive)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {value}")
        return value

    return parse


#: The most shards ``run`` and ``put --create`` make: far more than a local engine
#: can serve (and than an account may have by default).
MAX_SHARDS = 10_000
#: The longest wait any option takes (30 days): beyond it a timeout means "never".
MAX_SECONDS = 30 * 24 * 3600.0


def seconds(*, zero: bool = True, maximum: float = MAX_SECONDS) -> Callable[[str], float]:
    """An argparse type: a finite number of seconds up to ``maximum``, 0 allowed when
    ``zero``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        low = "0 or more" if zero else "more than 0"
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError(f"must be {low} seconds, got {text}")
        if value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum:.0f} seconds, got {text}")
        return value

    return parse


def _aws_name(kind: str, check: Callable[[str], str | None]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        problem = check(text)
        if problem is not None:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind}: {problem}")
        return text

    return parse


#: An argparse type: a shard count.
shard_count = whole_number(1, MAX_SHARDS)
#: An argparse type: a Kinesis stream name.
stream_name = _aws_name("stream name", _aws.stream_name_problem)
#: An argparse type: a KCL application name (the lease table's name, too).
application_name = _aws_name("application name", _aws.application_name_problem)
#: An argparse type: an AWS region name.
region_name = _aws_name("region name", _aws.region_name_problem)


def endpoint_url(text: str) -> str:
    """An argparse type: an endpoint URL; the empty string is refused, not taken as unset
    (the URL itself is checked before any client is made, with a hint)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty URL; give http://HOST:PORT or leave it out")
    return text


def readable_file(text: str) -> Path:
    """An argparse type: an existing file that this user can read."""
    path = Path(text)
    if not text:
        raise argparse.ArgumentTypeError("an empty path")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory, not a file")
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text} cannot be read (permission denied)")
    return path


def directory(text: str) -> Path:
    """An argparse type: a directory, or a path where one can be made (not a file)."""
    path = Path(text)
    if not text:
        raise argparse.ArgumentTypeError("an empty path")
    for parent in (path, *path.parents):
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"{parent} is not a directory")
            break
    return path


def log_file(text: str) -> str:
    """An argparse type: ``-`` (stderr), or a file to write whose directory exists."""
    if text == "-":
        return text
    if not text:
        raise argparse.ArgumentTypeError("an empty path; give a file, or '-' for stderr")
    path = Path(text)
    parent = path.parent
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory, not a file")
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise argparse.ArgumentTypeError(f"the directory of {text}, {parent}, {what}")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise argparse.ArgumentTypeError(f"{text} cannot be written (permission denied)")
    return text


# -- the command's parser -------------------------------------------------------------


def add_command(
    subparsers: Subparsers,
    name: str,
    help: str,
    description: str | None = None,
    *,
    raw: bool = False,
) -> argparse.ArgumentParser:
    """The parser of the command ``name``: ``help`` is its line in ``kclpy-local
    --help``, ``description`` the text of its own ``--help``, re-wrapped by
    argparse unless ``raw`` (a module docstring written for ``--help``)."""
    formatter = argparse.RawDescriptionHelpFormatter if raw else argparse.HelpFormatter
    return subparsers.add_parser(
        name, help=help, description=description, formatter_class=formatter
    )


def paragraph(doc: str | None, index: int) -> str | None:
    """Paragraph ``index`` of a docstring (paragraphs are parted by blank lines)."""
    return doc.split("\n\n")[index] if doc else None


# -- options several commands take ----------------------------------------------------


def add_application_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """The positional ``APPLICATION``: a KCL application name."""
    parser.add_argument("application", metavar="APPLICATION", type=application_name, help=help)


def add_application_command(
    subparsers: Subparsers,
    name: str,
    help: str,
    description: str | None,
    *,
    application: str,
    listing: str,
) -> argparse.ArgumentParser:
    """A command that reads what one KCL application left on the endpoints: its
    ``APPLICATION`` (described by ``application``), ``--endpoint``/``--region`` and
    ``--json`` (printing a JSON list of ``listing``)."""
    parser = add_command(subparsers, name, help, description, raw=True)
    add_application_argument(parser, application)
    add_endpoint_arguments(parser)
    parser.add_argument("--json", action="store_true", help=f"print a JSON list of {listing}")
    return parser


def add_kcl_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``--kcl N``: a KCL generation whose jars are known (default: 1.x)."""
    parser.add_argument(
        "--kcl",
        type=int,
        default=DEFAULT_GENERATION,
        choices=available_generations(),
        metavar="N",
        help=help,
    )


def add_properties_option(parser: argparse.ArgumentParser, help: str) -> None:
    """``--properties FILE``: a daemon .properties file."""
    parser.add_argument("--properties", type=Path, metavar="FILE", help=help)


def add_cache_dir_argument(parser: argparse.ArgumentParser, help: str = CACHE_DIR_HELP) -> None:
    """``--cache-dir DIR``: the bootstrap cache directory."""
    parser.add_argument("--cache-dir", type=directory, metavar="DIR", help=help)


def add_java_argument(parser: argparse.ArgumentParser) -> None:
    """``--java PATH``: the java executable."""
    parser.add_argument("--java", metavar="PATH", help="the java executable to use")


def add_guard_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-generation-guard``: start even where the other KCL generation holds leases."""
    parser.add_argument(
        "--no-generation-guard",
        dest="guard",
        action="store_false",
        help="start even if workers of the other KCL generation hold live leases "
        "on the lease table (unsafe)",
    )


class DaemonOptions(TypedDict):
    """What ``--kcl``, ``--cache-dir``, ``--java`` and ``--no-generation-guard`` say,
    as keyword arguments of :class:`~kclpy_local._jvm.daemon.Daemon`."""

    generation: int
    cache_dir: Path | None
    java: str | None
    guard: bool


def daemon_options(args: argparse.Namespace) -> DaemonOptions:
    """The daemon's options of a command that starts it (``daemon``, ``run``)."""
    return DaemonOptions(
        generation=args.kcl, cache_dir=args.cache_dir, java=args.java, guard=args.guard
    )


def add_endpoint_arguments(parser: argparse.ArgumentParser) -> None:
    """``--endpoint URL`` and ``--region NAME``."""
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        type=endpoint_url,
        default=None,
        help=(
            "Kinesis/DynamoDB/CloudWatch endpoint (default: $KCLPY_LOCAL_ENDPOINT, else the "
            f"emulator started by `kclpy-local up`, else {DEFAULT_ENDPOINT}); the one used, "
            "and why, is one line on stderr"
        ),
    )
    parser.add_argument(
        "--region",
        type=region_name,
        default="us-east-1",
        help="AWS region name (default: %(default)s)",
    )


def announce_endpoint(found: Endpoint, label: str = "endpoint") -> None:
    """The one stderr line that says which endpoint a command uses and why."""
    print(f"kclpy-local: {label} {found.describe()}", file=sys.stderr)


def endpoint_for(explicit: str | None, service: Service = "kinesis") -> str:
    """The endpoint a command talks to for ``service`` (``kinesis``, ``dynamodb`` or
    ``cloudwatch``): ``--endpoint``, ``$KCLPY_LOCAL_ENDPOINT``, the running emulator
    or the default (:func:`kclpy_local._emulators.endpoints.resolve`), announced on
    stderr.

    After ``kclpy-local up --kinesis kinesis-mock`` (or ``ferrokinesis``) Kinesis is on
    its own port.
    """
    found = endpoints.resolve(explicit, service)
    announce_endpoint(found)
    return found.url


def print_json(value: Any) -> None:
    """One JSON document on stdout (sorted keys, a trailing newline)."""
    json.dump(value, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")
