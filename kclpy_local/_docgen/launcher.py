"""The kclpy-local launchers, as their Java sources say: constants and keys read."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .._jvm.jars import DEFAULT_GENERATION, load_lock
from ._config_api import KEYS

__all__ = ["launcher_parts"]


@dataclass(frozen=True, slots=True)
class _LauncherFacts:
    source: str
    main_class: str
    grace_millis: int
    cbor_property: str
    ready_line: str
    exit_codes: Mapping[str, int]


def _java_constant(source: str, name: str) -> str:
    match = re.search(
        rf"static\s+final\s+\w+\s+{name}\s*=\s*(\"(?:[^\"\\]|\\.)*\"|-?\d+)L?\s*;", source
    )
    if match is None:
        raise ValueError(f"constant {name} not found in the launcher source")
    value = match.group(1)
    return value[1:-1] if value.startswith('"') else value


def _sources(generation: int) -> tuple[str, str]:
    """A generation's launcher: its main source's path, and the text of all its sources."""
    lock = load_lock(generation)
    text = "\n".join(data.decode("utf-8") for data in lock.launcher_sources().values())
    return lock.launcher.source, text


def _launcher_facts() -> _LauncherFacts:
    for generation, keys in KEYS.items():
        path, sources = _sources(generation)
        for spec in keys:
            if spec.source == "launcher" and f'"{spec.name}"' not in sources:
                raise ValueError(f"launcher key {spec.name} is not in the sources of {path}")
    lock = load_lock(DEFAULT_GENERATION)
    source_path, text = _sources(DEFAULT_GENERATION)
    return _LauncherFacts(
        source=f"kclpy_local/{source_path}",
        main_class=lock.launcher.main_class,
        grace_millis=int(_java_constant(text, "DEFAULT_GRACE_MILLIS")),
        cbor_property=_java_constant(text, "CBOR_SYSTEM_PROPERTY"),
        ready_line=_java_constant(text, "READY_LINE"),
        exit_codes={
            name: int(_java_constant(text, name))
            for name in ("EXIT_FAILED", "EXIT_CHARSET", "EXIT_NEVER_STARTED")
        },
    )


def launcher_parts(facts: _LauncherFacts) -> dict[str, object]:
    """The launcher's constants, for the slots of the configuration template."""
    fields = {name: getattr(facts, name) for name in _LauncherFacts.__dataclass_fields__}
    del fields["exit_codes"]
    return {**fields, **facts.exit_codes}
