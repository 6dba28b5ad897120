"""The Daemon supervisor, with a scripted stand-in for the JVM (no Java needed).

The stand-in answers ``-version`` like a JDK and otherwise behaves as the
``FAKE_JVM_MODE`` environment variable says; it records its argv and the
signals it receives in files next to it.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from kclpy_local._cli import main
from kclpy_local._exceptions import DaemonStartError, JavaNotFoundError, PropertiesError
from kclpy_local._jvm import daemon as _daemon
from kclpy_local._jvm.bootstrap import Installation
from kclpy_local._jvm.daemon import READY_MARKER, Daemon, daemon_argv

FAKE_JVM = textwrap.dedent(
    """\
    #!{python}
    import json, os, signal, subprocess, sys, time
    if sys.argv[1:] == ["-version"]:
        print('openjdk version "17.0.99" 2025-01-01', file=sys.stderr)
        sys.exit(0)
    here = os.path.dirname(os.path.abspath(__file__))
    props = sys.argv[-1]
    with open(os.path.join(here, "argv.json"), "w") as fh:
        json.dump({{"argv": sys.argv, "props": open(props).read()}}, fh)
    mode = os.environ.get("FAKE_JVM_MODE", "ready")

    def on_term(signum, frame):
        with open(os.path.join(here, "signals.txt"), "a") as fh:
            fh.write(f"{{signum}}\\n")
        if mode != "stubborn":
            print("kclpy-local: stop requested; graceful shutdown", flush=True)
            sys.exit(143)

    signal.signal(signal.SIGTERM, on_term)
    print("INFO: starting", flush=True)
    if mode == "exit3":
        for i in range(80):
            print(f"ERROR line {{i}}", flush=True)
        print("kclpy-local: the worker never reached STARTED", flush=True)
        sys.exit(3)
    if mode == "stubborn":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open(os.path.join(here, "child.pid"), "w") as fh:
            fh.write(str(child.pid))
    if mode != "silent":
        print("kclpy-local: worker STARTED (application t, stream s, worker w)", flush=True)
        print("caf\\u00e9 \\u2713", flush=True)
    while True:
        time.sleep(0.05)
    """
)

PROPERTIES = textwrap.dedent(
    """\
    applicationName = unit
    streamName = unit
    executableName = {executable}
    AWSCredentialsProvider = DefaultAWSCredentialsProviderChain
    regionName = us-east-1
    kinesisEndpoint = http://127.0.0.1:9
    dynamoDBEndpoint = http://127.0.0.1:9
    cloudWatchEndpoint = http://127.0.0.1:9
    """
)


@pytest.fixture
def jvm(tmp_path: Path) -> Path:
    path = tmp_path / "jdk" / "java"
    path.parent.mkdir()
    path.write_text(FAKE_JVM.format(python=sys.executable), encoding="utf-8")
    path.chmod(0o755)
    return path


@pytest.fixture
def inst(tmp_path: Path) -> Installation:
    return Installation(
        generation=1,
        jars=(tmp_path / "a.jar", tmp_path / "b.jar"),
        launcher_jar=tmp_path / "launcher.jar",
        main_class="dev.example.Main",
    )


@pytest.fixture
def props(tmp_path: Path) -> Path:
    (tmp_path / "proc.py").write_text("print('hi')\n")
    path = tmp_path / "unit.properties"
    path.write_text(PROPERTIES.format(executable=f"{Path(sys.executable).name} proc.py"))
    return path


def _make(props: Path, jvm: Path, inst: Installation, mode: str = "ready", **kwargs: object) -> Daemon:
    kwargs.setdefault("ready_timeout", 20.0)
    kwargs.setdefault("stop_timeout", 5.0)
    return Daemon(
        props,
        java=jvm,
        installation=inst,
        cwd=props.parent,
        env={"FAKE_JVM_MODE": mode, "PATH": os.environ.get("PATH", "") + os.pathsep + str(Path(sys.executable).parent)},
        **kwargs,  # type: ignore[arg-type]
    )


def test_argv_is_a_list_with_utf8_and_pathsep_classpath(inst: Installation) -> None:
    argv = daemon_argv(inst, "x.properties", java="/jdk/bin/java", jvm_args=["-Xmx256m"])
    assert argv == [
        "/jdk/bin/java",
        "-Dfile.encoding=UTF-8",
        "-Xmx256m",
        "-cp",
        os.pathsep.join([str(inst.launcher_jar), *map(str, inst.jars)]),
        "dev.example.Main",
        "x.properties",
    ]


def test_start_waits_for_started_streams_logs_and_stops_gracefully(
    props: Path, jvm: Path, inst: Installation
) -> None:
    lines: list[str] = []
    with _make(props, jvm, inst, log=lines.append) as daemon:
        assert daemon.ready
        assert daemon.pid is not None
        assert daemon.returncode is None
        assert daemon.argv()[:2] == [str(jvm), "-Dfile.encoding=UTF-8"]
        deadline = time.monotonic() + 10
        while "caf\u00e9 \u2713" not in lines and time.monotonic() < deadline:
            time.sleep(0.02)
    assert daemon.returncode == 143
    assert (jvm.parent / "signals.txt").read_text().split() == [str(int(signal.SIGTERM))]
    assert any(line.startswith(READY_MARKER) for line in lines)
    assert "caf\u00e9 \u2713" in lines  # UTF-8 decoded
    assert lines[-1].startswith("kclpy-local: stop requested")
    assert daemon.log_tail()[-1] == lines[-1]


def test_log_can_go_to_a_text_file(props: Path, jvm: Path, inst: Installation) -> None:
    sink = io.StringIO()
    with _make(props, jvm, inst, log=sink):
        pass
    assert READY_MARKER in sink.getvalue()


def test_exit_before_ready_raises_with_the_last_log_lines(
    props: Path, jvm: Path, inst: Installation
) -> None:
    daemon = _make(props, jvm, inst, mode="exit3")
    with pytest.raises(DaemonStartError, match="exited with code 3 before its worker started") as info:
        daemon.start()
    tail = info.value.log_tail
    assert len(tail) == 50
    assert tail[-1] == "kclpy-local: the worker never reached STARTED"
    assert "ERROR line 79" in str(info.value)
    assert daemon.returncode == 3


def test_ready_timeout_raises_and_stops_the_jvm(props: Path, jvm: Path, inst: Installation) -> None:
    daemon = _make(props, jvm, inst, mode="silent", ready_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(DaemonStartError, match=r"within 0\.5s") as info:
        daemon.start()
    assert time.monotonic() - started < 10
    assert "INFO: starting" in info.value.log_tail
    assert daemon.returncode == 143


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_jvm_ignoring_sigterm_is_killed_with_its_process_group(
    props: Path, jvm: Path, inst: Installation
) -> None:
    daemon = _make(props, jvm, inst, mode="stubborn", stop_timeout=0.5)
    with daemon:
        child = int((jvm.parent / "child.pid").read_text())
        assert _alive(child)
    assert daemon.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_missing_properties_file(jvm: Path, inst: Installation, tmp_path: Path) -> None:
    daemon = Daemon(tmp_path / "nope.properties", java=jvm, installation=inst)
    with pytest.raises(PropertiesError, match="not found"):
        daemon.start()
    assert daemon.pid is None


@pytest.mark.parametrize(
    ("executable", "message"),
    [
        (None, "no executableName"),
        ("no-such-program-kclpy proc.py", "is not on PATH"),
        ("{python} missing.py", r"missing\.py does not exist"),
        ("./not-there.sh", "does not exist"),
    ],
)
def test_executable_problems_are_reported_before_start(
    props: Path, jvm: Path, inst: Installation, executable: str | None, message: str
) -> None:
    text = props.read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("executableName"))
    if executable is None:
        text = text.replace(line + "\n", "")
    else:
        text = text.replace(line, "executableName = " + executable.format(python=sys.executable))
    props.write_text(text)
    daemon = _make(props, jvm, inst, validate=False)
    with pytest.raises(PropertiesError, match=message):
        daemon.start()
    assert daemon.pid is None


def test_missing_java(props: Path, inst: Installation, tmp_path: Path) -> None:
    daemon = Daemon(props, java=tmp_path / "no" / "java", installation=inst, cwd=props.parent)
    with pytest.raises(JavaNotFoundError) as info:
        daemon.start()
    assert info.value.hint and "JDK" in info.value.hint


def test_validation_refuses_a_local_profile_that_would_reach_aws(
    props: Path, jvm: Path, inst: Installation
) -> None:
    local = props.parent / "local.properties"
    local.write_text(
        "\n".join(ln for ln in props.read_text().splitlines() if not ln.startswith("cloudWatch")) + "\n"
    )
    with pytest.raises(PropertiesError, match="refused before starting the JVM"):
        _make(local, jvm, inst).start()


def test_variables_are_substituted_into_a_temporary_copy(
    props: Path, jvm: Path, inst: Installation
) -> None:
    props.write_text(props.read_text().replace("streamName = unit", "streamName = ${UNIT_STREAM}"))
    daemon = _make(props, jvm, inst)
    daemon.env["UNIT_STREAM"] = "from-env"
    with daemon:
        recorded = json.loads((jvm.parent / "argv.json").read_text())
        copy = Path(recorded["argv"][-1])
        assert copy != props and copy.exists()
        assert "streamName=from-env" in recorded["props"].replace(" ", "")
    assert not copy.exists()


def test_cli_print_command(
    props: Path, jvm: Path, inst: Installation, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(_daemon, "installation", lambda generation=1, cache_dir=None: inst)
    monkeypatch.delenv("KCLPY_LOCAL_JVM_OPTIONS", raising=False)
    code = main(["daemon", str(props), "--java", str(jvm), "--print-command"])
    out = capsys.readouterr().out.strip()
    assert code == 0
    assert out.startswith(f"{jvm} -Dfile.encoding=UTF-8 -XX:TieredStopAtLevel=1 -cp ")
    assert out.endswith(f"dev.example.Main {props}")
    # The variable replaces the default options; empty, it leaves the JVM's own.
    monkeypatch.setenv("KCLPY_LOCAL_JVM_OPTIONS", "")
    assert main(["daemon", str(props), "--java", str(jvm), "--print-command"]) == 0
    assert capsys.readouterr().out.startswith(f"{jvm} -Dfile.encoding=UTF-8 -cp ")


def test_cli_missing_properties_exit_code(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["daemon", str(tmp_path / "nope.properties")]) == 2
    assert "not found" in capsys.readouterr().err


def test_cli_exit_code_is_the_daemons(
    props: Path, jvm: Path, inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_daemon, "installation", lambda generation=1, cache_dir=None: inst)
    monkeypatch.chdir(props.parent)
    monkeypatch.setenv("FAKE_JVM_MODE", "exit3")
    assert main(["daemon", str(props), "--java", str(jvm)]) == 3


def test_cli_forwards_sigterm_as_a_graceful_stop(
    props: Path, jvm: Path, inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_daemon, "installation", lambda generation=1, cache_dir=None: inst)
    monkeypatch.chdir(props.parent)
    monkeypatch.setenv("FAKE_JVM_MODE", "ready")
    before = signal.getsignal(signal.SIGTERM)

    def later() -> None:
        deadline = time.monotonic() + 20
        while not (jvm.parent / "argv.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=later, daemon=True).start()
    assert main(["daemon", str(props), "--java", str(jvm)]) == 143
    assert (jvm.parent / "signals.txt").read_text().split() == [str(int(signal.SIGTERM))]
    assert signal.getsignal(signal.SIGTERM) is before


def test_terminate_then_stop_sends_one_sigterm(props: Path, jvm: Path, inst: Installation) -> None:
    # The launchers take a second SIGTERM as "exit now, skip the graceful shutdown".
    daemon = _make(props, jvm, inst, mode="stubborn", stop_timeout=0.5)
    with daemon:
        daemon.terminate()
        daemon.terminate()
    assert daemon.returncode == -signal.SIGKILL
    assert (jvm.parent / "signals.txt").read_text().split() == [str(int(signal.SIGTERM))]


def test_the_stream_is_checked_before_the_start_and_claimed_once_started(
    props: Path, jvm: Path, inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kclpy_local._jvm import claim

    events: list[tuple[str, str, bool]] = []
    claimed = threading.Event()

    def check(values: dict[str, str], generation: int) -> None:
        events.append(("check", values["streamName"], (jvm.parent / "argv.json").exists()))

    def claim_stream(values: dict[str, str], generation: int) -> bool:
        events.append(("claim", values["streamName"], True))
        claimed.set()
        return True

    monkeypatch.setattr(claim, "check_stream", check)
    monkeypatch.setattr(claim, "claim_stream", claim_stream)
    with _make(props, jvm, inst, guard=False):
        assert claimed.wait(10)
    # Checked before the JVM ran (it had written no argv yet), claimed after STARTED, once.
    assert events == [("check", "unit", False), ("claim", "unit", True)]


def test_a_stream_mismatch_stops_the_start_before_the_jvm(
    props: Path, jvm: Path, inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kclpy_local._exceptions import StreamMismatchError
    from kclpy_local._jvm import claim

    def check(values: dict[str, str], generation: int) -> None:
        raise StreamMismatchError("unit", "other", "unit")

    monkeypatch.setattr(claim, "check_stream", check)
    daemon = _make(props, jvm, inst, guard=False)
    with pytest.raises(StreamMismatchError):
        daemon.start()
    assert daemon.pid is None and not (jvm.parent / "argv.json").exists()
