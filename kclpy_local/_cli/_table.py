"""Aligned plain-text tables for command output (no colours, no box drawing).

::

    >>> print(render([Column("shard"), Column("counter", numeric=True)],
    ...              [["shardId-0", 7], ["shardId-10", None]]))
    shard       counter
    shardId-0         7
    shardId-10        -

Columns are separated by two spaces; numeric columns are right-aligned; ``None``
shows as ``-``; no line has trailing spaces.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Column", "render"]

EMPTY = "-"
GAP = "  "


@dataclass(frozen=True, slots=True)
class Column:
    """A column heading; ``numeric`` columns are right-aligned."""

    title: str
    numeric: bool = False


def _cell(value: object) -> str:
    return EMPTY if value is None or value == "" else str(value)


def render(columns: Sequence[Column], rows: Iterable[Sequence[object]]) -> str:
    """The table as one string (heading line first, no trailing newline)."""
    lines = [[c.title for c in columns]]
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"row has {len(row)} cells, expected {len(columns)}: {row!r}")
        lines.append([_cell(v) for v in row])
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    out = []
    for line in lines:
        cells = [
            text.rjust(width) if column.numeric else text.ljust(width)
            for text, width, column in zip(line, widths, columns, strict=True)
        ]
        out.append(GAP.join(cells).rstrip())
    return "\n".join(out)
