"""Everything the configuration reference takes from :mod:`kclpy_local._config`.

The only module of this package that imports ``kclpy_local._config``: a rename
there is an edit here. The key tables are offered per KCL generation (1 and 3).
"""

from __future__ import annotations

from collections.abc import Mapping

from .._config.endpoints import ENDPOINT_KEYS
from .._config.generations import GENERATIONS
from .._config.kcl1_keys import KCL1_UNSETTABLE
from .._config.kcl3_keys import KCL1_ONLY_KEYS, KCL3_BEANS, KCL3_UNSETTABLE
from .._config.keyspec import KeySpec, KeyType
from .._config.properties import (
    PROFILES,
    Entry,
    Profile,
    PropertiesDocument,
    detect_profile,
    parse_properties,
    render_properties,
    substitute,
    validate_properties,
)
from .._config.startup import KCL1_STARTUP, KCL3_STARTUP
from .._config.translate import RENAMED_KEYS, apply_translation, to_kcl3

__all__ = [
    "ENDPOINT_KEYS",
    "KCL1_ONLY_KEYS",
    "KCL1_STARTUP",
    "KCL3_BEANS",
    "KCL3_STARTUP",
    "KEYS",
    "MAXIMUM",
    "PROFILES",
    "RENAMED_KEYS",
    "UNSETTABLE",
    "Entry",
    "KeySpec",
    "KeyType",
    "Profile",
    "PropertiesDocument",
    "apply_translation",
    "detect_profile",
    "parse_properties",
    "render_properties",
    "substitute",
    "to_kcl3",
    "validate_properties",
]

#: Every key a generation's daemon reads, in the order of its table.
KEYS: Mapping[int, tuple[KeySpec, ...]] = {n: g.keys for n, g in GENERATIONS.items()}
#: Setters a generation's configurator cannot feed from a file, with the reason.
UNSETTABLE: Mapping[int, Mapping[str, str]] = {1: KCL1_UNSETTABLE, 3: KCL3_UNSETTABLE}
#: Largest accepted values, per generation; the key tables do not carry them.
MAXIMUM: Mapping[int, Mapping[str, int]] = {1: {}, 3: {"maxRecords": 10000}}
