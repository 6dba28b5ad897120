"""kinesis-mock, the real engine: loopback only, resharding through boto3, start and
stop, ``up``/``down --kinesis kinesis-mock``, ``run --kinesis kinesis-mock`` with
the real daemon, and the daemon over CBOR (which kinesis-mock's records break).

Skipped, with the reason, without Node.js (see the ``kinesis_mock`` fixture).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kclpy_local import _aws
from kclpy_local._cli import main
from kclpy_local._emulators.kinesis_mock import (
    CBOR_RECORDS_WORK,
    KinesisMock,
    KinesisMockInstallation,
    stop_group,
)
from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._emulators.registry import PID_FILE, read_record
from kclpy_local._exceptions import PortInUseError
from kclpy_local._jvm.bootstrap import Installation
from kclpy_local._jvm.daemon import Daemon
from kclpy_local._process import pid_alive

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RECORDER = ROOT / "processors" / "recorder.py"
LOCAL_PROFILE = ROOT / "properties" / "local.properties"


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def ledger(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# -- loopback only ------------------------------------------------------------------------


def test_it_listens_on_loopback_only(kinesis_mock: KinesisMock) -> None:
    pid = kinesis_mock.pid
    assert pid is not None
    expected = {("127.0.0.1", kinesis_mock.port), ("127.0.0.1", kinesis_mock.tls_port)}
    # The process's sockets, from /proc.
    found = kinesis_mock.listeners()
    if found is None:
        pytest.skip("needs /proc")
    assert {(s.address, s.port) for s in found if s.protocol.startswith("tcp")} == expected
    assert all(s.loopback for s in found), found  # no 0.0.0.0 or :: listener, TCP or UDP
    # The same, as the system's own tool reports it.
    ss = shutil.which("ss")
    if ss is not None:
        out = subprocess.run([ss, "-H", "-l", "-t", "-u", "-n", "-p"], capture_output=True,
                             text=True, check=True, timeout=30).stdout
        mine = [line.split() for line in out.splitlines() if f"pid={pid}," in line]
        # Netid State Recv-Q Send-Q Local-Address:Port Peer-Address:Port Process
        local = {fields[4] for fields in mine}
        assert local == {f"{host}:{port}" for host, port in expected}, out
    # The second port is the TLS one it always opens (self-signed certificate).
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", kinesis_mock.tls_port), timeout=10) as raw,
        context.wrap_socket(raw) as tls,
    ):
        assert tls.version() is not None
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"--require" in cmdline and any(part.endswith(b"loopback.js") for part in cmdline)


# -- resharding ---------------------------------------------------------------------------


def _shards(kinesis: Any, stream: str) -> dict[str, dict[str, Any]]:
    return {s["ShardId"]: s for s in kinesis.list_shards(StreamName=stream)["Shards"]}


def _wait_active(kinesis: Any, stream: str) -> None:
    def active() -> bool:
        summary = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
        return bool(summary["StreamStatus"] == "ACTIVE")

    wait_for(active, 30, f"stream {stream} to be ACTIVE")


def _key_in(shard: dict[str, Any], tag: str) -> str:
    """A partition key whose MD5 hash falls in ``shard``'s hash key range."""
    low = int(shard["HashKeyRange"]["StartingHashKey"])
    high = int(shard["HashKeyRange"]["EndingHashKey"])
    for i in range(10_000):
        key = f"{tag}-{i}"
        if low <= int(hashlib.md5(key.encode()).hexdigest(), 16) <= high:
            return key
    raise AssertionError(f"no key found for {shard['ShardId']}")


def _drain(kinesis: Any, stream: str, shard_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every record of a closed shard, and the last GetRecords answer (null iterator)."""
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard_id,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records: list[dict[str, Any]] = []
    for _ in range(50):
        answer = kinesis.get_records(ShardIterator=iterator, Limit=1000)
        records.extend(answer["Records"])
        iterator = answer.get("NextShardIterator")
        if iterator is None:
            return records, answer
    raise AssertionError(f"closed shard {shard_id} never returned a null NextShardIterator")


def _put(kinesis: Any, stream: str, keys: list[str], tag: str) -> list[_aws.PutResult]:
    return _aws.put_records(kinesis, stream, [(f"{tag}-{i}".encode(), k) for i, k in enumerate(keys)])


def test_split_then_merge_through_boto3(fresh_kinesis_mock: KinesisMock) -> None:
    kinesis = _aws.client("kinesis", fresh_kinesis_mock.endpoint_url)
    stream = "reshard"
    _aws.ensure_stream(kinesis, stream, 1)
    [(parent_id, parent)] = _shards(kinesis, stream).items()
    before = _put(kinesis, stream, [f"before-{i}" for i in range(30)], "before")
    assert {r.shard_id for r in before} == {parent_id}

    # Split the only shard in the middle of its hash key range.
    low = int(parent["HashKeyRange"]["StartingHashKey"])
    high = int(parent["HashKeyRange"]["EndingHashKey"])
    kinesis.split_shard(StreamName=stream, ShardToSplit=parent_id,
                        NewStartingHashKey=str((low + high) // 2 + 1))
    _wait_active(kinesis, stream)
    shards = _shards(kinesis, stream)
    children = {sid: s for sid, s in shards.items() if s.get("ParentShardId") == parent_id}
    assert len(shards) == 3 and len(children) == 2, shards
    assert "EndingSequenceNumber" in shards[parent_id]["SequenceNumberRange"]  # closed

    # Records put afterwards land in the children, each in the child of its hash key.
    keys = {sid: [_key_in(child, f"{sid}-{i}") for i in range(10)] for sid, child in children.items()}
    after = {sid: _put(kinesis, stream, ks, f"after-{sid}") for sid, ks in keys.items()}
    for sid, results in after.items():
        assert {r.shard_id for r in results} == {sid}
    # Sequence numbers are 56-digit decimal strings: compare them as integers.
    last_before = max(int(r.sequence_number) for r in before)
    assert all(int(r.sequence_number) > last_before for rs in after.values() for r in rs)
    assert all(len(r.sequence_number) > 20 for r in before)

    # The drained parent: its records in order, then a null iterator and its children.
    records, final = _drain(kinesis, stream, parent_id)
    assert [int(r["SequenceNumber"]) for r in records] == [int(r.sequence_number) for r in before]
    assert final.get("NextShardIterator") is None
    assert {c["ShardId"] for c in final["ChildShards"]} == set(children)
    for child in final["ChildShards"]:
        assert child["ParentShards"] == [parent_id]
        assert child["HashKeyRange"] == children[child["ShardId"]]["HashKeyRange"]

    # Merge the two children back into one shard.
    first, second = sorted(children, key=lambda s: int(children[s]["HashKeyRange"]["StartingHashKey"]))
    kinesis.merge_shards(StreamName=stream, ShardToMerge=first, AdjacentShardToMerge=second)
    _wait_active(kinesis, stream)
    merged = [s for s in _shards(kinesis, stream).values() if s.get("ParentShardId") == first]
    assert len(merged) == 1 and merged[0]["AdjacentParentShardId"] == second
    merged_id = merged[0]["ShardId"]
    later = _put(kinesis, stream, [f"later-{i}" for i in range(20)], "later")
    assert {r.shard_id for r in later} == {merged_id}
    records, final = _drain(kinesis, stream, first)
    assert [int(r["SequenceNumber"]) for r in records] == [int(r.sequence_number) for r in after[first]]
    assert final.get("NextShardIterator") is None
    assert [c["ShardId"] for c in final["ChildShards"]] == [merged_id]
    assert sorted(final["ChildShards"][0]["ParentShards"]) == sorted([first, second])


# -- start and stop -----------------------------------------------------------------------


def test_stop_ends_the_process_group_and_frees_the_ports(
    kinesis_mock_installation: KinesisMockInstallation,
) -> None:
    engine = KinesisMock(installation=kinesis_mock_installation, streams={"pre": 2}).start()
    try:
        pid = engine.pid
        assert pid is not None and os.getpgid(pid) == pid  # a process group of its own
        kinesis = _aws.client("kinesis", engine.endpoint_url)
        assert kinesis.list_streams()["StreamNames"] == ["pre"]  # INITIALIZE_STREAMS
        assert engine.startup_seconds is not None and engine.startup_seconds < 30
        ports = (engine.port, engine.tls_port)
        # An idle keep-alive client (the boto3 one above) does not hold up the stop.
        started = time.monotonic()
        engine.stop()
        assert time.monotonic() - started < 5
        assert not pid_alive(pid)
        assert all(port_closed(p) for p in ports)
        engine.stop()  # twice is fine
        assert not stop_group(pid)
    finally:
        engine.stop()


def test_a_taken_port_fails_at_once(kinesis_mock_installation: KinesisMockInstallation) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        for kwargs in ({"port": port}, {"tls_port": port}):
            started = time.monotonic()
            with pytest.raises(PortInUseError):
                KinesisMock(installation=kinesis_mock_installation, **kwargs).start()
            assert time.monotonic() - started < 2


def test_an_engine_that_dies_reports_its_last_lines(
    kinesis_mock_installation: KinesisMockInstallation,
) -> None:
    engine = KinesisMock(installation=kinesis_mock_installation,
                         env={"KINESIS_MOCK_CERT_PATH": "/nonexistent/server.json"})
    with pytest.raises(Exception, match="exited with code") as caught:
        engine.start()
    assert "/nonexistent/server.json" in str(caught.value)
    assert not engine.running


# -- up / down ----------------------------------------------------------------------------


@pytest.fixture
def up_state(tmp_path: Path, kinesis_mock_installation: KinesisMockInstallation,
             kinesis_mock_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A state directory for ``up``; whatever it left running is stopped afterwards."""
    import moto.server  # noqa: F401 - the test extra installs it
    monkeypatch.setenv("KCLPY_LOCAL_CACHE", str(kinesis_mock_cache))
    state = tmp_path / "state"
    yield state
    record = read_record(state)
    if record is not None:
        if record.kinesis is not None:
            stop_group(record.kinesis.pid)
        main(["down", "--state-dir", str(state)])


def test_up_and_down_with_kinesis_mock(up_state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["up", "--port", "0", "--kinesis", "kinesis-mock", "--state-dir", str(up_state)]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    moto_url, kinesis_url = out.split()
    assert moto_url.startswith("http://127.0.0.1:") and kinesis_url.startswith("http://127.0.0.1:")
    assert moto_url != kinesis_url
    assert "kinesis-mock 0.6.2 started" in err
    data = json.loads((up_state / PID_FILE).read_text())
    assert data["endpoint"] == moto_url
    assert data["kinesis"]["endpoint"] == kinesis_url and data["kinesis"]["engine"] == "kinesis-mock"
    moto_pid, kinesis_pid = data["pid"], data["kinesis"]["pid"]

    # Kinesis on kinesis-mock; DynamoDB on moto.
    _aws.ensure_stream(_aws.client("kinesis", kinesis_url), "up-stream", 1)
    assert _aws.client("kinesis", moto_url).list_streams()["StreamNames"] == []
    assert "TableNames" in _aws.client("dynamodb", moto_url).list_tables()

    # Again: reported, nothing new started; --json for scripts.
    assert main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["endpoint"] == doc["dynamodb_endpoint"] == doc["cloudwatch_endpoint"] == moto_url
    assert doc["kinesis_endpoint"] == kinesis_url and doc["kinesis_engine"] == "kinesis-mock"
    assert (doc["pid"], doc["kinesis_pid"]) == (moto_pid, kinesis_pid)
    # Plain up keeps its one line.
    assert main(["up", "--port", "0", "--state-dir", str(up_state)]) == 0
    out, err = capsys.readouterr()
    assert out == moto_url + "\n"
    assert kinesis_url in err
    assert main(["down", "--state-dir", str(up_state)]) == 0
    out, _ = capsys.readouterr()
    assert "emulator stopped" in out and "kinesis-mock stopped" in out
    assert not pid_alive(moto_pid) and not pid_alive(kinesis_pid)
    assert not (up_state / PID_FILE).exists()
    assert port_closed(int(kinesis_url.rsplit(":", 1)[1]))


def test_up_kinesis_mock_beside_a_plain_moto_is_refused(
    up_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["up", "--port", "0", "--state-dir", str(up_state)]) == 0
    capsys.readouterr()
    code = main(["up", "--port", "0", "--kinesis", "kinesis-mock", "--state-dir", str(up_state)])
    err = capsys.readouterr().err
    assert code == 8
    assert "with Kinesis on moto" in err and "kclpy-local down" in err


def test_down_stops_a_kinesis_mock_left_behind(
    up_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["up", "--port", "0", "--kinesis", "kinesis-mock", "--state-dir", str(up_state)]) == 0
    capsys.readouterr()
    record = read_record(up_state)
    assert record is not None and record.kinesis is not None
    os.kill(record.pid, signal.SIGKILL)  # moto dies; kinesis-mock is left
    wait_for(lambda: not pid_alive(record.pid), 10, "moto to die")
    assert main(["down", "--state-dir", str(up_state)]) == 0
    out = capsys.readouterr().out
    assert "no emulator running" in out and "kinesis-mock stopped" in out
    assert not pid_alive(record.kinesis.pid)


# -- the daemon ----------------------------------------------------------------------------


def test_run_with_kinesis_mock(kcl1: Installation, kcl_cache: Path, kinesis_mock_cache: Path,
                               tmp_path: Path) -> None:
    import moto.server  # noqa: F401 - the test extra installs it
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KCLPY_LOCAL_"))}
    env.update(KCLPY_LOCAL_LEDGER=str(tmp_path / "ledger.jsonl"),
               KCLPY_LOCAL_STATE=str(tmp_path / "state"), KCLPY_LOCAL_CACHE=str(kinesis_mock_cache))
    stderr_path = tmp_path / "run.stderr"
    argv = [sys.executable, "-m", "kclpy_local", "run", str(RECORDER), "--stream", "km-run",
            "--shards", "2", "--kinesis", "kinesis-mock", "--port", "0", "--no-progress",
            "--cache-dir", str(kcl_cache), "--run-dir", str(tmp_path / "run")]
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=stderr, env=env, cwd=tmp_path)
    try:
        def text() -> str:
            return stderr_path.read_text()

        wait_for(lambda: "worker started after" in text() or proc.poll() is not None, 120,
                 "the worker to start")
        assert proc.poll() is None, text()
        kinesis_url = re.search(r"Kinesis on kinesis-mock at (http://127\.0\.0\.1:\d+)", text())
        moto_url = re.search(r"endpoint (http://127\.0\.0\.1:\d+) \(embedded emulator started", text())
        assert kinesis_url and moto_url, text()
        props = (tmp_path / "run" / "effective.properties").read_text()
        assert f"kinesisEndpoint = {kinesis_url.group(1)}".replace(":", "\\:") in props
        assert f"dynamoDBEndpoint = {moto_url.group(1)}".replace(":", "\\:") in props
        assert "isCBORProtocolDisabled = true" in props

        kinesis = _aws.client("kinesis", kinesis_url.group(1))
        assert len(_aws.ensure_stream(kinesis, "km-run").shard_ids) == 2  # created by `run`
        put = _aws.put_records(kinesis, "km-run", [(f"r{i}".encode(), f"pk{i}") for i in range(40)])
        wanted = {(p.shard_id, int(p.sequence_number)) for p in put}
        wait_for(lambda: wanted <= {(e["shard"], int(e["sequence_number"]))
                                    for e in ledger(tmp_path / "ledger.jsonl")},
                 60, "the records in the ledger")
        last: dict[str, int] = {}
        for p in put:
            last[p.shard_id] = max(last.get(p.shard_id, 0), int(p.sequence_number))
        dynamodb = _aws.client("dynamodb", moto_url.group(1))

        def checkpointed() -> bool:
            leases = {lease.lease_key: lease.checkpoint for lease in _aws.read_leases(dynamodb, "recorder")}
            return all((leases.get(s) or "").isdigit() and int(leases[s] or 0) == n for s, n in last.items())

        wait_for(checkpointed, 30, f"checkpoints {last} in moto's lease table")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, text()
        assert "stopped gracefully" in text()
        # Both engines were the run's own: gone now.
        for url in (kinesis_url.group(1), moto_url.group(1)):
            assert port_closed(int(url.rsplit(":", 1)[1])), url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_uses_the_kinesis_mock_up_started(kcl1: Installation, kcl_cache: Path,
                                             kinesis_mock_installation: KinesisMockInstallation,
                                             kinesis_mock_cache: Path, tmp_path: Path) -> None:
    """`up --kinesis kinesis-mock`, then `run --kinesis kinesis-mock`: the run uses up's
    engine (no second one), so `put` and `leases` reach what the run reads and writes;
    another kind of engine is refused; Ctrl-C stops gracefully and says so in words."""
    pytest.importorskip("moto.server")
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KCLPY_LOCAL_"))}
    env.update(KCLPY_LOCAL_LEDGER=str(tmp_path / "ledger.jsonl"), KCLPY_LOCAL_STATE=str(state),
               KCLPY_LOCAL_CACHE=str(kinesis_mock_cache))

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kclpy_local", *argv], env=env, cwd=tmp_path,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
                              check=False)

    up = cli("up", "--port", "0", "--kinesis", "kinesis-mock")
    assert up.returncode == 0, up.stderr
    moto_url, kinesis_url = up.stdout.split()
    record = read_record(state)
    assert record is not None and record.kinesis is not None
    proc: subprocess.Popen[str] | None = None
    stderr_path = tmp_path / "run.stderr"
    try:
        # Another kind than up's engine: refused before anything starts.
        # (No jars in its cache: were it not refused, it would fail at once, not start a JVM.)
        refused = cli("run", str(RECORDER), "--stream", "km-up", "--kinesis", "moto",
                      "--cache-dir", str(tmp_path / "no-jars"))
        assert refused.returncode == 2, refused.stderr
        assert (f"error: --kinesis moto would start a second Kinesis engine, but `kclpy-local up` started "
                f"kinesis-mock for Kinesis at {kinesis_url} (pid {record.kinesis.pid}") in refused.stderr
        assert "drop --kinesis to use the running kinesis-mock" in refused.stderr
        assert "Traceback" not in refused.stderr

        argv = [sys.executable, "-m", "kclpy_local", "run", str(RECORDER), "--stream", "km-up",
                "--kinesis", "kinesis-mock", "--no-progress", "--cache-dir", str(kcl_cache),
                "--run-dir", str(tmp_path / "run")]
        with stderr_path.open("w") as stderr:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=stderr, env=env, cwd=tmp_path, text=True)

        def text() -> str:
            return stderr_path.read_text()

        wait_for(lambda: "worker started after" in text() or proc.poll() is not None, 120,
                 "the worker to start")
        assert proc.poll() is None, text()
        # One line says what the run uses, and why: up's engines, nothing started.
        assert (f"kclpy-local: endpoint {moto_url} (running emulator moto, pid {record.pid}, from the "
                f"state dir {state}; Kinesis is on kinesis-mock at {kinesis_url})") in text()
        assert "started for this run" not in text()
        props = (tmp_path / "run" / "effective.properties").read_text()
        assert f"kinesisEndpoint = {kinesis_url}".replace(":", "\\:") in props
        assert f"dynamoDBEndpoint = {moto_url}".replace(":", "\\:") in props

        # put finds the stream the run created, on the same engine.
        put = cli("put", "--stream", "km-up", "--count", "5", "--json")
        assert put.returncode == 0, put.stderr
        assert (f"kclpy-local: endpoint {kinesis_url} (running emulator kinesis-mock for Kinesis, "
                f"pid {record.kinesis.pid}, from the state dir {state})") in put.stderr
        assert json.loads(put.stdout)["count"] == 5
        wait_for(lambda: len(ledger(tmp_path / "ledger.jsonl")) >= 5, 60, "the records in the ledger")

        def checkpointed() -> bool:
            leases = cli("leases", "recorder", "--json")
            return leases.returncode == 0 and all(
                str(lease["checkpoint"]).isdigit() for lease in json.loads(leases.stdout))

        wait_for(checkpointed, 30, "a checkpoint in up's lease table")
        proc.send_signal(signal.SIGTERM)  # as Ctrl-C (the other run tests send SIGINT)
        assert proc.wait(60) == 0, text()
        assert text().splitlines()[-1] == (
            "kclpy-local: stopped gracefully: 1 lease(s) released for another worker to take "
            "(daemon exit status 143 = SIGTERM, as asked)"), text()
        # up's engines outlive the run.
        assert pid_alive(record.pid) and pid_alive(record.kinesis.pid)
        assert "km-up" in _aws.client("kinesis", kinesis_url).list_streams()["StreamNames"]
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        down = cli("down")
        assert down.returncode == 0, down.stderr
    assert not pid_alive(record.kinesis.pid)


def test_the_daemon_over_cbor_lists_shards_but_cannot_read_records(
    kcl1: Installation, fresh_kinesis_mock: KinesisMock, fresh_emulator: EmbeddedEmulator,
    tmp_path: Path,
) -> None:
    """The launcher's CBOR switch on, against kinesis-mock: every call but GetRecords
    with records works (the leases are created from a CBOR ListShards); records come
    back with Data as base64 text, which the Java SDK's CBOR parser refuses. When a
    kinesis-mock release fixes that, this test fails: set CBOR_RECORDS_WORK."""
    assert not CBOR_RECORDS_WORK
    kinesis = _aws.client("kinesis", fresh_kinesis_mock.endpoint_url)
    _aws.ensure_stream(kinesis, "cbor", 2)
    log: list[str] = []
    ledger_path = tmp_path / "ledger.jsonl"
    env = {
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "KCLPY_LOCAL_ENDPOINT": fresh_emulator.endpoint_url,
        "KCLPY_LOCAL_APP": "cbor-app", "KCLPY_LOCAL_STREAM": "cbor",
        "KCLPY_LOCAL_LEDGER": str(ledger_path),
    }
    overrides = {
        "kinesisEndpoint": fresh_kinesis_mock.endpoint_url,
        "isCBORProtocolDisabled": "false",
        "executableName": f"{sys.executable} {RECORDER}",
    }
    # The worker never finishes its failing fetches gracefully: no long stop grace.
    with Daemon(LOCAL_PROFILE, installation=kcl1, env=env, cwd=ROOT, log=log.append,
                ready_timeout=120, overrides=overrides, stop_timeout=2):
        assert not any("CBOR disabled" in line for line in log)
        dynamodb = _aws.client("dynamodb", fresh_emulator.endpoint_url)
        wait_for(lambda: len(_aws.read_leases(dynamodb, "cbor-app")) == 2, 60, "two leases")
        _aws.put_records(kinesis, "cbor", [(f"c{i}".encode(), f"pk{i}") for i in range(10)])
        wait_for(lambda: any("not VALUE_EMBEDDED_OBJECT" in line for line in log), 60,
                 "the Java SDK's CBOR error on the records' Data")
    assert ledger(ledger_path) == []
