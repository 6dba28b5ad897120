"""``kclpy-local validate FILE``: check an exchange line by line against the schemas.

Check every line of FILE against the multilang JSON Schemas and report every
violation with its line number. FILE is a transcript ({"daemon": ...} /
{"child": ...} lines) or raw protocol lines of one direction (--direction), or a
capture with lines prefixed '> ' (daemon to processor) and '< ' (processor to
daemon). Exit 0 when clean, 3 on violations.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .._exceptions import ProtocolError, UsageError
from .._protocol.schemas import Direction, iter_violations
from . import _common

__all__ = ["register", "validate_lines"]


def register(subparsers: _common.Subparsers) -> None:
    summary = "check a transcript or a captured exchange against the protocol schemas"
    p = _common.add_command(subparsers, "validate", summary, _common.paragraph(__doc__, 1))
    p.add_argument("file", help="the file to check ('-' for stdin)")
    p.add_argument(
        "--direction",
        choices=["daemon", "child", "auto"],
        default="auto",
        help="direction of raw lines (auto: status lines are the processor's, others the daemon's)",
    )
    p.add_argument("--json", action="store_true", help="print the violations as JSON")
    p.set_defaults(func=_run)


def _direction_of(obj: Any, default: str) -> Direction:
    if default in ("daemon", "child"):
        return default  # type: ignore[return-value]
    if isinstance(obj, dict) and obj.get("action") == "status":
        return "child"
    if isinstance(obj, dict) and obj.get("action") == "checkpoint" and "error" not in obj:
        return "child"
    return "daemon"


def validate_lines(lines: list[str], direction: str = "auto") -> tuple[int, list[dict[str, Any]]]:
    """Check lines; return (number of messages checked, violations)."""
    found: list[dict[str, Any]] = []
    checked = 0
    first = True
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("//"):
            continue
        forced: str | None = None
        if text.startswith(("> ", "< ")):
            forced = "daemon" if text[0] == ">" else "child"
            text = text[2:]
        try:
            obj = json.loads(text)
            if isinstance(obj, dict) and len(obj) == 1 and "daemon_raw" in obj:
                forced, obj = "daemon", json.loads(str(obj["daemon_raw"]))
        except ValueError as exc:
            found.append({"line": number, "path": "", "message": f"not JSON ({exc})"})
            continue
        if isinstance(obj, dict) and len(obj) == 1 and ({"daemon", "child"} & obj.keys()):
            forced, obj = next(iter(obj.items()))
        elif forced is None and first and isinstance(obj, dict) and "action" not in obj:
            first = False
            continue  # a transcript header
        first = False
        which = _direction_of(obj, forced or direction)
        checked += 1
        for v in iter_violations(obj, which):
            found.append({"line": number, "direction": which, "path": v.path, "message": v.message})
    return checked, found


def _text_lines(data: bytes, name: str) -> list[str]:
    """The lines of ``data``; a :class:`ProtocolError` naming the first line that is not UTF-8."""
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        line_number = data[: exc.start].count(b"\n") + 1
        raise ProtocolError(
            f"{name} is not UTF-8 text (byte {data[exc.start : exc.start + 1]!r})",
            line_number=line_number,
        ) from None


def _run(args: argparse.Namespace) -> int:
    if args.file == "-":
        data = sys.stdin.buffer.read()
    else:
        source = Path(args.file)
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {source}: {exc.strerror}") from None
    lines = _text_lines(data, args.file)
    checked, found = validate_lines(lines, args.direction)
    if args.json:
        print(json.dumps({"checked": checked, "violations": found}, indent=2))
    else:
        for v in found:
            where = f"{args.file}:{v['line']}"
            path = f" at {v['path']}" if v.get("path") else ""
            print(f"{where}: {v.get('direction', '?')} message{path}: {v['message']}")
        print(f"{checked} messages checked, {len(found)} violations", file=sys.stderr)
    return 3 if found else 0
