"""The JSON Schema documents of the wire format, loaded from package data.

One document per message and direction, under ``kclpy_local/_protocol/wire/daemon/``
(daemon to child) and ``kclpy_local/_protocol/wire/child/`` (child to daemon). They are
the single source of truth: the runtime's fast checks are tested to accept and
reject exactly what these documents do. Their annotations (``title``,
``description``, ``examples`` and ``x-generations``, ``x-checkpoint``,
``x-runtime``, ``x-note``, which validators ignore) are the text of
``docs/protocol.md``.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

__all__ = ["Direction", "SchemaViolation", "compiled_check", "iter_violations", "schema", "schemas"]

Direction = Literal["daemon", "child"]
_URN = "urn:kclpy-local:schema:"


@functools.cache
def schemas() -> Mapping[str, Mapping[str, Any]]:
    """Every schema document, keyed by its ``$id``."""
    # Read beside this module (the package is installed unzipped: zip_safe = False), not
    # through importlib.resources, whose imports would cost a strict processor 1 MB.
    docs: dict[str, Mapping[str, Any]] = {}
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wire")
    for direction in ("daemon", "child"):
        folder = os.path.join(root, direction)
        for name in sorted(os.listdir(folder)):
            if name.endswith(".json"):
                with open(os.path.join(folder, name), encoding="utf-8") as handle:
                    doc = json.load(handle)
                docs[doc["$id"]] = doc
    return docs


def schema(direction: Direction, action: str) -> Mapping[str, Any] | None:
    """The schema of one message, or ``None`` for an action unknown in that direction."""
    if action == "record":
        return None
    return schemas().get(f"{_URN}{direction}:{action}")


class SchemaViolation:
    """One violation: a JSON path (``records[2].data``) and a message."""

    __slots__ = ("message", "path")

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message

    def __repr__(self) -> str:
        return f"SchemaViolation({self.path!r}, {self.message!r})"


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@functools.cache
def _validator(direction: Direction, action: str) -> Any:
    import jsonschema
    from referencing import Registry, Resource

    registry: Registry[Any] = Registry().with_resources(
        (uri, Resource.from_contents(dict(doc))) for uri, doc in schemas().items()
    )
    doc = schema(direction, action)
    assert doc is not None
    return jsonschema.Draft7Validator(dict(doc), registry=registry)


def iter_violations(obj: object, direction: Direction) -> Iterator[SchemaViolation]:
    """Every violation of ``obj`` against the schema its ``action`` selects."""
    if not isinstance(obj, dict):
        yield SchemaViolation("", f"expected a JSON object, got {type(obj).__name__}")
        return
    action = obj.get("action")
    if not isinstance(action, str):
        yield SchemaViolation("action", "missing or not a string")
        return
    if schema(direction, action) is None:
        yield SchemaViolation("action", f"unknown {direction} action {action!r}")
        return
    errors = sorted(_validator(direction, action).iter_errors(obj), key=lambda e: list(e.path))
    for error in errors:
        yield SchemaViolation(_path(error.absolute_path), error.message)


#: The pattern of ``record.data`` (standard base64, padded, nothing around it).
BASE64_PATTERN = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?(?![\\s\\S])"


class _Base64Pattern:
    """``re.compile(BASE64_PATTERN).search``, without the repeated group that makes
    CPython's ``re`` slow on a long string: a multiple of 4 characters, alphabet
    characters, then at most two ``=``. (The tests hold the two to the same verdict.)"""

    _match = re.compile(r"[A-Za-z0-9+/]*={0,2}").fullmatch

    def search(self, text: str) -> re.Match[str] | None:
        return self._match(text) if len(text) % 4 == 0 else None


#: Patterns of the documents with an equivalent, faster matcher for the compiled check.
FASTER_PATTERNS: Mapping[str, Any] = {BASE64_PATTERN: _Base64Pattern()}


@functools.cache
def compiled_check(direction: Direction, action: str) -> Callable[[Any], Any] | None:
    """A compiled (fastjsonschema) check of the same document, for strict mode.

    Patterns listed in ``FASTER_PATTERNS`` are matched by their faster equivalent.
    """
    import fastjsonschema

    doc = schema(direction, action)
    if doc is None:
        return None
    docs = schemas()
    check: Callable[[Any], Any] = fastjsonschema.compile(
        dict(doc), handlers={"urn": lambda uri: dict(docs[uri])}
    )
    patterns = getattr(check, "__globals__", {}).get("REGEX_PATTERNS")
    if isinstance(patterns, dict):  # fastjsonschema's compiled patterns, by their source
        for source in patterns.keys() & FASTER_PATTERNS.keys():
            patterns[source] = FASTER_PATTERNS[source]
    return check
