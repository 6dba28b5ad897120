"""What a parsed properties file is, and what the validator reports about it.

:class:`PropertiesDocument` (the entries in file order, with their lines) is what
:func:`~kclpy_local._config.properties.parse_properties` returns and what every
generation's rules (:mod:`kclpy_local._config.generations`) check; each finding is
a :class:`Problem`. The rules across entries read a :class:`ValuesCheck`: the
file's resolved values with the document, its unresolved keys and its profile.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

__all__ = [
    "PROFILES",
    "Entry",
    "Problem",
    "Profile",
    "PropertiesDocument",
    "Severity",
    "ValuesCheck",
]

Profile = Literal["local", "localstack", "aws"]
PROFILES: tuple[Profile, ...] = get_args(Profile)
Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of the validator; ``line`` is 1-based, ``None`` when unknown."""

    key: str | None
    line: int | None
    severity: Severity
    message: str
    hint: str | None = None

    def render(self, source: str | os.PathLike[str] | None = None) -> str:
        """``file:line: severity: key: message (hint: ...)``."""
        where = str(source) if source is not None else ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        parts = [p for p in (where, self.severity, self.key) if p]
        text = ": ".join(parts) + f": {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


@dataclass(frozen=True, slots=True)
class Entry:
    """A key/value pair as written in the file (escapes already decoded)."""

    key: str
    value: str
    line: int | None = None


@dataclass(frozen=True, slots=True)
class PropertiesDocument:
    """A parsed file: every entry in order (duplicates kept) and what surrounds them."""

    entries: tuple[Entry, ...]
    path: Path | None = None
    comments: tuple[tuple[int, str], ...] = ()
    non_ascii_lines: tuple[int, ...] = field(default=())
    escaped_space_lines: tuple[int, ...] = field(default=())

    def as_dict(self) -> dict[str, str]:
        """The values the JVM sees: the last of duplicate keys wins."""
        return {entry.key: entry.value for entry in self.entries}

    def line_of(self, key: str) -> int | None:
        lines = [e.line for e in self.entries if e.key == key]
        return lines[-1] if lines else None


@dataclass(frozen=True, slots=True)
class ValuesCheck:
    """What a generation's rules across entries read, built once by the validator:
    the ``values`` of ``document`` with each substituted (the keys in ``unresolved``,
    whose variables are not set, left out: they were reported already) and the
    file's ``profile``."""

    values: Mapping[str, str]
    document: PropertiesDocument
    unresolved: AbstractSet[str]
    profile: Profile | None
