"""amazon-kclpy's own protocol tests, run against kclpy_local.KCLProcess.

The tests are taken from the amazon-kclpy sdist on PyPI (the version installed
here) and run in a separate pytest process in which
``amazon_kclpy.kcl.KCLProcess`` is replaced by ``kclpy_local.KCLProcess``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

SHIM_CONFTEST = textwrap.dedent(
    """
    import amazon_kclpy.kcl
    import kclpy_local

    amazon_kclpy.kcl.KCLProcess = kclpy_local.KCLProcess
    """
)
SHIM_UTILS = textwrap.dedent(
    """
    import io

    def make_io_obj(text=""):
        return io.StringIO(text)
    """
)


@pytest.fixture(scope="module")
def upstream_tests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    version = metadata.version("amazon-kclpy")
    download = tmp_path_factory.mktemp("sdist")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
         "-d", str(download), f"amazon-kclpy=={version}"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    archives = list(download.glob("amazon_kclpy-*.tar.gz")) + list(download.glob("amazon-kclpy-*.tar.gz"))
    if proc.returncode != 0 or not archives:
        pytest.skip(f"the amazon-kclpy {version} sdist could not be downloaded from PyPI: {proc.stderr[-300:]}")
    target = tmp_path_factory.mktemp("upstream")
    with tarfile.open(archives[0]) as tar:
        members = [m for m in tar.getmembers() if "/test/" in m.name and m.name.endswith(".py")]
        assert members, "the sdist has no test/ directory"
        for member in members:
            member.name = Path(member.name).name
            tar.extract(member, target, filter="data")
    (target / "conftest.py").write_text(SHIM_CONFTEST)
    (target / "utils.py").write_text(SHIM_UTILS)
    return target


def _run(directory: Path, on_error: str | None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("KCLPY_LOCAL_ON_ERROR", None)
    if on_error:
        env["KCLPY_LOCAL_ON_ERROR"] = on_error
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:kclpy_local",
         "--rootdir", str(directory), str(directory)],
        capture_output=True, text=True, timeout=300, cwd=directory, env=env, check=False,
    )


#: The upstream test whose canned daemon input answers a checkpoint at no position
#: (``checkpoint()`` at shard end) with a reply for sequence number "456": a real
#: daemon echoes the position asked (KCL 1.x and 3.x MultiLangProtocol.checkpoint),
#: and kclpy-local refuses a reply for another position as a protocol error.
FOREIGN_REPLY_TEST = "test_kcl_py_integration_test_perfect_input"
FOREIGN_REPLY_ERROR = "the checkpoint reply is for sequenceNumber '456', but None was asked"


def _failed(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return sorted(ln.split("::")[1].split()[0] for ln in proc.stdout.splitlines() if ln.startswith("FAILED"))


def test_upstream_tests_pass_with_log_and_continue(upstream_tests: Path) -> None:
    proc = _run(upstream_tests, "continue")
    assert " passed" in proc.stdout, proc.stdout + proc.stderr
    assert _failed(proc) == [FOREIGN_REPLY_TEST], proc.stdout
    assert FOREIGN_REPLY_ERROR in proc.stdout


def test_upstream_tests_by_default_only_the_acknowledge_on_error_test_differs(upstream_tests: Path) -> None:
    """By default a processor exception exits the process instead of being
    acknowledged; the one upstream test that asserts log-and-continue sees that
    (beside the test with a checkpoint reply for another position)."""
    proc = _run(upstream_tests, None)
    assert _failed(proc) == sorted(
        ["test_kcl_process_exits_on_record_processor_exception", FOREIGN_REPLY_TEST]
    ), proc.stdout
    assert "SystemExit" in proc.stdout
