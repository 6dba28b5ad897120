"""A scripted daemon: drive a processor through a transcript, with no Java.

In process (fast, for unit tests)::

    outcome = ScriptedDaemon(Transcript.load("t.jsonl")).run(MyProcessor())
    outcome.assert_matches()

Or as a subprocess over real pipes, answering each checkpoint request only
after it arrives, as the real daemon does::

    outcome = ScriptedDaemon(transcript).run_subprocess([sys.executable, "processor.py"])
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import _env
from .._protocol.schemas import iter_violations
from .._runtime.loop import OnError, Runtime, run_to_exit_code
from ._transcript import Transcript

__all__ = ["Outcome", "ScriptedDaemon"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the processor did: its exit status, its protocol lines and its stderr."""

    transcript: Transcript
    exit_code: int
    output_lines: tuple[str, ...]
    stderr: str
    unsent: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def output(self) -> list[Any]:
        return [json.loads(line) for line in self.output_lines]

    def mismatches(self) -> list[str]:
        """Every difference from the transcript's expectations (empty when it matches)."""
        t = self.transcript
        found: list[str] = list(self.notes)
        expected = t.expected_output()
        actual: list[Any] = []
        for n, line in enumerate(self.output_lines, start=1):
            try:
                obj = json.loads(line)
            except ValueError:
                found.append(f"output line {n} is not JSON: {line!r}")
                continue
            actual.append(obj)
            for v in iter_violations(obj, "child"):
                found.append(
                    f"output line {n} breaks the child schema at {v.path or '<root>'}: {v.message}"
                )
        for n, (want, got) in enumerate(zip(expected, actual, strict=False), start=1):
            if want != got:
                found.append(f"answer {n}: expected {json.dumps(want)}, got {json.dumps(got)}")
        if len(actual) != len(expected):
            found.append(f"expected {len(expected)} answers, got {len(actual)}")
        if self.exit_code != t.exit_code:
            found.append(f"expected exit status {t.exit_code}, got {self.exit_code}")
        for text in t.stderr_contains:
            if text not in self.stderr:
                found.append(f"stderr lacks {text!r}")
        return found

    def assert_matches(self) -> None:
        problems = self.mismatches()
        if problems:
            detail = "\n  ".join(problems)
            raise AssertionError(f"{self.transcript.name}:\n  {detail}\nstderr:\n{self.stderr}")


@dataclass(frozen=True)
class ScriptedDaemon:
    """Plays the daemon's side of a transcript against a processor."""

    transcript: Transcript

    def run(
        self,
        processor: object,
        *,
        on_error: OnError | None = None,
        strict: bool | None = None,
    ) -> Outcome:
        """Run ``processor`` in this process over in-memory files."""
        t = self.transcript
        out = io.StringIO()
        err = io.StringIO()
        runtime = Runtime(
            processor,
            io.StringIO(t.daemon_input()),
            out,
            err,
            on_error=on_error or t.on_error,  # type: ignore[arg-type]
            strict=strict if strict is not None else t.strict,
        )
        # As in a real processor process, whatever the processor prints goes to stderr.
        with contextlib.redirect_stdout(err), contextlib.redirect_stderr(err):
            code = run_to_exit_code(runtime, err)
        lines = tuple(line for line in out.getvalue().splitlines() if line.strip())
        return Outcome(t, code, lines, err.getvalue())

    def run_subprocess(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        timeout: float = 30.0,
    ) -> Outcome:
        """Run a processor process over real pipes, step by step."""
        t = self.transcript
        full_env = dict(os.environ if env is None else env)
        full_env.update(t.env)
        if t.on_error:
            full_env[_env.ON_ERROR.name] = t.on_error
        if t.strict is not None:
            full_env[_env.STRICT.name] = "1" if t.strict else "0"
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=full_env,
            cwd=cwd,
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        lines: queue.Queue[str | None] = queue.Queue()
        err_chunks: list[str] = []
        threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
        stderr = proc.stderr
        err_thread = threading.Thread(target=lambda: err_chunks.append(stderr.read()), daemon=True)
        err_thread.start()
        got: list[str] = []
        notes: list[str] = []
        unsent = 0
        steps = list(t.steps)
        try:
            for index, step in enumerate(steps):
                if step.kind == "daemon":
                    try:
                        proc.stdin.write(step.line + "\n")
                        proc.stdin.flush()
                    except (BrokenPipeError, OSError):
                        unsent = sum(1 for s in steps[index:] if s.kind == "daemon")
                        break
                else:
                    line = _next_line(lines, timeout)
                    if line is None:
                        notes.append(f"no answer for transcript line {step.source_line}")
                        break
                    got.append(line)
            with contextlib.suppress(OSError):
                proc.stdin.close()
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
            notes.append(f"processor did not exit within {timeout}s")
        while True:
            try:
                rest = lines.get(timeout=1.0)
            except queue.Empty:
                break
            if rest is None:
                break
            got.append(rest)
        err_thread.join(timeout=5.0)
        return Outcome(t, code, tuple(got), "".join(err_chunks), unsent, tuple(notes))


def _pump(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        if line.strip():
            lines.put(line.rstrip("\n"))
    lines.put(None)


def _next_line(lines: queue.Queue[str | None], timeout: float) -> str | None:
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return None
