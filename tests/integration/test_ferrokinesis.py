"""ferrokinesis, the real engine (built with cargo into the session's cache once): loopback
only, its lifeline and its stop, CBOR records as bytes, resharding through boto3,
``up``/``down --kinesis ferrokinesis``, and ``run --kinesis ferrokinesis`` with the real
KCL 1.x daemon reading it over CBOR and over JSON.

Skipped, with the reason, without cargo (see the ``ferrokinesis`` fixture).
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
from _helpers import hash_range, keys_in, merge_shards, shards, split_shard, wait_for

from kclpy_local import _aws
from kclpy_local._cli import main
from kclpy_local._emulators.engines import is_kinesis_engine_process
from kclpy_local._emulators.ferrokinesis import (
    BINARY,
    CBOR_WORKS,
    CHILD_SHARDS,
    Ferrokinesis,
    FerrokinesisInstallation,
    stop_group,
)
from kclpy_local._emulators.registry import PID_FILE, read_record
from kclpy_local._exceptions import PortInUseError
from kclpy_local._jvm.bootstrap import Installation
from kclpy_local._process import pid_alive

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RECORDER = ROOT / "processors" / "recorder.py"
LISTENING = re.compile(r"kclpy-local ferrokinesis: listening on 127\.0\.0\.1:(\d+)")


def port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def ledger(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# -- loopback only, start and stop ---------------------------------------------------------


def test_it_listens_on_loopback_only(ferrokinesis: Ferrokinesis) -> None:
    pid = ferrokinesis.pid
    assert pid is not None
    found = ferrokinesis.listeners()
    assert found is not None
    assert {(s.address, s.port) for s in found} == {("127.0.0.1", ferrokinesis.port)}
    assert is_kinesis_engine_process("ferrokinesis", pid) is True
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[0].endswith(f"/bin/{BINARY}".encode())


def test_start_to_ready_and_stop(ferrokinesis_installation: FerrokinesisInstallation) -> None:
    engine = Ferrokinesis(installation=ferrokinesis_installation).start()
    try:
        pid = engine.pid
        assert pid is not None and os.getpgid(pid) == pid  # a process group of its own
        assert engine.startup_seconds is not None and engine.startup_seconds < 5
        print(f"\nferrokinesis start to ready: {engine.startup_seconds * 1000:.0f} ms")
        kinesis = _aws.client("kinesis", engine.endpoint_url)
        # Created ACTIVE at once: no CREATING to wait through.
        kinesis.create_stream(StreamName="at-once", ShardCount=2)
        summary = kinesis.describe_stream_summary(StreamName="at-once")
        assert summary["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"
        # An idle keep-alive client (the boto3 one above) does not hold up the stop.
        started = time.monotonic()
        engine.stop()
        assert time.monotonic() - started < 3
        assert not pid_alive(pid)
        assert port_closed(engine.port)
        assert "kclpy-local ferrokinesis: stopping (SIGTERM)" in engine.output_tail()
        engine.stop()  # twice is fine
        assert not stop_group(pid)
    finally:
        engine.stop()


def test_it_stops_when_its_lifeline_ends(
    ferrokinesis_installation: FerrokinesisInstallation,
) -> None:
    """The program itself, with the read end of a pipe as its lifeline: closing the write
    end (as the kernel does when the parent dies, however it dies) stops it."""
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [str(ferrokinesis_installation.binary), "--port", "0"],
        env={**os.environ, "KCLPY_LOCAL_LIFELINE": str(read_end)},
        pass_fds=(read_end,),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    os.close(read_end)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = LISTENING.search(first)
        assert match, first
        port = int(match[1])
        assert not port_closed(port)
        os.close(write_end)
        write_end = -1
        assert proc.wait(5) == 0
        assert "stopping (the lifeline ended)" in proc.stdout.read()
        assert port_closed(port)
    finally:
        if write_end >= 0:
            os.close(write_end)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_it_ends_with_the_process_that_started_it(
    ferrokinesis_installation: FerrokinesisInstallation, tmp_path: Path
) -> None:
    """A bound engine outlives no SIGKILL of its parent."""
    script = (
        "import sys, time; from pathlib import Path\n"
        "from kclpy_local._emulators.ferrokinesis import Ferrokinesis, FerrokinesisInstallation\n"
        "engine = Ferrokinesis(installation=FerrokinesisInstallation(Path(sys.argv[1]))).start()\n"
        "print(engine.pid, engine.port, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(ferrokinesis_installation.root)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        assert parent.stdout is not None
        pid, port = map(int, parent.stdout.readline().split())
        assert pid_alive(pid) and not port_closed(port)
        parent.kill()
        parent.wait()
        wait_for(lambda: not pid_alive(pid), 5, "the engine to end with its parent")
        assert port_closed(port)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_a_taken_port_fails_at_once(ferrokinesis_installation: FerrokinesisInstallation) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(PortInUseError):
            Ferrokinesis(port, installation=ferrokinesis_installation).start()
        assert time.monotonic() - started < 2


# -- CBOR -----------------------------------------------------------------------------------


def _cbor_call(endpoint: str, operation: str, body: dict[str, Any]) -> Any:
    """One Kinesis call as the Java SDK makes it with CBOR on."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    request = urllib.request.Request(
        endpoint + "/",
        data=cbor2.dumps(body),
        method="POST",
        headers={
            "Content-Type": "application/x-amz-cbor-1.1",
            "X-Amz-Target": f"Kinesis_20131202.{operation}",
            "X-Amz-Date": stamp,
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential=test/{stamp[:8]}/us-east-1/kinesis/aws4_request, "
                "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0"
            ),
        },
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("application/x-amz-cbor-1.1")
        return cbor2.loads(response.read())


def test_cbor_records_carry_their_data_as_bytes(fresh_ferrokinesis: Ferrokinesis) -> None:
    """What kinesis-mock gets wrong and the Java SDK needs: over CBOR, each record's
    Data is a byte string (kinesis-mock sends base64 text)."""
    assert CBOR_WORKS
    url = fresh_ferrokinesis.endpoint_url
    kinesis = _aws.client("kinesis", url)
    shard = _aws.ensure_stream(kinesis, "cbor", 1).shard_ids[0]
    payload = bytes(range(256))
    put = _cbor_call(url, "PutRecord", {"StreamName": "cbor", "Data": payload, "PartitionKey": "k"})
    assert put["ShardId"] == shard
    iterator = _cbor_call(
        url,
        "GetShardIterator",
        {"StreamName": "cbor", "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"},
    )["ShardIterator"]
    answer = _cbor_call(url, "GetRecords", {"ShardIterator": iterator})
    [record] = answer["Records"]
    assert isinstance(record["Data"], bytes) and record["Data"] == payload
    assert record["SequenceNumber"] == put["SequenceNumber"]


# -- resharding -----------------------------------------------------------------------------


def _drain(kinesis: Any, stream: str, shard_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every record of a closed shard, and the last GetRecords answer (null iterator)."""
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records: list[dict[str, Any]] = []
    for _ in range(50):
        answer = kinesis.get_records(ShardIterator=iterator, Limit=1000)
        records.extend(answer["Records"])
        iterator = answer.get("NextShardIterator")
        if iterator is None:
            return records, answer
    raise AssertionError(f"closed shard {shard_id} never returned a null NextShardIterator")


def test_split_then_merge_through_boto3(fresh_ferrokinesis: Ferrokinesis) -> None:
    kinesis = _aws.client("kinesis", fresh_ferrokinesis.endpoint_url)
    stream = "reshard"
    [parent] = _aws.ensure_stream(kinesis, stream, 1).shard_ids
    before = _aws.put_records(kinesis, stream, [(f"b{i}".encode(), f"before-{i}") for i in range(30)])
    assert {r.shard_id for r in before} == {parent}
    assert all(len(r.sequence_number) > 20 for r in before)

    lower, upper = split_shard(kinesis, stream, parent)
    listed = shards(kinesis, stream)
    assert set(listed) == {parent, lower, upper}
    assert "EndingSequenceNumber" in listed[parent]["SequenceNumberRange"]  # closed
    # Records put afterwards land in the children, each in the child of its hash key.
    after = {
        child: _aws.put_records(
            kinesis, stream, [(b"a", k) for k in keys_in(*hash_range(listed[child]), 10, child)]
        )
        for child in (lower, upper)
    }
    for child, results in after.items():
        assert {r.shard_id for r in results} == {child}
    last_before = max(int(r.sequence_number) for r in before)
    assert all(int(r.sequence_number) > last_before for rs in after.values() for r in rs)

    # The drained parent: its records in order, then a null iterator and its children
    # (added by the program of this package: CHILD_SHARDS).
    assert CHILD_SHARDS
    records, final = _drain(kinesis, stream, parent)
    assert [int(r["SequenceNumber"]) for r in records] == [int(r.sequence_number) for r in before]
    assert final.get("NextShardIterator") is None
    assert {c["ShardId"] for c in final["ChildShards"]} == {lower, upper}
    for child in final["ChildShards"]:
        assert child["ParentShards"] == [parent]
        assert child["HashKeyRange"] == listed[child["ShardId"]]["HashKeyRange"]

    merged = merge_shards(kinesis, stream, lower, upper)
    later = _aws.put_records(kinesis, stream, [(b"l", f"later-{i}") for i in range(20)])
    assert {r.shard_id for r in later} == {merged}
    records, final = _drain(kinesis, stream, lower)
    assert [int(r["SequenceNumber"]) for r in records] == [
        int(r.sequence_number) for r in after[lower]
    ]
    assert final.get("NextShardIterator") is None
    assert [c["ShardId"] for c in final["ChildShards"]] == [merged]
    assert sorted(final["ChildShards"][0]["ParentShards"]) == sorted([lower, upper])


# -- up / down ------------------------------------------------------------------------------


@pytest.fixture
def up_state(
    tmp_path: Path,
    ferrokinesis_installation: FerrokinesisInstallation,
    kcl_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Path]:
    """A state directory for ``up``; whatever it left running is stopped afterwards."""
    import moto.server  # noqa: F401 - the test extra installs it

    monkeypatch.setenv("KCLPY_LOCAL_CACHE", str(kcl_cache))  # where the fixture built it
    state = tmp_path / "state"
    yield state
    record = read_record(state)
    if record is not None:
        if record.kinesis is not None:
            stop_group(record.kinesis.pid)
        main(["down", "--state-dir", str(state)])


def test_up_and_down_with_ferrokinesis(up_state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["up", "--port", "0", "--kinesis", "ferrokinesis", "--state-dir", str(up_state)]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    moto_url, kinesis_url = out.split()
    assert moto_url != kinesis_url and kinesis_url.startswith("http://127.0.0.1:")
    assert "ferrokinesis 0.7.0 started for Kinesis" in err
    assert "building ferrokinesis" not in err  # built once, by the session's fixture
    data = json.loads((up_state / PID_FILE).read_text())
    kinesis_record = data["kinesis"]
    assert kinesis_record["engine"] == "ferrokinesis" and kinesis_record["version"] == "0.7.0"
    assert kinesis_record["endpoint"] == kinesis_url and kinesis_record["tls_port"] == 0
    assert kinesis_record["log_file"] == str(up_state / "ferrokinesis.log")
    moto_pid, kinesis_pid = data["pid"], kinesis_record["pid"]

    # Kinesis on ferrokinesis; DynamoDB on moto.
    _aws.ensure_stream(_aws.client("kinesis", kinesis_url), "up-stream", 1)
    assert _aws.client("kinesis", moto_url).list_streams()["StreamNames"] == []
    # Again: reported, nothing new started.
    assert main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kinesis_engine"] == "ferrokinesis" and doc["kinesis_pid"] == kinesis_pid
    assert main(["down", "--state-dir", str(up_state)]) == 0
    out, _ = capsys.readouterr()
    assert "emulator stopped" in out and "ferrokinesis stopped" in out
    assert not pid_alive(moto_pid) and not pid_alive(kinesis_pid)
    assert port_closed(int(kinesis_url.rsplit(":", 1)[1]))


# -- the daemon -----------------------------------------------------------------------------

RECORDS = 200


@pytest.mark.parametrize("cbor", [True, False], ids=["cbor-on", "cbor-off"])
def test_run_with_ferrokinesis(
    cbor: bool,
    kcl1: Installation,
    kcl_cache: Path,
    ferrokinesis_installation: FerrokinesisInstallation,
    tmp_path: Path,
) -> None:
    """``run --kinesis ferrokinesis``: the daemon reads ferrokinesis over CBOR by default
    (``--set isCBORProtocolDisabled=true``: over JSON), every record put is processed,
    and each shard's last record is checkpointed in moto's lease table."""
    import moto.server  # noqa: F401 - the test extra installs it

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KCLPY_LOCAL_"))}
    env.update(
        KCLPY_LOCAL_LEDGER=str(tmp_path / "ledger.jsonl"),
        KCLPY_LOCAL_STATE=str(tmp_path / "state"),
        KCLPY_LOCAL_CACHE=str(kcl_cache),
    )
    stream = f"fk-run-{'cbor' if cbor else 'json'}"
    stderr_path = tmp_path / "run.stderr"
    argv = [
        sys.executable, "-m", "kclpy_local", "run", str(RECORDER), "--stream", stream,
        "--shards", "2", "--kinesis", "ferrokinesis", "--port", "0", "--no-progress",
        "--cache-dir", str(kcl_cache), "--run-dir", str(tmp_path / "run"),
    ]
    if not cbor:
        argv += ["--set", "isCBORProtocolDisabled=true"]
    started = time.monotonic()
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=stderr, env=env, cwd=tmp_path)
    try:
        def text() -> str:
            return stderr_path.read_text()

        wait_for(lambda: "worker started after" in text() or proc.poll() is not None, 120,
                 "the worker to start")
        assert proc.poll() is None, text()
        worker_started = time.monotonic() - started
        assert "building ferrokinesis" not in text()
        kinesis_url = re.search(r"Kinesis on ferrokinesis at (http://127\.0\.0\.1:\d+)", text())
        moto_url = re.search(r"endpoint (http://127\.0\.0\.1:\d+) \(embedded emulator started", text())
        assert kinesis_url and moto_url, text()
        props = (tmp_path / "run" / "effective.properties").read_text()
        assert f"kinesisEndpoint = {kinesis_url[1]}".replace(":", "\\:") in props
        assert f"dynamoDBEndpoint = {moto_url[1]}".replace(":", "\\:") in props
        assert f"isCBORProtocolDisabled = {'false' if cbor else 'true'}" in props
        log = (tmp_path / "run" / "daemon.log").read_text()
        assert ("CBOR disabled (isCBORProtocolDisabled = true)" in log) is not cbor

        kinesis = _aws.client("kinesis", kinesis_url[1])
        assert len(_aws.ensure_stream(kinesis, stream).shard_ids) == 2  # created by `run`
        data = [(f"r{i}-\u00e9".encode() + bytes([i % 256, 0, 255]), f"pk{i}") for i in range(RECORDS)]
        put_at = time.monotonic()
        put = _aws.put_records(kinesis, stream, data)
        assert len({p.shard_id for p in put}) == 2  # both shards get records
        wanted = {(p.shard_id, int(p.sequence_number)) for p in put}

        def seen() -> set[tuple[str, int]]:
            return {(e["shard"], int(e["sequence_number"])) for e in ledger(tmp_path / "ledger.jsonl")}

        wait_for(lambda: wanted <= seen(), 60, f"the {RECORDS} records in the ledger")
        processed_in = time.monotonic() - put_at
        entries = ledger(tmp_path / "ledger.jsonl")
        assert seen() == wanted  # every record, and nothing else
        by_position = {(e["shard"], int(e["sequence_number"])): e for e in entries}
        for p in put:  # the bytes as sent
            entry = by_position[(p.shard_id, int(p.sequence_number))]
            assert entry["partition_key"] == p.partition_key
            assert base64.b64decode(entry["data"]) == p.data
        last: dict[str, int] = {}
        for p in put:
            last[p.shard_id] = max(last.get(p.shard_id, 0), int(p.sequence_number))
        dynamodb = _aws.client("dynamodb", moto_url[1])

        def checkpointed() -> bool:
            leases = {lease.lease_key: lease.checkpoint for lease in _aws.read_leases(dynamodb, "recorder")}
            return all((leases.get(s) or "").isdigit() and int(leases[s] or 0) == n for s, n in last.items())

        wait_for(checkpointed, 30, f"checkpoints {last} in moto's lease table")
        print(
            f"\nferrokinesis, CBOR {'on' if cbor else 'off'}: {len(seen())} of {RECORDS} records "
            f"processed ({len(entries)} ledger entries) in {processed_in:.2f}s after the put; "
            f"worker started {worker_started:.1f}s after run"
        )
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, text()
        assert "stopped gracefully" in text()
        assert "does not speak CBOR" not in text() and "cannot read over CBOR" not in text()
        # Both engines were the run's own: gone now.
        for url in (kinesis_url[1], moto_url[1]):
            assert port_closed(int(url.rsplit(":", 1)[1])), url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
