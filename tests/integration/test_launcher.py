"""The KCL 1 launcher, compiled for real against the pinned jars."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from _helpers import SHARD_END, read_jsonl, running, shards, split_shard, wait_active, wait_for

from kclpy_local import _aws
from kclpy_local._emulators.kinesis_mock import KinesisMock
from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._jvm.bootstrap import Installation, installation
from kclpy_local._jvm.daemon import READY_MARKER, Daemon
from kclpy_local._jvm.jars import load_lock

pytestmark = pytest.mark.integration

MAIN = "dev.kclpylocal.kcl1.KclLocalLauncher"
PropsFactory = Callable[..., Path]
ROOT = Path(__file__).resolve().parents[2]
LOCAL_PROFILE = ROOT / "properties" / "local.properties"
EAGER = "kclpy-local: eager initial lease sync"
# What KCL 1.15's Worker logs while it waits for an empty lease table, and when it syncs itself.
WORKER_WAIT = "Lease table is still empty"
WORKER_SYNC = "worker is beginning initial lease sync"


def run_launcher(
    java: str, inst: Installation, *args: str, jvm: tuple[str, ...] = (), timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    argv = [
        java, "-Dfile.encoding=UTF-8", "-Daws.accessKeyId=it", "-Daws.secretKey=it", *jvm,
        "-cp", inst.classpath(), inst.main_class, *args,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def test_launcher_is_built_for_java_8_with_a_manifest(kcl1: Installation) -> None:
    assert kcl1.main_class == MAIN
    with zipfile.ZipFile(kcl1.launcher_jar) as jar:
        manifest = jar.read("META-INF/MANIFEST.MF").decode()
        main_class = jar.read("dev/kclpylocal/kcl1/KclLocalLauncher.class")
    assert f"Main-Class: {MAIN}" in manifest
    assert main_class[:4] == b"\xca\xfe\xba\xbe"
    assert int.from_bytes(main_class[6:8], "big") == 52  # class file version of Java 8


def test_installation_is_verified_and_matches_the_lockfile(kcl1: Installation, kcl_cache: Path) -> None:
    assert installation(1, kcl_cache, verify="full") == kcl1
    assert [p.name for p in kcl1.jars] == [a.filename for a in load_lock(1).artifacts]


def test_self_check(java_bin: str, kcl1: Installation) -> None:
    proc = run_launcher(java_bin, kcl1, "--self-check")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "kclpy-local: self-check OK (charset UTF-8)" in proc.stdout
    for service in ("Kinesis", "DynamoDB", "CloudWatch"):
        assert f"kclpy-local: {service} endpoint http://127.0.0.1:9 (signing region us-east-1)" in proc.stderr


def test_launcher_links_only_against_the_pinned_jars(kcl1: Installation) -> None:
    jdeps = shutil.which("jdeps")
    if jdeps is None:
        pytest.skip("jdeps is not on PATH (it ships with full JDKs)")
    cp = ":".join(str(p) for p in kcl1.jars)
    proc = subprocess.run(
        [jdeps, "--multi-release", "base", "--missing-deps", "-cp", cp, str(kcl1.launcher_jar)],
        capture_output=True, text=True, check=False, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_every_class_loaded_comes_from_the_lockfile_or_the_jdk(
    java_bin: str, kcl1: Installation, unreachable_properties: PropsFactory
) -> None:
    """A failed start with -verbose:class: config, clients, Worker, HTTP retries, exit 3."""
    props = unreachable_properties()
    proc = run_launcher(java_bin, kcl1, str(props), jvm=("-verbose:class",))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 3, output[-3000:]  # the stock daemon exits 0 here
    assert "kclpy-local: the worker never reached STARTED" in proc.stderr
    assert "kclpy-local: worker STARTED" not in proc.stderr
    assert "kclpy-local: CBOR disabled" in proc.stderr
    log_lines = [ln for ln in output.splitlines() if "[class,load]" not in ln]
    assert not [ln for ln in log_lines if "NoClassDefFoundError" in ln or "ClassNotFoundException" in ln]
    allowed = {str(p.resolve()) for p in (*kcl1.jars, kcl1.launcher_jar)}
    loaded_from: dict[str, int] = {}
    strangers: list[str] = []
    for match in re.finditer(r"\[class,load\] (\S+) source: (.+)", output):
        name, source = match.group(1), match.group(2).strip()
        if source.startswith("jrt:/") or source == "shared objects file" or not (
            source.startswith("file:") or source.startswith("jar:")
        ):
            continue  # the JDK itself, or classes generated at run time
        path = unquote(urlsplit(source.removeprefix("jar:").split("!/")[0]).path)
        if str(Path(path).resolve()) in allowed:
            loaded_from[Path(path).name] = loaded_from.get(Path(path).name, 0) + 1
        else:
            strangers.append(f"{name} from {source}")
    assert strangers == []
    for needed in (
        kcl1.launcher_jar.name,
        "amazon-kinesis-client-1.15.3.jar",
        "aws-java-sdk-core-1.12.681.jar",
        "aws-java-sdk-cloudwatch-1.12.681.jar",
        "httpclient-4.5.13.jar",
        "jackson-databind-2.12.7.1.jar",
    ):
        assert loaded_from.get(needed, 0) > 0, (needed, sorted(loaded_from))


def test_non_utf8_jvm_is_refused(
    java_bin: str, kcl1: Installation, unreachable_properties: PropsFactory
) -> None:
    props = unreachable_properties()
    argv = [java_bin, "-Dfile.encoding=ISO-8859-1", "-cp", kcl1.classpath(), kcl1.main_class, str(props)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if "UTF-8" in proc.stdout and proc.returncode == 0:
        pytest.skip("this JVM ignores -Dfile.encoding")
    assert proc.returncode == 2
    assert "run java with -Dfile.encoding=UTF-8" in proc.stderr


def test_usage_errors_exit_1(java_bin: str, kcl1: Installation, tmp_path: Path) -> None:
    proc = run_launcher(java_bin, kcl1)
    assert proc.returncode == 1
    assert "expected exactly one argument" in proc.stderr
    proc = run_launcher(java_bin, kcl1, str(tmp_path / "missing.properties"))
    assert proc.returncode == 1


def test_bad_cbor_value_is_a_usage_error(
    java_bin: str, kcl1: Installation, unreachable_properties: PropsFactory
) -> None:
    props = unreachable_properties(isCBORProtocolDisabled="yes")
    proc = run_launcher(java_bin, kcl1, str(props))
    assert proc.returncode == 1
    assert "isCBORProtocolDisabled must be true or false, not 'yes'" in proc.stderr


def test_bad_initial_lease_sync_value_is_a_usage_error(
    java_bin: str, kcl1: Installation, unreachable_properties: PropsFactory
) -> None:
    props = unreachable_properties(initialLeaseSync="sometimes")
    proc = run_launcher(java_bin, kcl1, str(props))
    assert proc.returncode == 1
    assert "initialLeaseSync must be one of worker, eager, not 'sometimes'" in proc.stderr


def test_bad_read_pause_value_is_a_usage_error(
    java_bin: str, kcl1: Installation, unreachable_properties: PropsFactory
) -> None:
    props = unreachable_properties(readPause="sometimes")
    proc = run_launcher(java_bin, kcl1, str(props))
    assert proc.returncode == 1
    assert "readPause must be one of always, empty, not 'sometimes'" in proc.stderr


def test_missing_credentials_are_one_line_and_exit_1(
    java_bin: str, kcl1: Installation, unreachable_properties: PropsFactory
) -> None:
    props = unreachable_properties(AWSCredentialsProvider="EnvironmentVariableCredentialsProvider")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "JAVA_TOOL_OPTIONS"}
    argv = [java_bin, "-Dfile.encoding=UTF-8", "-cp", kcl1.classpath(), kcl1.main_class, str(props)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, env=env)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Exception in thread" not in proc.stderr
    assert not [line for line in proc.stderr.splitlines() if line.startswith("\tat ")], proc.stderr[-3000:]
    problem = [line for line in proc.stderr.splitlines() if line.startswith("kclpy-local: cannot start:")]
    assert len(problem) == 1, proc.stderr[-3000:]
    assert "no AWS credentials: AWSCredentialsProvider = EnvironmentVariableCredentialsProvider" in problem[0]


def _start_local_profile(
    kcl1: Installation, endpoint: str, app: str, stream: str, tmp_path: Path, lines: list[str],
    *, log: Callable[[str], None] | None = None,
) -> Daemon:
    env = {"AWS_ACCESS_KEY_ID": "it", "AWS_SECRET_ACCESS_KEY": "it", "KCLPY_LOCAL_ENDPOINT": endpoint,
           "KCLPY_LOCAL_APP": app, "KCLPY_LOCAL_STREAM": stream,
           "KCLPY_LOCAL_LEDGER": str(tmp_path / "ledger.jsonl")}
    return Daemon(LOCAL_PROFILE, installation=kcl1, env=env, cwd=ROOT, log=log or lines.append,
                  ready_timeout=120, overrides={"executableName": f"{sys.executable} processors/recorder.py"})


def test_local_profile_creates_every_lease_before_the_worker_starts(
    kcl1: Installation, fresh_emulator: EmbeddedEmulator, tmp_path: Path
) -> None:
    """initialLeaseSync = eager: the leases exist before the worker's own initial sync could run."""
    endpoint = fresh_emulator.endpoint_url
    kinesis = _aws.client("kinesis", endpoint)
    _aws.ensure_stream(kinesis, "it-eager", 3)
    shard_ids = sorted(s["ShardId"] for s in kinesis.list_shards(StreamName="it-eager")["Shards"])
    lines: list[str] = []
    with _start_local_profile(kcl1, endpoint, "it-eager-app", "it-eager", tmp_path, lines):
        leases = _aws.read_leases(_aws.client("dynamodb", endpoint), "it-eager-app")
    eager = [i for i, line in enumerate(lines) if line.startswith(EAGER)]
    assert [lines[i] for i in eager] == [
        f"{EAGER}: created the lease table it-eager-app",
        lines[eager[1]],
    ], lines
    assert lines[eager[1]].startswith(f"{EAGER}: 3 lease(s) in it-eager-app for stream it-eager in "), lines
    # Before the worker initializes: its shouldInitiateLeaseSync() finds the table filled.
    assert eager[1] < lines.index("kclpy-local: worker INITIALIZING")
    assert eager[1] < next(i for i, line in enumerate(lines) if line.startswith(READY_MARKER))
    assert not [line for line in lines if WORKER_WAIT in line or WORKER_SYNC in line]
    assert [lease.lease_key for lease in leases] == shard_ids
    assert all(lease.parent_shard_ids == () for lease in leases)

    # A second start of the same application finds the leases and leaves them to the worker.
    again: list[str] = []
    with _start_local_profile(kcl1, endpoint, "it-eager-app", "it-eager", tmp_path, again):
        pass
    assert [line for line in again if line.startswith(EAGER)] == [
        f"{EAGER} not needed: the lease table it-eager-app already has leases"
    ], again
    assert not [line for line in again if WORKER_WAIT in line or WORKER_SYNC in line]


PAUSE_LINE = "kclpy-local: prefetch reads pause 3000 ms after an empty GetRecords only (readPause = empty)"


@pytest.mark.parametrize("pause", ["empty", "always"])
def test_read_pause_empty_reads_a_backlog_without_the_pause(
    kcl1: Installation, fresh_emulator: EmbeddedEmulator, tmp_path: Path, pause: str
) -> None:
    """A backlog of 5 batches on one shard with a 3 s prefetch pause: with readPause =
    empty the batches follow each other without it; with always (the KCL's own) the
    cache waits the pause before each GetRecords."""
    endpoint = fresh_emulator.endpoint_url
    stream = f"it-pause-{pause}"
    kinesis = _aws.client("kinesis", endpoint)
    _aws.ensure_stream(kinesis, stream, 1)
    _aws.put_records(kinesis, stream, [(f"r{i}".encode(), f"k{i}") for i in range(500)])
    lines: list[str] = []
    daemon = _start_local_profile(kcl1, endpoint, f"{stream}-app", stream, tmp_path, lines)
    daemon.overrides.update({"maxRecords": "100", "idleMillisBetweenCalls": "3000", "readPause": pause})
    ledger = tmp_path / "ledger.jsonl"
    with daemon:
        wait_for(lambda: len(read_jsonl(ledger)) >= 500, 120, "500 records in the ledger")
    assert (PAUSE_LINE in lines) == (pause == "empty"), lines
    # The recorder stamps each batch's records with the time the batch began.
    starts = sorted({entry["processed_at"] for entry in read_jsonl(ledger)})
    assert len(starts) == 5, starts
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    if pause == "empty":
        assert max(gaps) < 1.5, gaps
    else:
        # The first batch was fetched while the processor started, so it waited less.
        assert min(gaps) >= 2.5 and min(gaps[1:]) >= 2.9, gaps


EARLY_LINE = "kclpy-local: record processors started early: {} (processorStart = early)"
LEFTOVER_LINE = "kclpy-local: stopped {} record processor(s) started early that no shard took"
# The recorder, noting its process id and the time it started in STARTS_LOG.
STAMPED_RECORDER = """\
import json
import os
import sys
import time

with open(os.environ["STARTS_LOG"], "a", encoding="utf-8") as starts:
    starts.write(json.dumps({"pid": os.getpid(), "t": time.time()}) + "\\n")

sys.path.insert(0, "processors")
from recorder import RecorderProcessor  # noqa: E402

from kclpy_local import run  # noqa: E402

run(RecorderProcessor())
"""


def _stamped_daemon(
    kcl1: Installation, endpoint: str, stream: str, tmp_path: Path, lines: list[tuple[float, str]], *, start: str
) -> Daemon:
    script = tmp_path / "stamped_recorder.py"
    script.write_text(STAMPED_RECORDER, encoding="utf-8")
    daemon = _start_local_profile(
        kcl1, endpoint, f"{stream}-app", stream, tmp_path, [], log=lambda line: lines.append((time.time(), line))
    )
    daemon.env.update({"STARTS_LOG": str(tmp_path / "starts.jsonl"),
                       "KCLPY_LOCAL_CHECKPOINTS": str(tmp_path / "checkpoints.jsonl")})
    daemon.overrides.update({"executableName": f"{sys.executable} {script}", "processorStart": start})
    return daemon


@pytest.mark.parametrize("start", ["early", "initialize"])
def test_processor_start_early_starts_the_processors_before_the_worker(
    kcl1: Installation, fresh_emulator: EmbeddedEmulator, tmp_path: Path, start: str
) -> None:
    """processorStart = early: one processor per shard is started before the worker
    reaches STARTED, and the shards' initialize messages reach those processes; with
    initialize (the KCL's own) each starts after STARTED, when its shard initializes."""
    endpoint = fresh_emulator.endpoint_url
    stream = f"it-start-{start}"
    kinesis = _aws.client("kinesis", endpoint)
    _aws.ensure_stream(kinesis, stream, 2)
    _aws.put_records(kinesis, stream, [(f"r{i}".encode(), f"k{i}") for i in range(200)])
    lines: list[tuple[float, str]] = []
    with _stamped_daemon(kcl1, endpoint, stream, tmp_path, lines, start=start):
        wait_for(lambda: len(read_jsonl(tmp_path / "ledger.jsonl")) >= 200, 120, "200 records in the ledger")
    ready = next(at for at, line in lines if line.startswith(READY_MARKER))
    started = {entry["pid"]: entry["t"] for entry in read_jsonl(tmp_path / "starts.jsonl")}
    initialized = {e["shard"]: e["pid"] for e in read_jsonl(tmp_path / "checkpoints.jsonl") if e["event"] == "initialize"}
    assert len(initialized) == 2, initialized
    said = [line for _, line in lines]
    if start == "early":
        assert EARLY_LINE.format(2) in said, said
        assert all(started[pid] < ready for pid in initialized.values()), (started, initialized, ready)
        assert len(started) == 2, started
    else:
        assert not [line for line in said if "started early" in line], said
        assert all(started[pid] > ready for pid in initialized.values()), (started, initialized, ready)


def test_processors_started_early_that_no_shard_takes_are_stopped(
    kcl1: Installation, fresh_emulator: EmbeddedEmulator, tmp_path: Path
) -> None:
    """A closed parent (moto never ends a shard) and its two children: three processors
    start early, the parent's consumer takes one, the children's wait on their parent and
    never initialize: the two left are stopped 10 s after the worker started."""
    endpoint = fresh_emulator.endpoint_url
    stream = "it-start-leftovers"
    kinesis = _aws.client("kinesis", endpoint)
    _aws.ensure_stream(kinesis, stream, 1)
    wait_active(kinesis, stream)
    (parent,) = shards(kinesis, stream)
    split_shard(kinesis, stream, parent)
    lines: list[tuple[float, str]] = []
    with _stamped_daemon(kcl1, endpoint, stream, tmp_path, lines, start="early"):
        wait_for(lambda: LEFTOVER_LINE.format(2) in [line for _, line in lines], 60, "the leftovers stopped")
        said = [line for _, line in lines]
        assert EARLY_LINE.format(3) in said, said
        started = {entry["pid"] for entry in read_jsonl(tmp_path / "starts.jsonl")}
        initialized = {e["pid"] for e in read_jsonl(tmp_path / "checkpoints.jsonl") if e["event"] == "initialize"}
        assert len(started) == 3 and len(initialized) == 1 and initialized < started, (started, initialized)
        wait_for(lambda: not any(running(pid) for pid in started - initialized), 10, "the leftovers gone")
        assert running(next(iter(initialized)))


SLOW_RECORDER = """\
import sys
import time

sys.path.insert(0, "processors")
from recorder import RecorderProcessor  # noqa: E402

from kclpy_local import run  # noqa: E402


class SlowRecorder(RecorderProcessor):
    def process_records(self, batch, checkpointer):
        time.sleep(0.6)
        super().process_records(batch, checkpointer)


run(SlowRecorder())
"""


def test_read_pause_empty_ends_a_closed_shard_after_its_last_batch(
    kcl1: Installation, fresh_kinesis_mock: KinesisMock, fresh_emulator: EmbeddedEmulator, tmp_path: Path
) -> None:
    """A closed shard with a backlog of 6 batches and a processor slower than the reads
    (Kinesis on kinesis-mock, which ends a closed shard; moto never does): KCL 1.15's
    prefetch sees the shard's end when it reads the last batch, and its next task ends
    the shard with batches still in the cache. With readPause = empty the shard ends
    only after the processor was given every batch: all 600 records are in the ledger
    before the SHARD_END checkpoint."""
    stream = "it-closed-backlog"
    kinesis = _aws.client("kinesis", fresh_kinesis_mock.endpoint_url)
    _aws.ensure_stream(kinesis, stream, 1)
    wait_active(kinesis, stream)
    (parent,) = shards(kinesis, stream)
    _aws.put_records(kinesis, stream, [(f"r{i}".encode(), f"k{i}") for i in range(600)])
    split_shard(kinesis, stream, parent)
    script = tmp_path / "slow_recorder.py"
    script.write_text(SLOW_RECORDER, encoding="utf-8")
    lines: list[str] = []
    daemon = _start_local_profile(kcl1, fresh_emulator.endpoint_url, f"{stream}-app", stream, tmp_path, lines)
    daemon.overrides.update({
        "kinesisEndpoint": fresh_kinesis_mock.endpoint_url, "maxRecords": "100", "readPause": "empty",
        "executableName": f"{sys.executable} {script}",
    })
    dynamodb = _aws.client("dynamodb", fresh_emulator.endpoint_url)
    ledger = tmp_path / "ledger.jsonl"

    def parent_ended() -> bool:
        leases = {lease.lease_key: lease for lease in _aws.read_leases(dynamodb, f"{stream}-app")}
        return parent in leases and leases[parent].checkpoint == SHARD_END

    with daemon:
        wait_for(parent_ended, 90, f"{parent} checkpointed at SHARD_END")
    assert PAUSE_LINE.replace("3000", "250") in lines, lines
    entries = [e for e in read_jsonl(ledger) if e["shard"] == parent]
    assert len({e["sequence_number"] for e in entries}) == 600, len(entries)
