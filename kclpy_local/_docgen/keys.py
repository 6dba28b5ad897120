"""Tables of properties keys, rendered from the key tables of both generations."""

from __future__ import annotations

from collections.abc import Mapping

from ._config_api import KEYS, MAXIMUM, KeySpec, KeyType
from ._markdown import code, table

__all__ = ["key_sections", "reason_table"]


def _accepted(spec: KeySpec, maximum: int | None) -> str:
    if spec.choices:
        return ", ".join(code(choice) for choice in spec.choices)
    if spec.type is KeyType.BOOLEAN:
        return "`true`, `false`"
    if spec.minimum is not None and maximum is not None:
        return f"{spec.minimum} to {maximum}"
    if spec.minimum is not None:
        return f"≥ {spec.minimum}"
    return ""


def _default(spec: KeySpec) -> str:
    if spec.required:
        return "-"
    return code(spec.default) if spec.default is not None else "unset"


def key_sections(
    generation: int, sources: Mapping[str, tuple[str, str]], suffix: str = ""
) -> list[str]:
    """One ``###`` section per reader of the keys (``spec.source``): title, intro, table.

    ``sources`` maps each source to its title and intro, in the order of the page;
    a key whose source it lacks is an error, so no key goes undocumented.
    """
    groups: dict[str, list[KeySpec]] = {}
    for spec in KEYS[generation]:
        if spec.source not in sources:
            raise ValueError(f"key {spec.name}: no documentation group for source {spec.source!r}")
        groups.setdefault(spec.source, []).append(spec)
    header = ("key", "type", "default", "required", "accepted", "description")
    maxima = MAXIMUM[generation]
    out: list[str] = []
    for source, (title, intro) in sources.items():
        rows = [
            (
                code(spec.name),
                spec.type.value,
                _default(spec),
                "yes" if spec.required else "no",
                _accepted(spec, maxima.get(spec.name)),
                spec.description,
            )
            for spec in groups.get(source, ())
        ]
        if rows:
            out += ["", f"### {title}{suffix}", "", intro, "", *table(header, rows)]
    return out


def reason_table(reasons: Mapping[str, str]) -> list[str]:
    """A table of keys and why, sorted by key."""
    return table(("key", "why"), [(code(name), why) for name, why in sorted(reasons.items())])
