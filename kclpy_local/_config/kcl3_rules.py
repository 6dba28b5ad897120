"""The validation rules of KCL 3.x, as its multilang daemon reads a file: each entry
(bean property names, the 3.x decoders, keys only 1.x reads reported as ignored),
and the rules across entries (required keys, two keys for one property, the
initial position, several streams, what the local profiles need).

The key table and the value decoders are :mod:`kclpy_local._config.kcl3_keys`;
:data:`~kclpy_local._config.generations.KCL3` puts them together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet

from .document import Problem, Profile, PropertiesDocument, ValuesCheck
from .endpoints import is_loopback_url
from .entry_rules import near_name, unknown_key, unsettable, value_problem
from .kcl1_rules import check_cbor
from .kcl1_rules import type_hint as _kcl1_type_hint
from .kcl3_keys import (
    CLIENT_BUILDER_PREFIXES,
    KCL1_ONLY_KEYS,
    KCL3_BEANS,
    KCL3_KEYS,
    KCL3_PRIMITIVE,
    KCL3_UNSETTABLE,
    STREAM_NAMES,
    bean_property,
    check_value,
    lookup,
)
from .keyspec import KeySpec, KeyType, java_trim
from .translate import RENAMED_KEYS

__all__ = [
    "FANOUT_ENGINES",
    "HTTP_PROTOCOL_KEY",
    "TRUST_LOOPBACK_KEY",
    "check_entry",
    "check_values",
    "endpoint_values",
    "launcher_local",
    "local_kinesis_http2",
    "reads_by_fanout",
]

#: Which local Kinesis engines serve enhanced fan-out, in the validator's words
#: (``run`` and ``daemon`` check the engine they use before the JVM starts).
FANOUT_ENGINES = "kinesis-mock and MiniStack serve SubscribeToShard over HTTP/2; moto has none"
#: The launcher key that lets the Kinesis client trust any certificate of an
#: https:// endpoint on a loopback host (and of no other).
TRUST_LOOPBACK_KEY = "kinesisTrustLoopbackCertificates"
#: The launcher key that sets the Kinesis client's HTTP protocol on a local endpoint.
HTTP_PROTOCOL_KEY = "kinesisHttpProtocol"

#: How a value with whitespace around it that the decoder accepts is reported.
_PADDED = (
    "leading or trailing whitespace in the value (KCL 3.x keeps it in strings, booleans and "
    "enumerations)",
    "remove it",
)


def check_entry(key: str, value: str, line: int | None) -> list[Problem]:
    spec = lookup(key)
    if spec is None:
        problem = _unknown_key(key, line)
        return [problem] if problem is not None else []
    reason = check_value(spec, value)
    if reason and "maximum" in reason:  # the reason names the bound: no hint
        return [Problem(key, line, "error", reason)]
    # The launcher trims each stream name: whitespace around them is no problem.
    checked = java_trim(value) if spec.type is KeyType.STREAM_NAMES else value
    problem = value_problem(
        key, checked, line, reason, hint=_type_hint(spec, value), padded=_PADDED
    )
    if problem is not None:
        return [problem]
    if (
        spec.name in KCL3_PRIMITIVE
        and _is_zero(spec, value)
        and spec.default not in (None, "0", "false")
    ):
        return [
            Problem(
                key,
                line,
                "warning",
                f"{java_trim(value)} is never applied: KCL 3.x's multilang daemon skips a primitive "
                f"field's zero value, so the KCL default {spec.default} stays",
            )
        ]
    return []


def _is_zero(spec: KeySpec, value: str) -> bool:
    text = java_trim(value)
    if spec.type is KeyType.BOOLEAN:
        return value.lower() in ("false", "no", "n", "off", "0")
    try:
        return float(text.rstrip("dDfF")) == 0
    except ValueError:
        return False


def _type_hint(spec: KeySpec, value: str) -> str | None:
    if spec.type is KeyType.INITIAL_POSITION and value.upper() == "AT_TIMESTAMP":
        return "write initialPositionInStreamExtended = <epoch seconds> instead"
    if spec.type is KeyType.CREDENTIALS_PROVIDER:
        return (
            "name AWS SDK v2 classes, such as DefaultCredentialsProvider or "
            "EnvironmentVariableCredentialsProvider; kclpy-local translates SDK v1 names when it "
            "runs a file with --kcl 3"
        )
    if spec.type is KeyType.BOOLEAN:
        return "true or false"
    if spec.type is KeyType.DURATION:
        return "e.g. PT24H, PT30M, PT10S"
    if spec.type is KeyType.TAGS:
        return "e.g. team=streams,env=dev"
    if spec.type is KeyType.STREAM_NAMES:
        return "e.g. streamNames = orders, payments"
    return _kcl1_type_hint(spec)


def _unknown_key(key: str, line: int | None) -> Problem | None:
    problem = unsettable(key, line, KCL3_UNSETTABLE, "3.x")
    if problem is not None:
        return problem
    if key in KCL1_ONLY_KEYS:
        action = "translates" if key in RENAMED_KEYS else "drops"
        return Problem(
            key,
            line,
            "warning",
            f"ignored by KCL 3.x: {KCL1_ONLY_KEYS[key]}",
            f"kclpy-local {action} it when it runs the file with --kcl 3",
        )
    for prefix in CLIENT_BUILDER_PREFIXES:
        if key.startswith(prefix):
            if key[len(prefix) :] in ("endpointOverride", "region"):
                return None
            return Problem(
                key,
                line,
                "warning",
                "a property of the AWS SDK client builder, passed on as it is: kclpy-local does not "
                "check it, and the daemon stops at start when the builder has no such property",
            )
    names = [spec.name for spec in KCL3_KEYS]
    names += [f"{bean}.{name}" for bean, members in KCL3_BEANS.items() for name in members]
    suggestion = near_name(names, key, bean_property(key))
    return unknown_key(key, line, suggestion, "KCL 3.x", " (KCL 3.x key names are case-sensitive)")


def _set_keys(keys: Iterable[str], name: str) -> list[str]:
    """The ``keys`` that set the 3.x property ``name``."""
    return [key for key in keys if bean_property(key) == name]


def _check_required(
    values: Mapping[str, str], document: PropertiesDocument, unresolved: AbstractSet[str]
) -> list[Problem]:
    problems = []
    for spec in KCL3_KEYS:
        if not spec.required:
            continue
        keys = _set_keys([*values, *unresolved], spec.name)
        if any(key in unresolved for key in keys) or any(
            java_trim(values.get(key, "")) for key in keys
        ):
            continue
        if spec.name == "streamName" and (
            java_trim(values.get("streamArn", ""))
            or STREAM_NAMES in values
            or STREAM_NAMES in unresolved
        ):
            continue
        empty = bool(keys)
        action = "give it a value" if empty else f"add {spec.name} = <value>"
        problems.append(
            Problem(
                spec.name,
                document.line_of(keys[-1]) if keys else None,
                "error",
                f"required key {'is empty' if empty else 'is missing'}",
                f"{action} ({spec.description.split(';')[0].rstrip('.')})",
            )
        )
    return problems


def _check_same_property(values: Mapping[str, str], document: PropertiesDocument) -> list[Problem]:
    """Two keys that set the same 3.x property (``AWSCredentialsProvider`` and
    ``AwsCredentialsProvider``, ``maxRecords`` and ``pollingConfig.maxRecords``...)."""
    by_property: dict[str, list[str]] = {}
    for key in values:
        name = bean_property(key)
        by_property.setdefault("workerId" if name == "workerIdentifier" else name, []).append(key)
    problems = []
    for keys in by_property.values():
        if len(keys) > 1:
            problems.append(
                Problem(
                    keys[-1],
                    document.line_of(keys[-1]),
                    "warning",
                    f"{', '.join(keys)} set the same property: which value wins depends on key order",
                    "keep one of them",
                )
            )
    return problems


def _check_initial_position(
    values: Mapping[str, str], document: PropertiesDocument
) -> list[Problem]:
    if "initialPositionInStream" in values and "initialPositionInStreamExtended" in values:
        return [
            Problem(
                "initialPositionInStreamExtended",
                document.line_of("initialPositionInStreamExtended"),
                "error",
                "given with initialPositionInStream: both set the initial position, and which one "
                "wins depends on key order",
                "keep initialPositionInStreamExtended for AT_TIMESTAMP, or remove it",
            )
        ]
    return []


def _check_streams(values: Mapping[str, str], document: PropertiesDocument) -> list[Problem]:
    """``streamNames`` names every stream of the application: no other key may name one,
    and no consumer (which belongs to one stream) may be given."""
    if STREAM_NAMES not in values:
        return []
    problems = []
    for key, why, hint in (
        ("streamName", "it names the one stream of single-stream mode", "remove streamName"),
        ("streamArn", "it names the one stream of single-stream mode", "remove streamArn"),
        (
            "fanoutConfig.consumerArn",
            "a consumer belongs to one stream",
            "remove fanoutConfig.consumerArn; the KCL registers a consumer per stream",
        ),
    ):
        if key in values:
            problems.append(
                Problem(
                    key,
                    document.line_of(key),
                    "error",
                    f"given with {STREAM_NAMES} (several streams): {why}; the launcher stops at start",
                    hint,
                )
            )
    return problems


def _polling_is_set(values: Mapping[str, str]) -> bool:
    return any(bean_property(key) in KCL3_BEANS["pollingConfig"] for key in values)


def reads_by_fanout(values: Mapping[str, str]) -> bool:
    """Whether a KCL 3.x worker with these values reads records by enhanced fan-out:
    ``retrievalMode = FANOUT``, or ``DEFAULT`` (the default) with no polling key set,
    as the stock daemon decides."""
    mode = java_trim(values.get("retrievalMode", "DEFAULT")).upper()
    return mode == "FANOUT" or (mode == "DEFAULT" and not _polling_is_set(values))


def _check_fanout(
    values: Mapping[str, str], document: PropertiesDocument, profile: Profile | None
) -> list[Problem]:
    """Enhanced fan-out on a local profile needs an engine with SubscribeToShard."""
    if profile not in ("local", "localstack") or not reads_by_fanout(values):
        return []
    mode = java_trim(values.get("retrievalMode", "DEFAULT")).upper()
    how = (
        "retrievalMode = FANOUT"
        if mode == "FANOUT"
        else f"retrievalMode {mode} with no polling key"
    )
    return [
        Problem(
            "retrievalMode",
            document.line_of("retrievalMode"),
            "warning",
            f"{how} reads by enhanced fan-out (SubscribeToShard over HTTP/2) in the {profile} "
            f"profile: the Kinesis engine must serve it ({FANOUT_ENGINES}); run and daemon "
            "refuse an engine without it",
            "retrievalMode = POLLING, or Kinesis on kinesis-mock (--kinesis kinesis-mock)",
        )
    ]


def launcher_local(endpoint: str) -> bool:
    """Whether the 3.x launcher treats a Kinesis endpoint as local: an ``http://`` URL,
    or a loopback host."""
    return endpoint.lower().startswith("http://") or is_loopback_url(endpoint)


def local_kinesis_http2(values: Mapping[str, str]) -> bool:
    """Whether the 3.x launcher's Kinesis client speaks HTTP/2 to a local endpoint:
    ``kinesisHttpProtocol = HTTP2``, or by default when the worker reads by enhanced
    fan-out (HTTP/1.1 when it polls, or with ``kinesisHttpProtocol = HTTP1_1``)."""
    given = java_trim(values.get(HTTP_PROTOCOL_KEY, "")).upper()
    if given in ("HTTP1_1", "HTTP2"):
        return given == "HTTP2"
    return reads_by_fanout(values)


def _check_protocol(values: Mapping[str, str], document: PropertiesDocument) -> list[Problem]:
    """The launcher sets the protocol only on a local Kinesis endpoint."""
    if HTTP_PROTOCOL_KEY not in values:
        return []
    endpoint = java_trim(endpoint_values(values).get("kinesisEndpoint", ""))
    if endpoint and launcher_local(endpoint):
        return []
    where = endpoint or "the AWS endpoint (no kinesisEndpoint)"
    return [
        Problem(
            HTTP_PROTOCOL_KEY,
            document.line_of(HTTP_PROTOCOL_KEY),
            "error",
            f"is only for a local kinesisEndpoint (http://, or a loopback host), not {where}: "
            "the launcher refuses to start (the KCL's own HTTP/2 client is used there)",
            f"remove {HTTP_PROTOCOL_KEY}",
        )
    ]


def _check_trust(values: Mapping[str, str], document: PropertiesDocument) -> list[Problem]:
    """The launcher trusts any certificate only on a loopback https:// Kinesis endpoint."""
    value = values.get(TRUST_LOOPBACK_KEY)
    if value is None or java_trim(value).lower() != "true":
        return []
    endpoint = java_trim(endpoint_values(values).get("kinesisEndpoint", ""))
    if endpoint.lower().startswith("https://") and is_loopback_url(endpoint):
        return []
    where = endpoint or "the AWS endpoint (no kinesisEndpoint)"
    return [
        Problem(
            TRUST_LOOPBACK_KEY,
            document.line_of(TRUST_LOOPBACK_KEY),
            "error",
            f"true is only for an https:// kinesisEndpoint on a loopback host, not {where}: "
            "the launcher checks certificates everywhere else, and refuses to start",
            f"remove {TRUST_LOOPBACK_KEY}",
        )
    ]


def _check_local(
    values: Mapping[str, str], document: PropertiesDocument, profile: Profile | None
) -> list[Problem]:
    if profile not in ("local", "localstack"):
        return []
    problems = _check_fanout(values, document, profile)
    problems += check_cbor(values, document, profile)
    return problems


_ENDPOINT_OVERRIDES = {
    "kinesisEndpoint": "kinesisClient.endpointOverride",
    "dynamoDBEndpoint": "dynamoDbClient.endpointOverride",
    "cloudWatchEndpoint": "cloudWatchClient.endpointOverride",
}


def endpoint_values(values: Mapping[str, str]) -> dict[str, str]:
    """The values the endpoint rules read: ``values`` with endpoints given as client
    builder properties (``kinesisClient.endpointOverride``...) under the endpoint keys."""
    merged = dict(values)
    for key, override in _ENDPOINT_OVERRIDES.items():
        if key not in merged and override in merged:
            merged[key] = merged[override]
    return merged


def check_values(check: ValuesCheck) -> list[Problem]:
    """The rules across entries: required keys, two keys for one property, the
    initial position, several streams, what the local profiles need."""
    values, document = check.values, check.document
    return [
        *_check_required(values, document, check.unresolved),
        *_check_same_property(values, document),
        *_check_initial_position(values, document),
        *_check_streams(values, document),
        *_check_local(values, document, check.profile),
        *_check_trust(values, document),
        *_check_protocol(values, document),
    ]
