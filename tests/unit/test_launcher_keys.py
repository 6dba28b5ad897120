"""Every key the key tables say a launcher reads is read by that launcher: its
Java constant is passed to a parse or a lookup of the properties, not merely
declared or named in a comment (the sources of each generation's launcher,
shared ones included)."""

from __future__ import annotations

import re

import pytest

from kclpy_local._config.generations import GENERATIONS
from kclpy_local._jvm.jars import load_lock

#: ``static final String NAME = "key";``
CONSTANT = re.compile(r'static final String (\w+)\s*=\s*"([^"]+)";')
#: A read of the properties: ``parseX(props, NAME`` or ``getProperty(NAME``.
READ = r"(?:parse\w*\(\s*\w+,\s*|getProperty\(\s*)(?:\w+\.)?{name}\b"


def _code(source: str) -> str:
    """The source without comments."""
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.DOTALL)
    return re.sub(r"//[^\n]*", "", source)


@pytest.mark.parametrize("number", sorted(GENERATIONS), ids=lambda n: f"kcl{n}")
def test_each_launcher_key_is_read_by_its_launcher(number: int) -> None:
    code = _code("\n".join(text.decode() for text in load_lock(number).launcher_sources().values()))
    constants = {key: name for name, key in CONSTANT.findall(code)}
    unread = []
    for spec in GENERATIONS[number].keys:
        if spec.source != "launcher":
            continue
        name = constants.get(spec.name)
        via_constant = name is not None and re.search(READ.format(name=re.escape(name)), code)
        literal = re.search(rf'(?:parse\w*\(\s*\w+,\s*|getProperty\(\s*)"{re.escape(spec.name)}"', code)
        if not (via_constant or literal):
            unread.append(spec.name)
    assert unread == []
