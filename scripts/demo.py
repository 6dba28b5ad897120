"""Run the example processor under the real KCL daemon against the embedded emulator."""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
import time
from pathlib import Path

from kclpy_local import KclpyLocalError, _aws
from kclpy_local._emulators.moto import EmbeddedEmulator
from kclpy_local._jvm.daemon import Daemon
from kclpy_local._jvm.supervise import StopReport

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=20)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--verbose", action="store_true", help="show the daemon's log")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedEmulator(port=0) as emu:
        ledger = Path(tmp) / "ledger.jsonl"
        print(f"embedded emulator (moto) on {emu.endpoint_url}")
        kinesis = _aws.client("kinesis", emu.endpoint_url)
        _aws.ensure_stream(kinesis, "kclpy-local-demo", args.shards)
        env = {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "KCLPY_LOCAL_ENDPOINT": emu.endpoint_url,
            "KCLPY_LOCAL_LEDGER": str(ledger),
        }
        stop = StopReport()  # how the stop went, from the daemon's log

        def log(line: str) -> None:
            stop.feed(line)
            if args.verbose:
                print("  daemon:", line)

        started = time.monotonic()
        print("starting the KCL 1.15.3 daemon with properties/local.properties ...")
        with Daemon(ROOT / "properties" / "local.properties", env=env, cwd=ROOT, log=log,
                    overrides={"executableName": f"{sys.executable} processors/recorder.py"},
                    ready_timeout=120) as daemon:
            print(f"worker STARTED after {time.monotonic() - started:.1f}s; putting {args.records} records")
            results = _aws.put_records(kinesis, "kclpy-local-demo",
                                       [(f"hello {i}".encode(), f"user-{i % 5}") for i in range(args.records)])
            deadline = time.monotonic() + 120
            seen: list[dict[str, object]] = []
            while time.monotonic() < deadline and len(seen) < len(results):
                time.sleep(0.5)
                seen = [json.loads(x) for x in ledger.read_text().splitlines()] if ledger.exists() else []
            for entry in sorted(seen, key=lambda e: (str(e["shard"]), int(str(e["sequence_number"])))):
                data = base64.b64decode(str(entry["data"])).decode()
                print(f"  processed {entry['shard']} seq {entry['sequence_number']:>3} "
                      f"key {entry['partition_key']}: {data}")
            time.sleep(2)
            for lease in _aws.read_leases(_aws.client("dynamodb", emu.endpoint_url), "kclpy-local-demo"):
                print(f"  lease {lease.lease_key}: checkpoint {lease.checkpoint}, owner {lease.owner}")
            print(f"{len(seen)} of {len(results)} records processed; stopping (graceful shutdown) ...")
        code = daemon.returncode
        print(stop.describe(code) if code is not None else "the daemon did not start")
        return 0 if len(seen) >= len(results) and stop.graceful else 1


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KclpyLocalError as exc:  # a stale launcher, a missing Java, a port taken: say so
        print(f"demo: error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
