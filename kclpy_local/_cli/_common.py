"""What several commands share: the endpoint options, the endpoint line and JSON output."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .. import _env
from .._emulators import endpoints
from .._emulators.endpoints import DEFAULT_ENDPOINT, Endpoint, Service

__all__ = [
    "DEFAULT_ENDPOINT",
    "ENDPOINT_ENV",
    "add_endpoint_arguments",
    "announce_endpoint",
    "endpoint_for",
    "port_number",
    "print_json",
]

ENDPOINT_ENV = _env.ENDPOINT.name


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free port) to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range (0 to 65535)")
    return port


def add_endpoint_arguments(parser: argparse.ArgumentParser) -> None:
    """``--endpoint URL`` and ``--region NAME``."""
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        default=None,
        help=(
            "Kinesis/DynamoDB/CloudWatch endpoint (default: $KCLPY_LOCAL_ENDPOINT, else the "
            f"emulator started by `kclpy-local up`, else {DEFAULT_ENDPOINT}); the one used, "
            "and why, is one line on stderr"
        ),
    )
    parser.add_argument(
        "--region", default="us-east-1", help="AWS region name (default: %(default)s)"
    )


def announce_endpoint(found: Endpoint, label: str = "endpoint") -> None:
    """The one stderr line that says which endpoint a command uses and why."""
    print(f"kclpy-local: {label} {found.describe()}", file=sys.stderr)


def endpoint_for(explicit: str | None, service: Service = "kinesis") -> str:
    """The endpoint a command talks to for ``service`` (``kinesis``, ``dynamodb`` or
    ``cloudwatch``): ``--endpoint``, ``$KCLPY_LOCAL_ENDPOINT``, the running emulator
    or the default (:func:`kclpy_local._emulators.endpoints.resolve`), announced on
    stderr.

    After ``kclpy-local up --kinesis kinesis-mock`` Kinesis is on its own port.
    """
    found = endpoints.resolve(explicit, service)
    announce_endpoint(found)
    return found.url


def print_json(value: Any) -> None:
    """One JSON document on stdout (sorted keys, a trailing newline)."""
    json.dump(value, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")
