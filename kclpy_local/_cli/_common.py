"""What several commands share: the endpoint options and JSON output."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .. import _env
from .._emulators.registry import kinesis_is_live, read_record, record_is_live
from .._env import default_state_dir

__all__ = [
    "DEFAULT_ENDPOINT",
    "ENDPOINT_ENV",
    "add_endpoint_arguments",
    "port_number",
    "print_json",
    "resolve_endpoint",
]

ENDPOINT_ENV = _env.ENDPOINT.name
DEFAULT_ENDPOINT = "http://127.0.0.1:4566"


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
            f"emulator started by `kclpy-local up`, else {DEFAULT_ENDPOINT})"
        ),
    )
    parser.add_argument(
        "--region", default="us-east-1", help="AWS region name (default: %(default)s)"
    )


def resolve_endpoint(explicit: str | None, service: str = "kinesis") -> str:
    """The endpoint a command talks to for ``service`` (``kinesis``, ``dynamodb`` or
    ``cloudwatch``): explicit, environment, running emulator, default.

    After ``kclpy-local up --kinesis kinesis-mock`` Kinesis is on its own port.
    """
    if explicit:
        return explicit
    from_env = _env.ENDPOINT.get()
    if from_env:
        return from_env
    record = read_record(default_state_dir())
    if record is not None and record_is_live(record):
        if service == "kinesis" and kinesis_is_live(record):
            return record.kinesis_endpoint
        return record.endpoint
    return DEFAULT_ENDPOINT


def print_json(value: Any) -> None:
    """One JSON document on stdout (sorted keys, a trailing newline)."""
    json.dump(value, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")
