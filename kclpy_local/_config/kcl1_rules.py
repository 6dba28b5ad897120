"""The validation rules of KCL 1.15.3: how its configurator reads each entry, and
the rules across entries (required keys, the initial position, CBOR against a
local engine).

The key table and the value decoders are :mod:`kclpy_local._config.kcl1_keys`;
:data:`~kclpy_local._config.generations.KCL1` puts them together.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet

from .document import Problem, Profile, PropertiesDocument, ValuesCheck
from .entry_rules import near_name, unknown_key, unsettable, value_problem
from .kcl1_keys import KCL1_KEYS, KCL1_UNSETTABLE, check_value, lookup
from .kcl3_keys import STREAM_NAMES
from .keyspec import KeySpec, KeyType, java_trim

__all__ = [
    "CBOR_ENGINES",
    "check_cbor",
    "check_entry",
    "check_values",
    "endpoint_values",
    "local_kinesis_http2",
    "reads_by_fanout",
    "type_hint",
]

#: Which local Kinesis engines a daemon can read over CBOR, in the validator's words
#: (``kclpy-local doctor`` checks the same against the engines themselves).
CBOR_ENGINES = (
    "moto has no CBOR (HTTP 500); kinesis-mock, and so LocalStack whose Kinesis it is, "
    "sends records the Java SDK cannot read over CBOR; MiniStack needs its optional cbor2 "
    "package; ferrokinesis reads it"
)

#: How a value with whitespace around it that the decoder accepts is reported.
_PADDED = (
    "leading or trailing whitespace in the value (Properties keeps trailing spaces)",
    "remove it: only some decoders trim",
)


def check_entry(key: str, value: str, line: int | None) -> list[Problem]:
    problems = []
    spec = lookup(key)
    if spec is None:
        # The configurator calls "with" + key with its first letter upper-cased.
        spec = lookup(key[:1].lower() + key[1:])
        if spec is None or spec.source != "kcl":
            return [_unknown_key(key, line)]
        problems.append(
            Problem(
                key,
                line,
                "warning",
                f"KCL accepts this spelling, but kclpy-local's checks expect {spec.name!r}",
                f"rename it to {spec.name}",
            )
        )
    problem = value_problem(
        key, value, line, check_value(spec, value), hint=type_hint(spec), padded=_PADDED
    )
    if problem is not None:
        problems.append(problem)
    return problems


def type_hint(spec: KeySpec) -> str:
    if spec.choices:
        return f"one of {', '.join(spec.choices)}"
    if spec.type is KeyType.CREDENTIALS_PROVIDER:
        return "e.g. EnvironmentVariableCredentialsProvider or DefaultAWSCredentialsProviderChain"
    return f"expected {spec.type.value}" + (
        f" >= {spec.minimum}" if spec.minimum is not None else ""
    )


def _unknown_key(key: str, line: int | None) -> Problem:
    if key == STREAM_NAMES:
        return Problem(
            key,
            line,
            "error",
            "several streams (the KCL's multi-stream mode) need KCL 3.x: KCL 1.x consumes the one "
            "stream of streamName, and the kclpy-local 1.x launcher stops at start",
            "run the file on KCL 3.x (--kcl 3), or name one stream in streamName",
        )
    problem = unsettable(key, line, KCL1_UNSETTABLE, "1.x")
    if problem is not None:
        return problem
    suggestion = near_name([spec.name for spec in KCL1_KEYS], key)
    return unknown_key(key, line, suggestion, "KCL")


def _check_required(
    values: Mapping[str, str], document: PropertiesDocument, unresolved: AbstractSet[str]
) -> list[Problem]:
    problems = []
    for spec in KCL1_KEYS:
        if (
            spec.required
            and spec.name not in unresolved
            and not java_trim(values.get(spec.name, ""))
            # A file for several streams is refused as such (see _unknown_key).
            and not (spec.name == "streamName" and STREAM_NAMES in values)
        ):
            empty = spec.name in values
            action = "give it a value" if empty else f"add {spec.name} = <value>"
            problems.append(
                Problem(
                    spec.name,
                    document.line_of(spec.name),
                    "error",
                    f"required key {'is empty' if empty else 'is missing'}",
                    f"{action} ({spec.description.rstrip('.')})",
                )
            )
    return problems


def _check_initial_position(
    values: Mapping[str, str], document: PropertiesDocument
) -> list[Problem]:
    position = values.get("initialPositionInStream")
    timestamp = values.get("timestampAtInitialPositionInStream")
    at_timestamp = position is not None and position.upper() == "AT_TIMESTAMP"
    if at_timestamp and timestamp is None:
        return [
            Problem(
                "initialPositionInStream",
                document.line_of("initialPositionInStream"),
                "error",
                "AT_TIMESTAMP needs timestampAtInitialPositionInStream; KCL rejects it alone",
                "add timestampAtInitialPositionInStream = <epoch seconds>",
            )
        ]
    if timestamp is not None and not at_timestamp:
        line = document.line_of("timestampAtInitialPositionInStream")
        if position is None:
            return [
                Problem(
                    "timestampAtInitialPositionInStream",
                    line,
                    "warning",
                    "the timestamp silently switches the initial position to AT_TIMESTAMP",
                    "say so: initialPositionInStream = AT_TIMESTAMP",
                )
            ]
        return [
            Problem(
                "timestampAtInitialPositionInStream",
                line,
                "error",
                f"given with initialPositionInStream = {position}: which one wins depends on key order",
                "use initialPositionInStream = AT_TIMESTAMP, or remove the timestamp",
            )
        ]
    return []


def check_cbor(
    values: Mapping[str, str], document: PropertiesDocument, profile: Profile | None
) -> list[Problem]:
    """A warning when a local profile turns CBOR on (``isCBORProtocolDisabled =
    false``): few local Kinesis engines read it."""
    value = values.get("isCBORProtocolDisabled")
    if profile not in ("local", "localstack") or value is None:
        return []
    if java_trim(value).lower() != "false":
        return []
    return [
        Problem(
            "isCBORProtocolDisabled",
            document.line_of("isCBORProtocolDisabled"),
            "warning",
            f"CBOR is on in the {profile} profile: the Kinesis engine must read CBOR, and "
            f"{CBOR_ENGINES}",
            "isCBORProtocolDisabled = true, unless the engine reads CBOR "
            "(kclpy-local doctor lists the engines)",
        )
    ]


def check_values(check: ValuesCheck) -> list[Problem]:
    """The rules across entries: required keys, the initial position, CBOR."""
    values, document = check.values, check.document
    return [
        *_check_required(values, document, check.unresolved),
        *_check_initial_position(values, document),
        *check_cbor(values, document, check.profile),
    ]


def reads_by_fanout(values: Mapping[str, str]) -> bool:
    """KCL 1.x has no enhanced fan-out: its workers always poll with GetRecords."""
    return False


def local_kinesis_http2(values: Mapping[str, str]) -> bool:
    """The 1.x launcher's Kinesis client (AWS SDK v1) speaks HTTP/1.1 only."""
    return False


def endpoint_values(values: Mapping[str, str]) -> dict[str, str]:
    """The values the endpoint rules read: 1.x sets endpoints only by their keys."""
    return dict(values)
