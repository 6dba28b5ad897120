"""One KCL 3.x application on several streams, end to end: ``kclpy-local run --kcl 3
--stream orders --stream payments`` in a subprocess (the real CLI, the KCL 3.x
jars and our launcher, the recorder processor over real pipes), moto on loopback
given with ``--endpoint``, records put with ``kclpy-local put`` and boto3, and
what the ledgers and the lease table say afterwards.

The KCL's multi-stream mode keys each lease ``account:stream:creationEpoch:shardId``;
the launcher builds each stream's identifier from its ARN (moto's account
123456789012) and its creation time, and names the stream in each initialize
message, which the recorder writes into every ledger line.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _helpers import wait_for

from kclpy_local import _aws
from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._jvm.bootstrap import Installation

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RECORDER = ROOT / "processors" / "recorder.py"
STREAMS = ("orders", "payments")
MARK = "KCLPY_LOCAL_TEST_MULTI_MARK"
Key = tuple[str, str, str]  # (stream, shard, sequence number): one record


class Run:
    """``python -m kclpy_local run ...`` with its stderr in a file and its own run directory."""

    def __init__(self, argv: list[str], env: dict[str, str], tmp: Path, name: str) -> None:
        self.name = name
        self.run_dir = tmp / f"run-{name}"
        self.mark = uuid.uuid4().hex
        self.stderr_path = tmp / f"{name}.stderr"
        self._stderr = self.stderr_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kclpy_local", "run", *argv, "--run-dir", str(self.run_dir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            env={**env, MARK: self.mark},
            cwd=tmp,
        )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def ledger(self) -> list[dict[str, object]]:
        path = self.run_dir / "ledger.jsonl"
        if not path.exists():
            return []
        text = path.read_text()
        return [
            json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines() if line.strip()
        ]

    def processed(self) -> set[Key]:
        return {
            (str(e["stream"]), str(e["shard"]), str(e["sequence_number"])) for e in self.ledger()
        }

    def wait_started(self) -> None:
        wait_for(
            lambda: "worker started after" in self.stderr or self.proc.poll() is not None,
            180,
            f"worker {self.name} to start",
        )
        assert self.proc.poll() is None, self.stderr

    def left(self) -> list[int]:
        """The live processes this run started (its JVM, its record processors)."""
        needle = f"{MARK}={self.mark}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == self.proc.pid:
                continue
            try:
                environ = (entry / "environ").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state != "Z" and needle in environ.split(b"\0"):
                found.append(int(entry.name))
        return found

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()
        for pid in self.left():  # never leave what a failed test left
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def start(kcl3: Installation, kcl_cache: Path, tmp_path: Path) -> Iterator[Callable[..., Run]]:
    runs: list[Run] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KCLPY_LOCAL_"))}
    env["KCLPY_LOCAL_STATE"] = str(tmp_path / "state")

    def start(*argv: str, name: str) -> Run:
        run = Run([*argv, "--cache-dir", str(kcl_cache)], env, tmp_path, name)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.close()


def _multi_run(start: Callable[..., Run], endpoint: str, name: str, *extra: str) -> Run:
    streams = [arg for stream in STREAMS for arg in ("--stream", stream)]
    return start(
        str(RECORDER),
        "--kcl",
        "3",
        *streams,
        "--shards",
        "2",
        "--app",
        "multi",
        "--endpoint",
        endpoint,
        *extra,
        name=name,
    )


def _cli_put(endpoint: str, stream: str, lines: list[str], tmp: Path) -> dict[str, object]:
    """``kclpy-local put --stream STREAM --file F --json``: its summary document."""
    source = tmp / f"{stream}.lines"
    source.write_text("".join(f"{line}\n" for line in lines))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kclpy_local",
            "put",
            "--stream",
            stream,
            "--file",
            str(source),
            "--endpoint",
            endpoint,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
    )
    assert done.returncode == 0, done.stderr
    summary: dict[str, object] = json.loads(done.stdout)
    return summary


def _shard_leases(dynamodb: object) -> list[_aws.Lease]:
    return _aws.read_leases(dynamodb, "multi", shard_leases_only=True)


def _creation_epochs(kinesis: object) -> dict[str, int]:
    return {
        stream: int(
            kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][  # type: ignore[attr-defined]
                "StreamCreationTimestamp"
            ].timestamp()
        )
        for stream in STREAMS
    }


def test_one_application_consumes_two_streams(
    start: Callable[..., Run], fresh_emulator: EmbeddedEmulator, tmp_path: Path
) -> None:
    endpoint = fresh_emulator.endpoint_url
    kinesis = _aws.client("kinesis", endpoint)
    dynamodb = _aws.client("dynamodb", endpoint)
    started = time.monotonic()
    run = _multi_run(start, endpoint, "one")
    run.wait_started()
    print(f"\nmulti-stream run: worker STARTED {time.monotonic() - started:.1f}s after the command")
    # `run` created both streams, and says what it runs.
    assert (
        "kclpy-local: application 'multi', streams 'orders' (2 shard(s)), 'payments' (2 shard(s)), "
        "processor "
    ) in run.stderr
    epochs = _creation_epochs(kinesis)
    daemon_log = (run.run_dir / "daemon.log").read_text()
    for stream in STREAMS:
        assert (
            f"kclpy-local: stream {stream}: lease keys 123456789012:{stream}:{epochs[stream]}:<shard id> "
            f"(arn:aws:kinesis:us-east-1:123456789012:stream/{stream})"
        ) in daemon_log
    assert (
        "kclpy-local: worker STARTED (application multi, streams orders, payments, worker "
        in daemon_log
    )

    # Records put to each stream with `kclpy-local put`, different payloads per stream.
    put_at = time.monotonic()
    sent = {
        stream: [f"{stream}-{i}" for i in range(30 if stream == "orders" else 20)]
        for stream in STREAMS
    }
    for stream, lines in sent.items():
        summary = _cli_put(endpoint, stream, lines, tmp_path)
        assert (
            summary["stream"] == stream
            and summary["count"] == len(lines)
            and summary["failed"] == 0
        )

    def by_stream() -> dict[str, list[str]]:
        got: dict[str, list[str]] = {stream: [] for stream in STREAMS}
        for entry in run.ledger():
            got[str(entry["stream"])].append(base64.b64decode(str(entry["data"])).decode())
        return got

    wait_for(
        lambda: all(sorted(by_stream()[s]) == sorted(sent[s]) for s in STREAMS),
        120,
        "every record of both streams in the ledger",
    )
    print(
        f"multi-stream run: {sum(map(len, sent.values()))} records of 2 streams processed "
        f"{time.monotonic() - put_at:.1f}s after the first put"
    )
    # Every record once, under its own stream (the shards of both streams have the same ids).
    assert {stream: sorted(lines) for stream, lines in by_stream().items()} == {
        stream: sorted(lines) for stream, lines in sent.items()
    }
    assert len(run.processed()) == len(run.ledger()) == 50
    assert {str(e["shard"]) for e in run.ledger() if e["stream"] == "orders"} == {
        "shardId-000000000000",
        "shardId-000000000001",
    }

    # The lease table: one lease per stream and shard, keyed by stream; each checkpoint
    # is the last record of its own stream's shard.
    last: dict[tuple[str, str], int] = {}
    for stream, shard, sequence in run.processed():
        last[(stream, shard)] = max(last.get((stream, shard), 0), int(sequence))

    def checkpoints() -> dict[tuple[str, str], str | None]:
        return {
            (str(lease.stream), lease.shard_id): lease.checkpoint
            for lease in _shard_leases(dynamodb)
        }

    wait_for(
        lambda: checkpoints() == {key: str(seq) for key, seq in last.items()},
        60,
        f"the checkpoints {last}",
    )
    assert {lease.lease_key for lease in _shard_leases(dynamodb)} == {
        f"123456789012:{stream}:{epochs[stream]}:shardId-00000000000{n}"
        for stream in STREAMS
        for n in (0, 1)
    }
    assert _aws.read_stream_claim(dynamodb, "multi") == (
        True,
        _aws.StreamClaim(STREAMS, multi=True),
    )
    shown = subprocess.run(
        [sys.executable, "-m", "kclpy_local", "leases", "multi", "--endpoint", endpoint, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert sorted(
        (d["stream"], d["shard"], d["checkpoint"]) for d in json.loads(shown.stdout)
    ) == sorted((stream, shard, str(seq)) for (stream, shard), seq in last.items())

    # Ctrl-C: a graceful stop; the final progress names each stream's shards.
    run.proc.send_signal(signal.SIGINT)
    assert run.proc.wait(90) == 0, run.stderr
    final = next(
        line for line in run.stderr.splitlines() if line.startswith("kclpy-local: final: ")
    )
    for (stream, shard), seq in last.items():
        count = sum(1 for s, sh, _ in run.processed() if (s, sh) == (stream, shard))
        assert f"{stream}/{shard} {count} records, lag 0ms, checkpoint {seq}" in final, final
    assert run.stderr.splitlines()[-1] == (
        "kclpy-local: stopped gracefully: every record processor finished its shutdown "
        "(daemon exit status 143 = SIGTERM, as asked)"
    ), run.stderr


def test_a_killed_run_hands_both_streams_to_the_other_worker(
    start: Callable[..., Run], fresh_emulator: EmbeddedEmulator
) -> None:
    """SIGKILL to the first ``kclpy-local run`` (not to its JVM): its lifeline stops the
    JVM, and the second worker takes the leases of both streams and processes what is
    put after the kill."""
    endpoint = fresh_emulator.endpoint_url
    kinesis = _aws.client("kinesis", endpoint)
    dynamodb = _aws.client("dynamodb", endpoint)
    first = _multi_run(start, endpoint, "a", "--set", "workerId=worker-a")
    first.wait_started()

    def put(tag: str) -> set[Key]:
        results = set()
        for stream in STREAMS:
            records = [(f"{tag}-{stream}-{i}".encode(), f"pk-{i}") for i in range(12)]
            results |= {
                (stream, r.shard_id, r.sequence_number)
                for r in _aws.put_records(kinesis, stream, records)
            }
        return results

    before = put("before")
    wait_for(lambda: before <= first.processed(), 120, "the records put before the kill")
    second = _multi_run(start, endpoint, "b", "--set", "workerId=worker-b")
    second.wait_started()
    owners_before = {
        (str(lease.stream), lease.shard_id): lease.owner for lease in _shard_leases(dynamodb)
    }
    assert len(owners_before) == 4 and set(owners_before.values()) <= {"worker-a", "worker-b"}
    # The worker that started alone holds leases of both streams when it is killed.
    assert {stream for (stream, _), owner in owners_before.items() if owner == "worker-a"} == set(
        STREAMS
    ), owners_before

    first.proc.send_signal(signal.SIGKILL)
    assert first.proc.wait(30) == -signal.SIGKILL
    killed = time.monotonic()
    # Its JVM and record processors end with it (the lifeline: a graceful stop).
    gone = wait_for(lambda: not first.left(), 60, "the killed run's JVM and processors to end")
    # It stopped gracefully (the lifeline's end and the kernel's SIGTERM at its parent's death
    # are one stop): as the leader it released the leader lock, which a halted JVM leaves
    # to expire (10 s here), holding up the assignment of its leases.
    items = {lease.lease_key: lease for lease in _aws.read_leases(dynamodb, "multi")}
    leader = items.get("Leader")
    assert leader is None or leader.raw.get("ownerName") != "worker-a", (
        leader.raw if leader else None
    )
    after = put("after")
    wait_for(
        lambda: after <= second.processed(),
        180,
        "the records put after the kill, in the second ledger",
    )
    print(
        f"\nmulti-stream takeover: the killed run's JVM gone {gone:.1f}s after the SIGKILL; the records of "
        f"both streams put after it processed by the other worker {time.monotonic() - killed:.1f}s after it"
    )

    # The second worker holds every lease of both streams, with each shard's last checkpoint.
    everything = before | after
    last: dict[tuple[str, str], int] = {}
    for stream, shard, sequence in everything:
        last[(stream, shard)] = max(last.get((stream, shard), 0), int(sequence))

    def leases() -> dict[tuple[str, str], tuple[str | None, str | None]]:
        return {
            (str(lease.stream), lease.shard_id): (lease.owner, lease.checkpoint)
            for lease in _shard_leases(dynamodb)
        }

    wanted = {key: ("worker-b", str(seq)) for key, seq in last.items()}
    wait_for(lambda: leases() == wanted, 60, f"worker-b's leases and checkpoints {wanted}")
    assert {stream for stream, _ in leases()} == set(STREAMS) and len(leases()) == 4
    # Nothing lost across the two ledgers, and each record under its own stream.
    assert everything <= first.processed() | second.processed()
    for entry in second.ledger():
        data = base64.b64decode(str(entry["data"])).decode()
        assert re.fullmatch(rf"(before|after)-{entry['stream']}-\d+", data), entry
    second.proc.send_signal(signal.SIGINT)
    assert second.proc.wait(90) == 0, second.stderr


def test_a_stream_added_later_and_one_left_out(
    start: Callable[..., Run], fresh_emulator: EmbeddedEmulator, tmp_path: Path
) -> None:
    """An application in multi-stream mode on one stream (``streamNames = orders``) grows
    to two: the new stream is processed from its first record, the old one resumes
    from its checkpoints. A start that leaves a claimed stream out is refused."""
    endpoint = fresh_emulator.endpoint_url
    kinesis = _aws.client("kinesis", endpoint)
    dynamodb = _aws.client("dynamodb", endpoint)
    shipped = (ROOT / "properties" / "local.properties").read_text()
    one = tmp_path / "orders.properties"
    one.write_text(
        shipped.replace(
            "streamName = ${KCLPY_LOCAL_STREAM:-kclpy-local-demo}", "streamNames = orders"
        )
    )
    common = (
        "--kcl",
        "3",
        "--properties",
        str(one),
        "--shards",
        "1",
        "--app",
        "grow",
        "--endpoint",
        endpoint,
    )

    first = start(str(RECORDER), *common, name="first")
    first.wait_started()
    early = {
        ("orders", r.shard_id, r.sequence_number)
        for r in _aws.put_records(
            kinesis, "orders", [(f"early-{i}".encode(), "k") for i in range(5)]
        )
    }
    wait_for(lambda: early <= first.processed(), 120, "orders' first records")
    first.proc.send_signal(signal.SIGINT)
    assert first.proc.wait(90) == 0, first.stderr
    assert _aws.read_stream_claim(dynamodb, "grow") == (
        True,
        _aws.StreamClaim(("orders",), multi=True),
    )

    _aws.ensure_stream(kinesis, "payments", 1)
    waiting = {
        ("payments", r.shard_id, r.sequence_number)
        for r in _aws.put_records(
            kinesis, "payments", [(f"waiting-{i}".encode(), "k") for i in range(4)]
        )
    }
    restarted = time.monotonic()
    grown = start(
        str(RECORDER), *common, "--stream", "orders", "--stream", "payments", name="grown"
    )
    grown.wait_started()
    late = {
        ("orders", r.shard_id, r.sequence_number)
        for r in _aws.put_records(
            kinesis, "orders", [(f"late-{i}".encode(), "k") for i in range(3)]
        )
    }
    wait_for(
        lambda: waiting | late <= grown.processed(),
        120,
        "the new stream's records and orders' new ones",
    )
    took = time.monotonic() - restarted
    print(
        f"\nmulti-stream: a stream added to the application, its records processed {took:.1f}s after the restart"
    )
    # The eager lease sync created its leases: no wait for the scheduler's stream sync (once a minute).
    assert (
        "kclpy-local: eager initial lease sync: 2 lease(s) in grow for streams payments (new to the "
        "application) in "
    ) in (grown.run_dir / "daemon.log").read_text()
    assert took < 55, took
    assert not early & grown.processed(), "orders was not resumed from its checkpoints"
    assert _aws.read_stream_claim(dynamodb, "grow") == (True, _aws.StreamClaim(STREAMS, multi=True))
    grown.proc.send_signal(signal.SIGINT)
    assert grown.proc.wait(90) == 0, grown.stderr

    # orders left out: its leases would still be processed; one stream alone: the other kind of lease keys.
    for name, streams in (("shrunk", ("payments", "refunds")), ("single", ("payments",))):
        refused = start(
            str(RECORDER), *common, *(a for s in streams for a in ("--stream", s)), name=name
        )
        assert refused.proc.wait(90) == 2, refused.stderr
        assert "worker started" not in refused.stderr and "Traceback" not in refused.stderr
        if name == "shrunk":
            assert (
                "kclpy-local: error: lease table 'grow' holds the leases of streams 'orders', 'payments' "
                "(multi-stream); this start leaves out 'orders'"
            ) in refused.stderr
        else:
            assert (
                "kclpy-local: error: lease table 'grow' holds the leases of streams 'orders', 'payments' "
                "(multi-stream), not of stream 'payments'"
            ) in refused.stderr


# -- what the launchers refuse, one line each ---------------------------------------------


def _launcher_file(path: Path, endpoint: str, **keys: str) -> Path:
    """A properties file for the launcher itself (no kclpy-local validation in between)."""
    lines = {
        "applicationName": "multi-bad",
        "executableName": f"{sys.executable} {RECORDER}",
        # The SDK v1 (KCL 1.x) and v2 (KCL 3.x) classes of this name both read the variables.
        "AWSCredentialsProvider": "EnvironmentVariableCredentialsProvider",
        "regionName": "us-east-1",
        "kinesisEndpoint": endpoint,
        "dynamoDBEndpoint": endpoint,
        "cloudWatchEndpoint": endpoint,
        "isCBORProtocolDisabled": "true",
        "retrievalMode": "POLLING",
        "metricsLevel": "NONE",
        "maxInitializationAttempts": "1",
        **keys,
    }
    path.write_text("".join(f"{k} = {v}\n" for k, v in lines.items()), encoding="utf-8")
    return path


def _launch(java: str, inst: Installation, props: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [java, "-Dfile.encoding=UTF-8", "-cp", inst.classpath(), inst.main_class, str(props)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
    )


LAUNCHER_REFUSALS = {
    "streamName": (
        {"streamNames": "a, b", "streamName": "a"},
        "streamNames and streamName are both set: name the streams in streamNames alone",
    ),
    "streamArn": (
        {"streamNames": "a, b", "streamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/a"},
        "streamNames and streamArn are both set: name the streams in streamNames alone",
    ),
    "consumerArn": (
        {"streamNames": "a, b", "fanoutConfig.consumerArn": "arn:x"},
        "streamNames and fanoutConfig.consumerArn are both set: a consumer belongs to one stream",
    ),
    "empty": (
        {"streamNames": "a,,b"},
        "streamNames has an empty name in 'a,,b': give stream names separated by commas",
    ),
    "twice": ({"streamNames": "a, b, a"}, "streamNames names a twice"),
    "bad-name": (
        {"streamNames": "a, b:c"},
        "streamNames: 'b:c' is not a stream name (1 to 128 letters, digits, '_', '.' or '-')",
    ),
}


@pytest.mark.parametrize("case", sorted(LAUNCHER_REFUSALS))
def test_the_3x_launcher_refuses_bad_stream_names(
    java_bin: str, kcl3: Installation, tmp_path: Path, case: str
) -> None:
    keys, message = LAUNCHER_REFUSALS[case]
    proc = _launch(
        java_bin, kcl3, _launcher_file(tmp_path / "bad.properties", "http://127.0.0.1:9", **keys)
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f"kclpy-local: {message}\n" in proc.stderr
    assert "Exception" not in proc.stderr and "worker STARTED" not in proc.stderr


def test_the_3x_launcher_names_a_missing_stream(
    java_bin: str, kcl3: Installation, fresh_emulator: EmbeddedEmulator, tmp_path: Path
) -> None:
    endpoint = fresh_emulator.endpoint_url
    _aws.ensure_stream(_aws.client("kinesis", endpoint), "orders", 1)
    proc = _launch(
        java_bin,
        kcl3,
        _launcher_file(tmp_path / "m.properties", endpoint, streamNames="orders, nope"),
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    problem = [
        line for line in proc.stderr.splitlines() if line.startswith("kclpy-local: cannot start:")
    ]
    assert problem == [
        f"kclpy-local: cannot start: stream nope (of streamNames) does not exist at {endpoint}"
    ]
    # Nothing was created for an application that never started.
    assert _aws.client("dynamodb", endpoint).list_tables()["TableNames"] == []


def test_the_1x_launcher_refuses_stream_names(
    java_bin: str, kcl1: Installation, tmp_path: Path
) -> None:
    """(Its usage errors are the stock daemon's usage text, after the message.)"""
    props = _launcher_file(
        tmp_path / "one.properties", "http://127.0.0.1:9", streamName="a", streamNames="a, b"
    )
    proc = _launch(java_bin, kcl1, props)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert (
        "streamNames (several streams, the KCL's multi-stream mode) is read by the KCL 3.x launcher only; "
        "KCL 1.x consumes the one stream of streamName"
    ) in proc.stderr
    assert "worker STARTED" not in proc.stderr
