"""MiniStack, the LocalStack-compatible engine without Docker: loopback only, ``up``/``down
--engine ministack``, and the shipped ``properties/localstack.properties``, unchanged,
run end to end by ``kclpy-local run`` with the real KCL 1.15.3 daemon; with CBOR turned
on, the console says so within seconds.

MiniStack is installed once into the per-user cache (the ``ministack_installation``
fixture); skipped, with the reason, only when the package index is unreachable.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kclpy_local import _aws
from kclpy_local._cli import main
from kclpy_local._emulators.ministack import MiniStack, MiniStackInstallation
from kclpy_local._emulators.registry import read_record
from kclpy_local._jvm.bootstrap import Installation
from kclpy_local._process import pid_alive

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RECORDER = ROOT / "processors" / "recorder.py"
LOCALSTACK_PROFILE = ROOT / "properties" / "localstack.properties"


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def ledger(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def ss_listeners(pid: int) -> list[str]:
    """The local addresses ``pid`` listens on, as ``ss -ltnp`` shows them."""
    ss = shutil.which("ss")
    if ss is None:
        pytest.skip("needs ss (iproute2)")
    out = subprocess.run([ss, "-H", "-ltnp"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines() if f"pid={pid}," in line]


def port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


# -- loopback only ------------------------------------------------------------------------


def test_it_listens_on_127_0_0_1_only(ministack: MiniStack) -> None:
    assert ministack.pid is not None
    assert ss_listeners(ministack.pid) == [f"127.0.0.1:{ministack.port}"]
    found = ministack.listeners()
    assert found is not None
    assert {(s.address, s.port) for s in found} == {("127.0.0.1", ministack.port)}


def test_up_and_down_with_the_ministack_engine(
    ministack_installation: MiniStackInstallation,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = str(tmp_path / "state")
    assert main(["up", "--engine", "ministack", "--port", "0", "--json", "--state-dir", state]) == 0
    shown = json.loads(capsys.readouterr().out)
    record = read_record(Path(state))
    assert record is not None
    try:
        assert (record.engine, record.version) == ("ministack", ministack_installation.version)
        assert shown["engine"] == shown["kinesis_engine"] == "ministack"
        assert shown["endpoint"] == record.endpoint == f"http://127.0.0.1:{record.port}"
        assert ss_listeners(record.pid) == [f"127.0.0.1:{record.port}"]
        # Running: reported again; another engine is refused (exit code 8).
        assert main(["up", "--state-dir", state]) == 0
        assert capsys.readouterr().out.strip() == record.endpoint
        assert main(["up", "--engine", "moto", "--state-dir", state]) == 8
        assert "already runs (pid" in capsys.readouterr().err
        kinesis = _aws.client("kinesis", record.endpoint)
        assert _aws.ensure_stream(kinesis, "up-stream", 1).shard_ids
    finally:
        assert main(["down", "--state-dir", state]) == 0
    assert "emulator stopped" in capsys.readouterr().out
    assert not pid_alive(record.pid) and port_closed(record.port)


# -- the LocalStack profile, end to end ------------------------------------------------


class Run:
    """``kclpy-local run processors/recorder.py --properties properties/localstack.properties``
    as a user runs it, with ``LOCALSTACK_ENDPOINT`` naming MiniStack."""

    def __init__(self, tmp: Path, kcl_cache: Path, endpoint: str, app: str, *extra: str) -> None:
        self.ledger = tmp / "ledger.jsonl"
        self.stderr_path = tmp / "run.stderr"
        self.run_dir = tmp / "run"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KCLPY_LOCAL_"))}
        env.pop("LOCALSTACK_ENDPOINT", None)
        env.update(
            LOCALSTACK_ENDPOINT=endpoint,
            KCLPY_LOCAL_APP=app,
            KCLPY_LOCAL_LEDGER=str(self.ledger),
            KCLPY_LOCAL_STATE=str(tmp / "state"),
        )
        self.argv = [
            sys.executable, "-m", "kclpy_local", "run", str(RECORDER),
            "--properties", str(LOCALSTACK_PROFILE), "--stream", app, "--no-progress",
            "--cache-dir", str(kcl_cache), "--run-dir", str(self.run_dir), *extra,
        ]
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def __enter__(self) -> Run:
        with self.stderr_path.open("w") as stderr:
            self.started = time.monotonic()
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=stderr, env=self.env, cwd=ROOT)
        return self

    def text(self) -> str:
        return self.stderr_path.read_text()

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(90)

    def __exit__(self, *exc: object) -> None:
        # A failed test: Ctrl-C, then Ctrl-C again (which kills the daemon), so that no
        # JVM outlives the run (it runs in a session of its own); SIGKILL last.
        assert self.proc is not None
        for _ in range(2):
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def profile_bytes() -> Iterator[bytes]:
    """The shipped LocalStack profile, which the tests must leave as it is."""
    before = LOCALSTACK_PROFILE.read_bytes()
    yield before
    assert LOCALSTACK_PROFILE.read_bytes() == before, "properties/localstack.properties changed"


def test_the_localstack_profile_unchanged_on_ministack(
    kcl1: Installation, kcl_cache: Path, fresh_ministack: MiniStack, profile_bytes: bytes,
    tmp_path: Path,
) -> None:
    """Every record processed, the checkpoints in MiniStack's lease table, the KCL's
    metrics in MiniStack's CloudWatch; Kinesis read over JSON, the profile's default."""
    assert b"isCBORProtocolDisabled = true" in profile_bytes
    endpoint = fresh_ministack.endpoint_url
    kinesis = _aws.client("kinesis", endpoint)
    app = "ms-e2e"
    _aws.ensure_stream(kinesis, app, 2)
    put = _aws.put_records(kinesis, app, [(f"ms-{i}".encode(), f"pk{i}") for i in range(30)])
    with Run(tmp_path, kcl_cache, endpoint, app) as run:
        wait_for(lambda: "worker started after" in run.text() or run.proc.poll() is not None,  # type: ignore[union-attr]
                 120, "the worker to start")
        assert run.proc is not None and run.proc.poll() is None, run.text()
        assert f"kclpy-local: endpoint {endpoint}" in run.text()
        assert "embedded emulator" not in run.text()  # nothing was started for the run
        effective = (run.run_dir / "effective.properties").read_text()
        for key in ("kinesisEndpoint", "dynamoDBEndpoint", "cloudWatchEndpoint"):
            assert f"{key} = {endpoint}".replace(":", "\\:") in effective
        assert "isCBORProtocolDisabled = true" in effective
        more = _aws.put_records(kinesis, app, [(f"ms-late-{i}".encode(), f"pk{i}") for i in range(10)])
        everything = [*put, *more]
        wanted = {(p.shard_id, int(p.sequence_number)) for p in everything}
        wait_for(lambda: wanted <= {(e["shard"], int(e["sequence_number"])) for e in ledger(run.ledger)},
                 90, "every record in the ledger")
        last: dict[str, str] = {}
        for p in everything:
            if p.shard_id not in last or int(p.sequence_number) > int(last[p.shard_id]):
                last[p.shard_id] = p.sequence_number
        dynamodb = _aws.client("dynamodb", endpoint)

        def checkpoints() -> dict[str, str | None]:
            return {lease.lease_key: lease.checkpoint for lease in _aws.read_leases(dynamodb, app)}

        wait_for(lambda: checkpoints() == last, 60, f"checkpoints {last} in MiniStack's lease table")
        cloudwatch = _aws.client("cloudwatch", endpoint)
        wait_for(lambda: {"RecordsProcessed", "DataBytesProcessed"}
                 & {m.name for m in _aws.list_metrics(cloudwatch, app)} != set(),
                 60, f"the KCL's metrics in namespace {app} at MiniStack's CloudWatch")
        assert run.stop() == 0, run.text()
    assert "stopped gracefully" in run.text()
    assert "warning:" not in run.text()
    records = ledger(run.ledger)
    assert {base64.b64decode(e["data"]) for e in records} == {p.data for p in everything}
    assert fresh_ministack.running  # the run stopped only what it started: nothing


def test_cbor_on_against_ministack_is_on_the_console_within_seconds(
    kcl1: Installation, kcl_cache: Path, fresh_ministack: MiniStack, profile_bytes: bytes,
    tmp_path: Path,
) -> None:
    """CBOR turned on (one key): MiniStack without cbor2 answers every Kinesis call with
    SerializationException, which the KCL only logs; the run says so, with the hint."""
    kinesis = _aws.client("kinesis", fresh_ministack.endpoint_url)
    _aws.ensure_stream(kinesis, "ms-cbor", 1)
    warning = "kclpy-local: warning: Kinesis answers SerializationException"
    with Run(tmp_path, kcl_cache, fresh_ministack.endpoint_url, "ms-cbor",
             "--set", "isCBORProtocolDisabled=false") as run:
        wait_for(lambda: warning in run.text() or run.proc.poll() is not None, 60,  # type: ignore[union-attr]
                 "the CBOR warning on the console")
        seconds = time.monotonic() - run.started
        text = run.text()
        assert warning in text, text
        assert "hint: the engine does not speak CBOR: set isCBORProtocolDisabled = true" in text
        assert seconds < 30, f"the warning took {seconds:.1f}s"
        print(f"CBOR warning on the console {seconds:.1f}s after `run` started")
        time.sleep(3)  # more failed shard syncs: still one line
        assert run.text().count(warning) == 1
        run.stop()
    log = (run.run_dir / "daemon.log").read_text()
    assert "Error Code: SerializationException" in log


def test_its_cloudwatch_does_not_take_kcl3_metrics(fresh_ministack: MiniStack) -> None:
    """The pinned MiniStack has no ``cbor2``: a KCL 3.x PutMetricData (Smithy RPC v2
    CBOR, as the AWS SDK for Java v2 sent it) is answered 200 with JSON text and
    kept nowhere. The probe tells it apart, so the local profile's KCL 3.x metrics go off."""
    body = (Path(__file__).parents[1] / "unit" / "cbor_requests" / "kcl3-put-metric-data-records.cbor").read_bytes()
    request = urllib.request.Request(
        fresh_ministack.endpoint_url + "/service/GraniteServiceVersion20100801/operation/PutMetricData",
        data=body, method="POST",
        headers={"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor",
                 "Authorization": "AWS4-HMAC-SHA256 Credential=test/20261203/us-east-1/monitoring/aws4_request, "
                                  "SignedHeaders=host, Signature=0"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200 and response.headers["smithy-protocol"] == "rpc-v2-cbor"
        assert response.read() == b"{}"  # JSON text under a CBOR content type
    assert _aws.list_metrics(_aws.client("cloudwatch", fresh_ministack.endpoint_url), "recorder") == []
    problem = _aws.rpc_v2_cbor_problem(fresh_ministack.endpoint_url)
    assert problem is not None and problem.startswith("HTTP 200 marked rpc-v2-cbor, but the body is not a CBOR map")
