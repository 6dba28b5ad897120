"""In CI a skip for a prerequisite the suite installs itself is a failure; on a
developer's machine it stays a skip. Driven through pytester with the suite's
own conftest."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

TESTS = '''
import pytest
pytest.importorskip("no_such_module_anywhere", reason="needs pip install 'kclpy-local[emulator]'")
'''

SKIPS = '''
import pytest
def test_maven():
    pytest.skip("Maven repository unreachable: connection failed")
def test_npm():
    pytest.skip("npm registry unreachable: ENOTFOUND")
def test_docker():
    pytest.skip("no Docker engine: nothing answers on the socket")
def test_jdk():
    pytest.skip("no JDK: `java` is not on PATH and JAVA_HOME is unset")
def test_cargo():
    pytest.skip("ferrokinesis needs cargo: cargo is not on PATH (needs cargo: Rust's build tool)")
def test_crates():
    pytest.skip("crates.io unreachable: cannot install ferrokinesis 0.7.0")
def test_runs():
    pass
'''


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    pytester.makepyfile(test_skips=SKIPS, test_collect=TESTS)
    return pytester


def test_installable_prerequisites_fail_in_ci(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    result = suite.runpytest("-p", "no:cacheprovider", "-rs", "--continue-on-collection-errors")
    result.assert_outcomes(passed=1, failed=3, skipped=3, errors=1)
    result.stdout.fnmatch_lines(["*skipped in CI, where the suite installs this prerequisite itself*Maven*"])
    result.stdout.fnmatch_lines(["*skipped in CI, where the suite installs this prerequisite itself*crates.io*"])
    result.stdout.fnmatch_lines(["SKIPPED*ferrokinesis needs cargo*"])


def test_they_stay_skips_elsewhere(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    result = suite.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=7)
