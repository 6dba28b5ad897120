"""Read, write, substitute and validate KCL ``.properties`` files.

The full ``java.util.Properties`` syntax (``=``/``:``/whitespace separators,
``#``/``!`` comments, backslash continuations and escapes, ``\\uXXXX``) is
handled by the ``javaproperties`` library. Files are read as ISO-8859-1, as
``Properties.load(InputStream)`` does in the daemon, and written with non-ASCII
characters escaped; rewriting a file keeps its comments and layout byte for
byte, and writes changed entries as ``key = value`` escaped the way
``Properties.store`` escapes them (``:`` and ``=`` included). Writes are atomic.

Environment substitution (done by kclpy-local, never by the daemon: the JVM is
given an already substituted copy, see :func:`resolve_file`), in values only:

- ``${NAME}``: the value of the environment variable ``NAME``; an unset variable
  is an error naming the key and the variable;
- ``${NAME:-default}``: ``default`` when ``NAME`` is unset or empty (the default
  may not contain ``}``);
- ``$${`` stands for a literal ``${``; a ``$`` not followed by ``{`` is literal.

Profiles (``local``, ``localstack``, ``aws``) select the endpoint rules of
:func:`validate_properties`, whose ``generation`` (1, the default, or 3) selects
the key table: KCL 1.15.3's (:mod:`kclpy_local._config.kcl1_keys`) or KCL 3.x's
(:mod:`kclpy_local._config.kcl3_keys`: case-sensitive names, the 3.x decoders, keys
only 1.x reads reported as ignored). The profile is the explicit argument, else a comment
such as ``# kclpy-local: profile=local``, else the file name (``local.properties``,
``my-local.properties``).
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import urlsplit

import javaproperties

from .._exceptions import PropertiesError
from .kcl1_keys import (
    KCL1_KEYS,
    KCL1_KEYS_BY_NAME,
    KCL1_UNSETTABLE,
    KeySpec,
    KeyType,
    check_value,
    java_trim,
)
from .kcl3_keys import (
    CLIENT_BUILDER_PREFIXES,
    KCL1_ONLY_KEYS,
    KCL3_BEANS,
    KCL3_KEYS,
    KCL3_PRIMITIVE,
    KCL3_UNSETTABLE,
    bean_property,
    check_value3,
    spec3,
)
from .translate import RENAMED_KEYS

#: The built-in local profile (fast timings, one loopback endpoint from
#: ``$KCLPY_LOCAL_ENDPOINT``); ``properties/local.properties`` in the project.
LOCAL_PROFILE = Path(__file__).resolve().parent / "profiles" / "local.properties"

__all__ = [
    "GENERATIONS",
    "LOCAL_PROFILE",
    "PROFILES",
    "Entry",
    "Problem",
    "Profile",
    "PropertiesDocument",
    "check_file",
    "detect_profile",
    "effective_properties",
    "load_properties_file",
    "parse_properties",
    "read_properties",
    "render_properties",
    "require_valid",
    "resolve_file",
    "substitute",
    "validate_properties",
    "write_properties",
    "write_temporary",
]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

Profile = Literal["local", "localstack", "aws"]
PROFILES: tuple[Profile, ...] = get_args(Profile)
Severity = Literal["error", "warning"]
#: The KCL generations the validator has a key table for.
GENERATIONS: tuple[int, ...] = (1, 3)

ENDPOINT_KEYS: tuple[str, ...] = ("kinesisEndpoint", "dynamoDBEndpoint", "cloudWatchEndpoint")
_ENCODING = "iso-8859-1"  # what Properties.load(InputStream) assumes
_SUBST = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")
_PROFILE_COMMENT = re.compile(r"^\s*kclpy-local:\s*profile\s*=\s*(\S+)\s*$")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# An odd number of backslashes, then only whitespace up to the end of the line:
# an escaped space, where a line continuation was almost surely meant.
_ESCAPED_SPACE_AT_END = re.compile(r"(?<!\\)(?:\\\\)*\\[ \t\f]+$")
_AWS_HOST_SUFFIXES = ("amazonaws.com", "amazonaws.com.cn", "api.aws")


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of the validator; ``line`` is 1-based, ``None`` when unknown."""

    key: str | None
    line: int | None
    severity: Severity
    message: str
    hint: str | None = None

    def render(self, source: str | os.PathLike[str] | None = None) -> str:
        """``file:line: severity: key: message (hint: ...)``."""
        where = str(source) if source is not None else ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        parts = [p for p in (where, self.severity, self.key) if p]
        text = ": ".join(parts) + f": {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


@dataclass(frozen=True, slots=True)
class Entry:
    """A key/value pair as written in the file (escapes already decoded)."""

    key: str
    value: str
    line: int | None = None


@dataclass(frozen=True, slots=True)
class PropertiesDocument:
    """A parsed file: every entry in order (duplicates kept) and what surrounds them."""

    entries: tuple[Entry, ...]
    path: Path | None = None
    comments: tuple[tuple[int, str], ...] = ()
    non_ascii_lines: tuple[int, ...] = field(default=())
    escaped_space_lines: tuple[int, ...] = field(default=())

    def as_dict(self) -> dict[str, str]:
        """The values the JVM sees: the last of duplicate keys wins."""
        return {entry.key: entry.value for entry in self.entries}

    def line_of(self, key: str) -> int | None:
        lines = [e.line for e in self.entries if e.key == key]
        return lines[-1] if lines else None


# -- reading and writing ---------------------------------------------------


def parse_properties(text: str, path: Path | None = None) -> PropertiesDocument:
    """Parse ``.properties`` text, keeping line numbers and comments."""
    entries: list[Entry] = []
    comments: list[tuple[int, str]] = []
    escaped_space: list[int] = []
    line = 1
    try:
        for element in javaproperties.parse(text):
            if isinstance(element, javaproperties.KeyValue):
                entries.append(Entry(element.key, element.value, line))
                physical = _LINE_BREAK.split(element.source)
                escaped_space.extend(
                    line + offset
                    for offset, raw in enumerate(physical)
                    if _ESCAPED_SPACE_AT_END.search(raw)
                )
            elif isinstance(element, javaproperties.Comment):
                comments.append((line, element.value))
            line += len(_LINE_BREAK.findall(element.source))
    except javaproperties.InvalidUEscapeError as exc:
        where = f"{path}: " if path else ""
        raise PropertiesError(f"{where}malformed \\uXXXX escape {exc.escape!r}") from exc
    non_ascii = tuple(
        number
        for number, raw in enumerate(_LINE_BREAK.split(text), start=1)
        if any(ord(ch) > 0x7F for ch in raw)
    )
    return PropertiesDocument(tuple(entries), path, tuple(comments), non_ascii, tuple(escaped_space))


def _read_text(path: Path) -> str:
    try:
        with path.open(encoding=_ENCODING, newline="") as fp:
            return fp.read()
    except FileNotFoundError as exc:
        raise PropertiesError(f"properties file not found: {path}") from exc
    except OSError as exc:
        raise PropertiesError(f"cannot read properties file {path}: {exc.strerror or exc}") from exc


def read_properties(path: str | os.PathLike[str]) -> PropertiesDocument:
    """Read and parse a file; :class:`PropertiesError` if missing or unreadable."""
    p = Path(path)
    return parse_properties(_read_text(p), p)


def load_properties_file(path: str | os.PathLike[str]) -> javaproperties.PropertiesFile:
    """Load a file for editing: dumping it again keeps comments and layout."""
    p = Path(path)
    try:
        return javaproperties.PropertiesFile.loads(_read_text(p))
    except javaproperties.InvalidUEscapeError as exc:
        raise PropertiesError(f"{p}: malformed \\uXXXX escape {exc.escape!r}") from exc


def render_properties(
    mapping: Mapping[str, str],
    comments: str | Sequence[str] | None = None,
) -> str:
    """The text :func:`write_properties` writes for ``mapping`` (see there)."""
    if isinstance(mapping, javaproperties.PropertiesFile):
        document = mapping.copy()
    else:
        document = javaproperties.PropertiesFile()
        document.update(mapping)
    if comments is not None:
        document.header_comment = comments if isinstance(comments, str) else "\n".join(comments)
    text: str = document.dumps(separator=" = ", ensure_ascii=True)
    return text


def write_properties(
    path: str | os.PathLike[str],
    mapping: Mapping[str, str],
    comments: str | Sequence[str] | None = None,
) -> None:
    """Write ``mapping`` atomically (temporary file, then ``os.replace``).

    A :class:`javaproperties.PropertiesFile` keeps its own comments and layout:
    only changed or added entries are written anew (``key = value``).
    ``comments`` (one string with newlines, or a sequence of lines) becomes the
    header comment. Non-ASCII characters are written as ``\\uXXXX``.

    An existing file keeps its permission bits, and a symbolic link is followed
    (the file it points to is replaced, the link stays). On failure the file is
    untouched, no temporary file is left behind, and :class:`PropertiesError`
    is raised.
    """
    text = render_properties(mapping, comments)
    target = Path(path)
    if target.is_symlink():
        target = Path(os.path.realpath(target))
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644
    except OSError as exc:
        raise PropertiesError(f"cannot write {target}: {exc.strerror or exc}") from exc
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
        )
    except OSError as exc:
        raise PropertiesError(f"cannot write {target}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding=_ENCODING, newline="") as fp:
            if os.name == "posix":  # mkstemp makes 0600
                os.fchmod(fp.fileno(), mode)
            fp.write(text)
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp_name, target)
    except BaseException as exc:
        Path(tmp_name).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise PropertiesError(f"cannot write {target}: {exc.strerror or exc}") from exc
        raise


# -- environment substitution ----------------------------------------------


def _substitutions(value: str, environ: Mapping[str, str]) -> Iterator[tuple[str, str | None]]:
    """Yield (text, missing-variable-or-None) pieces; ``"${"`` alone means malformed."""
    pos = 0
    for match in _SUBST.finditer(value):
        yield value[pos : match.start()], None
        pos = match.end()
        token = match.group(0)
        if token == "$${":
            yield "${", None
        elif match.group(1) is None:
            yield "", "${"
        else:
            name, default = match.group(1), match.group(2)
            current = environ.get(name)
            if default is not None and not current:
                yield default, None
            elif current is None:
                yield "", name
            else:
                yield current, None
    yield value[pos:], None


def _substitute(value: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    text: list[str] = []
    missing: list[str] = []
    for piece, problem in _substitutions(value, environ):
        text.append(piece)
        if problem is not None:
            missing.append(problem)
    return "".join(text), missing


def substitute(value: str, *, key: str, environ: Mapping[str, str] | None = None) -> str:
    """Expand ``${NAME}`` / ``${NAME:-default}`` in one value of ``key``."""
    text, missing = _substitute(value, os.environ if environ is None else environ)
    if missing:
        raise PropertiesError(_missing_message(key, missing[0]))
    return text


def _missing_message(key: str, variable: str) -> str:
    if variable == "${":
        return f"property {key!r}: malformed ${{...}} (use ${{NAME}} or ${{NAME:-default}}, $${{ for a literal)"
    return (
        f"property {key!r} uses ${{{variable}}}, but the environment variable {variable} is not set"
    )


def effective_properties(
    base_path: str | os.PathLike[str],
    overrides: Mapping[str, str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> javaproperties.PropertiesFile:
    """The file at ``base_path`` with values substituted and ``overrides`` applied.

    Comments and layout are kept. Overrides are taken literally (no
    substitution). :class:`PropertiesError` if a variable is missing.
    """
    env = os.environ if environ is None else environ
    document = load_properties_file(base_path)
    for key in list(document.keys()):
        value = document[key]
        expanded = substitute(value, key=key, environ=env)
        if expanded != value:
            document[key] = expanded
    for key, value in (overrides or {}).items():
        document[key] = value
    return document


def resolve_file(
    path: str | os.PathLike[str],
    overrides: Mapping[str, str] | None = None,
    *,
    directory: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """Write the effective properties to a new temporary file; return its path.

    This is the file to hand to the daemon. The caller deletes it when the
    daemon has exited.
    """
    document = effective_properties(path, overrides, environ=environ)
    return write_temporary(document, directory=directory)


def write_temporary(
    document: Mapping[str, str], *, directory: str | os.PathLike[str] | None = None
) -> Path:
    """Write ``document`` (see :func:`write_properties`) to a new temporary file; its path.

    The caller deletes it when the daemon has exited.
    """
    fd, name = tempfile.mkstemp(prefix="kclpy-local-", suffix=".properties", dir=directory)
    os.close(fd)
    try:
        write_properties(name, document)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


# -- profiles ----------------------------------------------------------------


def detect_profile(document: PropertiesDocument) -> Profile | None:
    """Profile from a ``# kclpy-local: profile=P`` comment, else from the file name."""
    for _line, text in document.comments:
        match = _PROFILE_COMMENT.match(text)
        if match and match.group(1) in PROFILES:
            return match.group(1)  # type: ignore[return-value]
    if document.path is not None:
        stem = document.path.name.removesuffix(".properties")
        for profile in sorted(PROFILES, key=len, reverse=True):
            if stem == profile or any(stem.endswith(sep + profile) for sep in ".-_"):
                return profile
    return None


def _profile_comment_problems(document: PropertiesDocument) -> list[Problem]:
    problems = []
    for line, text in document.comments:
        match = _PROFILE_COMMENT.match(text)
        if match and match.group(1) not in PROFILES:
            problems.append(
                Problem(
                    None,
                    line,
                    "error",
                    f"unknown profile {match.group(1)!r}",
                    f"use one of {', '.join(PROFILES)}",
                )
            )
    return problems


# -- validation --------------------------------------------------------------


def validate_properties(
    props: Mapping[str, str] | PropertiesDocument,
    *,
    profile: Profile | None = None,
    environ: Mapping[str, str] | None = None,
    generation: int = 1,
) -> list[Problem]:
    """Every problem found in ``props`` (errors and warnings), in file order.

    Values are checked after environment substitution. With a
    :class:`PropertiesDocument` the problems carry line numbers and the profile
    may come from the file's comment or name. ``generation`` selects the key
    table: 1 (KCL 1.15.3) or 3 (KCL 3.x, as its multilang daemon reads the file).
    """
    if generation not in GENERATIONS:
        raise ValueError(f"no key table for KCL generation {generation!r}")
    kcl3 = generation == 3
    env = os.environ if environ is None else environ
    if isinstance(props, PropertiesDocument):
        document = props
    else:
        document = PropertiesDocument(tuple(Entry(k, v) for k, v in props.items()))
    problems = _profile_comment_problems(document)
    if profile is None:
        profile = detect_profile(document)
    elif profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}")
    values: dict[str, str] = {}
    unresolved: set[str] = set()
    seen: dict[str, int | None] = {}
    for entry in document.entries:
        if entry.key in seen:
            first = seen[entry.key]
            where = f" (first on line {first})" if first is not None else ""
            problems.append(
                Problem(
                    entry.key,
                    entry.line,
                    "warning",
                    f"set more than once{where}; the last value wins",
                )
            )
        seen[entry.key] = entry.line
        expanded, missing = _substitute(entry.value, env)
        for variable in missing:
            hint = (
                None
                if variable == "${"
                else f"export {variable}, or write ${{{variable}:-default}}"
            )
            problems.append(
                Problem(entry.key, entry.line, "error", _missing_message(entry.key, variable), hint)
            )
        values[entry.key] = expanded
        if missing:
            unresolved.add(entry.key)
        else:
            unresolved.discard(entry.key)
            check = _check_entry3 if kcl3 else _check_entry
            problems.extend(check(entry.key, expanded, entry.line))
    for line in document.escaped_space_lines:
        problems.append(
            Problem(
                None,
                line,
                "warning",
                "the line ends with a backslash and whitespace: that is an escaped space, "
                "not a line continuation, so the next line is read as an entry of its own",
                "remove the whitespace after the backslash",
            )
        )
    for line in document.non_ascii_lines:
        problems.append(
            Problem(
                None,
                line,
                "warning",
                "non-ASCII characters: the daemon reads .properties files as ISO-8859-1",
                "write them as \\uXXXX escapes",
            )
        )
    # A value that could not be substituted was reported once; checks that
    # would report it again see it as set to something valid.
    for key in unresolved:
        values.pop(key)
    if kcl3:
        problems.extend(_check_required3(values, document, unresolved))
        problems.extend(_check_same_property3(values, document))
        problems.extend(_check_initial_position3(values, document))
        problems.extend(_check_local3(values, document, profile))
        values = _with_endpoint_overrides3(values)
    else:
        problems.extend(_check_required(values, document, unresolved))
        problems.extend(_check_initial_position(values, document))
    problems.extend(_check_endpoints(values, document, profile, unresolved))
    problems.sort(key=lambda p: (p.line is None, p.line or 0))
    return problems


def _check_entry(key: str, value: str, line: int | None) -> list[Problem]:
    problems = []
    spec = KCL1_KEYS_BY_NAME.get(key)
    if spec is None:
        # The configurator calls "with" + key with its first letter upper-cased.
        spec = KCL1_KEYS_BY_NAME.get(key[:1].lower() + key[1:])
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
    reason = check_value(spec, value)
    padded = java_trim(value) != value
    if reason:
        hint = "remove the whitespace around the value" if padded else _type_hint(spec)
        problems.append(Problem(key, line, "error", reason, hint))
    elif padded:
        problems.append(
            Problem(
                key,
                line,
                "warning",
                "leading or trailing whitespace in the value (Properties keeps trailing spaces)",
                "remove it: only some decoders trim",
            )
        )
    return problems


def _type_hint(spec: KeySpec) -> str:
    if spec.choices:
        return f"one of {', '.join(spec.choices)}"
    if spec.type is KeyType.CREDENTIALS_PROVIDER:
        return "e.g. EnvironmentVariableCredentialsProvider or DefaultAWSCredentialsProviderChain"
    return f"expected {spec.type.value}" + (
        f" >= {spec.minimum}" if spec.minimum is not None else ""
    )


def _unknown_key(key: str, line: int | None) -> Problem:
    if key in KCL1_UNSETTABLE:
        return Problem(
            key,
            line,
            "error",
            f"cannot be set from a properties file in KCL 1.x: {KCL1_UNSETTABLE[key]}",
        )
    names = [spec.name for spec in KCL1_KEYS]
    folded = {name.lower(): name for name in names}
    suggestion = folded.get(key.lower()) or next(
        iter(difflib.get_close_matches(key, names, n=1, cutoff=0.75)), None
    )
    if suggestion:
        return Problem(
            key,
            line,
            "error",
            "unknown key; KCL ignores it silently",
            f"did you mean {suggestion!r}?",
        )
    return Problem(key, line, "warning", "unknown key; KCL ignores it silently")


def _check_required(
    values: Mapping[str, str], document: PropertiesDocument, unresolved: set[str]
) -> list[Problem]:
    problems = []
    for spec in KCL1_KEYS:
        if (
            spec.required
            and spec.name not in unresolved
            and not java_trim(values.get(spec.name, ""))
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


# -- KCL 3.x rules -------------------------------------------------------------


def _check_entry3(key: str, value: str, line: int | None) -> list[Problem]:
    spec = spec3(key)
    if spec is None:
        problem = _unknown_key3(key, line)
        return [problem] if problem is not None else []
    problems = []
    reason = check_value3(spec, value)
    padded = java_trim(value) != value
    if reason:
        hint = "remove the whitespace around the value" if padded else _type_hint3(spec, value)
        if "maximum" in reason:
            hint = None
        problems.append(Problem(key, line, "error", reason, hint))
    elif padded:
        problems.append(
            Problem(
                key,
                line,
                "warning",
                "leading or trailing whitespace in the value (KCL 3.x keeps it in strings, "
                "booleans and enumerations)",
                "remove it",
            )
        )
    elif spec.name in KCL3_PRIMITIVE and _is_zero(spec, value) and spec.default not in (None, "0", "false"):
        problems.append(
            Problem(
                key,
                line,
                "warning",
                f"{java_trim(value)} is never applied: KCL 3.x's multilang daemon skips a primitive "
                f"field's zero value, so the KCL default {spec.default} stays",
            )
        )
    return problems


def _is_zero(spec: KeySpec, value: str) -> bool:
    text = java_trim(value)
    if spec.type is KeyType.BOOLEAN:
        return value.lower() in ("false", "no", "n", "off", "0")
    try:
        return float(text.rstrip("dDfF")) == 0
    except ValueError:
        return False


def _type_hint3(spec: KeySpec, value: str) -> str | None:
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
    return _type_hint(spec)


def _unknown_key3(key: str, line: int | None) -> Problem | None:
    if key in KCL3_UNSETTABLE:
        return Problem(key, line, "error", f"cannot be set from a properties file in KCL 3.x: {KCL3_UNSETTABLE[key]}")
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
            if key[len(prefix):] in ("endpointOverride", "region"):
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
    folded = {name.lower(): name for name in names}
    property_name = bean_property(key)
    suggestion = folded.get(key.lower()) or folded.get(property_name.lower()) or next(
        iter(difflib.get_close_matches(property_name, names, n=1, cutoff=0.75)), None
    )
    if suggestion:
        return Problem(
            key,
            line,
            "error",
            "unknown key (KCL 3.x key names are case-sensitive); KCL 3.x ignores it silently",
            f"did you mean {suggestion!r}?",
        )
    return Problem(key, line, "warning", "unknown key; KCL 3.x ignores it silently")


def _set_keys(keys: Iterable[str], name: str) -> list[str]:
    """The ``keys`` that set the 3.x property ``name``."""
    return [key for key in keys if bean_property(key) == name]


def _check_required3(
    values: Mapping[str, str], document: PropertiesDocument, unresolved: set[str]
) -> list[Problem]:
    problems = []
    for spec in KCL3_KEYS:
        if not spec.required:
            continue
        keys = _set_keys([*values, *unresolved], spec.name)
        if any(key in unresolved for key in keys) or any(java_trim(values.get(key, "")) for key in keys):
            continue
        if spec.name == "streamName" and java_trim(values.get("streamArn", "")):
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


def _check_same_property3(values: Mapping[str, str], document: PropertiesDocument) -> list[Problem]:
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


def _check_initial_position3(values: Mapping[str, str], document: PropertiesDocument) -> list[Problem]:
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


def _polling_is_set(values: Mapping[str, str]) -> bool:
    return any(bean_property(key) in KCL3_BEANS["pollingConfig"] for key in values)


def _check_local3(
    values: Mapping[str, str], document: PropertiesDocument, profile: Profile | None
) -> list[Problem]:
    if profile not in ("local", "localstack"):
        return []
    problems = []
    mode = java_trim(values.get("retrievalMode", "DEFAULT")).upper()
    if mode == "FANOUT" or (mode == "DEFAULT" and not _polling_is_set(values)):
        problems.append(
            Problem(
                "retrievalMode",
                document.line_of("retrievalMode"),
                "error",
                f"enhanced fan-out (SubscribeToShard) in the {profile} profile: the launcher speaks "
                "HTTP/1.1 to local endpoints, and moto has no SubscribeToShard",
                "retrievalMode = POLLING",
            )
        )
    level = values.get("metricsLevel")
    if profile == "local" and (level is None or java_trim(level).upper() != "NONE"):
        problems.append(
            Problem(
                "metricsLevel",
                document.line_of("metricsLevel"),
                "warning",
                "KCL 3.x's AWS SDK sends CloudWatch metrics in the Smithy RPC v2 CBOR protocol only, "
                "which the embedded emulator (moto) answers with 404",
                "metricsLevel = NONE",
            )
        )
    return problems


_ENDPOINT_OVERRIDES = {
    "kinesisEndpoint": "kinesisClient.endpointOverride",
    "dynamoDBEndpoint": "dynamoDbClient.endpointOverride",
    "cloudWatchEndpoint": "cloudWatchClient.endpointOverride",
}


def _with_endpoint_overrides3(values: Mapping[str, str]) -> dict[str, str]:
    """``values`` with endpoints given as client builder properties under the endpoint keys."""
    merged = dict(values)
    for key, override in _ENDPOINT_OVERRIDES.items():
        if key not in merged and override in merged:
            merged[key] = merged[override]
    return merged


def _host_of(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        return parts.hostname if parts.scheme in ("http", "https") else None
    except ValueError:
        return None


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_endpoints(
    values: Mapping[str, str],
    document: PropertiesDocument,
    profile: Profile | None,
    unresolved: set[str],
) -> list[Problem]:
    problems: list[Problem] = []
    endpoints = {
        key: java_trim(values[key]) for key in ENDPOINT_KEYS if java_trim(values.get(key, ""))
    }
    for key, url in endpoints.items():
        line = document.line_of(key)
        host = _host_of(url)
        if host is not None:
            host = host.rstrip(".")  # "amazonaws.com." is the same host
        if not host:
            problems.append(
                Problem(key, line, "error", f"{url!r} is not an http(s) URL with a host")
            )
            continue
        on_aws = any(host == s or host.endswith("." + s) for s in _AWS_HOST_SUFFIXES)
        if profile in ("local", "localstack") and on_aws:
            problems.append(
                Problem(
                    key,
                    line,
                    "error",
                    f"{host} is an AWS host, refused in the {profile} profile",
                    "point it at the emulator (e.g. http://127.0.0.1:4566), or use the aws profile",
                )
            )
        elif profile == "local" and not _is_loopback(host):
            problems.append(
                Problem(
                    key,
                    line,
                    "error",
                    f"{host} is not a loopback host, refused in the local profile",
                    "use 127.0.0.1, ::1 or localhost",
                )
            )
        elif profile == "aws" and _is_loopback(host):
            problems.append(
                Problem(key, line, "warning", f"loopback endpoint {url} in the aws profile")
            )
    missing = [key for key in ENDPOINT_KEYS if key not in endpoints and key not in unresolved]
    if profile in ("local", "localstack"):
        for key in missing:
            problems.append(
                Problem(
                    key,
                    document.line_of(key),
                    "error",
                    f"not set in the {profile} profile: a missing endpoint silently means real AWS",
                    f"set {key} to the emulator URL",
                )
            )
        if "regionName" not in unresolved and not java_trim(values.get("regionName", "")):
            problems.append(
                Problem(
                    "regionName",
                    document.line_of("regionName"),
                    "error",
                    f"must be set in the {profile} profile (the signing region of the endpoints)",
                    "regionName = us-east-1",
                )
            )
    elif profile is None and endpoints and missing:
        problems.append(
            Problem(
                None,
                None,
                "warning",
                f"{', '.join(endpoints)} set but {', '.join(missing)} not: those clients go to real AWS",
                "set all three endpoints, or declare a profile",
            )
        )
    return problems


# -- file helpers ------------------------------------------------------------


def check_file(
    path: str | os.PathLike[str], profile: Profile | None = None, *, generation: int = 1
) -> list[Problem]:
    """Validate a file; :class:`PropertiesError` if it is missing or unreadable."""
    return validate_properties(read_properties(path), profile=profile, generation=generation)


def require_valid(
    path: str | os.PathLike[str], profile: Profile | None = None, *, generation: int = 1
) -> list[Problem]:
    """Raise :class:`PropertiesError` listing every error; return the warnings."""
    problems = check_file(path, profile, generation=generation)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        listing = "\n".join("  " + p.render(path) for p in errors)
        noun = "error" if len(errors) == 1 else "errors"
        exc = PropertiesError(f"{path}: {len(errors)} {noun}:\n{listing}")
        kcl = f" --kcl {generation}" if generation != 1 else ""
        exc.hint = f"run: kclpy-local properties check {path}{kcl}"
        raise exc
    for problem in problems:
        logger.warning("properties.warning %s", problem.render(path))
    return problems
