"""The pytest plugin's fixtures as a user's test uses them: the real daemon and
emulator behind ``kclpy_stream`` and ``kclpy_processor``."""

from __future__ import annotations

import base64
import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RECORDER = ROOT / "processors" / "recorder.py"


def test_a_users_end_to_end_test(kclpy_stream: Callable[..., Any], kclpy_processor: Callable[..., Any],
                                 tmp_path: Path) -> None:
    # What the README shows, with the example processor.
    stream = kclpy_stream(shards=2)
    run = kclpy_processor(RECORDER, stream, env={"KCLPY_LOCAL_LEDGER": str(tmp_path / "ledger.jsonl")})
    put = stream.put([b"alpha", "beta", (b"gamma", "key-g")])
    run.wait_processed(put)
    ledger = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert sorted(base64.b64decode(e["data"]) for e in ledger) == [b"alpha", b"beta", b"gamma"]
    assert {e["partition_key"] for e in ledger if base64.b64decode(e["data"]) == b"gamma"} == {"key-g"}
    # Progress and the lease table agree on where each shard was checkpointed.
    # (A shard that got no record has no checkpoint of the processor's: the lease
    # still says where it starts, TRIM_HORIZON.)
    checkpointed = {p.shard_id: p.checkpoint for p in run.progress() if p.checkpoint is not None}
    assert set(checkpointed) == {p.shard_id for p in put}
    leases = {lease.lease_key: lease.checkpoint for lease in run.leases()}
    assert {shard: leases.get(shard) for shard in checkpointed} == checkpointed


def test_the_readme_example(kclpy_stream: Callable[..., Any], kclpy_processor: Callable[..., Any],
                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the README's paths are relative to the project
    # --- as in README.md ---
    stream = kclpy_stream(shards=2)
    run = kclpy_processor("processors/orders.py", stream, env={"ORDERS_DIR": str(tmp_path)})
    run.wait_processed(stream.put([b'{"id": 1}', b'{"id": 2}']))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.json", "2.json"]


def test_wait_processed_names_what_is_missing(kclpy_stream: Callable[..., Any],
                                              kclpy_processor: Callable[..., Any], tmp_path: Path) -> None:
    stream = kclpy_stream()
    # A processor that never gets past initialize: nothing is ever processed.
    stuck = tmp_path / "stuck.py"
    stuck.write_text(textwrap.dedent("""
        import time
        from kclpy_local import RecordProcessor, run

        class Stuck(RecordProcessor):
            def process_records(self, batch, checkpointer):
                time.sleep(3600)
            def lease_lost(self): pass
            def shard_ended(self, checkpointer): pass
            def shutdown_requested(self, checkpointer): pass

        run(Stuck())
    """))
    run = kclpy_processor(stuck, stream)
    put = stream.put([b"x"])
    with pytest.raises(AssertionError, match=rf"not processed within 5s: {put[0].shard_id} up to {put[0].sequence_number}"):
        run.wait_processed(put, timeout=5)


def test_the_plugin_is_registered_for_users(pytester: pytest.Pytester) -> None:
    # Loaded through the package's pytest11 entry point, not through this conftest.
    result = pytester.runpytest_subprocess("--fixtures", "-p", "no:cacheprovider")
    for name in ("kclpy_endpoint", "kclpy_stream", "kclpy_processor"):  # in any order
        result.stdout.fnmatch_lines([f"{name}*"])
