"""Developer-workflow figures, each beside a baseline measured in the same run.

    python bench/bench_workflow.py [--runs 3] [--records 20000] [--size 1000]

1. ``kclpy-local run`` to the first record processed, on a fresh embedded
   emulator (the command starts it, creates the stream, writes the properties,
   starts the daemon); baseline: the same daemon started directly through the
   Python API (``Daemon``) on an emulator that is already up, with the stream
   already created. The ratio is what the one-command convenience costs.
2. ``kclpy-local put --count N --size B`` throughput against an emulator (a
   process of its own, like ``kclpy-local up``); baseline: the same number of
   records of the same size put with boto3 ``put_records`` in batches of 500,
   in this process, against the same emulator. The ratio is the command's
   overhead (process start, payload generation, retries, accounting).

Every figure is the median over ``--runs`` runs; the emulator is wiped between
runs. Needs a bootstrapped cache (``kclpy-local bootstrap``) and moto.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kclpy_local import _aws
from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._jvm.bootstrap import installation
from kclpy_local._jvm.daemon import LOCAL_PROFILE, Daemon, processor_command

ROOT = Path(__file__).resolve().parents[1]
RECORDER = ROOT / "processors" / "recorder.py"


def _ledger_has_records(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


def run_to_first_record(workdir: Path, index: int) -> float:
    """Seconds from starting ``kclpy-local run`` to the first record in the ledger."""
    ledger = workdir / f"run-{index}.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KCLPY_LOCAL_"))}
    env.update(KCLPY_LOCAL_LEDGER=str(ledger), KCLPY_LOCAL_STATE=str(workdir / f"state-{index}"))
    stderr = (workdir / f"run-{index}.stderr").open("w")
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kclpy_local", "run", str(RECORDER), "--stream", f"bench-{index}",
         "--port", "0", "--run-dir", str(workdir / f"run-{index}")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=env, cwd=workdir,
    )
    try:
        text = ""
        endpoint = None
        while not _ledger_has_records(ledger):
            if proc.poll() is not None:
                raise RuntimeError(f"kclpy-local run exited with {proc.returncode}: {text}")
            text = (workdir / f"run-{index}.stderr").read_text()
            match = re.search(r"endpoint (http://\S+) \(embedded emulator", text)
            if match and endpoint is None:
                endpoint = match.group(1)
            if endpoint is not None:
                try:  # one record, put as soon as the stream exists
                    _aws.put_records(_aws.client("kinesis", endpoint, max_attempts=1), f"bench-{index}",
                                     [(b"first", "k")])
                    endpoint = "done"
                except Exception:
                    pass
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(120)
        stderr.close()
    return elapsed


def daemon_to_first_record(emulator: EmbeddedEmulator, workdir: Path, index: int) -> float:
    """Baseline: ``Daemon`` on the local profile, emulator up and stream created beforehand."""
    ledger = workdir / f"daemon-{index}.jsonl"
    stream = f"base-{index}"
    kinesis = _aws.client("kinesis", emulator.endpoint_url)
    _aws.ensure_stream(kinesis, stream, 1)
    _aws.put_records(kinesis, stream, [(b"first", "k")])
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "KCLPY_LOCAL_ENDPOINT": emulator.endpoint_url, "KCLPY_LOCAL_LEDGER": str(ledger)}
    overrides = {"executableName": processor_command(RECORDER), "streamName": stream,
                 "applicationName": f"base-app-{index}"}
    start = time.perf_counter()
    with Daemon(LOCAL_PROFILE, env=env, overrides=overrides, ready_timeout=None, log=lambda line: None,
                installation=installation(1)):
        while not _ledger_has_records(ledger):
            time.sleep(0.05)
        return time.perf_counter() - start


def put_command(endpoint: str, stream: str, count: int, size: int) -> float:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "kclpy_local", "put", "--stream", stream, "--endpoint", endpoint,
         "--count", str(count), "--size", str(size), "--json"],
        check=True, capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - start
    assert json.loads(out.stdout)["count"] == count, out.stdout
    return count / elapsed


def put_boto3(endpoint: str, stream: str, count: int, size: int) -> float:
    kinesis = _aws.client("kinesis", endpoint)
    payload = os.urandom(size)
    start = time.perf_counter()
    for offset in range(0, count, 500):
        batch = [{"Data": payload, "PartitionKey": f"k{offset + i}"} for i in range(min(500, count - offset))]
        response = kinesis.put_records(StreamName=stream, Records=batch)
        assert response["FailedRecordCount"] == 0
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--size", type=int, default=1000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-workflow-") as tmp:
        workdir = Path(tmp)
        run_times, daemon_times, ours, raw = [], [], [], []
        with EmbeddedEmulator(port=0) as emulator:
            for i in range(args.runs):
                emulator.reset()
                daemon_times.append(daemon_to_first_record(emulator, workdir, i))
                run_times.append(run_to_first_record(workdir, i))
                print(f"  run {i}: kclpy-local run {run_times[-1]:.1f}s, Daemon {daemon_times[-1]:.1f}s",
                      file=sys.stderr)
            for i in range(args.runs):
                # Alternate which goes first on a fresh stream, 1 shard each.
                emulator.reset()
                kinesis = _aws.client("kinesis", emulator.endpoint_url)
                _aws.ensure_stream(kinesis, "put-cmd", 1)
                _aws.ensure_stream(kinesis, "put-raw", 1)
                if i % 2:
                    raw.append(put_boto3(emulator.endpoint_url, "put-raw", args.records, args.size))
                    ours.append(put_command(emulator.endpoint_url, "put-cmd", args.records, args.size))
                else:
                    ours.append(put_command(emulator.endpoint_url, "put-cmd", args.records, args.size))
                    raw.append(put_boto3(emulator.endpoint_url, "put-raw", args.records, args.size))

    med = statistics.median
    print(f"{'figure':48} {'ours':>10} {'baseline':>10} {'ratio':>7}")
    print(f"{'run -> first record, fresh emulator (s)':48} {med(run_times):10.1f} "
          f"{med(daemon_times):10.1f} {med(run_times) / med(daemon_times):6.2f}x")
    print(f"{'  (max over runs)':48} {max(run_times):10.1f} {max(daemon_times):10.1f}")
    print(f"{f'put {args.records} x {args.size} B, 1 shard (records/s)':48} {med(ours):10,.0f} "
          f"{med(raw):10,.0f} {med(ours) / med(raw):6.2f}x")
    print("baselines: Daemon API with emulator and stream ready; boto3 put_records in-process")


if __name__ == "__main__":
    main()
