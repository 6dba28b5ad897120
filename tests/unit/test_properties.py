"""The .properties reader/writer, substitution, key table and validator."""

from __future__ import annotations

import os
import random
import re
import shutil
import stat
import subprocess
from pathlib import Path

import javaproperties
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kclpy_local._config import kcl3_keys
from kclpy_local._config.generations import generation
from kclpy_local._config.kcl1_keys import (
    KCL1_KEYS,
    KCL1_KEYS_BY_NAME,
    KCL1_UNSETTABLE,
    check_value,
)
from kclpy_local._config.kcl3_keys import (
    KCL1_ONLY_KEYS,
    KCL3_BEANS,
    KCL3_KEYS,
    KCL3_KEYS_BY_NAME,
    KCL3_PRIMITIVE,
    KCL3_UNSETTABLE,
    bean_property,
)
from kclpy_local._config.keyspec import KeyType
from kclpy_local._config.properties import (
    Problem,
    check_file,
    detect_profile,
    effective_properties,
    load_properties_file,
    parse_properties,
    read_properties,
    render_properties,
    require_valid,
    resolve_file,
    substitute,
    validate_properties,
    write_properties,
)
from kclpy_local._exceptions import JavaNotFoundError, PropertiesError
from kclpy_local._jvm.discovery import find_tool

REPO = Path(__file__).resolve().parents[2]
PROFILE_DIR = REPO / "properties"

ROOT = Path(__file__).resolve().parents[2]

GOOD_LOCAL = {
    "applicationName": "app",
    "streamName": "stream",
    "AWSCredentialsProvider": "EnvironmentVariableCredentialsProvider",
    "executableName": "python3 processor.py",
    "regionName": "us-east-1",
    "kinesisEndpoint": "http://127.0.0.1:4566",
    "dynamoDBEndpoint": "http://127.0.0.1:4566",
    "cloudWatchEndpoint": "http://localhost:4566",
}


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def only(problems: list[Problem], key: str) -> list[Problem]:
    return [p for p in problems if p.key == key]


# -- syntax ----------------------------------------------------------------

SYNTAX = (
    "# hash comment\n"
    "! bang comment\n"
    "equals = one\n"
    "colon:two\n"
    "space three\n"
    "tabbed\t\tfour\n"
    "continued = a\\\n"
    "    b\\\n"
    "\tc\n"
    "escaped\\ key\\=x = tab\\there\\nnewline\n"
    "unicode = \\u00e9\\u0041\n"
    "   # indented comment\n"
    "empty\n"
    "trailing = kept \n"
)


def test_parse_covers_java_syntax() -> None:
    doc = parse_properties(SYNTAX)
    values = doc.as_dict()
    assert values == {
        "equals": "one",
        "colon": "two",
        "space": "three",
        "tabbed": "four",
        "continued": "abc",
        "escaped key=x": "tab\there\nnewline",
        "unicode": "\u00e9A",
        "empty": "",
        "trailing": "kept ",
    }
    lines = {e.key: e.line for e in doc.entries}
    assert lines["equals"] == 3
    assert lines["continued"] == 7
    assert lines["escaped key=x"] == 10
    assert lines["trailing"] == 14
    assert [c[0] for c in doc.comments] == [1, 2, 12]


def test_round_trip_keeps_comments_and_layout(tmp_path: Path) -> None:
    path = tmp_path / "a.properties"
    path.write_text(SYNTAX, encoding="iso-8859-1")
    document = load_properties_file(path)
    write_properties(path, document)
    assert path.read_text(encoding="iso-8859-1") == SYNTAX

    document["colon"] = "changed"
    document["added"] = "\u00fc"
    write_properties(path, document)
    text = path.read_text(encoding="iso-8859-1")
    assert "# hash comment\n! bang comment\n" in text
    assert "   # indented comment\n" in text
    assert "continued = a\\\n    b\\\n\tc\n" in text
    assert "added = \\u00fc" in text or "added=\\u00fc" in text
    assert read_properties(path).as_dict()["added"] == "\u00fc"
    assert read_properties(path).as_dict()["colon"] == "changed"


def test_write_mapping_with_header_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "out.properties"
    write_properties(path, {"a": "1", "b c": "x=y"}, ["first line", "second"])
    text = path.read_text(encoding="iso-8859-1")
    assert text.startswith("#first line\n#second\n") or text.startswith("# first line\n")
    assert read_properties(path).as_dict() == {"a": "1", "b c": "x=y"}
    assert [p.name for p in tmp_path.iterdir()] == ["out.properties"]


def test_write_failure_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(PropertiesError, match=r"cannot write .*disk full"):
        write_properties(tmp_path / "x.properties", {"a": "1"})
    assert list(tmp_path.iterdir()) == []
    existing = tmp_path / "y.properties"
    existing.write_bytes(b"# old\na = 1\n")
    with pytest.raises(PropertiesError):
        write_properties(existing, {"a": "2"})
    assert existing.read_bytes() == b"# old\na = 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["y.properties"]


def test_write_into_a_missing_directory_is_a_properties_error(tmp_path: Path) -> None:
    with pytest.raises(PropertiesError, match="cannot write"):
        write_properties(tmp_path / "no" / "such" / "dir.properties", {"a": "1"})


def test_write_keeps_permissions_and_follows_symlinks(tmp_path: Path) -> None:
    real = tmp_path / "real.properties"
    real.write_text("a = 1\n")
    real.chmod(0o640)
    link = tmp_path / "link.properties"
    link.symlink_to(real)
    document = load_properties_file(link)
    document["a"] = "2"
    write_properties(link, document)
    assert link.is_symlink()
    assert real.read_text() == "a = 2\n"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    new = tmp_path / "new.properties"
    write_properties(new, {"a": "1"})
    assert stat.S_IMODE(new.stat().st_mode) == 0o644


def test_edit_keeps_every_other_byte(tmp_path: Path) -> None:
    """Only the edited entry is rewritten; comments, blank lines, continuations stay."""
    text = "\n\n".join([SYNTAX, "# after a blank line\r\nwindows = crlf\r\nend:of file"])
    path = tmp_path / "edit.properties"
    path.write_bytes(text.encode("iso-8859-1"))
    document = load_properties_file(path)
    document["colon"] = "changed"  # was "colon:two"
    document["continued"] = "one line now"  # was three physical lines
    document["escaped key=x"] = "caf\u00e9 \U0001f600"
    del document["empty"]
    write_properties(path, document)
    expected = (
        text.replace("colon:two\n", "colon = changed\n")
        .replace("continued = a\\\n    b\\\n\tc\n", "continued = one line now\n")
        .replace(
            "escaped\\ key\\=x = tab\\there\\nnewline\n",
            "escaped\\ key\\=x = caf\\u00e9 \\ud83d\\ude00\n",
        )
        .replace("empty\n", "")
    )
    assert path.read_bytes() == expected.encode("iso-8859-1")
    assert read_properties(path).as_dict()["escaped key=x"] == "caf\u00e9 \U0001f600"


def test_edit_of_a_duplicated_key_keeps_one_entry(tmp_path: Path) -> None:
    path = tmp_path / "dup.properties"
    path.write_text("# c\na = 1\nb = 2\na = 3\n")
    document = load_properties_file(path)
    document["a"] = "4"
    write_properties(path, document)
    assert path.read_text() == "# c\na = 4\nb = 2\n"


# -- round trips (hypothesis) -------------------------------------------------

# Any unicode (no lone surrogates), and the characters the syntax gives a meaning to.
_SPECIAL = " \t\f\r\n=:#!\\u"
_TEXT = st.text(st.one_of(st.characters(codec=None), st.sampled_from(list(_SPECIAL))), max_size=30)
_SEPARATORS = ("=", ":", " ", " = ", "\t", " :\t", "  ")
_JAVA_WHITESPACE = (" ", "\t", "\f", "    ")


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_TEXT, _TEXT, max_size=8))
def test_round_trip_of_any_keys_and_values(mapping: dict[str, str]) -> None:
    text = render_properties(mapping, ["header: \u00e9 \u20ac # ! \\"])
    text.encode("iso-8859-1")  # the file's encoding holds all of it
    assert parse_properties(text).as_dict() == mapping
    assert javaproperties.loads(text) == mapping


@st.composite
def _raw_entry(draw: st.DrawFn, key: str) -> tuple[str, str]:
    """One entry written by hand: any separator, continuations at safe points."""
    value = draw(_TEXT)
    separator = draw(st.sampled_from(_SEPARATORS))
    if not key and not separator.strip():
        separator = "="  # " value" would read as the key "value"
    cuts = [
        i for i in range(1, len(value))
        if value[i - 1].isascii() and value[i - 1].isalnum()
        and value[i].isascii() and value[i].isalnum()
    ]
    chosen = sorted(draw(st.sets(st.sampled_from(cuts), max_size=3))) if cuts else []
    pieces = [value[a:b] for a, b in zip([0, *chosen], [*chosen, len(value)], strict=True)]
    raw = javaproperties.join_key_value(key, pieces[0], separator=separator)
    for piece in pieces[1:]:
        indent = draw(st.sampled_from(_JAVA_WHITESPACE))
        raw += "\\\n" + indent + javaproperties.escape(piece)
    return raw + "\n", value


_LATIN1_LINE = st.text(
    st.characters(max_codepoint=0xFF, exclude_characters="\r\n"), max_size=20
)


@st.composite
def _document(draw: st.DrawFn) -> tuple[list[str], dict[int, tuple[str, str]]]:
    """Lines of a file (comments, blanks, entries), and entry index -> (key, value)."""
    keys = draw(st.lists(_TEXT, unique=True, min_size=1, max_size=6))
    chunks: list[str] = []
    entries: dict[int, tuple[str, str]] = {}
    for key in keys:
        for _ in range(draw(st.integers(0, 2))):
            if draw(st.booleans()):
                lead = draw(st.sampled_from(("", " ", "\t")))
                chunks.append(lead + draw(st.sampled_from("#!")) + draw(_LATIN1_LINE) + "\n")
            else:
                chunks.append(draw(st.sampled_from(("", "  ", "\t", "\f"))) + "\n")
        raw, value = draw(_raw_entry(key))
        entries[len(chunks)] = (key, value)
        chunks.append(raw)
    return chunks, entries


@settings(max_examples=200, deadline=None)
@given(_document(), st.data())
def test_editing_one_value_keeps_the_rest_byte_for_byte(
    doc: tuple[list[str], dict[int, tuple[str, str]]], data: st.DataObject
) -> None:
    chunks, entries = doc
    text = "".join(chunks)
    expected = {key: value for key, value in entries.values()}
    assert parse_properties(text).as_dict() == expected
    document = javaproperties.PropertiesFile.loads(text)
    assert render_properties(document) == text  # untouched: identical
    index = data.draw(st.sampled_from(sorted(entries)))
    key = entries[index][0]
    new_value = data.draw(_TEXT)
    document[key] = new_value
    edited = chunks.copy()
    edited[index] = javaproperties.join_key_value(key, new_value, separator=" = ") + "\n"
    out = render_properties(document)
    assert out == "".join(edited)
    assert parse_properties(out).as_dict() == {**expected, key: new_value}


# -- against the JVM's own reader ----------------------------------------------

_JAVA_DUMP = """\
import java.io.*;
import java.util.*;

public class Dump {
    public static void main(String[] files) throws IOException {
        for (String file : files) {
            Properties p = new Properties();
            try (InputStream in = new FileInputStream(file)) { p.load(in); }
            for (String key : new TreeSet<>(p.stringPropertyNames())) {
                System.out.println(hex(key) + " " + hex(p.getProperty(key)));
            }
            System.out.println("--");
        }
    }

    static String hex(String s) {
        StringBuilder b = new StringBuilder("x");
        for (char c : s.toCharArray()) b.append(String.format("%04x", (int) c));
        return b.toString();
    }
}
"""


def _java_loads(tmp_path: Path, paths: list[Path]) -> list[dict[str, str]]:
    """``Properties.load(InputStream)`` of each file, by a real JVM (11+: runs a source file)."""
    try:
        java = find_tool("java", min_major=11)
    except JavaNotFoundError:
        pytest.skip("no java >= 11 to run a single-file source program")
    source = tmp_path / "Dump.java"
    source.write_text(_JAVA_DUMP)
    out = subprocess.run(
        [str(java.path), str(source), *map(str, paths)],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout

    def unhex(token: str) -> str:
        return bytes.fromhex(token[1:]).decode("utf-16-be", "surrogatepass")

    results: list[dict[str, str]] = [{}]
    for line in out.splitlines():
        if line == "--":
            results.append({})
        else:
            key, value = line.split(" ")
            results[-1][unhex(key)] = unhex(value)
    return results[:-1]


def test_java_reads_what_we_read_and_write(tmp_path: Path) -> None:
    rng = random.Random(20240601)
    alphabet = [*_SPECIAL, "a", "Z", "0", "\u00e9", "\u00ff", "\u0100", "\u20ac", "\U0001f600", "\x85"]
    mappings = [
        {
            "".join(rng.choices(alphabet, k=rng.randint(0, 8))): "".join(
                rng.choices(alphabet, k=rng.randint(0, 12))
            )
            for _ in range(rng.randint(1, 6))
        }
        for _ in range(40)
    ]
    paths = []
    for number, mapping in enumerate(mappings):
        path = tmp_path / f"w{number}.properties"
        write_properties(path, mapping)
        paths.append(path)
    syntax = tmp_path / "syntax.properties"
    syntax.write_text(SYNTAX + "a = one\\ \n   two\nlatin1 = caf\u00e9\n", encoding="iso-8859-1")
    paths.append(syntax)
    java = _java_loads(tmp_path, paths)
    assert java[:-1] == mappings
    assert java[-1] == read_properties(syntax).as_dict()


def test_read_is_latin1_like_java(tmp_path: Path) -> None:
    path = tmp_path / "u.properties"
    path.write_bytes("name = caf\u00e9\n".encode())
    doc = read_properties(path)
    assert doc.as_dict()["name"] == "caf\u00c3\u00a9"  # what Properties.load(InputStream) sees
    warnings = [p for p in validate_properties(doc) if "ISO-8859-1" in p.message]
    assert warnings and warnings[0].line == 1


def test_missing_file_and_bad_escape(tmp_path: Path) -> None:
    with pytest.raises(PropertiesError, match="not found"):
        read_properties(tmp_path / "nope.properties")
    with pytest.raises(PropertiesError, match="not found"):
        check_file(tmp_path / "nope.properties")
    bad = tmp_path / "bad.properties"
    bad.write_text("a = \\u12x4\n")
    with pytest.raises(PropertiesError, match="uXXXX"):
        read_properties(bad)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PropertiesError, match="cannot read"):
        read_properties(tmp_path)  # a directory


# -- substitution ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${A}", "alpha"),
        ("x-${A}-y", "x-alpha-y"),
        ("${UNSET:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${A:-fallback}", "alpha"),
        ("${UNSET:-}", ""),
        ("${UNSET:-http://127.0.0.1:4566}", "http://127.0.0.1:4566"),
        ("$${A}", "${A}"),
        ("Outer$Inner", "Outer$Inner"),
        ("$A", "$A"),
    ],
)
def test_substitute(value: str, expected: str) -> None:
    env = {"A": "alpha", "EMPTY": ""}
    assert substitute(value, key="k", environ=env) == expected


def test_substitute_unset_names_key_and_variable() -> None:
    with pytest.raises(PropertiesError, match=r"'streamName'.*NOT_SET_VAR"):
        substitute("${NOT_SET_VAR}", key="streamName", environ={})
    with pytest.raises(PropertiesError, match="malformed"):
        substitute("${not closed", key="k", environ={})


def test_validator_reports_unset_variable() -> None:
    props = {**GOOD_LOCAL, "streamName": "${KCLPY_TEST_UNSET_VAR}"}
    problems = validate_properties(props, profile="local", environ={})
    (problem,) = errors(problems)
    assert problem.key == "streamName"
    assert "KCLPY_TEST_UNSET_VAR" in problem.message


def test_effective_properties_and_resolve_file(tmp_path: Path) -> None:
    base = tmp_path / "local.properties"
    base.write_text("# keep me\nstreamName = ${S:-dflt}\nregionName = ${R}\n")
    env = {"R": "eu-west-1"}
    document = effective_properties(base, {"workerId": "${literal}"}, environ=env)
    assert dict(document) == {
        "streamName": "dflt",
        "regionName": "eu-west-1",
        "workerId": "${literal}",
    }
    assert "# keep me" in document.dumps()

    resolved = resolve_file(base, directory=tmp_path, environ=env)
    try:
        assert resolved.parent == tmp_path
        assert read_properties(resolved).as_dict() == {
            "streamName": "dflt",
            "regionName": "eu-west-1",
        }
        assert "# keep me" in resolved.read_text()
    finally:
        resolved.unlink()
    with pytest.raises(PropertiesError, match="regionName"):
        effective_properties(base, environ={})


# -- key table ---------------------------------------------------------------


def test_key_table_shape() -> None:
    names = [spec.name for spec in KCL1_KEYS]
    assert len(names) == len(set(names))
    assert {s.name for s in KCL1_KEYS if s.required} == {
        "applicationName",
        "streamName",
        "AWSCredentialsProvider",
        "executableName",
    }
    assert KCL1_KEYS_BY_NAME["cloudWatchEndpoint"].type is KeyType.STRING
    assert KCL1_KEYS_BY_NAME["isCBORProtocolDisabled"].type is KeyType.BOOLEAN
    assert KCL1_KEYS_BY_NAME["shutdownGraceMillis"].type is KeyType.LONG
    assert KCL1_KEYS_BY_NAME["failoverTimeMillis"].default == "10000"
    assert KCL1_KEYS_BY_NAME["timestampAtInitialPositionInStream"].type is KeyType.DATE
    assert not set(names) & set(KCL1_UNSETTABLE)


@pytest.mark.parametrize(
    ("key", "value", "ok"),
    [
        ("maxRecords", "100", True),
        ("maxRecords", "+100", True),
        ("maxRecords", "100 ", False),
        ("maxRecords", " 100", False),
        ("maxRecords", "1_000", False),
        ("maxRecords", "2147483648", False),
        ("maxRecords", "0", False),  # must be positive
        ("maxRecords", "", False),
        ("failoverTimeMillis", "2147483648", True),
        ("failoverTimeMillis", "9223372036854775808", False),
        ("maxActiveThreads", "-1", True),
        ("callProcessRecordsEvenForEmptyRecordList", "TRUE", True),
        ("callProcessRecordsEvenForEmptyRecordList", "False", True),
        ("callProcessRecordsEvenForEmptyRecordList", "true ", False),
        ("callProcessRecordsEvenForEmptyRecordList", "yes", False),
        ("callProcessRecordsEvenForEmptyRecordList", "1", False),
        ("initialPositionInStream", "trim_horizon", True),
        ("initialPositionInStream", "TRIM_HORIZON ", False),
        ("initialPositionInStream", "OLDEST", False),
        ("timestampAtInitialPositionInStream", "1700000000", True),
        ("timestampAtInitialPositionInStream", "1700000000000", False),  # milliseconds
        ("timestampAtInitialPositionInStream", "2024-01-01", False),
        ("metricsLevel", " none ", True),  # String values are trimmed
        ("metricsLevel", "VERBOSE", False),
        ("maxLeaseRenewalThreads", "1", False),
        ("AWSCredentialsProvider", "DefaultAWSCredentialsProviderChain", True),
        (
            "AWSCredentialsProvider",
            "ProfileCredentialsProvider|dev, EnvironmentVariableCredentialsProvider",
            True,
        ),
        ("AWSCredentialsProvider", "AWSStaticCredentialsProvider", False),
        ("AWSCredentialsProvider", "not a class", False),
        ("AWSCredentialsProvider", " , ", False),
        # SDK v2 names (KCL 2.x/3.x files): the 1.x configurator cannot find them.
        ("AWSCredentialsProvider", "DefaultCredentialsProvider", False),
        (
            "AWSCredentialsProvider",
            "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider",
            False,
        ),
        ("AWSCredentialsProvider", "com.amazonaws.auth.EnvironmentVariableCredentialsProvider", True),
    ],
)
def test_check_value_mirrors_java(key: str, value: str, ok: bool) -> None:
    assert (check_value(KCL1_KEYS_BY_NAME[key], value) is None) is ok


def test_an_sdk_v2_provider_names_the_v1_one() -> None:
    message = check_value(KCL1_KEYS_BY_NAME["AWSCredentialsProvider"], "DefaultCredentialsProvider")
    assert message is not None and "name DefaultAWSCredentialsProviderChain instead" in message


def _javap_setters(jar: Path) -> set[str]:
    javap = shutil.which("javap")
    if javap is None:
        pytest.skip("javap is not on PATH")
    out = subprocess.run(
        [
            javap,
            "-p",
            "-cp",
            str(jar),
            "com.amazonaws.services.kinesis.clientlibrary.lib.worker.KinesisClientLibConfiguration",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    names = re.findall(r"public \S+ with(\w+)\(", out)
    return {name[0].lower() + name[1:] for name in names}


def _kcl1_jar() -> Path | None:
    """The KCL 1.15.3 jar: ``$KCLPY_LOCAL_KCL_JAR``, else the bootstrap cache."""
    explicit = os.environ.get("KCLPY_LOCAL_KCL_JAR")
    if explicit:
        return Path(explicit)
    try:
        from kclpy_local._env import default_cache_dir
        from kclpy_local._jvm.cache import CacheLayout
    except ImportError:
        return None
    jar = CacheLayout(default_cache_dir(), 1).jars_dir / "amazon-kinesis-client-1.15.3.jar"
    return jar if jar.is_file() else None


def test_key_table_covers_every_setter_of_the_real_class() -> None:
    jar = _kcl1_jar()
    if jar is None or not jar.is_file():
        pytest.skip(
            "the KCL 1.15.3 jar is not bootstrapped (run kclpy-local bootstrap, "
            "or set KCLPY_LOCAL_KCL_JAR)"
        )
    setters = _javap_setters(jar)
    setter_keys = {s.name for s in KCL1_KEYS if s.source == "kcl"}
    read_by_name = {s.name for s in KCL1_KEYS if s.source == "configurator"}
    assert setters - setter_keys - read_by_name - set(KCL1_UNSETTABLE) == set()
    assert setter_keys - setters == set()
    assert set(KCL1_UNSETTABLE) <= setters


# Constants whose name is not DEFAULT_ + the key in upper snake case.
_CONSTANT_OF_KEY = {
    "idleTimeBetweenReadsInMillis": "DEFAULT_IDLETIME_BETWEEN_READS_MILLIS",
    "cleanupLeasesUponShardCompletion": "DEFAULT_CLEANUP_LEASES_UPON_SHARDS_COMPLETION",
    # Misnamed upstream: the constructors pass it as callProcessRecordsEvenForEmptyRecordList.
    "callProcessRecordsEvenForEmptyRecordList": "DEFAULT_DONT_CALL_PROCESS_RECORDS_FOR_EMPTY_RECORD_LIST",
}


def test_key_table_defaults_match_the_real_constants() -> None:
    """Every primitive DEFAULT_* constant of the 1.15.3 class is the default of its key."""
    jar = _kcl1_jar()
    if jar is None or not jar.is_file():
        pytest.skip("the KCL 1.15.3 jar is not bootstrapped")
    javap = shutil.which("javap")
    if javap is None:
        pytest.skip("javap is not on PATH")
    out = subprocess.run(
        [javap, "-constants", "-cp", str(jar),
         "com.amazonaws.services.kinesis.clientlibrary.lib.worker.KinesisClientLibConfiguration"],
        check=True, capture_output=True, text=True,
    ).stdout
    constants = {
        name: value.rstrip("l")
        for name, value in re.findall(r"static final (?:int|long|boolean) (DEFAULT_\w+) = (\S+);", out)
    }
    assert len(constants) > 20
    by_constant = {
        _CONSTANT_OF_KEY.get(spec.name, "DEFAULT_" + re.sub(r"(?<!^)(?=[A-Z])", "_", spec.name).upper()): spec
        for spec in KCL1_KEYS
        if spec.source == "kcl"
    }
    for constant, value in constants.items():
        assert constant in by_constant, f"{constant} = {value} has no key in the table"
        assert by_constant[constant].default == value, constant


# -- validator rules ----------------------------------------------------------


def test_good_local_is_clean() -> None:
    assert validate_properties(GOOD_LOCAL, profile="local") == []


def test_misspelled_key_gets_suggestion() -> None:
    props = {**GOOD_LOCAL, "failoverTimeMilis": "5000", "idletimebetweenreadsinmillis": "100"}
    problems = validate_properties(props, profile="local")
    (typo,) = only(problems, "failoverTimeMilis")
    assert typo.severity == "error"
    assert typo.hint is not None and "failoverTimeMillis" in typo.hint
    (case,) = only(problems, "idletimebetweenreadsinmillis")
    assert case.hint is not None and "idleTimeBetweenReadsInMillis" in case.hint


def test_unrelated_unknown_key_is_a_warning() -> None:
    (problem,) = validate_properties({**GOOD_LOCAL, "zzzz": "1"}, profile="local")
    assert problem.severity == "warning"
    assert problem.hint is None


def test_capitalised_setter_key_is_accepted_with_warning() -> None:
    (problem,) = validate_properties({**GOOD_LOCAL, "FailoverTimeMillis": "5000"}, profile="local")
    assert problem.severity == "warning"
    assert "failoverTimeMillis" in problem.message


def test_unsettable_key_is_an_error() -> None:
    (problem,) = validate_properties(
        {**GOOD_LOCAL, "billingMode": "PAY_PER_REQUEST"}, profile="local"
    )
    assert problem.severity == "error"
    assert "BillingMode" in problem.message


def test_true_with_trailing_space() -> None:
    doc = parse_properties("callProcessRecordsEvenForEmptyRecordList = true \n")
    (problem,) = only(validate_properties(doc), "callProcessRecordsEvenForEmptyRecordList")
    assert problem.severity == "error"
    assert problem.line == 1
    assert "false" in problem.message
    assert problem.hint is not None and "whitespace" in problem.hint


def test_int_with_trailing_space() -> None:
    (problem,) = only(validate_properties({**GOOD_LOCAL, "maxRecords": "100 "}), "maxRecords")
    assert problem.severity == "error"
    assert "int" in problem.message


def test_string_with_trailing_space_is_a_warning() -> None:
    (problem,) = validate_properties({**GOOD_LOCAL, "streamName": "stream "}, profile="local")
    assert problem.severity == "warning"
    assert "whitespace" in problem.message


def test_missing_required_keys_all_reported() -> None:
    problems = validate_properties({"applicationName": " "})
    missing = {p.key for p in errors(problems)}
    assert missing == {"applicationName", "streamName", "AWSCredentialsProvider", "executableName"}
    hints = {p.key: p.hint for p in problems}
    assert hints["streamName"] == "add streamName = <value> (Kinesis stream to consume)"
    assert hints["applicationName"] is not None
    assert hints["applicationName"].startswith("give it a value (")


def test_at_timestamp_without_timestamp() -> None:
    props = {**GOOD_LOCAL, "initialPositionInStream": "AT_TIMESTAMP"}
    (problem,) = validate_properties(props, profile="local")
    assert problem.key == "initialPositionInStream"
    assert problem.severity == "error"
    props["timestampAtInitialPositionInStream"] = "1700000000"
    assert validate_properties(props, profile="local") == []


def test_timestamp_without_at_timestamp() -> None:
    props = {**GOOD_LOCAL, "timestampAtInitialPositionInStream": "1700000000"}
    (warning,) = validate_properties(props, profile="local")
    assert warning.severity == "warning"
    props["initialPositionInStream"] = "LATEST"
    (error,) = validate_properties(props, profile="local")
    assert error.severity == "error"
    assert error.key == "timestampAtInitialPositionInStream"


def test_amazonaws_endpoint_refused_in_local_profiles() -> None:
    props = {**GOOD_LOCAL, "kinesisEndpoint": "https://kinesis.us-east-1.amazonaws.com"}
    for profile in ("local", "localstack"):
        (problem,) = validate_properties(props, profile=profile)  # type: ignore[arg-type]
        assert problem.key == "kinesisEndpoint"
        assert problem.severity == "error"
        assert "AWS host" in problem.message
    assert errors(validate_properties(props, profile="aws")) == []


def test_non_loopback_endpoint_only_refused_in_local() -> None:
    props = {**GOOD_LOCAL, "dynamoDBEndpoint": "http://localstack.internal:4566"}
    (problem,) = validate_properties(props, profile="local")
    assert problem.key == "dynamoDBEndpoint"
    assert validate_properties(props, profile="localstack") == []


@pytest.mark.parametrize("generation", [1, 3])
def test_cbor_turned_on_in_a_local_profile_names_the_engines_that_cannot_read_it(
    generation: int,
) -> None:
    base = GOOD_LOCAL if generation == 1 else GOOD_LOCAL3
    props = {**base, "isCBORProtocolDisabled": "false"}
    for profile in ("local", "localstack"):
        (warning,) = validate_properties(props, profile=profile, generation=generation)  # type: ignore[arg-type]
        assert (warning.key, warning.severity) == ("isCBORProtocolDisabled", "warning")
        assert f"CBOR is on in the {profile} profile" in warning.message
        for engine in ("moto", "kinesis-mock", "LocalStack", "MiniStack needs its optional cbor2"):
            assert engine in warning.message
        assert warning.hint is not None and "kclpy-local doctor" in warning.hint
    # Off, or unset (the SDK's default: no warning, as for every file that predates the key),
    # or on for AWS: nothing to say.
    for value in ("true", None):
        quiet = {k: v for k, v in {**base, "isCBORProtocolDisabled": value}.items() if v is not None}
        assert validate_properties(quiet, profile="localstack", generation=generation) == []
    aws = validate_properties(props, profile="aws", generation=generation)
    assert [p for p in aws if p.key == "isCBORProtocolDisabled"] == []


def test_the_shipped_localstack_profile_reads_kinesis_over_json() -> None:
    document = read_properties(ROOT / "properties" / "localstack.properties")
    assert document.as_dict()["isCBORProtocolDisabled"] == "true"
    assert validate_properties(document, profile="localstack") == []


def test_missing_cloudwatch_endpoint_in_local_profile() -> None:
    props = {k: v for k, v in GOOD_LOCAL.items() if k != "cloudWatchEndpoint"}
    (problem,) = validate_properties(props, profile="local")
    assert problem.key == "cloudWatchEndpoint"
    assert problem.severity == "error"
    assert "real AWS" in problem.message
    (warning,) = validate_properties(props)  # no profile: a warning only
    assert warning.severity == "warning"


def test_region_required_in_local_profile() -> None:
    props = {k: v for k, v in GOOD_LOCAL.items() if k != "regionName"}
    (problem,) = validate_properties(props, profile="localstack")
    assert problem.key == "regionName"


def test_bad_endpoint_url() -> None:
    props = {**GOOD_LOCAL, "kinesisEndpoint": "127.0.0.1:4566"}
    (problem,) = validate_properties(props, profile="local")
    assert "URL" in problem.message


def test_all_problems_reported_in_line_order() -> None:
    doc = parse_properties(
        "# kclpy-local: profile=local\n"
        "applicationName = a\n"
        "maxRecords = 100 \n"
        "streamNme = s\n"
        "maxRecords = 7\n"
        "kinesisEndpoint = https://kinesis.eu-west-1.amazonaws.com\n"
    )
    problems = validate_properties(doc)
    lines = [p.line for p in problems if p.line is not None]
    assert lines == sorted(lines)
    keys = {p.key for p in problems}
    assert {
        "maxRecords",
        "streamNme",
        "kinesisEndpoint",
        "cloudWatchEndpoint",
        "regionName",
    } <= keys
    assert any("more than once" in p.message and p.line == 5 for p in problems)


# -- profiles ---------------------------------------------------------------


def test_profile_detection(tmp_path: Path) -> None:
    assert detect_profile(parse_properties("# kclpy-local: profile=aws\n")) == "aws"
    assert detect_profile(parse_properties("a=b\n", tmp_path / "local.properties")) == "local"
    assert (
        detect_profile(parse_properties("a=b\n", tmp_path / "dev-localstack.properties"))
        == "localstack"
    )
    assert detect_profile(parse_properties("a=b\n", tmp_path / "app.properties")) is None
    assert (
        detect_profile(
            parse_properties("#kclpy-local: profile=local\n", tmp_path / "aws.properties")
        )
        == "local"
    )
    (problem,) = [
        p
        for p in validate_properties(parse_properties("# kclpy-local: profile=prod\n"))
        if p.line == 1
    ]
    assert "prod" in problem.message


def test_explicit_profile_wins(tmp_path: Path) -> None:
    path = tmp_path / "local.properties"
    write_properties(path, {k: v for k, v in GOOD_LOCAL.items() if "Endpoint" not in k})
    assert errors(check_file(path))  # local by name: endpoints missing
    assert errors(check_file(path, profile="aws")) == []


@pytest.mark.parametrize("profile", ["local", "localstack", "aws"])
def test_shipped_profiles_are_clean(profile: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "KCLPY_LOCAL_ENDPOINT",
        "LOCALSTACK_ENDPOINT",
        "KCLPY_LOCAL_STREAM",
        "KCLPY_LOCAL_APP",
    ):
        monkeypatch.delenv(var, raising=False)
    path = PROFILE_DIR / f"{profile}.properties"
    assert detect_profile(read_properties(path)) == profile
    assert check_file(path) == []
    assert check_file(path, profile=profile) == []  # type: ignore[arg-type]


def test_local_profile_refuses_aws_endpoint_from_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KCLPY_LOCAL_ENDPOINT", "https://kinesis.us-east-1.amazonaws.com")
    problems = check_file(PROFILE_DIR / "local.properties")
    assert {p.key for p in errors(problems)} == {
        "kinesisEndpoint",
        "dynamoDBEndpoint",
        "cloudWatchEndpoint",
    }


def test_require_valid(tmp_path: Path) -> None:
    good = tmp_path / "good.properties"
    write_properties(good, {**GOOD_LOCAL, "zzz": "1"})
    (warning,) = require_valid(good, "local")
    assert warning.severity == "warning"
    bad = tmp_path / "bad.properties"
    write_properties(bad, {"maxRecords": "x"})
    with pytest.raises(PropertiesError) as info:
        require_valid(bad, "local")
    text = str(info.value)
    for key in ("maxRecords", "streamName", "executableName", "kinesisEndpoint", "regionName"):
        assert key in text
    assert info.value.exit_code == 2


def test_escaped_space_at_line_end_is_not_a_continuation() -> None:
    doc = parse_properties(
        "streamName = one\\ \n    two\nok = x\\\\ \nworkerId = w\\\n  continued\n"
    )
    assert doc.as_dict()["streamName"] == "one "
    assert doc.as_dict()["workerId"] == "wcontinued"
    assert doc.escaped_space_lines == (1,)
    (problem,) = [p for p in validate_properties(doc) if "escaped space" in p.message]
    assert (problem.line, problem.severity) == (1, "warning")
    assert problem.hint == "remove the whitespace after the backslash"


def test_aws_host_with_a_trailing_dot_is_still_aws() -> None:
    props = {**GOOD_LOCAL, "kinesisEndpoint": "https://kinesis.us-east-1.amazonaws.com."}
    (problem,) = validate_properties(props, profile="localstack")
    assert problem.key == "kinesisEndpoint"
    assert "AWS host" in problem.message


def test_problem_render() -> None:
    problem = Problem("k", 3, "error", "bad", "fix it")
    assert problem.render("f.properties") == "f.properties:3: error: k: bad (hint: fix it)"
    assert Problem(None, None, "warning", "w").render() == "warning: w"


def test_javaproperties_is_the_parser() -> None:
    # The shipped files use only syntax Java and javaproperties agree on.
    for path in PROFILE_DIR.glob("*.properties"):
        text = path.read_text(encoding="iso-8859-1")
        assert read_properties(path).as_dict() == javaproperties.loads(text)


# -- the KCL 3.x key table -----------------------------------------------------------

MULTILANG_CONFIG = "software.amazon.kinesis.multilang.config."
GOOD_LOCAL3 = {**GOOD_LOCAL, "retrievalMode": "POLLING", "metricsLevel": "NONE"}


def _kcl3_jars() -> tuple[Path, Path]:
    """The KCL 3.x multilang and core jars of the session's cache (tests/conftest.py:
    the per-user cache, which scripts/test bootstraps, or $KCLPY_LOCAL_TEST_CACHE)."""
    from kclpy_local._env import default_cache_dir
    from kclpy_local._jvm.cache import CacheLayout

    jars = CacheLayout(default_cache_dir(), 3).jars_dir
    multilang = sorted(jars.glob("amazon-kinesis-client-multilang-*.jar"))
    core = sorted(jars.glob("amazon-kinesis-client-3*.jar"))
    if not multilang or not core:
        pytest.skip("the KCL 3.x jars are not bootstrapped (run kclpy-local bootstrap --kcl 3)")
    return multilang[0], core[0]


def _javap3(*classes: str, private: bool = False) -> str:
    javap = shutil.which("javap")
    if javap is None:
        pytest.skip("javap is not on PATH")
    multilang, core = _kcl3_jars()
    argv = [javap, *(["-p"] if private else []), "-cp", f"{multilang}{os.pathsep}{core}"]
    return subprocess.run([*argv, *classes], check=True, capture_output=True, text=True).stdout


def _bean_setters(out: str) -> set[str]:
    """Bean property names of the public one-argument setters (``java.beans.Introspector``)."""
    names = re.findall(r"public void set(\w+)\([^,)]+\);", out)
    return {name if name[:2].isupper() else name[0].lower() + name[1:] for name in names}


def _class_section(out: str, simple_name: str) -> str:
    match = re.search(rf"class \S*\.{simple_name} .*?\n}}", out, re.DOTALL)
    assert match, simple_name
    return match.group(0)


def test_kcl3_table_covers_every_setter_of_the_real_configuration() -> None:
    out = _javap3(MULTILANG_CONFIG + "MultiLangDaemonConfiguration")
    setters = _bean_setters(out)
    assert len(setters) > 70
    table = {bean_property(spec.name) for spec in KCL3_KEYS if spec.source in ("kcl", "configurator")}
    # The credentials setters are setAwsCredentialsProvider*: the table spells them with the prefix.
    from_setters = {bean_property(name) for name in setters}
    assert from_setters - table - set(KCL3_UNSETTABLE) == set()
    assert table - from_setters == set()
    assert set(KCL3_UNSETTABLE) <= setters


def test_kcl3_fanout_keys_are_the_fanout_beans_setters() -> None:
    setters = _bean_setters(_javap3(MULTILANG_CONFIG + "FanoutConfigBean"))
    assert {f"fanoutConfig.{name}" for name in setters} == {
        spec.name for spec in KCL3_KEYS if spec.source == "fanout"
    }


def test_kcl3_delegated_beans_are_the_nested_beans_setters() -> None:
    classes = {
        "pollingConfig": "PollingConfigBean",
        "gracefulLeaseHandoffConfigBean": "GracefulLeaseHandoffConfigBean",
        "workerUtilizationAwareAssignmentConfigBean": "WorkerUtilizationAwareAssignmentConfigBean",
        "workerMetricStatsTableConfigBean": "WorkerMetricStatsTableConfigBean",
        "coordinatorStateTableConfigBean": "CoordinatorStateTableConfigBean",
    }
    assert set(classes) == set(KCL3_BEANS)
    out = _javap3(*(MULTILANG_CONFIG + name for name in classes.values()))
    for bean, simple_name in classes.items():
        assert _bean_setters(_class_section(out, simple_name)) == KCL3_BEANS[bean], bean
        assert KCL3_BEANS[bean] <= set(KCL3_KEYS_BY_NAME)


def test_kcl3_primitive_fields_are_the_real_ones() -> None:
    classes = ["MultiLangDaemonConfiguration", "PollingConfigBean", "FanoutConfigBean",
               "WorkerUtilizationAwareAssignmentConfigBean", "WorkerMetricStatsTableConfigBean",
               "CoordinatorStateTableConfigBean", "GracefulLeaseHandoffConfigBean"]
    out = _javap3(*(MULTILANG_CONFIG + name for name in classes), private=True)
    found = set()
    for name in classes:
        fields = re.findall(r"private (?:final )?(?:int|long|boolean|double) (\w+);", _class_section(out, name))
        found |= {f"fanoutConfig.{f}" if name == "FanoutConfigBean" else f for f in fields}
    assert found == KCL3_PRIMITIVE


#: KCL 3.x keys whose stock default the validator refuses as a value: the KCL's
#: own 0 means "give up at once", which a file must not ask for.
KCL3_DEFAULTS_BELOW_THE_MINIMUM = {"shutdownGraceMillis"}


def test_kcl3_table_is_consistent() -> None:
    assert len(KCL3_KEYS) == len(KCL3_KEYS_BY_NAME)
    for spec in KCL3_KEYS:
        assert spec.description.endswith("."), spec.name
        if spec.choices:
            assert spec.default is None or spec.default.upper() in spec.choices, spec.name
        if spec.default is not None and spec.type in (KeyType.INT, KeyType.LONG):
            if spec.name in KCL3_DEFAULTS_BELOW_THE_MINIMUM:
                assert kcl3_keys.check_value(spec, spec.default) is not None, spec.name
            else:
                assert kcl3_keys.check_value(spec, spec.default) is None, spec.name
    # The 1.x-only keys are exactly the 1.x keys 3.x has no entry for.
    for name in KCL1_ONLY_KEYS:
        assert kcl3_keys.lookup(name) is None, name
    for spec in KCL1_KEYS:
        assert (kcl3_keys.lookup(spec.name) is None) is (spec.name in KCL1_ONLY_KEYS), spec.name


@pytest.mark.parametrize(
    ("key", "value", "ok"),
    [
        ("maxRecords", "100", True),
        ("maxRecords", "100 ", True),  # numbers are trimmed in 3.x
        ("maxRecords", "+5", True),
        ("maxRecords", "1e3", False),
        ("maxRecords", "0", False),
        ("maxRecords", "10001", False),  # PollingConfig refuses more than 10000
        ("failoverTimeMillis", "9223372036854775807", True),
        ("initialLeaseTableReadCapacity", "2147483648", False),
        ("idleTimeBetweenReadsInMillis", "199", False),
        ("idleTimeBetweenReadsInMillis", "200", True),
        ("cleanupLeasesUponShardCompletion", "TRUE", True),
        ("cleanupLeasesUponShardCompletion", "yes", True),
        ("cleanupLeasesUponShardCompletion", "true ", False),  # not trimmed: false
        ("cleanupLeasesUponShardCompletion", "maybe", False),
        ("metricsLevel", "none", True),
        ("metricsLevel", "NONE ", False),  # enumerations are not trimmed
        ("retrievalMode", "polling", True),
        ("retrievalMode", "push", False),
        ("clientVersionConfig", "CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X", True),
        ("workerMetricsBillingMode", "pay_per_request", True),
        ("initialPositionInStream", "trim_horizon", True),
        ("initialPositionInStream", "AT_TIMESTAMP", False),
        ("initialPositionInStreamExtended", "1700000000", True),
        ("initialPositionInStreamExtended", "1700000000 ", False),
        ("initialPositionInStreamExtended", "1700000000000", False),
        ("workerMetricsEMAAlpha", "0.7", True),
        ("workerMetricsEMAAlpha", "1e-1", True),
        ("workerMetricsEMAAlpha", "x", False),
        ("staleWorkerMetricsEntryCleanupDuration", "PT1H", True),
        ("staleWorkerMetricsEntryCleanupDuration", "P1DT2H30M", True),
        ("staleWorkerMetricsEntryCleanupDuration", "1h", False),
        ("staleWorkerMetricsEntryCleanupDuration", "-PT1H", False),
        ("staleWorkerMetricsEntryCleanupDuration", "PT", False),
        ("coordinatorStateTags", "team=streams, env=dev", True),
        ("coordinatorStateTags", "team", False),
        ("AwsCredentialsProvider", "EnvironmentVariableCredentialsProvider", True),
        ("AwsCredentialsProvider", "DefaultCredentialsProvider", True),
        ("AwsCredentialsProvider", "ProfileCredentialsProvider|dev", True),
        ("AwsCredentialsProvider", "StsAssumeRoleCredentialsProvider|arn:aws:iam::1:role/r|s", True),
        ("AwsCredentialsProvider", "org.example.MyProvider", True),
        ("AwsCredentialsProvider", "DefaultAWSCredentialsProviderChain", False),
        ("AwsCredentialsProvider", "SystemPropertiesCredentialsProvider", False),
        ("AwsCredentialsProvider", "com.amazonaws.auth.EnvironmentVariableCredentialsProvider", False),
        ("AwsCredentialsProvider", "StaticCredentialsProvider", False),
        ("AwsCredentialsProvider", " , ", False),
    ],
)
def test_kcl3_check_value_mirrors_the_3x_decoders(key: str, value: str, ok: bool) -> None:
    assert (kcl3_keys.check_value(KCL3_KEYS_BY_NAME[key], value) is None) is ok


def test_kcl3_an_sdk_v1_provider_names_the_v2_one() -> None:
    message = kcl3_keys.check_value(KCL3_KEYS_BY_NAME["AwsCredentialsProvider"], "DefaultAWSCredentialsProviderChain")
    assert message is not None
    assert "no AWS credentials" in message and "name DefaultCredentialsProvider instead" in message


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("AWSCredentialsProvider", "AwsCredentialsProvider"),
        ("awscredentialsprovider", "AwsCredentialsProvider"),
        ("AWSCredentialsProviderDynamoDB", "AwsCredentialsProviderDynamoDB"),
        ("AWSCREDENTIALSPROVIDERCloudWatch", "AwsCredentialsProviderCloudWatch"),
        ("pollingConfig.maxRecords", "maxRecords"),
        ("workerUtilizationAwareAssignmentConfigBean.workerMetricsReporterFreqInMillis",
         "workerMetricsReporterFreqInMillis"),
        ("fanoutConfig.consumerArn", "fanoutConfig.consumerArn"),
        ("failoverTimeMillis", "failoverTimeMillis"),
    ],
)
def test_kcl3_key_spellings(key: str, name: str) -> None:
    spec = kcl3_keys.lookup(key)
    assert spec is not None and spec.name == name


@pytest.mark.parametrize("key", ["AWSCredentialsProviderDynamodb", "FailoverTimeMillis", "pollingConfig.bogus",
                                 "fanoutConfig.maxRecords"])
def test_kcl3_spellings_3x_ignores(key: str) -> None:
    assert kcl3_keys.lookup(key) is None


# -- the validator with generation 3 ---------------------------------------------------


def test_kcl3_good_local_is_clean() -> None:
    assert validate_properties(GOOD_LOCAL3, profile="local", generation=3) == []


def test_unknown_generation_is_refused() -> None:
    with pytest.raises(ValueError, match="generation 2"):
        validate_properties(GOOD_LOCAL, generation=2)


def test_kcl3_names_are_case_sensitive() -> None:
    problems = validate_properties({**GOOD_LOCAL3, "FailoverTimeMillis": "5000"}, profile="local", generation=3)
    (problem,) = problems
    assert problem.severity == "error" and "case-sensitive" in problem.message
    assert problem.hint == "did you mean 'failoverTimeMillis'?"
    # KCL 1.x accepts that spelling (with a warning only).
    (kcl1,) = validate_properties({**GOOD_LOCAL, "FailoverTimeMillis": "5000"}, profile="local")
    assert kcl1.severity == "warning"


def test_kcl3_misspelled_key_and_credentials_suffix() -> None:
    props = {**GOOD_LOCAL3, "failoverTimeMilis": "5000", "AWSCredentialsProviderDynamodb": "DefaultCredentialsProvider"}
    problems = validate_properties(props, profile="local", generation=3)
    (typo,) = only(problems, "failoverTimeMilis")
    assert typo.severity == "error" and typo.hint == "did you mean 'failoverTimeMillis'?"
    (suffix,) = only(problems, "AWSCredentialsProviderDynamodb")
    assert suffix.severity == "error" and suffix.hint == "did you mean 'AwsCredentialsProviderDynamoDB'?"


def test_kcl3_unrelated_unknown_key_is_a_warning() -> None:
    (problem,) = validate_properties({**GOOD_LOCAL3, "zzzz": "1"}, profile="local", generation=3)
    assert problem.severity == "warning" and "KCL 3.x ignores it" in problem.message


def test_kcl1_only_keys_are_ignored_by_kcl3() -> None:
    props = {**GOOD_LOCAL3, "leaseCleanupIntervalMillis": "10000", "timestampAtInitialPositionInStream": "1700000000"}
    problems = validate_properties(props, profile="local", generation=3)
    assert [p.severity for p in problems] == ["warning", "warning"]
    (cleanup,) = only(problems, "leaseCleanupIntervalMillis")
    assert cleanup.message.startswith("ignored by KCL 3.x: ")
    assert cleanup.hint == "kclpy-local drops it when it runs the file with --kcl 3"
    (timestamp,) = only(problems, "timestampAtInitialPositionInStream")
    assert "initialPositionInStreamExtended" in timestamp.message
    assert timestamp.hint == "kclpy-local translates it when it runs the file with --kcl 3"
    # The same keys are fine for KCL 1.x.
    assert validate_properties(
        {**GOOD_LOCAL, "leaseCleanupIntervalMillis": "10000"}, profile="local"
    ) == []


def test_kcl3_sdk_v1_credentials_are_an_error() -> None:
    props = {**GOOD_LOCAL3, "AWSCredentialsProvider": "DefaultAWSCredentialsProviderChain"}
    (problem,) = validate_properties(props, profile="local", generation=3)
    assert problem.severity == "error" and "--kcl 3" in (problem.hint or "")


def test_kcl3_required_keys() -> None:
    problems = validate_properties({"applicationName": "a"}, generation=3)
    assert {p.key for p in problems if p.message == "required key is missing"} == {
        "streamName", "AwsCredentialsProvider", "executableName"
    }
    props = {key: value for key, value in GOOD_LOCAL3.items() if key != "streamName"}
    props["streamArn"] = "arn:aws:kinesis:us-east-1:123456789012:stream/s"
    assert validate_properties(props, profile="local", generation=3) == []
    # The credentials key in any case of its prefix.
    props = {**{k: v for k, v in GOOD_LOCAL3.items() if k != "AWSCredentialsProvider"},
             "awscredentialsprovider": "EnvironmentVariableCredentialsProvider"}
    assert validate_properties(props, profile="local", generation=3) == []


def test_kcl3_two_keys_for_one_property() -> None:
    props = {**GOOD_LOCAL3, "AwsCredentialsProvider": "DefaultCredentialsProvider", "maxRecords": "10",
             "pollingConfig.maxRecords": "20", "workerId": "a", "workerIdentifier": "b"}
    problems = validate_properties(props, profile="local", generation=3)
    assert all(p.severity == "warning" and "depends on key order" in p.message for p in problems)
    assert {p.key for p in problems} == {"AwsCredentialsProvider", "pollingConfig.maxRecords", "workerIdentifier"}


def test_kcl3_initial_position() -> None:
    (alone,) = validate_properties({**GOOD_LOCAL3, "initialPositionInStream": "AT_TIMESTAMP"}, generation=3)
    assert alone.severity == "error" and alone.hint == "write initialPositionInStreamExtended = <epoch seconds> instead"
    props = {**GOOD_LOCAL3, "initialPositionInStream": "LATEST", "initialPositionInStreamExtended": "1700000000"}
    (both,) = validate_properties(props, generation=3)
    assert both.severity == "error" and "depends on key order" in both.message
    assert validate_properties({**GOOD_LOCAL3, "initialPositionInStreamExtended": "1700000000"}, generation=3) == []


def test_kcl3_false_that_is_never_applied_is_a_warning() -> None:
    (problem,) = validate_properties({**GOOD_LOCAL3, "cleanupLeasesUponShardCompletion": "false"}, generation=3)
    assert problem.severity == "warning" and "never applied" in problem.message and "true stays" in problem.message
    # false where the KCL's default is false anyway: nothing to say.
    assert validate_properties({**GOOD_LOCAL3, "ignoreUnexpectedChildShards": "false"}, generation=3) == []


def test_kcl3_whitespace_in_an_enumeration_stops_the_daemon() -> None:
    (problem,) = validate_properties({**GOOD_LOCAL3, "metricsLevel": "NONE "}, profile="local", generation=3)
    assert problem.severity == "error" and "not trimmed" in problem.message
    assert problem.hint == "remove the whitespace around the value"


def test_kcl3_local_profile_warns_about_fanout() -> None:
    props = {k: v for k, v in GOOD_LOCAL3.items() if k not in ("retrievalMode", "metricsLevel")}
    problems = validate_properties(props, profile="local", generation=3)
    # DEFAULT with no polling key reads by enhanced fan-out: which moto cannot serve, and
    # the engine decides (run and daemon check it), so a warning here.
    (mode,) = only(problems, "retrievalMode")
    assert mode.severity == "warning"
    assert mode.message.startswith("retrievalMode DEFAULT with no polling key reads by enhanced fan-out")
    assert "kinesis-mock and MiniStack serve SubscribeToShard over HTTP/2; moto has none" in mode.message
    assert mode.hint == "retrievalMode = POLLING, or Kinesis on kinesis-mock (--kinesis kinesis-mock)"
    # Metrics on: the embedded engines answer KCL 3.x's CloudWatch protocol (the
    # translation turns them off where the endpoint does not).
    assert only(problems, "metricsLevel") == []
    (fanout,) = only(validate_properties({**props, "retrievalMode": "FANOUT"}, profile="localstack",
                                         generation=3), "retrievalMode")
    assert fanout.severity == "warning" and fanout.message.startswith("retrievalMode = FANOUT reads by")
    # DEFAULT polls when a polling key is set; LocalStack speaks the metrics protocol.
    props["idleTimeBetweenReadsInMillis"] = "250"
    assert validate_properties(props, profile="localstack", generation=3) == []
    fanout_on_aws = validate_properties({**props, "retrievalMode": "FANOUT"}, profile="aws", generation=3)
    assert only(fanout_on_aws, "retrievalMode") == []


@pytest.mark.parametrize(
    ("values", "fanout"),
    [
        ({}, True),
        ({"retrievalMode": "FANOUT"}, True),
        ({"retrievalMode": "fanout"}, True),
        ({"retrievalMode": "POLLING"}, False),
        ({"retrievalMode": "DEFAULT"}, True),
        ({"retrievalMode": "DEFAULT", "maxRecords": "100"}, False),
        ({"pollingConfig.idleTimeBetweenReadsInMillis": "250"}, False),
        ({"retrievalMode": "FANOUT", "maxRecords": "100"}, True),
    ],
)
def test_kcl3_reads_by_fanout_as_the_daemon_decides(values: dict[str, str], fanout: bool) -> None:
    assert generation(3).reads_by_fanout(values) is fanout
    assert generation(1).reads_by_fanout(values) is False  # KCL 1.x always polls


@pytest.mark.parametrize(
    ("values", "http2"),
    [
        ({}, True),  # DEFAULT with no polling key: fan-out, the KCL's HTTP/2
        ({"retrievalMode": "POLLING"}, False),
        ({"retrievalMode": "FANOUT", "kinesisHttpProtocol": "HTTP1_1"}, False),
        ({"retrievalMode": "POLLING", "kinesisHttpProtocol": "http2"}, True),
    ],
)
def test_kcl3_the_launchers_protocol_on_a_local_kinesis_endpoint(values: dict[str, str], http2: bool) -> None:
    assert generation(3).local_kinesis_http2(values) is http2
    assert generation(1).local_kinesis_http2(values) is False  # SDK v1: HTTP/1.1


@pytest.mark.parametrize(
    ("endpoint", "ok"),
    [
        ("http://127.0.0.1:4568", True),
        ("http://kinesis-mock:4568", True),  # http:// is local to the launcher, whatever the host
        ("https://localhost:4567", True),
        ("https://kinesis.example.com", False),
        ("https://kinesis.us-east-1.amazonaws.com", False),
        (None, False),
    ],
)
def test_kcl3_the_http_protocol_only_on_a_local_kinesis_endpoint(endpoint: str | None, ok: bool) -> None:
    props = {**GOOD_LOCAL3, "kinesisHttpProtocol": "HTTP1_1"}
    if endpoint is None:
        del props["kinesisEndpoint"]
    else:
        props["kinesisEndpoint"] = endpoint
    problems = only(validate_properties(props, profile="aws", generation=3), "kinesisHttpProtocol")
    if ok:
        assert problems == []
    else:
        (problem,) = problems
        assert problem.severity == "error"
        assert problem.message.startswith("is only for a local kinesisEndpoint (http://, or a loopback host)")
    (bad,) = only(validate_properties({**GOOD_LOCAL3, "kinesisHttpProtocol": "h2c"}, generation=3),
                  "kinesisHttpProtocol")
    assert bad.severity == "error" and "is not one of HTTP1_1, HTTP2" in bad.message


@pytest.mark.parametrize(
    ("endpoint", "ok"),
    [
        ("https://127.0.0.1:4567", True),
        ("https://localhost:4567", True),
        ("https://[::1]:4567", True),
        ("http://127.0.0.1:4568", False),
        ("https://kinesis.example.com", False),
        ("https://kinesis.us-east-1.amazonaws.com", False),
        (None, False),
    ],
)
def test_kcl3_trusting_any_certificate_only_on_a_loopback_https_endpoint(endpoint: str | None, ok: bool) -> None:
    props = {**GOOD_LOCAL3, "kinesisTrustLoopbackCertificates": "true"}
    if endpoint is None:
        del props["kinesisEndpoint"]
    else:
        props["kinesisEndpoint"] = endpoint
    problems = only(validate_properties(props, profile="aws", generation=3), "kinesisTrustLoopbackCertificates")
    if ok:
        assert problems == []
    else:
        (problem,) = problems
        assert problem.severity == "error"
        assert problem.message.startswith("true is only for an https:// kinesisEndpoint on a loopback host")
        assert (endpoint or "the AWS endpoint (no kinesisEndpoint)") in problem.message
    # false (the default) is fine anywhere.
    props["kinesisTrustLoopbackCertificates"] = "false"
    assert only(validate_properties(props, profile="aws", generation=3), "kinesisTrustLoopbackCertificates") == []


def test_kcl3_client_builder_keys() -> None:
    props = {k: v for k, v in GOOD_LOCAL3.items() if k != "kinesisEndpoint"}
    props["kinesisClient.endpointOverride"] = "http://127.0.0.1:4566"
    assert validate_properties(props, profile="local", generation=3) == []
    props["kinesisClient.endpointOverride"] = "https://kinesis.us-east-1.amazonaws.com"
    (problem,) = validate_properties(props, profile="local", generation=3)
    assert problem.key == "kinesisEndpoint" and "AWS host" in problem.message
    (builder,) = validate_properties({**GOOD_LOCAL3, "dynamoDbClient.foo": "1"}, profile="local", generation=3)
    assert builder.severity == "warning" and "client builder" in builder.message


def test_kcl3_unsettable_key_is_an_error() -> None:
    (problem,) = validate_properties({**GOOD_LOCAL3, "shardPrioritization": "x"}, generation=3)
    assert problem.severity == "error" and "cannot be set" in problem.message


def test_kcl3_check_file_and_require_valid(tmp_path: Path) -> None:
    path = tmp_path / "local.properties"
    path.write_text("".join(f"{k} = {v}\n" for k, v in GOOD_LOCAL3.items()))
    assert check_file(path, generation=3) == []
    # Without retrievalMode the 3.x daemon would use enhanced fan-out: a warning (the engine decides).
    path.write_text("".join(f"{k} = {v}\n" for k, v in GOOD_LOCAL.items()))
    assert require_valid(path) == []
    assert [p.key for p in require_valid(path, generation=3)] == ["retrievalMode"]  # metrics: on (answered)
    path.write_text("".join(f"{k} = {v}\n" for k, v in {**GOOD_LOCAL3, "metricsLevel": "x"}.items()))
    with pytest.raises(PropertiesError) as info:
        require_valid(path, generation=3)
    assert "metricsLevel" in str(info.value)
    assert info.value.hint == f"run: kclpy-local properties check {path} --kcl 3"
