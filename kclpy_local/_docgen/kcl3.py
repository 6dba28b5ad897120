"""The KCL 3.x part of ``docs/configuration.md``: its keys and the 1.x translation."""

from __future__ import annotations

from collections.abc import Mapping

import javaproperties

from . import _config_api as config
from ._markdown import code
from .keys import key_sections, reason_table

__all__ = ["kcl3_parts"]

#: Who reads the KCL 3.x keys (``KeySpec.source``): section title and intro, in page order.
_SOURCES: Mapping[str, tuple[str, str]] = {
    "configurator": (
        "Credentials",
        "The configurator maps the prefix `AwsCredentialsProvider` in any case (so a 1.x file's "
        "`AWSCredentialsProvider` is read), the rest of the key as written.",
    ),
    "kcl": (
        "Settings of `MultiLangDaemonConfiguration`",
        "Properties of the 3.x multilang daemon's configuration bean, including those it "
        "delegates to its nested beans (polling, graceful lease handoff, worker utilization "
        "aware assignment, worker metrics table, coordinator state table); the delegated "
        "ones may also be written `<bean>.<key>` (for instance `pollingConfig.maxRecords`).",
    ),
    "fanout": (
        "Enhanced fan-out",
        "Properties of the `fanoutConfig` bean, written with its name (used with "
        "`retrievalMode = FANOUT`).",
    ),
    "multilang": (
        "Multilang daemon",
        "Read by `MultiLangDaemonConfig`, the daemon's own configuration.",
    ),
    "launcher": (
        "kclpy-local 3.x launcher",
        "Read by the kclpy-local 3.x launcher; the stock 3.x daemon ignores them. "
        "`cloudWatchEndpoint`, `isCBORProtocolDisabled` and `initialLeaseSync` are named as "
        "for the 1.x launcher, so a file works with both.",
    ),
}

#: A KCL 1.x file for the local profile, translated in the documentation.
_KCL1_EXAMPLE = """\
# kclpy-local: profile=local
applicationName = my-app
streamName = my-stream
executableName = python3 processor.py
AWSCredentialsProvider = DefaultAWSCredentialsProviderChain
regionName = us-east-1
kinesisEndpoint = http://127.0.0.1:4566
dynamoDBEndpoint = http://127.0.0.1:4566
cloudWatchEndpoint = http://127.0.0.1:4566
isCBORProtocolDisabled = true
initialPositionInStream = AT_TIMESTAMP
timestampAtInitialPositionInStream = 1700000000
failoverTimeMillis = 5000
idleTimeBetweenReadsInMillis = 250
skipShardSyncAtStartupIfLeasesExist = true
leaseCleanupIntervalMillis = 10000
"""


def kcl3_parts() -> dict[str, str]:
    """The KCL 3.x keys, those it cannot take or ignores, and the 1.x file translated."""
    document = config.parse_properties(_KCL1_EXAMPLE)
    translation = config.to_kcl3(document.as_dict(), config.detect_profile(document))
    edited = javaproperties.PropertiesFile.loads(_KCL1_EXAMPLE)
    config.apply_translation(edited, translation)
    return {
        "kcl3_keys": "\n".join(key_sections(3, _SOURCES, suffix=" (KCL 3.x)")),
        "beans": ", ".join(code(bean) for bean in config.KCL3_BEANS),
        "kcl3_unsettable": "\n".join(reason_table(config.UNSETTABLE[3])),
        "kcl1_only": "\n".join(reason_table(config.KCL1_ONLY_KEYS)),
        "renamed": "; ".join(
            f"`{old}` becomes `{new}`" for old, new in config.RENAMED_KEYS.items()
        ),
        "startup": "\n".join(
            f"| {generation} | `{spec.key}` | `{spec.value}` | {spec.why} | `{spec.stock}` |"
            for generation, keys in (("1.x", config.KCL1_STARTUP), ("3.x", config.KCL3_STARTUP))
            for spec in keys
        ),
        "original": _KCL1_EXAMPLE,
        "notes": "\n".join(f"- {note}" for note in translation.notes),
        "translated": config.render_properties(edited),
    }
