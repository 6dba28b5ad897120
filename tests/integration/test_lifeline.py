"""The lifeline: a launcher started with the read end of a pipe (``KCLPY_LOCAL_LIFELINE``
names its descriptor) stops as on SIGTERM when the write end closes, as it does when
the process that started the JVM dies, however it dies.

Each test starts the real launcher (KCL 1.x and 3.x) as kclpy-local does, with the
properties pipeline's effective file and the Daemon's command line, but through
``subprocess`` with ``pass_fds`` (the test holds the write end), against the
embedded emulator. Closing the write end stands for the parent's death.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
from _helpers import running

from kclpy_local._config.pipeline import prepare
from kclpy_local._config.properties import write_temporary
from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._jvm.bootstrap import Installation
from kclpy_local._jvm.daemon import LOCAL_PROFILE, READY_MARKER, daemon_argv, known_generation
from kclpy_local._jvm.supervise import GRACEFUL_MARKER
from kclpy_local.testing import LocalStream

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
VARIABLE = "KCLPY_LOCAL_LIFELINE"
GONE = "kclpy-local: the parent process went away (lifeline /dev/fd/"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}

PROCESSOR = textwrap.dedent(
    """\
    import json
    import os
    import time

    from kclpy_local import RecordProcessor, run

    NOTES = os.environ["LIFELINE_NOTES"]


    def note(event):
        line = {"event": event, "pid": os.getpid(), "lifeline": os.environ.get("KCLPY_LOCAL_LIFELINE")}
        with open(NOTES, "a") as out:
            out.write(json.dumps(line) + "\\n")


    class Noting(RecordProcessor):
        def initialize(self, message):
            note("initialize")

        def process_records(self, batch, checkpointer):
            checkpointer.checkpoint()

        def lease_lost(self):
            note("lease_lost")

        def shard_ended(self, checkpointer):
            checkpointer.checkpoint()

        def shutdown_requested(self, checkpointer):
            time.sleep(float(os.environ.get("LIFELINE_SHUTDOWN_SECONDS", "0")))
            note("shutdown_requested")
            checkpointer.checkpoint()


    run(Noting())
    """
)


def group_alive(pgid: int) -> bool:
    """Whether a live process (not a zombie) is left in the process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():  # macOS: zombies count too
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def wait_for(check: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, (
            f"timed out after {timeout}s waiting for {what}:\n" + tail(log)
        )
        time.sleep(0.1)


def tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


class Launched:
    """One launcher JVM started with a lifeline; killed with its group on the way out."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path, log_file: IO[bytes]) -> None:
        self.proc, self.log, self._log_file = proc, log, log_file

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        elif group_alive(self.proc.pid):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log_file.close()


def effective(inst: Installation, overrides: dict[str, str], directory: Path) -> Path:
    """The local profile with ``overrides``, as the Daemon gives it to the JVM
    (substituted, translated for the generation, validated)."""
    prepared = prepare(
        LOCAL_PROFILE, generation=known_generation(inst.generation), overrides=overrides
    )
    prepared.refuse("refused by the test")
    return write_temporary(prepared.effective, directory=directory)


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Launched]]:
    """Start the launcher of an installation on a properties file with ``fds`` passed on
    and ``lifeline`` as ``KCLPY_LOCAL_LIFELINE``; every JVM started is killed at the end."""
    started: list[Launched] = []

    def start(
        inst: Installation,
        properties: Path,
        lifeline: str,
        fds: tuple[int, ...],
        env: dict[str, str] | None = None,
    ) -> Launched:
        environ = {**os.environ, **CREDENTIALS, **(env or {}), VARIABLE: lifeline}
        argv = daemon_argv(inst, properties, java=_java())
        log = tmp_path / f"daemon-{len(started)}.log"
        log_file = log.open("wb")
        proc = subprocess.Popen(
            argv,
            env=environ,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            pass_fds=fds,
            start_new_session=True,
        )
        launched = Launched(proc, log, log_file)
        started.append(launched)
        return launched

    try:
        yield start
    finally:
        for launched in started:
            launched.close()


def _java() -> str:
    from kclpy_local._jvm.discovery import find_tool

    return str(find_tool("java", min_major=8).path)


def notes(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("sigterms", [0, 2], ids=["alone", "with-sigterms"])
@pytest.mark.parametrize("generation", [1, 3])
def test_the_jvm_stops_gracefully_when_the_lifeline_closes(
    generation: int,
    sigterms: int,
    *,
    request: pytest.FixtureRequest,
    fresh_emulator: EmbeddedEmulator,
    tmp_path: Path,
    launch: Callable[..., Launched],
    record_property: Callable[[str, object], None],
) -> None:
    installation: Installation = request.getfixturevalue(f"kcl{generation}")
    processor = tmp_path / "noting.py"
    processor.write_text(PROCESSOR, encoding="utf-8")
    notes_path = tmp_path / "notes.jsonl"
    stream = LocalStream.create(fresh_emulator.endpoint_url, name=f"lifeline-{generation}")
    endpoint = fresh_emulator.endpoint_url
    overrides = {
        "executableName": f"{sys.executable} {processor}",
        "applicationName": f"lifeline-app-{generation}",
        "streamName": stream.name,
        "kinesisEndpoint": endpoint,
        "dynamoDBEndpoint": endpoint,
        "cloudWatchEndpoint": endpoint,
    }
    properties = effective(installation, overrides, tmp_path)
    read_end, write_end = os.pipe()
    try:
        daemon = launch(
            installation,
            properties,
            str(read_end),
            (read_end,),
            # With SIGTERMs to send, a stop long enough to receive them.
            {
                "LIFELINE_NOTES": str(notes_path),
                "LIFELINE_SHUTDOWN_SECONDS": "2" if sigterms else "0",
            },
        )
    finally:
        os.close(read_end)
    try:
        wait_for(lambda: READY_MARKER in daemon.text(), 180, "the ready line", daemon.log)
        wait_for(
            lambda: any(n["event"] == "initialize" for n in notes(notes_path)),
            120,
            "the processor",
            daemon.log,
        )
        assert daemon.proc.poll() is None, tail(daemon.log)
        started = time.monotonic()
    finally:
        os.close(write_end)  # the parent "dies"
    # A parent started through kclpy-local's Launch also has the kernel send SIGTERM at
    # its death (before or after the lifeline's end): the same stop, not a second one.
    for _ in range(sigterms):
        time.sleep(0.3)
        daemon.proc.send_signal(signal.SIGTERM)
    code = daemon.proc.wait(60)
    elapsed = time.monotonic() - started
    record_property("seconds_from_close_to_exit", round(elapsed, 2))
    print(f"\nKCL {generation}.x: the JVM exited {elapsed:.2f}s after its lifeline closed")
    text = daemon.text()
    assert code == 128 + signal.SIGTERM, tail(daemon.log)
    assert text.count(GONE) == 1, tail(daemon.log)
    assert f"{GONE}{read_end} closed); stopping as on SIGTERM" in text
    assert "kclpy-local: stop requested; graceful shutdown" in text
    assert GRACEFUL_MARKER in text
    if sigterms:
        assert "kclpy-local: SIGTERM again while stopping; the graceful stop goes on" in text, tail(
            daemon.log
        )
        assert "second stop signal" not in text
    assert elapsed < 20, f"{elapsed:.1f}s from the lifeline's end to the JVM's exit"
    seen = notes(notes_path)
    assert "shutdown_requested" in [n["event"] for n in seen], seen
    # The processors never saw the variable, and none outlives the JVM.
    assert {n["lifeline"] for n in seen} == {None}, seen
    pids = {int(str(n["pid"])) for n in seen}
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(running(pid) for pid in pids), pids
    assert not group_alive(daemon.proc.pid)


#: A parent that starts the JVM as kclpy-local does (the lifeline's read end passed
#: on, the JVM's stdout a pipe it drains, stderr into a file), prints the JVM's pid
#: and drains until it is killed.
PARENT = textwrap.dedent(
    """\
    import json, os, subprocess, sys

    argv, stderr_path = json.loads(sys.argv[1]), sys.argv[2]
    read_end, write_end = os.pipe()
    env = dict(os.environ, KCLPY_LOCAL_LIFELINE=str(read_end))
    with open(stderr_path, "wb") as err:
        jvm = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=err, pass_fds=(read_end,), start_new_session=True)
    os.close(read_end)
    print(jvm.pid, flush=True)
    for _ in jvm.stdout:
        pass
    """
)


@pytest.mark.parametrize("generation", [1, 3])
def test_the_jvm_stops_when_its_parent_is_killed(
    generation: int,
    request: pytest.FixtureRequest,
    fresh_emulator: EmbeddedEmulator,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    installation: Installation = request.getfixturevalue(f"kcl{generation}")
    processor = tmp_path / "noting.py"
    processor.write_text(PROCESSOR, encoding="utf-8")
    notes_path = tmp_path / "notes.jsonl"
    stream = LocalStream.create(fresh_emulator.endpoint_url, name=f"orphan-{generation}")
    endpoint = fresh_emulator.endpoint_url
    properties = effective(
        installation,
        {
            "executableName": f"{sys.executable} {processor}",
            "applicationName": f"orphan-app-{generation}",
            "streamName": stream.name,
            "kinesisEndpoint": endpoint,
            "dynamoDBEndpoint": endpoint,
            "cloudWatchEndpoint": endpoint,
        },
        tmp_path,
    )
    stderr_log = tmp_path / "jvm-stderr.log"
    argv = daemon_argv(installation, properties, java=_java())
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, json.dumps(argv), str(stderr_log)],
        env={**os.environ, **CREDENTIALS, "LIFELINE_NOTES": str(notes_path)},
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    jvm = 0
    try:
        assert parent.stdout is not None
        jvm = int(parent.stdout.readline())
        wait_for(lambda: READY_MARKER in stderr_log.read_text(), 180, "the ready line", stderr_log)
        wait_for(
            lambda: any(n["event"] == "initialize" for n in notes(notes_path)),
            120,
            "the processor",
            stderr_log,
        )
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait(10)
        started = time.monotonic()
        wait_for(lambda: not running(jvm), 60, "the JVM to exit", stderr_log)
        elapsed = time.monotonic() - started
        record_property("seconds_from_kill_to_exit", round(elapsed, 2))
        print(f"\nKCL {generation}.x: the JVM exited {elapsed:.2f}s after its parent was killed")
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
            parent.wait(10)
        if jvm and group_alive(jvm):
            os.killpg(jvm, signal.SIGKILL)
    text = stderr_log.read_text()
    assert text.count(GONE) == 1, tail(stderr_log)
    assert GRACEFUL_MARKER in text, tail(stderr_log)
    seen = notes(notes_path)
    assert "shutdown_requested" in [n["event"] for n in seen], seen
    pids = {int(str(n["pid"])) for n in seen}
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(running(pid) for pid in pids), pids
    assert not group_alive(jvm)


@pytest.mark.parametrize("value", ["not-a-number", "999", "regular-file"])
def test_a_lifeline_that_cannot_be_watched_is_reported_and_the_launcher_runs_on(
    value: str,
    kcl1: Installation,
    tmp_path: Path,
    launch: Callable[..., Launched],
    unreachable_properties: Callable[..., Path],
) -> None:
    fds: tuple[int, ...] = ()
    if value == "regular-file":
        handle = (tmp_path / "a-file").open("wb")
        lifeline, fds = str(handle.fileno()), (handle.fileno(),)
    else:
        lifeline = value
    props = unreachable_properties(maxInitializationAttempts="20")
    daemon = launch(
        kcl1, props, lifeline, fds, {"JAVA_TOOL_OPTIONS": "-Daws.accessKeyId=it -Daws.secretKey=it"}
    )
    if value == "regular-file":
        handle.close()
    wait_for(
        lambda: "kclpy-local: worker INITIALIZING" in daemon.text(), 60, "the worker", daemon.log
    )
    text = daemon.text()
    assert f"kclpy-local: warning: {VARIABLE}={lifeline}" in text, tail(daemon.log)
    assert "not watching the parent process" in text
    assert daemon.proc.poll() is None, tail(daemon.log)
    daemon.proc.send_signal(signal.SIGTERM)  # the usual stop still works
    assert daemon.proc.wait(60) == 128 + signal.SIGTERM, tail(daemon.log)
    assert GONE not in daemon.text()
