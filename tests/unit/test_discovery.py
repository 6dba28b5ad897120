"""Finding java and javac: the lookup order, and a JAVA_HOME that is not a Java."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from kclpy_local._exceptions import JavaNotFoundError
from kclpy_local._jvm.discovery import find_tool


def fake_tool(path: Path, major: int = 17) -> Path:
    """An executable that answers ``-version`` like a JDK ``major`` tool."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho 'openjdk version \"{major}.0.2\" 2024-01-16' >&2\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def path_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A java and javac on PATH (and nothing else: no KCLPY_LOCAL_JAVA, no JAVA_HOME)."""
    bin_dir = tmp_path / "path-jdk" / "bin"
    fake_tool(bin_dir / "javac")
    java = fake_tool(bin_dir / "java")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("KCLPY_LOCAL_JAVA", raising=False)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    return java


def test_path_is_used_without_java_home(path_java: Path) -> None:
    assert find_tool("java").path == path_java


def test_a_valid_java_home_comes_before_path(
    path_java: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "jdk-21"
    java = fake_tool(home / "bin" / "java", 21)
    monkeypatch.setenv("JAVA_HOME", str(home))
    found = find_tool("java")
    assert (found.path, found.major) == (java, 21)


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda home: None, "does not exist"),
        (lambda home: home.write_text("not a JDK"), "is not a directory"),
        (lambda home: (home / "bin").mkdir(parents=True), "has no executable bin/java"),
    ],
    ids=["missing", "a-file", "no-bin-java"],
)
def test_an_invalid_java_home_is_refused_not_replaced_by_path(
    path_java: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: object, problem: str
) -> None:
    home = tmp_path / "jdk"
    make(home)  # type: ignore[operator]
    monkeypatch.setenv("JAVA_HOME", str(home))
    with pytest.raises(JavaNotFoundError) as caught:
        find_tool("java")
    assert str(caught.value) == f"JAVA_HOME={home} {problem}"
    assert caught.value.exit_code == 6
    assert caught.value.hint is not None
    assert "unset JAVA_HOME" in caught.value.hint and "JDK 11" in caught.value.hint


def test_a_jre_java_home_is_refused_for_javac(
    path_java: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jre = tmp_path / "jre"
    fake_tool(jre / "bin" / "java")
    monkeypatch.setenv("JAVA_HOME", str(jre))
    assert find_tool("java").path == jre / "bin" / "java"
    with pytest.raises(JavaNotFoundError, match=r"has no executable bin/javac \(a JRE, not a JDK\?\)"):
        # Not next to that java either: the lookup reaches JAVA_HOME.
        find_tool("javac", near=tmp_path / "elsewhere" / "java")


def test_java_home_is_not_judged_when_an_earlier_candidate_is_taken(
    path_java: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = fake_tool(tmp_path / "chosen" / "java", 11)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "gone"))
    monkeypatch.setenv("KCLPY_LOCAL_JAVA", str(explicit))
    assert find_tool("java").path == explicit
    assert find_tool("java", explicit=explicit).path == explicit


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda path: None, "does not exist"),
        (lambda path: path.mkdir(), "is a directory"),
        (lambda path: path.write_text("#!/bin/sh\n"), "is not executable"),
    ],
    ids=["missing", "a-directory", "not-executable"],
)
def test_an_invalid_kclpy_local_java_is_refused(
    path_java: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: object, problem: str
) -> None:
    target = tmp_path / "my-java"
    make(target)  # type: ignore[operator]
    monkeypatch.setenv("KCLPY_LOCAL_JAVA", str(target))
    with pytest.raises(JavaNotFoundError) as caught:
        find_tool("java")
    assert str(caught.value) == f"KCLPY_LOCAL_JAVA={target} {problem}"
    assert caught.value.hint is not None and "unset KCLPY_LOCAL_JAVA" in caught.value.hint
    # javac is not what the variable names: the lookup goes on (here: to PATH).
    assert find_tool("javac").path == path_java.parent / "javac"
