"""The environment variables: one table in the code, the README's table made from it,
and no ``KCLPY_LOCAL_*`` name read anywhere that the table does not declare."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kclpy_local import _env

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"\bKCLPY_LOCAL_[A-Z_]+\b")


def _readme_rows() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Environment", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `")]


def test_readme_table_is_the_code_table() -> None:
    assert _readme_rows() == [variable.row() for variable in _env.VARIABLES]


def test_every_variable_named_in_the_package_is_declared() -> None:
    declared = {variable.name for variable in _env.VARIABLES}
    named: dict[str, set[str]] = {}
    for path in (ROOT / "kclpy_local").rglob("*"):
        if path.suffix not in {".py", ".properties", ".java"} or path.name == "_env.py":
            continue
        for name in NAME.findall(path.read_text(encoding="utf-8")):
            named.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    undeclared = {name: sorted(where) for name, where in named.items() if name not in declared}
    assert undeclared == {}


def test_names_are_unique() -> None:
    names = [variable.name for variable in _env.VARIABLES]
    assert len(names) == len(set(names))


def test_empty_counts_as_unset() -> None:
    assert _env.STRICT.get({"KCLPY_LOCAL_STRICT": ""}) is None
    assert _env.STRICT.get({"KCLPY_LOCAL_STRICT": "1"}) == "1"
    assert _env.STRICT.get({}) is None


def test_the_daemon_jvm_options_default_to_c1_and_yield_to_the_variable() -> None:
    from kclpy_local._exceptions import UsageError
    from kclpy_local._jvm.daemon import DEFAULT_JVM_OPTIONS, jvm_options

    assert jvm_options({}) == list(DEFAULT_JVM_OPTIONS) == ["-XX:TieredStopAtLevel=1"]
    assert jvm_options({"KCLPY_LOCAL_JVM_OPTIONS": ""}) == []  # empty: the JVM's own
    assert jvm_options({"KCLPY_LOCAL_JVM_OPTIONS": "-Xmx512m '-Dx=a b'"}) == ["-Xmx512m", "-Dx=a b"]
    with pytest.raises(UsageError, match="KCLPY_LOCAL_JVM_OPTIONS"):
        jvm_options({"KCLPY_LOCAL_JVM_OPTIONS": "-Dx='unclosed"})
