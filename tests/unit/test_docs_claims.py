"""What the hand-written docs name, checked against the code: every property key
they set is a key of a KCL generation, every variable is declared, every
command exists, and the figures they give are the code's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kclpy_local import _env
from kclpy_local._cli import ORDER
from kclpy_local._config.generations import GENERATIONS
from kclpy_local._jvm import supervise

ROOT = Path(__file__).resolve().parents[2]
#: The hand-written documents (the generated ones are checked by test_docs.py).
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
GENERATED = {"configuration.md", "protocol.md"}
HAND_WRITTEN = [path for path in DOCS if path.name not in GENERATED]

#: `key = value` in running text (a properties line; `name=value` is Python or shell).
INLINE_SETTING = re.compile(r"`([A-Za-z][A-Za-z0-9_.]*) = [^`=]+`")
FENCE = re.compile(r"```properties\n(.*?)```", re.DOTALL)
VARIABLE = re.compile(r"\bKCLPY_LOCAL_[A-Z0-9_]+\b")
#: Code: fenced blocks and backticked spans, where a command line is written.
CODE = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)
COMMAND = re.compile(r"(?:^|[\s`$(])kclpy-local ([a-z][a-z-]*)\b", re.MULTILINE)
#: Variables the project's own suite reads (not the package): documented for contributors.
SUITE_VARIABLES = {"KCLPY_LOCAL_TEST_CACHE", "KCLPY_LOCAL_TEST_JARS", "KCLPY_LOCAL_KCL_JAR"}
#: Settings in the docs that are not properties (environment, JVM, shell).
NOT_PROPERTIES = {"PYTHONUNBUFFERED", "CI", "JAVA_HOME", "AWS_ENDPOINT_URL", "DOCKER_HOST"}
#: Lease-table attributes the migration guide shows (items, not properties).
LEASE_ITEM_ATTRIBUTES = {"entityType", "cv"}


def _known_key(name: str) -> bool:
    return any(generation.lookup(name) is not None for generation in GENERATIONS.values())


def _settings(text: str) -> set[str]:
    names = {m.group(1) for m in INLINE_SETTING.finditer(text)}
    for block in FENCE.findall(text):
        for line in block.splitlines():
            stripped = line.strip()
            if stripped and not stripped.startswith(("#", "!")) and "=" in stripped:
                names.add(stripped.split("=", 1)[0].strip())
    return {
        name
        for name in names
        if name not in NOT_PROPERTIES | LEASE_ITEM_ATTRIBUTES and not VARIABLE.fullmatch(name)
    }


@pytest.mark.parametrize("path", HAND_WRITTEN, ids=lambda p: p.name)
def test_every_property_the_docs_set_is_a_key(path: Path) -> None:
    unknown = sorted(name for name in _settings(path.read_text(encoding="utf-8")) if not _known_key(name))
    assert unknown == [], f"{path.name} sets keys no KCL generation has"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_variable_the_docs_name_is_declared(path: Path) -> None:
    declared = {variable.name for variable in _env.VARIABLES} | SUITE_VARIABLES
    named = set(VARIABLE.findall(path.read_text(encoding="utf-8")))
    assert sorted(named - declared) == []


@pytest.mark.parametrize("path", HAND_WRITTEN, ids=lambda p: p.name)
def test_every_command_the_docs_name_exists(path: Path) -> None:
    code = "\n".join(CODE.findall(path.read_text(encoding="utf-8")))
    code = re.sub(r"(?m)#.*$", "", code)  # comments in code blocks are prose
    named = set(COMMAND.findall(code))
    assert sorted(named - set(ORDER)) == []


def test_the_graceful_stop_line_the_docs_quote_is_the_launchers() -> None:
    quoted = [path.name for path in DOCS if "graceful shutdown complete" in path.read_text(encoding="utf-8")]
    if quoted:
        assert supervise.GRACEFUL_MARKER == "kclpy-local: graceful shutdown complete"


def test_the_docs_do_not_call_requirements_optional() -> None:
    """A hard requirement described as something to install separately."""
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    required = {
        re.split(r"[<>=!~ ;\[]", line.strip(), maxsplit=1)[0].lower()
        for line in config["options"]["install_requires"].splitlines()
        if line.strip()
    }
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for name in required:
            assert f"pip install {name}" not in text.lower(), f"{path.name}: {name} is a requirement already"
            assert not re.search(rf"`{re.escape(name)}`, which is not installed", text), path.name
