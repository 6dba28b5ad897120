"""``kclpy-local properties``: check or edit a daemon properties file, list the keys.

``properties check FILE [--profile P] [--kcl N] [--json]`` prints every problem
(errors and warnings) and exits 0 when there is no error, 2 otherwise. ``--json``
prints one JSON object instead: ``{"file", "profile", "kcl", "errors", "warnings",
"problems": [{"key", "line", "severity", "message", "hint"}]}``. ``--kcl 3``
checks the file against KCL 3.x's keys as the stock 3.x daemon would read it
(keys only 1.x reads are warnings); ``--kcl 3 --translated`` checks what
``kclpy-local daemon --kcl 3`` and ``run --kcl 3`` start: the file translated
from the 1.x form, with one line per change on stderr (and ``"translation"``, the
list of changes, in the JSON).

``properties set FILE KEY=VALUE... [--unset KEY]... [--profile P] [--force]``
changes keys in place: every comment, blank line, continuation and escape of
the rest of the file is kept byte for byte; a changed key is rewritten as one
``key = value`` line, a new key is appended. Values are taken literally
(``${VAR}`` is written as is). The file is replaced atomically (a temporary
file, then a rename; its permissions are kept), so an error never leaves a
half-written file. A change that introduces a validation error (an unknown key,
a wrong type, an AWS endpoint in a local profile...) is refused with exit 2 and
the file untouched, unless ``--force``; errors already in the file do not block
it. Exit 0 when the file was written.

``properties keys [--kcl N] [--json]`` lists the keys KCL 1.15.3 (or, with
``--kcl 3``, KCL 3.x), its multilang daemon and the kclpy-local launcher read,
with type and default.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .._config.generations import GENERATIONS, generation
from .._config.pipeline import prepare
from .._config.properties import (
    PROFILES,
    Problem,
    Profile,
    PropertiesDocument,
    detect_profile,
    load_properties_file,
    parse_properties,
    read_properties,
    render_properties,
    validate_properties,
    write_properties,
)
from .._exceptions import PropertiesError
from . import _common

__all__ = ["register"]


def register(subparsers: _common.Subparsers) -> None:
    parser = _common.add_command(
        subparsers, "properties", "check daemon .properties files, list their keys"
    )
    commands = parser.add_subparsers(dest="properties_command", metavar="SUBCOMMAND", required=True)

    check = commands.add_parser("check", help="report every problem in a properties file")
    check.add_argument("file", help="the .properties file")
    _add_rules_arguments(check)
    check.add_argument(
        "--translated",
        action="store_true",
        help="with --kcl 3: check the file as kclpy-local runs it on KCL 3.x, "
        "translated from the 1.x form (the changes on stderr)",
    )
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(func=_check)

    edit = commands.add_parser(
        "set",
        help="change keys in place, keeping comments and layout (atomic write)",
        description=(
            "Set KEY=VALUE pairs (and remove --unset keys) in FILE, keeping the rest of the "
            "file byte for byte. A change that introduces a validation error is refused "
            "(exit 2, file untouched) unless --force."
        ),
    )
    edit.add_argument("file", help="the .properties file (must exist)")
    edit.add_argument(
        "assignments",
        nargs="*",
        metavar="KEY=VALUE",
        help="a key and its literal value (${VAR} is kept as written)",
    )
    edit.add_argument(
        "--unset",
        action="append",
        default=[],
        metavar="KEY",
        help="remove KEY (every line of it); repeatable",
    )
    _add_rules_arguments(edit)
    edit.add_argument(
        "--force",
        action="store_true",
        help="write even when the change introduces validation errors",
    )
    edit.set_defaults(func=_set)

    keys = commands.add_parser("keys", help="list the keys the KCL daemon reads (1.15.3, or 3.x)")
    _add_generation_argument(keys, "the KCL generation: 1 (default) or 3")
    keys.add_argument("--json", action="store_true", help="print the table as JSON")
    keys.set_defaults(func=_keys)


def _add_rules_arguments(parser: argparse.ArgumentParser) -> None:
    """``--profile`` and ``--kcl``: the rules a file is checked by."""
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        help="endpoint rules to apply (default: the file's '# kclpy-local: profile=' comment or name)",
    )
    _add_generation_argument(parser, "the KCL generation whose keys apply: 1 (default) or 3")


def _add_generation_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``--kcl N``: the generation whose key table applies (every one with a table)."""
    parser.add_argument(
        "--kcl", type=int, choices=tuple(GENERATIONS), default=1, metavar="N", help=help
    )


def _check(args: argparse.Namespace) -> int:
    kcl = generation(args.kcl)
    if args.translated and not kcl.translates:
        options = " or ".join(g.kcl_option.strip() for g in GENERATIONS.values() if g.translates)
        err = PropertiesError(f"--translated is for {options}")
        err.hint = f"add {options}"
        raise err
    # Checked as written, or (--translated) as kclpy-local runs it: substituted, then
    # translated (entries keep their line numbers; new ones have none).
    prepared = prepare(args.file, generation=kcl, profile=args.profile, translate=args.translated)
    translation = prepared.translation if args.translated else None
    if translation is not None and not args.json:
        for line in prepared.notes:
            print(line, file=sys.stderr)
    profile = prepared.profile
    problems = prepared.problems
    errors = sum(1 for p in problems if p.severity == "error")
    warnings = len(problems) - errors
    if args.json:
        result: dict[str, Any] = {
            "file": args.file,
            "profile": profile,
            "kcl": args.kcl,
            "errors": errors,
            "warnings": warnings,
            "problems": [asdict(p) for p in problems],
        }
        if translation is not None:
            result["translation"] = list(translation.notes)
            result["local_startup"] = list(prepared.startup)
        print(json.dumps(result, indent=2))
    else:
        for problem in problems:
            print(problem.render(args.file))
        shown = profile or "none"
        verdict = "ok" if not errors else "invalid"
        label = f"KCL {kcl.label}{', translated' if translation else ''}; "
        prefix = "" if kcl.is_default else label
        print(
            f"{args.file}: {verdict} ({prefix}profile {shown}; {errors} error(s), {warnings} warning(s))",
            file=sys.stderr,
        )
    return 2 if errors else 0


def _assignments(items: Sequence[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            err = PropertiesError(f"{item!r} is not KEY=VALUE")
            err.hint = "write e.g. maxRecords=500 (quote the whole pair for the shell)"
            raise err
        pairs[key] = value
    return pairs


def _introduced_errors(
    before: PropertiesDocument, after: PropertiesDocument, profile: Profile | None, kcl: int = 1
) -> list[Problem]:
    """Errors of ``after`` that ``before`` did not have (compared by key and message)."""
    old = Counter(
        (p.key, p.message)
        for p in validate_properties(before, profile=profile, generation=kcl)
        if p.severity == "error"
    )
    introduced = []
    for problem in validate_properties(after, profile=profile, generation=kcl):
        if problem.severity != "error":
            continue
        signature = (problem.key, problem.message)
        if old[signature]:
            old[signature] -= 1
        else:
            introduced.append(problem)
    return introduced


def _set(args: argparse.Namespace) -> int:
    path = Path(args.file)
    pairs = _assignments(args.assignments)
    if not pairs and not args.unset:
        err = PropertiesError("nothing to change")
        err.hint = "give KEY=VALUE pairs or --unset KEY"
        raise err
    before = read_properties(path)
    document = load_properties_file(path)
    for key in args.unset:
        if key not in document:
            err = PropertiesError(f"{path}: cannot unset {key!r}: it is not set")
            err.hint = f"list the keys with: kclpy-local properties check {path}"
            raise err
        del document[key]
    for key, value in pairs.items():
        document[key] = value
    after = parse_properties(render_properties(document), path)
    profile = args.profile or detect_profile(before)
    introduced = _introduced_errors(before, after, profile, args.kcl)
    for problem in introduced:
        print(problem.render(path))
    if introduced and not args.force:
        noun = "error" if len(introduced) == 1 else "errors"
        err = PropertiesError(f"{path} not changed: the change introduces {len(introduced)} {noun}")
        err.hint = "correct the value, or pass --force to write it anyway"
        raise err
    write_properties(path, document)
    done = [
        f"set {', '.join(pairs)}" if pairs else "",
        f"unset {', '.join(args.unset)}" if args.unset else "",
    ]
    print(f"{path}: {'; '.join(d for d in done if d)}", file=sys.stderr)
    return 0


def _keys(args: argparse.Namespace) -> int:
    table = generation(args.kcl).keys
    if args.json:
        rows = [{**asdict(spec), "type": spec.type.value} for spec in table]
        print(json.dumps(rows, indent=2))
        return 0
    for spec in table:
        flag = " (required)" if spec.required else ""
        default = spec.default if spec.default is not None else "-"
        print(
            f"{spec.name}{flag}\t{spec.type.value}\tdefault {default}\t[{spec.source}] {spec.description}"
        )
    return 0
