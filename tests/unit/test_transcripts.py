"""The protocol conformance suite: every transcript under tests/transcripts, in
process and as a subprocess over real pipes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from kclpy_local.testing import ScriptedDaemon, Transcript

ROOT = Path(__file__).resolve().parents[2]
TRANSCRIPTS = sorted((ROOT / "tests" / "transcripts").glob("*.jsonl"))


def _load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("transcript_processors", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _split(spec: str) -> tuple[Path, str]:
    file, _, name = spec.partition(":")
    return ROOT / file, name


def test_there_are_transcripts() -> None:
    assert len(TRANSCRIPTS) >= 40


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_every_transcript_says_what_the_processor_was_told(path: Path) -> None:
    """The lines on the wire alone do not show that a callback ran (a dropped
    lease-loss call answers the same status): each transcript names what the
    processor must have logged, its callbacks with their input."""
    assert Transcript.load(path).stderr_contains


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_transcript_in_process(path: Path) -> None:
    transcript = Transcript.load(path)
    assert transcript.processor, "every project transcript names its processor"
    file, name = _split(transcript.processor)
    processor = getattr(_load_module(file), name)()
    ScriptedDaemon(transcript).run(processor).assert_matches()


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_transcript_subprocess(path: Path) -> None:
    transcript = Transcript.load(path)
    assert transcript.processor
    file, name = _split(transcript.processor)
    outcome = ScriptedDaemon(transcript).run_subprocess([sys.executable, str(file), name], cwd=str(ROOT))
    outcome.assert_matches()


def test_mismatch_is_reported() -> None:
    """The runner itself can fail: a wrong expectation is caught."""
    text = (
        '{"processor": "x"}\n'
        '{"daemon": {"action": "initialize", "shardId": "s", "sequenceNumber": null, "subSequenceNumber": null}}\n'
        '{"child": {"action": "status", "responseFor": "processRecords"}}\n'
    )
    transcript = Transcript.parse(text)
    file, name = _split("tests/transcripts/processors.py:Checkpointing")
    outcome = ScriptedDaemon(transcript).run(getattr(_load_module(file), name)())
    problems = outcome.mismatches()
    assert any("answer 1" in p for p in problems)
    with pytest.raises(AssertionError):
        outcome.assert_matches()
