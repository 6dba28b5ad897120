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
the key table and rules (:mod:`kclpy_local._config.generations`): KCL 1.15.3's or
KCL 3.x's (case-sensitive names, the 3.x decoders, keys only 1.x reads reported
as ignored). The profile is the explicit argument, else a comment
such as ``# kclpy-local: profile=local``, else the file name (``local.properties``,
``my-local.properties``).
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import javaproperties

from .._exceptions import PropertiesError
from .document import PROFILES, Entry, Problem, Profile, PropertiesDocument, ValuesCheck
from .endpoints import ENDPOINT_KEYS, host_of, is_loopback_host
from .generations import Generation
from .generations import generation as _generation
from .keyspec import java_trim

#: The built-in local profile (fast timings, one loopback endpoint from
#: ``$KCLPY_LOCAL_ENDPOINT``); ``properties/local.properties`` in the project.
LOCAL_PROFILE = Path(__file__).resolve().parent / "profiles" / "local.properties"

__all__ = [
    "LOCAL_PROFILE",
    "PROFILES",
    "Entry",
    "Problem",
    "Profile",
    "PropertiesDocument",
    "check_file",
    "detect_profile",
    "effective_properties",
    "expand",
    "load_properties_file",
    "missing_message",
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


_ENCODING = "iso-8859-1"  # what Properties.load(InputStream) assumes
_SUBST = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")
_PROFILE_COMMENT = re.compile(r"^\s*kclpy-local:\s*profile\s*=\s*(\S+)\s*$")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# An odd number of backslashes, then only whitespace up to the end of the line:
# an escaped space, where a line continuation was almost surely meant.
_ESCAPED_SPACE_AT_END = re.compile(r"(?<!\\)(?:\\\\)*\\[ \t\f]+$")
_AWS_HOST_SUFFIXES = ("amazonaws.com", "amazonaws.com.cn", "api.aws")


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
    return PropertiesDocument(
        tuple(entries), path, tuple(comments), non_ascii, tuple(escaped_space)
    )


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
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
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


def expand(value: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """``value`` substituted, and the variables it names that are not set (``"${"``: malformed)."""
    text: list[str] = []
    missing: list[str] = []
    for piece, problem in _substitutions(value, environ):
        text.append(piece)
        if problem is not None:
            missing.append(problem)
    return "".join(text), missing


def substitute(value: str, *, key: str, environ: Mapping[str, str] | None = None) -> str:
    """Expand ``${NAME}`` / ``${NAME:-default}`` in one value of ``key``."""
    text, missing = expand(value, os.environ if environ is None else environ)
    if missing:
        raise PropertiesError(missing_message(key, missing[0]))
    return text


def missing_message(key: str, variable: str) -> str:
    """Why ``variable`` (``"${"``: a malformed reference) in ``key`` cannot be substituted."""
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
    generation: int | Generation = 1,
) -> list[Problem]:
    """Every problem found in ``props`` (errors and warnings), in file order.

    Values are checked after environment substitution. With a
    :class:`PropertiesDocument` the problems carry line numbers and the profile
    may come from the file's comment or name. ``generation`` selects the key
    table and rules (:mod:`kclpy_local._config.generations`): 1 (KCL 1.15.3) or 3
    (KCL 3.x, as its multilang daemon reads the file); ``ValueError`` for another.
    """
    kcl = _generation(generation)
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
        expanded, missing = expand(entry.value, env)
        for variable in missing:
            hint = (
                None
                if variable == "${"
                else f"export {variable}, or write ${{{variable}:-default}}"
            )
            problems.append(
                Problem(entry.key, entry.line, "error", missing_message(entry.key, variable), hint)
            )
        values[entry.key] = expanded
        if missing:
            unresolved.add(entry.key)
        else:
            unresolved.discard(entry.key)
            problems.extend(kcl.check_entry(entry.key, expanded, entry.line))
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
    problems.extend(kcl.check_values(ValuesCheck(values, document, unresolved, profile)))
    problems.extend(_check_endpoints(kcl.endpoint_values(values), document, profile, unresolved))
    problems.sort(key=lambda p: (p.line is None, p.line or 0))
    return problems


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
        host = host_of(url)
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
        elif profile == "local" and not is_loopback_host(host):
            problems.append(
                Problem(
                    key,
                    line,
                    "error",
                    f"{host} is not a loopback host, refused in the local profile",
                    "use 127.0.0.1, ::1 or localhost",
                )
            )
        elif profile == "aws" and is_loopback_host(host):
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
    path: str | os.PathLike[str],
    profile: Profile | None = None,
    *,
    generation: int | Generation = 1,
) -> list[Problem]:
    """Validate a file; :class:`PropertiesError` if it is missing or unreadable."""
    return validate_properties(read_properties(path), profile=profile, generation=generation)


def require_valid(
    path: str | os.PathLike[str],
    profile: Profile | None = None,
    *,
    generation: int | Generation = 1,
) -> list[Problem]:
    """Raise :class:`PropertiesError` listing every error; return the warnings."""
    problems = check_file(path, profile, generation=generation)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        listing = "\n".join("  " + p.render(path) for p in errors)
        noun = "error" if len(errors) == 1 else "errors"
        exc = PropertiesError(f"{path}: {len(errors)} {noun}:\n{listing}")
        exc.hint = f"run: kclpy-local properties check {path}{_generation(generation).kcl_option}"
        raise exc
    for problem in problems:
        logger.warning("properties.warning %s", problem.render(path))
    return problems
