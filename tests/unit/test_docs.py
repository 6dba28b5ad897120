"""The generated reference documents: committed, complete and up to date."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from kclpy_local import _docgen as _docs
from kclpy_local._config.kcl1_keys import KCL1_KEYS, KCL1_UNSETTABLE
from kclpy_local._protocol import schemas as _schemas

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
STALE_HINT = "docs are stale: run python scripts/gen_docs.py"


def _gen_docs_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _schema_actions() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for urn, doc in _schemas.schemas().items():
        direction, _, action = urn.removeprefix("urn:kclpy-local:schema:").partition(":")
        found.append((direction, action, dict(doc)))
    return sorted(found, key=lambda item: (item[0], item[1]))


@pytest.mark.parametrize("name", sorted(_docs.DOCUMENTS))
def test_committed_document_equals_generator_output(name: str) -> None:
    committed = (DOCS / name).read_text(encoding="utf-8")
    assert committed == _docs.DOCUMENTS[name](), f"docs/{name}: {STALE_HINT}"


def test_generation_is_deterministic() -> None:
    for generate in _docs.DOCUMENTS.values():
        assert generate() == generate()


def test_protocol_has_a_section_per_schema_action() -> None:
    text = _docs.protocol_reference()
    for direction, action, doc in _schema_actions():
        anchor = f'<a id="{direction}-{action.lower()}"></a>'
        assert anchor in text, f"{direction}:{action} has no section"
        section = text.split(anchor, 1)[1].split('<a id="', 1)[0]
        assert section.lstrip().startswith(f"### `{action}`")
        assert "```json" in section, f"{direction}:{action} has no example"
        for field in doc.get("properties", {}):
            assert f"| `{field}` |" in section, f"{direction}:{action}.{field} is not in its table"


def test_protocol_links_resolve() -> None:
    text = _docs.protocol_reference()
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', text))
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links, "no internal links found"
    assert links <= anchors, f"links to missing anchors: {sorted(links - anchors)}"


def test_protocol_names_the_generations() -> None:
    text = _docs.protocol_reference()
    shutdown = text.split('<a id="daemon-shutdown"></a>', 1)[1].split('<a id="', 1)[0]
    assert "KCL 1.x only" in shutdown
    assert "TERMINATE" in shutdown and "ZOMBIE" in shutdown
    for action in ("leaseLost", "shardEnded"):
        section = text.split(f'<a id="daemon-{action.lower()}"></a>', 1)[1].split('<a id="', 1)[0]
        assert "KCL 2.x/3.x" in section


def test_every_schema_field_has_a_description() -> None:
    for direction, action, doc in _schema_actions():
        assert doc.get("title"), f"{direction}:{action} has no title"
        assert doc.get("description"), f"{direction}:{action} has no description"
        for field, prop in doc.get("properties", {}).items():
            assert prop.get("description"), f"{direction}:{action}.{field} has no description"


def test_a_schema_without_documentation_entry_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    documents = dict(_schemas.schemas())
    documents["urn:kclpy-local:schema:daemon:brandNew"] = {"title": "new", "properties": {}}
    monkeypatch.setattr(_schemas, "schemas", lambda: documents)
    with pytest.raises(ValueError, match="daemon:brandNew"):
        _docs.protocol_reference()


def test_configuration_lists_every_key() -> None:
    text = _docs.configuration_reference()
    for spec in KCL1_KEYS:
        assert f"| `{spec.name}` |" in text, f"key {spec.name} is missing"
    for name in KCL1_UNSETTABLE:
        assert f"| `{name}` |" in text, f"unsettable key {name} is missing"


def test_configuration_covers_substitution_profiles_and_launcher() -> None:
    text = _docs.configuration_reference()
    for needle in (
        "${NAME:-default}",
        "$${",
        "# kclpy-local: profile=local",
        "cloudWatchEndpoint",
        "isCBORProtocolDisabled",
        "AWS_CBOR_DISABLE",
    ):
        assert needle in text, needle
    for profile in ("`local`", "`localstack`", "`aws`"):
        assert profile in text


def test_check_passes_on_fresh_output_and_names_a_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _gen_docs_script()
    assert script.main(["--check", "--out", str(tmp_path)]) == 1  # nothing written yet
    assert script.main(["--out", str(tmp_path)]) == 0
    assert script.main(["--check", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    (tmp_path / "configuration.md").write_text("old\n", encoding="utf-8")
    assert script.main(["--check", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "configuration.md is stale" in err
    assert "protocol.md" not in err
