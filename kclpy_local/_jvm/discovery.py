"""Finding a Java runtime and compiler, and their major version.

Lookup order for ``java``: an explicit path, ``$KCLPY_LOCAL_JAVA``,
``$JAVA_HOME/bin/java``, then ``java`` on ``PATH``.  ``javac`` is looked up next
to the chosen ``java`` first (so both come from one JDK), then the same way.

A ``JAVA_HOME`` that the lookup reaches must be a Java installation: when it is
not a directory, or has no ``bin/<tool>``, the lookup stops with
:class:`JavaNotFoundError` naming it, instead of quietly taking another Java
from ``PATH``; so does a ``$KCLPY_LOCAL_JAVA`` that is not an executable.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import _env, _process
from .._exceptions import JavaNotFoundError

__all__ = ["JavaTool", "find_tool", "java_major_version"]

log = logging.getLogger(__name__)

_INSTALL_HINT = (
    "install a JDK (e.g. `apt-get install openjdk-17-jdk-headless`), or set JAVA_HOME "
    "or KCLPY_LOCAL_JAVA to its java"
)
_VERSION = re.compile(r'(?:version "|javac )(\d+)(?:\.(\d+))?')


@dataclass(frozen=True, slots=True)
class JavaTool:
    """An executable of a JDK (``java`` or ``javac``) and its major version."""

    path: Path
    major: int


def _candidates(
    name: str, explicit: str | os.PathLike[str] | None, near: Path | None
) -> Iterator[Path]:
    """The places to look, in order; lazily, so that a ``JAVA_HOME`` the lookup does
    not reach (an earlier candidate was taken) is not judged."""
    if explicit is not None:
        yield Path(explicit)
        return
    if near is not None:
        yield near.parent / name
    env = _env.JAVA.get()
    if env:
        yield _from_java_variable(env) if name == "java" else Path(env).parent / name
    if os.environ.get("JAVA_HOME"):
        yield _from_java_home(name)
    on_path = shutil.which(name)
    if on_path:
        yield Path(on_path)


def _from_java_variable(value: str) -> Path:
    """``$KCLPY_LOCAL_JAVA``, which must be an executable (never skipped for another)."""
    path = Path(value)
    if path.is_file() and os.access(path, os.X_OK):
        return path
    problem = (
        "is a directory"
        if path.is_dir()
        else ("is not executable" if path.exists() else "does not exist")
    )
    err = JavaNotFoundError(f"{_env.JAVA.name}={value} {problem}")
    err.hint = f"unset {_env.JAVA.name}, or set it to the path of a java executable (Java 8+)"
    raise err


def _from_java_home(name: str) -> Path:
    """``$JAVA_HOME/bin/<name>``; :class:`JavaNotFoundError` naming ``JAVA_HOME`` when
    it is not a directory or has no such executable (never a silent fall-back)."""
    home = Path(os.environ["JAVA_HOME"])
    tool = home / "bin" / name
    if not home.is_dir():
        problem = "is not a directory" if home.exists() else "does not exist"
    elif not (tool.is_file() and os.access(tool, os.X_OK)):
        problem = f"has no executable bin/{name}"
        if name == "javac" and (home / "bin" / "java").is_file():
            problem += " (a JRE, not a JDK?)"
    else:
        return tool
    err = JavaNotFoundError(f"JAVA_HOME={home} {problem}")
    err.hint = "unset JAVA_HOME, or point it at a JDK 11 or newer (the directory that has bin/java)"
    raise err


def java_major_version(tool: Path) -> int:
    """Run ``tool -version`` and return its major version (8 for ``1.8.0_x``)."""
    try:
        proc = _process.run(_process.Launch([str(tool), "-version"], new_session=False), 60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise JavaNotFoundError(f"cannot run {tool} -version: {exc}") from exc
    match = _VERSION.search(proc.stderr + proc.stdout)
    if proc.returncode != 0 or match is None:
        raise JavaNotFoundError(
            f"{tool} -version failed (exit {proc.returncode}): "
            f"{(proc.stderr or proc.stdout).strip()[:300]}"
        )
    major = int(match.group(1))
    if major == 1 and match.group(2):
        major = int(match.group(2))
    return major


def find_tool(
    name: str,
    *,
    explicit: str | os.PathLike[str] | None = None,
    near: Path | None = None,
    min_major: int = 8,
    purpose: str = "run the KCL daemon",
) -> JavaTool:
    """Find the JDK tool ``name`` (``java`` or ``javac``) of at least ``min_major``.

    Raises :class:`JavaNotFoundError` (with a hint) when none is found or the
    one found is too old.
    """
    tried: list[str] = []
    for candidate in _candidates(name, explicit, near):
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            tried.append(str(candidate))
            continue
        major = java_major_version(candidate)
        if major < min_major:
            err = JavaNotFoundError(
                f"{candidate} is Java {major}; Java {min_major} or newer is needed to {purpose}"
            )
            err.hint = _INSTALL_HINT
            raise err
        log.debug("using %s (Java %d)", candidate, major)
        return JavaTool(path=candidate, major=major)
    where = f" (tried: {', '.join(tried)})" if tried else ""
    err = JavaNotFoundError(f"no `{name}` found to {purpose}{where}")
    err.hint = _INSTALL_HINT
    raise err
