"""bench/bench_runtime.py drives each contender as the daemon does and verifies it:
a contender that fails quietly is reported FAILED, not fast."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "bench_runtime.py"
SMALL = ["--messages", "4", "--records", "20", "--size", "64", "--rounds", "1"]


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), *SMALL, *args],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
    )


def test_every_contender_passes_its_checks() -> None:
    done = _bench()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAILED" not in done.stdout
    for label in ("amazon-kclpy KCLProcess", "kclpy_local.KCLProcess (drop-in)",
                  "kclpy_local.run (native)", "kclpy_local.run (native, strict)", "floor:"):
        assert label in done.stdout


def test_a_processor_that_raises_is_failed_even_when_acknowledged() -> None:
    """amazon-kclpy logs the exception and sends the status anyway: the byte count
    (and the missing checkpoint) show that batch 2 was not processed."""
    done = _bench("--inject-failure", "2")
    assert done.returncode == 1, done.stdout + done.stderr
    rows = {line.split("  ")[0]: line for line in done.stdout.splitlines() if "FAILED:" in line}
    kclpy = rows["amazon-kclpy KCLProcess"]
    assert "read 3840 record bytes of 5120 sent" in kclpy, kclpy
    assert "status lines" not in kclpy  # every message was acknowledged
    for label in ("kclpy_local.KCLProcess (drop-in)", "kclpy_local.run (native)"):
        assert "exit status 4" in rows[label], rows[label]
    assert not any(line.startswith("floor:") and "FAILED" in line for line in done.stdout.splitlines())
