"""``kclpy-local properties``: check a daemon properties file, list the keys.

``properties check FILE [--profile P] [--json]`` prints every problem (errors
and warnings) and exits 0 when there is no error, 2 otherwise. ``--json``
prints one JSON object instead: ``{"file", "profile", "errors", "warnings",
"problems": [{"key", "line", "severity", "message", "hint"}]}``.

``properties keys [--json]`` lists the keys KCL 1.15.3, its multilang daemon and
the kclpy-local launcher read, with type and default.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from .._kcl_keys import KCL1_KEYS
from .._properties import PROFILES, detect_profile, read_properties, validate_properties

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "properties", help="check daemon .properties files, list their keys"
    )
    commands = parser.add_subparsers(dest="properties_command", metavar="SUBCOMMAND", required=True)

    check = commands.add_parser("check", help="report every problem in a properties file")
    check.add_argument("file", help="the .properties file")
    check.add_argument(
        "--profile",
        choices=PROFILES,
        help="endpoint rules to apply (default: the file's '# kclpy-local: profile=' comment or name)",
    )
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(func=_check)

    keys = commands.add_parser("keys", help="list the keys the KCL 1.15.3 daemon reads")
    keys.add_argument("--json", action="store_true", help="print the table as JSON")
    keys.set_defaults(func=_keys)


def _check(args: argparse.Namespace) -> int:
    document = read_properties(args.file)
    profile = args.profile or detect_profile(document)
    problems = validate_properties(document, profile=profile)
    errors = sum(1 for p in problems if p.severity == "error")
    warnings = len(problems) - errors
    if args.json:
        result: dict[str, Any] = {
            "file": args.file,
            "profile": profile,
            "errors": errors,
            "warnings": warnings,
            "problems": [asdict(p) for p in problems],
        }
        print(json.dumps(result, indent=2))
    else:
        for problem in problems:
            print(problem.render(args.file))
        shown = profile or "none"
        verdict = "ok" if not errors else "invalid"
        print(
            f"{args.file}: {verdict} (profile {shown}; {errors} error(s), {warnings} warning(s))",
            file=sys.stderr,
        )
    return 2 if errors else 0


def _keys(args: argparse.Namespace) -> int:
    if args.json:
        rows = [{**asdict(spec), "type": spec.type.value} for spec in KCL1_KEYS]
        print(json.dumps(rows, indent=2))
        return 0
    for spec in KCL1_KEYS:
        flag = " (required)" if spec.required else ""
        default = spec.default if spec.default is not None else "-"
        print(
            f"{spec.name}{flag}\t{spec.type.value}\tdefault {default}\t[{spec.source}] {spec.description}"
        )
    return 0
