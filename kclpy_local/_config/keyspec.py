"""What both KCL key tables are made of: :class:`KeySpec`, :class:`KeyType`, and
the Java decoding helpers their value decoders share.

The tables themselves are :mod:`kclpy_local._config.kcl1_keys` (KCL 1.15.3) and
:mod:`kclpy_local._config.kcl3_keys` (KCL 3.x); each has its own ``check_value``,
since the two configurators decode the same Java type differently.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "INT_RANGE",
    "LONG_RANGE",
    "KeySpec",
    "KeyType",
    "check_epoch_seconds",
    "check_providers",
    "java_integer",
    "java_trim",
    "kcl_bool",
    "kcl_int",
    "kcl_key",
    "kcl_long",
    "parse_java_integer",
]

#: The ranges of Java's ``int`` and ``long``.
INT_RANGE = (-(2**31), 2**31 - 1)
LONG_RANGE = (-(2**63), 2**63 - 1)
_JAVA_WS = "".join(chr(c) for c in range(0x21))
_PROVIDER_CLASS = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*")
_MILLIS_LOOKING = 10**11  # seconds after year 5138: surely milliseconds


class KeyType(enum.Enum):
    """How a value is decoded."""

    INT = "int"
    LONG = "long"
    BOOLEAN = "boolean"
    STRING = "String"
    DATE = "Date (epoch seconds)"
    INITIAL_POSITION = "InitialPositionInStream"
    STRING_SET = "Set<String> (comma list)"
    CREDENTIALS_PROVIDER = "AWSCredentialsProvider (comma list of classes)"
    # Types only KCL 3.x keys have.
    DOUBLE = "double"
    DURATION = "Duration (ISO-8601, e.g. PT24H)"
    TAGS = "tags (key=value,key=value)"
    STREAM_NAMES = "stream names (comma list)"


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One property key: its decoded type, default and meaning.

    ``default`` is the effective default as text (``None``: unset / computed),
    ``source`` says who reads the key: ``configurator`` (read by name by
    ``KinesisClientLibConfigurator``), ``kcl`` (a ``with<Key>`` setter of
    ``KinesisClientLibConfiguration``), ``multilang`` or ``launcher``;
    ``choices`` lists accepted values for enum-like strings (compared upper-case),
    ``minimum`` is the smallest value the setter accepts.
    """

    name: str
    type: KeyType
    default: str | None
    description: str
    required: bool = False
    source: str = "kcl"
    choices: tuple[str, ...] = ()
    minimum: int | None = None


def kcl_key(
    name: str,
    type_: KeyType,
    default: str | None,
    description: str,
    *,
    required: bool = False,
    choices: tuple[str, ...] = (),
    minimum: int | None = None,
) -> KeySpec:
    """A key the KCL's own configuration reads (``source`` ``kcl``)."""
    return KeySpec(name, type_, default, description, required, "kcl", choices, minimum)


# Most numeric keys must be positive (the KCL's setters check it), so the numeric
# builders default to ``minimum=1``; a key with another minimum, or none, says so.


def kcl_int(
    name: str, default: str | None, description: str, *, minimum: int | None = 1
) -> KeySpec:
    """An ``int`` key the KCL's own configuration reads, at least ``minimum``."""
    return kcl_key(name, KeyType.INT, default, description, minimum=minimum)


def kcl_long(
    name: str, default: str | None, description: str, *, minimum: int | None = 1
) -> KeySpec:
    """A ``long`` key (most are milliseconds) the KCL's own configuration reads, at least ``minimum``."""
    return kcl_key(name, KeyType.LONG, default, description, minimum=minimum)


def kcl_bool(name: str, default: str | None, description: str) -> KeySpec:
    """A ``boolean`` key the KCL's own configuration reads."""
    return kcl_key(name, KeyType.BOOLEAN, default, description)


def java_trim(value: str) -> str:
    """``String.trim()``: strip characters up to U+0020 at both ends."""
    return value.strip(_JAVA_WS)


def parse_java_integer(value: str, low: int, high: int) -> int | None:
    """``Integer.parseInt``/``Long.parseLong`` in radix 10; ``None`` when Java would throw."""
    digits = value[1:] if value[:1] in "+-" else value
    if not digits or not all(ch.isdecimal() for ch in digits):
        return None
    number = int(value)
    return number if low <= number <= high else None


def java_integer(value: str, kind: KeyType) -> int | None:
    """``Integer.parseInt`` for an ``int`` key, ``Long.parseLong`` for any other
    (``long``, ``Date``); ``None`` when Java would throw."""
    low, high = INT_RANGE if kind is KeyType.INT else LONG_RANGE
    return parse_java_integer(value, low, high)


def check_epoch_seconds(number: int) -> str | None:
    """Why ``number`` is a doubtful ``Date`` value (it looks like milliseconds), or ``None``."""
    if number >= _MILLIS_LOOKING:
        return f"{number} looks like milliseconds; KCL expects epoch seconds"
    return None


def check_providers(value: str, check_class: Callable[[str], str | None]) -> str | None:
    """The problem with a credentials-provider list (``Class|arg,...``), or ``None``:
    no class, a name that is not a Java class name, or what ``check_class`` (the
    generation's own rule) says of the first class it refuses."""
    classes = [java_trim(part).split("|", 1)[0] for part in value.split(",")]
    classes = [cls for cls in classes if cls]
    if not classes:
        return "no credentials provider class is named"
    for cls in classes:
        if not _PROVIDER_CLASS.fullmatch(cls):
            return f"{cls!r} is not a Java class name"
    for cls in classes:
        problem = check_class(cls)
        if problem is not None:
            return problem
    return None
