"""The AWS names several layers check: streams, applications (lease tables), regions.

Each function says why AWS would refuse a name, or returns ``None``. The command
line checks its options with them (through :mod:`kclpy_local._aws`), the
properties validator the stream names of a file.
"""

from __future__ import annotations

import re

__all__ = ["application_name_problem", "region_name_problem", "stream_name_problem"]

_NAME_CHARS = re.compile(r"[A-Za-z0-9_.-]+")
_REGION = re.compile(r"[a-z]{2}(-[a-z0-9]+)+")


def _name_problem(name: str, low: int, high: int) -> str | None:
    if not low <= len(name) <= high:
        return f"its length is {len(name)}; {low} to {high} characters are allowed"
    if not _NAME_CHARS.fullmatch(name):
        return "only letters, digits, '_', '.' and '-' are allowed"
    return None


def stream_name_problem(name: str) -> str | None:
    """Why Kinesis would refuse ``name`` as a stream name (1-128 of ``A-Za-z0-9_.-``)."""
    return _name_problem(name, 1, 128)


def application_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a KCL applicationName: it names the lease table, and
    DynamoDB takes 3-255 of ``A-Za-z0-9_.-``."""
    return _name_problem(name, 3, 255)


def region_name_problem(name: str) -> str | None:
    """Why ``name`` is not an AWS region name (such as ``us-east-1``)."""
    if _REGION.fullmatch(name):
        return None
    return "write it like us-east-1"
