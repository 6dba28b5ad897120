"""``scripts/demo``'s program (scripts/demo.py) end to end: the real JVM, the embedded
emulator, records processed, and a graceful stop reported as one in words."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kclpy_local._jvm.bootstrap import Installation

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_ends_with_a_graceful_stop_in_words(kcl1: Installation, kcl_cache: Path,
                                                    tmp_path: Path) -> None:
    pytest.importorskip("moto.server")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KCLPY_LOCAL_"))}
    env.update(KCLPY_LOCAL_CACHE=str(kcl_cache), KCLPY_LOCAL_STATE=str(tmp_path / "state"))
    demo = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), "--records", "4", "--shards", "2"],
                          env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=300, check=False)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    lines = demo.stdout.splitlines()
    assert "4 of 4 records processed; stopping (graceful shutdown) ..." in lines
    # The JVM exits 143 after a graceful stop: said in words, the status kept for who needs it.
    assert lines[-1] == ("stopped gracefully: 2 lease(s) released for another worker to take "
                         "(daemon exit status 143 = SIGTERM, as asked)"), demo.stdout
