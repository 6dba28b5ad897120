"""A record processor's stderr lines in the daemon log keep the level they start with:
the real JVM (KCL 1.x and 3.x launchers) running a processor that logs at every level
and prints a line without one, against the embedded emulator (moto).

The stock daemons log each such line as ``Received error line from subprocess [LINE]
for shard S`` at their highest level (KCL 1.x: SEVERE, through java.util.logging;
KCL 3.x: ERROR, through logback), then echo the line itself. The launchers log it
at the line's level instead; a line without one keeps the error level. The exit
reason that ``run`` reads from the log still names what the processor raised.
"""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path

import pytest

from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._jvm.bootstrap import Installation
from kclpy_local._jvm.supervise import ExitReason
from kclpy_local.testing import LocalStream, ProcessorRun

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

PROCESSOR = textwrap.dedent(
    """\
    import logging
    import sys

    from kclpy_local import RecordProcessor, run

    log = logging.getLogger("levels")


    class Levels(RecordProcessor):
        def initialize(self, message):
            log.debug("child-line debug")
            log.info("child-line info")
            log.warning("child-line warning")
            log.error("child-line error")
            log.critical("child-line critical")
            print("child-line plain", file=sys.stderr, flush=True)

        def process_records(self, batch, checkpointer):
            for record in batch.records:
                if record.data == b"boom":
                    raise RuntimeError("boom")
            checkpointer.checkpoint()

        def lease_lost(self):
            pass

        def shard_ended(self, checkpointer):
            checkpointer.checkpoint()

        def shutdown_requested(self, checkpointer):
            checkpointer.checkpoint()


    run(Levels())
    """
)

#: What each line starts with, and the level each generation's daemon log shows it
#: at (``None``: not logged, below the daemon's INFO level; the echo remains).
EXPECTED = {
    "debug": ("DEBUG levels: ", {1: None, 3: None}),
    "info": ("INFO levels: ", {1: "INFO", 3: "INFO"}),
    "warning": ("WARNING levels: ", {1: "WARNING", 3: "WARN"}),
    "error": ("ERROR levels: ", {1: "SEVERE", 3: "ERROR"}),
    "critical": ("CRITICAL levels: ", {1: "SEVERE", 3: "ERROR"}),
    "plain": ("", {1: "SEVERE", 3: "ERROR"}),
}

#: The level of a "Received error line" log record: KCL 1.x's java.util.logging
#: SimpleFormatter puts it at the start of the message's line, KCL 3.x's logback
#: pattern (``%d [%thread] %-5level %logger{36} [%mdc] - %msg``) before the logger.
RECORD_LEVEL = {
    1: re.compile(
        r"^(?P<level>[A-Z]+): Received error line from subprocess \[(?P<line>.*)\] for shard "
    ),
    3: re.compile(
        r" (?P<level>[A-Z]+) +\S*DrainChildSTDERRTask \[[^\]]*\] - "
        r"Received error line from subprocess \[(?P<line>.*)\] for shard "
    ),
}


def records(lines: list[str], generation: int) -> dict[str, list[str]]:
    """The levels of the daemon's records of each child line, by the line."""
    found: dict[str, list[str]] = {}
    for line in lines:
        match = RECORD_LEVEL[generation].search(line)
        if match:
            found.setdefault(match["line"], []).append(match["level"])
    return found


def wait_for_line(run: ProcessorRun, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in line for line in run.log):
        code = run.daemon.returncode
        assert code is None, f"the daemon exited with {code}:\n" + "\n".join(run.daemon.log_tail())
        assert time.monotonic() < deadline, f"no {text!r} within {timeout}s:\n" + "\n".join(
            run.log[-40:]
        )
        time.sleep(0.2)


@pytest.mark.parametrize("generation", [1, 3])
def test_child_lines_are_logged_at_their_level(
    generation: int,
    request: pytest.FixtureRequest,
    fresh_emulator: EmbeddedEmulator,
    tmp_path: Path,
) -> None:
    installation: Installation = request.getfixturevalue(f"kcl{generation}")
    processor = tmp_path / "levels.py"
    processor.write_text(PROCESSOR, encoding="utf-8")
    stream = LocalStream.create(fresh_emulator.endpoint_url, name=f"levels-{generation}")
    run = ProcessorRun(
        processor,
        stream,
        generation=generation,
        installation=installation,
        env={"KCLPY_LOCAL_LOG_LEVEL": "DEBUG"},
        overrides={"shutdownGraceMillis": "2000"},
        cwd=ROOT,
        ready_timeout=180,
    )
    with run:
        wait_for_line(run, "child-line plain", 120)
        time.sleep(1.0)  # the daemon logs a child's lines in the order written; let them all arrive
        logged = records(run.log, generation)
        for name, (prefix, levels) in EXPECTED.items():
            line = f"{prefix}child-line {name}"
            assert line in run.log, f"the daemon no longer echoes {line!r}"
            want = levels[generation]
            assert logged.get(line, []) == ([] if want is None else [want]), (name, logged)
        text = "\n".join(run.log)
        for level in ("SEVERE", "ERROR"):
            assert f"{level}: Received error line from subprocess [INFO " not in text
            assert not re.search(rf" {level} .*Received error line from subprocess \[INFO ", text)

        # The exit reason still names the processor's failure, whatever the levels.
        stream.put([b"boom"], partition_key="k")
        code = run.daemon.wait(120)
        assert code == 1, "\n".join(run.daemon.log_tail())
        reason = ExitReason()
        for line in run.log:
            reason.feed(line)
        assert reason.describe() == (
            f"the record processor for {stream.shard_ids[0]} failed while processing records "
            "(exit status 4; RuntimeError: boom); the KCL stopped the daemon"
        ), "\n".join(run.log[-60:])
