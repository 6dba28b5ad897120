"""Transcripts: scripted exchanges between a daemon and a processor, as data.

A transcript file holds JSON lines. The first line is a header object; each
further line is one step::

    {"description": "...", "processor": "processors/recorder.py:RecorderProcessor",
     "exit_code": 0, "stderr_contains": ["..."], "on_error": "exit"}
    {"daemon": {"action": "initialize", "shardId": "shardId-0", ...}}   # daemon writes
    {"child": {"action": "status", "responseFor": "initialize"}}        # processor must answer
    {"daemon_raw": "this is not JSON"}                                  # a raw (bad) line

Lines that are empty or start with ``//`` are ignored. Header keys are all
optional; ``exit_code`` defaults to 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .._exceptions import ProtocolError

__all__ = ["Step", "Transcript"]


@dataclass(frozen=True, slots=True)
class Step:
    """One step: the daemon sends ``line``, or the processor must answer ``expected``."""

    kind: Literal["daemon", "child"]
    line: str = ""
    expected: dict[str, Any] | None = None
    source_line: int = 0


@dataclass(frozen=True, slots=True)
class Transcript:
    """A parsed transcript (see the module docstring for the format)."""

    steps: tuple[Step, ...]
    description: str = ""
    processor: str | None = None
    exit_code: int = 0
    stderr_contains: tuple[str, ...] = ()
    on_error: str | None = None
    strict: bool | None = None
    env: dict[str, str] = field(default_factory=dict)
    name: str = "<transcript>"

    @classmethod
    def load(cls, path: str | Path) -> Transcript:
        path = Path(path)
        return cls.parse(path.read_text(encoding="utf-8"), name=str(path))

    @classmethod
    def parse(cls, text: str, name: str = "<transcript>") -> Transcript:
        header: dict[str, Any] = {}
        steps: list[Step] = []
        seen_header = False
        for number, raw in enumerate(text.splitlines(), start=1):
            stripped = raw.strip()
            if not stripped or stripped.startswith("//"):
                continue
            try:
                obj = json.loads(stripped)
            except ValueError as exc:
                raise ProtocolError(
                    f"{name}: not JSON ({exc})", line=raw, line_number=number
                ) from None
            if not isinstance(obj, dict):
                raise ProtocolError(f"{name}: expected an object", line=raw, line_number=number)
            if "daemon" in obj:
                steps.append(Step("daemon", json.dumps(obj["daemon"]), None, number))
            elif "daemon_raw" in obj:
                steps.append(Step("daemon", str(obj["daemon_raw"]), None, number))
            elif "child" in obj:
                steps.append(Step("child", "", dict(obj["child"]), number))
            elif not seen_header and not steps:
                header = obj
                seen_header = True
            else:
                raise ProtocolError(
                    f"{name}: a step needs one of 'daemon', 'daemon_raw', 'child'",
                    line=raw,
                    line_number=number,
                )
        return cls(
            steps=tuple(steps),
            description=str(header.get("description", "")),
            processor=header.get("processor"),
            exit_code=int(header.get("exit_code", 0)),
            stderr_contains=tuple(header.get("stderr_contains", ())),
            on_error=header.get("on_error"),
            strict=header.get("strict"),
            env={str(k): str(v) for k, v in header.get("env", {}).items()},
            name=name,
        )

    def daemon_input(self) -> str:
        """Everything the daemon writes, in order, as one text."""
        return "".join(step.line + "\n" for step in self.steps if step.kind == "daemon")

    def expected_output(self) -> list[dict[str, Any]]:
        return [step.expected for step in self.steps if step.expected is not None]
