"""``docs/protocol.md``: the multilang protocol, generated from the wire schemas.

Everything said about a message comes from its JSON Schema document in
``kclpy_local/_protocol/wire/``: ``title`` and ``description`` of the message
and of each field, the validation keywords (rendered as types and constraints),
``examples`` (checked against the schemas while the page is generated) and the
annotations ``x-generations``, ``x-checkpoint``, ``x-runtime`` and ``x-note``
(the KCL generations that send the message, whether the processor may
checkpoint while handling it, what the kclpy-local runtime makes of it, and a
remark). The page's fixed prose is ``templates/protocol.md``; this module adds the
message order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

from .. import _exceptions
from .._protocol import schemas as _schemas
from ._markdown import code, generated_notice, json_line, render, table

__all__ = ["protocol_reference"]

_URN = "urn:kclpy-local:schema:"
_LONG = (-(2**63), 2**63 - 1)
_INT = (-(2**31), 2**31 - 1)
_DIRECTION_TITLE = {"daemon": "Daemon → processor", "child": "Processor → daemon"}
#: Every message, per direction, in the order of a processor's life.
_ORDER: Mapping[str, tuple[str, ...]] = {
    "daemon": (
        "initialize",
        "processRecords",
        "record",
        "shutdown",
        "shutdownRequested",
        "leaseLost",
        "shardEnded",
        "checkpoint",
    ),
    "child": ("checkpoint", "status"),
}
_REQUIRED_ANNOTATIONS = ("title", "description", "x-generations", "x-runtime", "examples")
_CHECKPOINT_ERRORS: tuple[type[_exceptions.CheckpointError], ...] = (
    _exceptions.ThrottlingError,
    _exceptions.ShutdownError,
    _exceptions.InvalidStateError,
    _exceptions.DependencyError,
    _exceptions.InvalidSequenceNumberError,
    _exceptions.UnknownCheckpointError,
)

_Key = tuple[str, str]


def _split_urn(urn: str) -> _Key:
    if not urn.startswith(_URN):
        raise ValueError(f"unexpected schema $id or $ref {urn!r}")
    direction, _, action = urn.removeprefix(_URN).partition(":")
    return direction, action


def _link(key: _Key, text: str | None = None) -> str:
    direction, action = key
    return f"[{text or action}](#{direction}-{action.lower()})"


def _documents() -> list[tuple[_Key, Mapping[str, Any]]]:
    """Every schema, in :data:`_ORDER`; refuses a schema it cannot document."""
    found = {_split_urn(urn): doc for urn, doc in _schemas.schemas().items()}
    order = [(d, a) for d, actions in _ORDER.items() for a in actions]
    problems = [f"{d}:{a} is not in the message order" for d, a in found if (d, a) not in order]
    problems += [f"{d}:{a} has no schema" for d, a in order if (d, a) not in found]
    for (d, a), doc in found.items():
        missing = [k for k in _REQUIRED_ANNOTATIONS if not doc.get(k)]
        if missing:
            problems.append(f"{d}:{a} has no {', '.join(missing)}")
    if problems:
        raise ValueError("cannot document the wire schemas: " + "; ".join(sorted(problems)))
    return [(key, found[key]) for key in order]


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string")):
        if isinstance(value, kind):
            return name
    return "array" if isinstance(value, list) else "object"


def _type_of(prop: Mapping[str, Any]) -> str:
    if "$ref" in prop:
        return _link(_split_urn(str(prop["$ref"])))
    declared = prop.get("type")
    if declared is None:
        values = [prop["const"]] if "const" in prop else list(prop.get("enum", []))
        return " or ".join(sorted({_json_type(v) for v in values})) or "any"
    kinds = [declared] if isinstance(declared, str) else list(declared)
    return " or ".join(
        f"array of {_type_of(prop['items'])}" if kind == "array" and "items" in prop else kind
        for kind in kinds
    )


_LABELS = (
    ("exclusiveMinimum", ">"),
    ("exclusiveMaximum", "<"),
    ("minLength", "length ≥"),
    ("maxLength", "length ≤"),
    ("minItems", "items ≥"),
    ("maxItems", "items ≤"),
)


def _constraints(prop: Mapping[str, Any]) -> str:
    parts: list[str] = []
    if "const" in prop:
        parts.append("always " + code(json.dumps(prop["const"])))
    if "enum" in prop:
        parts.append("one of " + ", ".join(code(json.dumps(v)) for v in prop["enum"]))
    bounds = (prop.get("minimum"), prop.get("maximum"))
    if bounds == _LONG:
        parts.append("64-bit signed (Java long)")
    elif bounds == _INT:
        parts.append("32-bit signed (Java int)")
    else:
        parts += [
            f"{op} {bound}"
            for op, bound in zip(("≥", "≤"), bounds, strict=True)
            if bound is not None
        ]
    parts += [f"{label} {prop[key]}" for key, label in _LABELS if key in prop]
    if "pattern" in prop:
        parts.append("matches " + code(str(prop["pattern"])))
    if "format" in prop:
        parts.append(f"format {prop['format']}")
    return "; ".join(parts)


def _field_rows(doc: Mapping[str, Any], prefix: str = "") -> list[tuple[str, ...]]:
    required = set(doc.get("required", ()))
    rows: list[tuple[str, ...]] = []
    for name, prop in doc.get("properties", {}).items():
        full = f"{prefix}{name}"
        yes = "yes" if name in required else "no"
        rows.append((code(full), _type_of(prop), yes, _constraints(prop), prop["description"]))
        if "properties" in prop:
            rows.extend(_field_rows(prop, prefix=f"{full}."))
    return rows


def _extra_fields_note(direction: str, doc: Mapping[str, Any]) -> str:
    if doc.get("additionalProperties", True) is False:
        if direction == "child":
            return (
                "No other field is allowed: the daemon reads these messages with "
                "FAIL_ON_UNKNOWN_PROPERTIES and drops a message with an unknown field."
            )
        return "No other field is allowed."
    if direction == "daemon":
        return "Fields not listed here are tolerated and ignored (a newer daemon may add some)."
    return "Fields not listed here are allowed."


def _checked_examples(key: _Key, doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The schema's ``examples``, each validated as the message it stands for."""
    direction, action = key
    examples: list[Mapping[str, Any]] = list(doc["examples"])
    for example in examples:
        # A record is only valid inside a batch; check it there.
        message = dict(example)
        if action == "record":
            message = {"action": "processRecords", "records": [message], "millisBehindLatest": None}
        elif message.get("action") != action:
            raise ValueError(
                f"example for {direction}:{action} has action {message.get('action')!r}"
            )
        violations = list(_schemas.iter_violations(message, cast(_schemas.Direction, direction)))
        if violations:
            listing = "; ".join(f"{v.path}: {v.message}" for v in violations)
            raise ValueError(f"example for {direction}:{action} breaks its schema: {listing}")
    return examples


def _heading(action: str, title: str) -> str:
    """``action`` in code, then what the title adds (``shutdown (KCL 1.x)``)."""
    if title.startswith(action):
        return code(action) + title[len(action) :]
    return f"{code(action)}: {title}"


def _message_section(key: _Key, doc: Mapping[str, Any], answered: tuple[str, ...]) -> list[str]:
    direction, action = key
    facts = [f"KCL generations: {doc['x-generations']}."]
    if direction == "daemon" and action in answered:
        status = json_line({"action": "status", "responseFor": action})
        facts.append(f"Answered with {code(status)}.")
    if "x-checkpoint" in doc:
        facts.append(f"Checkpointing while handling it: {doc['x-checkpoint']}.")
    facts.append(f"In kclpy-local: {doc['x-runtime']}.")
    if "x-note" in doc:
        facts.append(doc["x-note"])
    examples = _checked_examples(key, doc)
    header = ("field", "type", "required", "constraints", "description")
    return [
        "",
        f'<a id="{direction}-{action.lower()}"></a>',
        "",
        f"### {_heading(action, doc['title'])}",
        "",
        doc["description"].strip(),
        "",
        " ".join(facts),
        "",
        *table(header, _field_rows(doc)),
        "",
        _extra_fields_note(direction, doc),
        "",
        "Example:" if len(examples) == 1 else "Examples:",
        "",
        "```json",
        *(json_line(example) for example in examples),
        "```",
    ]


def _first_line(text: str | None) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""


def protocol_reference() -> str:
    """``docs/protocol.md``: the multilang protocol, from the schema documents."""
    documents = _documents()
    status = _schemas.schema("child", "status")
    if status is None:
        raise ValueError("no child:status schema")
    answered = tuple(status["properties"]["responseFor"]["enum"])
    overview = [
        (
            _link(key),
            _DIRECTION_TITLE[key[0]].lower(),
            doc["x-generations"],
            doc.get("x-checkpoint", "-"),
            doc["x-runtime"],
        )
        for key, doc in documents
    ]
    header = ("action", "direction", "KCL generations", "checkpoint while handling")
    messages: list[str] = []
    for index, (key, doc) in enumerate(documents):
        if index == 0 or documents[index - 1][0][0] != key[0]:
            messages += ["", f"## {_DIRECTION_TITLE[key[0]]}"]
        messages += _message_section(key, doc, answered)
    rows = [
        (
            code(cls.java_name) if cls.java_name else "any other name",
            code(cls.__name__),
            _first_line(cls.__doc__),
        )
        for cls in _CHECKPOINT_ERRORS
    ]
    notice = generated_notice("kclpy_local/_protocol/wire/ and kclpy_local/_docgen/")
    parts = {
        "notice": notice,
        "overview": "\n".join(table((*header, "kclpy-local `RecordProcessor`"), overview)),
        "messages": "\n".join(messages),
        "errors": "\n".join(table(("`error`", "kclpy-local exception", "meaning"), rows)),
    }
    return render("protocol.md", parts)
