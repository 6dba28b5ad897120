"""The package's own checks: ruff, ruff format and mypy --strict stay clean on kclpy_local/
(the dev and test extras install them; CI runs them through this suite)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool(name: str) -> str:
    path = Path(sys.executable).with_name(name)
    assert path.exists(), f"{name} is a test requirement: pip install -e '.[test]'"
    return str(path)


@pytest.mark.parametrize(
    "argv",
    [
        ["ruff", "check", "kclpy_local"],
        ["ruff", "format", "--check", "kclpy_local"],
        ["mypy", "kclpy_local"],
    ],
    ids=["ruff", "ruff-format", "mypy-strict"],
)
def test_package_is_clean(argv: list[str]) -> None:
    done = subprocess.run(
        [_tool(argv[0]), *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
