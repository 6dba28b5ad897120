"""What the entry rules of both generations share: how a known key's value is
reported (the decoder's refusal, whitespace around the value), and how an unknown
key is (one that cannot be set from a file, a near miss of a known name).

Each generation's own words and exceptions stay in
:mod:`kclpy_local._config.kcl1_rules` and :mod:`kclpy_local._config.kcl3_rules`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

from .document import Problem
from .keyspec import java_trim

__all__ = ["near_name", "unknown_key", "unsettable", "value_problem"]

#: The hint of a refused value that has whitespace around it.
_WHITESPACE_HINT = "remove the whitespace around the value"


def value_problem(
    key: str,
    value: str,
    line: int | None,
    reason: str | None,
    *,
    hint: str | None,
    padded: tuple[str, str],
) -> Problem | None:
    """What is wrong with the value of a known key, or ``None``.

    ``reason`` is why the generation's decoder refuses the value (``None``: it
    accepts it): an error, whose hint is to remove the whitespace when there is
    some around the value, else ``hint``. An accepted value with whitespace
    around it is a warning with ``padded``'s message and hint.
    """
    around = java_trim(value) != value
    if reason:
        return Problem(key, line, "error", reason, _WHITESPACE_HINT if around else hint)
    if around:
        return Problem(key, line, "warning", *padded)
    return None


def unsettable(
    key: str, line: int | None, reasons: Mapping[str, str], label: str
) -> Problem | None:
    """The error for a key that KCL ``label`` reads but a file cannot set
    (``reasons``: each such key's reason), or ``None`` for any other key."""
    if key not in reasons:
        return None
    return Problem(
        key, line, "error", f"cannot be set from a properties file in KCL {label}: {reasons[key]}"
    )


def near_name(names: Sequence[str], key: str, name: str | None = None) -> str | None:
    """The one of ``names`` that ``key`` was probably meant as, or ``None``: the same
    but for case (``key``, else ``name``: the property it sets), else the closest
    (:func:`difflib.get_close_matches` of ``name``, or of ``key``)."""
    folded = {known.lower(): known for known in names}
    name = key if name is None else name
    return (
        folded.get(key.lower())
        or folded.get(name.lower())
        or next(iter(difflib.get_close_matches(name, names, n=1, cutoff=0.75)), None)
    )


def unknown_key(
    key: str, line: int | None, suggestion: str | None, reader: str, case_note: str = ""
) -> Problem:
    """The problem with a key the table does not know, which ``reader`` (``KCL``,
    ``KCL 3.x``) ignores: an error naming ``suggestion`` when there is one (its
    message with ``case_note`` after "unknown key"), else a warning."""
    ignored = f"{reader} ignores it silently"
    if suggestion:
        return Problem(
            key,
            line,
            "error",
            f"unknown key{case_note}; {ignored}",
            f"did you mean {suggestion!r}?",
        )
    return Problem(key, line, "warning", f"unknown key; {ignored}")
