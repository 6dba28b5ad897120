"""Translate a KCL 1.x properties file into what the KCL 3.x launcher needs.

The same file users run on KCL 1.x runs on KCL 3.x once :func:`to_kcl3` has
rewritten the handful of things 3.x reads differently. Each change comes with
one human-readable note; a file already written for 3.x (or already
translated) passes through unchanged, with no note. The rules:

- credentials: AWS SDK v1 provider classes (``DefaultAWSCredentialsProviderChain``,
  ``SystemPropertiesCredentialsProvider``, ``com.amazonaws.auth.*``...) become the
  SDK v2 classes that do the same (``DefaultCredentialsProvider``,
  ``SystemPropertyCredentialsProvider``...); arguments (``|arg``) are kept; the
  key keeps its spelling (3.x reads the ``AWSCredentialsProvider`` prefix in any case);
- ``retrievalMode = POLLING`` unless the file sets a retrieval mode: KCL 1.x always
  polls, KCL 3.x would otherwise use enhanced fan-out (``SubscribeToShard``),
  which emulators such as moto do not serve;
- AT_TIMESTAMP: ``timestampAtInitialPositionInStream = T`` becomes
  ``initialPositionInStreamExtended = T`` (and ``initialPositionInStream =
  AT_TIMESTAMP``, which 3.x refuses, is dropped);
- renamed keys: ``skipShardSyncAtStartupIfLeasesExist`` becomes
  ``skipShardSyncAtWorkerInitializationIfLeasesExist``, the 1.x launcher's
  ``gracefulLeaseHandoff`` becomes ``isGracefulLeaseHandoffEnabled``;
- ``idleTimeBetweenReadsInMillis`` below 200 becomes 200 (KCL 3.x's minimum);
- the ``local`` profile: ``metricsLevel = NONE`` unless its CloudWatch endpoint
  answers the Smithy RPC v2 CBOR protocol, the only one the AWS SDK of KCL 3.x
  sends CloudWatch metrics in (the caller says so with ``answers_cbor``, which
  ``run`` and ``daemon`` pass: kclpy-local's embedded moto answers it, a moto
  server started otherwise answers 404, MiniStack without its optional ``cbor2``
  drops the request); where it answers, the file's
  ``metricsLevel`` (KCL 3.x's default, DETAILED, when unset) is kept, so the
  KCL's metrics reach that CloudWatch as on KCL 1.x (the start-up keys of local
  endpoints are added after the translation, by :mod:`.startup`);
- keys KCL 1.x reads and KCL 3.x does not (``leaseCleanupIntervalMillis``,
  ``http.proxyHost``...) are dropped, listed in one note.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import javaproperties

from .kcl3_keys import CREDENTIALS_PREFIX, KCL1_ONLY_KEYS, sdk2_provider
from .keyspec import LONG_RANGE, java_trim, parse_java_integer

__all__ = [
    "DROPPED_KEYS",
    "RENAMED_KEYS",
    "AnswersCbor",
    "Translation",
    "apply_translation",
    "note_lines",
    "to_kcl3",
]

#: 1.x keys whose 3.x counterpart has another name.
RENAMED_KEYS: Mapping[str, str] = {
    "timestampAtInitialPositionInStream": "initialPositionInStreamExtended",
    "skipShardSyncAtStartupIfLeasesExist": "skipShardSyncAtWorkerInitializationIfLeasesExist",
    "gracefulLeaseHandoff": "isGracefulLeaseHandoffEnabled",
}
#: 1.x keys the translation drops: KCL 3.x does not read them.
DROPPED_KEYS: frozenset[str] = frozenset(KCL1_ONLY_KEYS) - frozenset(RENAMED_KEYS)
_PREFIX = "translated for KCL 3.x"
#: Whether the CloudWatch endpoint at a URL answers the Smithy RPC v2 CBOR protocol.
AnswersCbor = Callable[[str], bool]
_CLOUDWATCH_KEYS = ("cloudWatchEndpoint", "cloudWatchClient.endpointOverride")
_MIN_IDLE_MILLIS = 200


@dataclass(frozen=True, slots=True)
class Translation:
    """The translated key/value pairs (in file order, new keys last) and one note per change."""

    values: dict[str, str]
    notes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.notes)


def _providers(value: str) -> str:
    """``value`` with the SDK v1 classes that have an SDK v2 counterpart replaced by it
    (the others are left for the validator to report)."""
    parts = []
    for part in value.split(","):
        name = java_trim(part)
        cls, bar, args = name.partition("|")
        found = sdk2_provider(cls) if cls else None
        if found is None:
            parts.append(part)
            continue
        v2 = found[1]
        if v2 is None:
            parts.append(part)
        else:
            lead = part[: len(part) - len(part.lstrip())]
            parts.append(f"{lead}{v2}{bar}{args}")
    return ",".join(parts)


def _long(value: str | None) -> int | None:
    return None if value is None else parse_java_integer(java_trim(value), *LONG_RANGE)


def to_kcl3(
    values: Mapping[str, str], profile: str | None, answers_cbor: AnswersCbor | None = None
) -> Translation:
    """Translate the (substituted) values of a 1.x properties file for the KCL 3.x launcher.

    ``profile`` is the file's profile (:func:`~kclpy_local._config.properties.detect_profile`);
    the ``local`` profile means a local engine. ``answers_cbor`` tells whether the
    file's CloudWatch endpoint answers the Smithy RPC v2 CBOR protocol (asked only
    for the ``local`` profile; without it, none is taken to). See the module
    documentation for the rules. Idempotent: translating the result again (with
    the same answer) changes nothing and notes nothing.
    """
    out = dict(values)
    notes: list[str] = []

    # Credentials: SDK v1 classes -> SDK v2.
    for key, value in values.items():
        if not key.lower().startswith(CREDENTIALS_PREFIX):
            continue
        translated = _providers(value)
        if translated != value:
            out[key] = translated
            notes.append(f"translated {key}: {java_trim(value)} -> {java_trim(translated)}")

    # AT_TIMESTAMP.
    timestamp = values.get("timestampAtInitialPositionInStream")
    position = values.get("initialPositionInStream")
    at_timestamp = position is not None and java_trim(position).upper() == "AT_TIMESTAMP"
    if (
        timestamp is not None
        and "initialPositionInStreamExtended" not in values
        and (position is None or at_timestamp)
    ):
        del out["timestampAtInitialPositionInStream"]
        out["initialPositionInStreamExtended"] = java_trim(timestamp)
        if at_timestamp:
            del out["initialPositionInStream"]
        notes.append(
            f"translated timestampAtInitialPositionInStream = {java_trim(timestamp)} -> "
            f"initialPositionInStreamExtended = {java_trim(timestamp)}"
            + (
                " (initialPositionInStream = AT_TIMESTAMP dropped: KCL 3.x refuses it)"
                if at_timestamp
                else ""
            )
        )

    # Renamed keys.
    for old, new in RENAMED_KEYS.items():
        if old == "timestampAtInitialPositionInStream" or old not in values:
            continue
        value = java_trim(values[old])
        if old == "gracefulLeaseHandoff":
            value = value.lower()
        del out[old]
        if new in values:
            notes.append(f"dropped {old} = {value}: {new} is set")
        else:
            out[new] = value
            notes.append(f"translated {old} = {value} -> {new} = {value}")

    # Polling, as KCL 1.x.
    if "retrievalMode" not in values:
        out["retrievalMode"] = "POLLING"
        notes.append(
            "added retrievalMode = POLLING: KCL 1.x polls with GetRecords; KCL 3.x would use "
            "enhanced fan-out (SubscribeToShard)"
        )
    idle = _long(values.get("idleTimeBetweenReadsInMillis"))
    if idle is not None and 0 < idle < _MIN_IDLE_MILLIS:
        out["idleTimeBetweenReadsInMillis"] = str(_MIN_IDLE_MILLIS)
        notes.append(
            f"translated idleTimeBetweenReadsInMillis = {idle} -> {_MIN_IDLE_MILLIS}: KCL 3.x's minimum"
        )

    if profile == "local":
        level = values.get("metricsLevel")
        if level is None or java_trim(level).upper() != "NONE":
            note = _metrics_off(values, answers_cbor)
            if note is not None:
                out["metricsLevel"] = "NONE"
                change = (
                    f"translated metricsLevel = {java_trim(level)} -> NONE"
                    if level is not None
                    else "added metricsLevel = NONE (local profile)"
                )
                notes.append(f"{change}: {note}")

    # Keys KCL 3.x does not read.
    dropped = [key for key in values if key in DROPPED_KEYS]
    for key in dropped:
        del out[key]
    if dropped:
        notes.append(f"dropped keys KCL 3.x does not read: {', '.join(dropped)}")
    return Translation(out, tuple(notes))


def _metrics_off(values: Mapping[str, str], answers_cbor: AnswersCbor | None) -> str | None:
    """Why the local profile's metrics go off; ``None`` when its CloudWatch endpoint
    answers the protocol KCL 3.x's AWS SDK sends them in."""
    endpoint = next((java_trim(v) for k in _CLOUDWATCH_KEYS if (v := values.get(k))), "")
    sends = (
        "the AWS SDK of KCL 3.x sends CloudWatch metrics in the Smithy RPC v2 CBOR protocol only"
    )
    if answers_cbor is None or not endpoint:
        return (
            f"{sends}, and no CloudWatch endpoint was found to answer it (kclpy-local run and "
            "daemon keep metrics on where it does, as on the embedded moto)"
        )
    if answers_cbor(endpoint):
        return None
    return f"{sends}, which the CloudWatch endpoint {endpoint} does not answer"


def apply_translation(document: javaproperties.PropertiesFile, translation: Translation) -> None:
    """Make ``document`` hold ``translation.values``, keeping comments and the
    layout of unchanged entries: dropped keys are removed, changed ones rewritten
    in place, new ones appended."""
    for key in list(document.keys()):
        if key not in translation.values:
            del document[key]
    for key, value in translation.values.items():
        if document.get(key) != value:
            document[key] = value


def note_lines(translation: Translation) -> list[str]:
    """The notes as the CLI prints them, one line each."""
    return [f"kclpy-local: {_PREFIX}: {note}" for note in translation.notes]
