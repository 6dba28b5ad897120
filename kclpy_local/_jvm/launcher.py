"""Building our launcher (Java sources shipped in the package) into the cache.

The generation's main source and the shared sources (:meth:`Lock.launcher_sources`)
are compiled together with ``javac --release <java_release>`` against the pinned
jars, packed with zipfile (fixed timestamps), run once with ``--self-check`` (so
a launcher that cannot load what it needs never lands in the cache), then put in
place atomically with a stamp recording one sha256 over all the sources: a
change in any of them, shared ones included, means a rebuild.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from .._exceptions import BootstrapError
from .._version import __version__
from .cache import CacheLayout, Verify, atomic_write_bytes, sha256_file
from .discovery import find_tool
from .jars import Lock, sources_sha256

__all__ = ["compile_launcher", "install_launcher", "launcher_problem"]

log = logging.getLogger(__name__)

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def launcher_problem(
    layout: CacheLayout, lock: Lock, source_sha: str, verify: Verify
) -> str | None:
    """``None`` if the cached launcher was built from the current sources and is intact.

    ``source_sha`` is :meth:`Lock.launcher_sha256` (all the sources).
    """
    try:
        stamp = json.loads(layout.launcher_stamp.read_text(encoding="utf-8"))
        st = layout.launcher_jar.stat()
    except (OSError, ValueError):
        return "not built"
    if not isinstance(stamp, dict):
        return "not built"
    if (
        stamp.get("source_sha256") != source_sha
        or stamp.get("main_class") != lock.launcher.main_class
    ):
        return "built from another source"
    if stamp.get("jar_size") != st.st_size:
        return "launcher.jar has changed"
    if verify is False or (verify is True and stamp.get("jar_mtime_ns") == st.st_mtime_ns):
        return None
    if sha256_file(layout.launcher_jar) != stamp.get("jar_sha256"):
        return "launcher.jar has changed"
    return None


def compile_launcher(
    lock: Lock,
    jars: tuple[Path, ...],
    sources: Mapping[str, bytes],
    *,
    workdir: Path,
    java: str | os.PathLike[str] | None = None,
) -> tuple[bytes, str]:
    """Compile, pack and self-check the launcher; return the jar's bytes and the javac used.

    ``sources`` maps paths in the package to Java sources
    (:meth:`Lock.launcher_sources`); all are compiled together.

    Raises :class:`JavaNotFoundError` without a JDK of at least the lockfile's
    ``min_jdk``, :class:`BootstrapError` when javac or the self-check fails.
    """
    spec = lock.launcher
    java_tool = find_tool(
        "java", explicit=java, min_major=spec.min_jdk, purpose="build the KCL launcher"
    )
    javac = find_tool(
        "javac",
        near=java_tool.path.resolve(),
        min_major=spec.min_jdk,
        purpose="build the KCL launcher",
    )
    classpath = os.pathsep.join(str(p) for p in jars)
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".build-") as tmp_name:
        tmp = Path(tmp_name)
        files: list[str] = []
        for name, text in sources.items():
            src = tmp.joinpath("src", *PurePosixPath(name).parts)
            src.parent.mkdir(parents=True, exist_ok=True)
            src.write_bytes(text)
            files.append(str(src))
        classes = tmp / "classes"
        classes.mkdir()
        argv = [
            str(javac.path),
            "--release",
            str(spec.java_release),
            "-encoding",
            "UTF-8",
            "-Xlint:-options",
            "-d",
            str(classes),
            "-cp",
            classpath,
            *files,
        ]
        log.debug("compiling the launcher: %s", argv)
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BootstrapError(
                f"javac failed to compile the KCL {lock.generation} launcher "
                f"({spec.source}, exit {proc.returncode}):\n{(proc.stderr or proc.stdout).strip()[-4000:]}"
            )
        built = tmp / "launcher.jar"
        manifest = (
            f"Manifest-Version: 1.0\r\nMain-Class: {spec.main_class}\r\n"
            f"Created-By: kclpy-local {__version__}\r\n\r\n"
        )
        with zipfile.ZipFile(built, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(
                zipfile.ZipInfo("META-INF/MANIFEST.MF", _ZIP_EPOCH),
                manifest,
                compress_type=zipfile.ZIP_DEFLATED,
            )
            for path in sorted(classes.rglob("*.class")):
                info = zipfile.ZipInfo(path.relative_to(classes).as_posix(), _ZIP_EPOCH)
                zf.writestr(info, path.read_bytes(), compress_type=zipfile.ZIP_DEFLATED)
        check = [
            str(java_tool.path),
            "-Dfile.encoding=UTF-8",
            "-cp",
            os.pathsep.join([str(built), classpath]),
            spec.main_class,
            "--self-check",
        ]
        proc = subprocess.run(check, capture_output=True, text=True, check=False, timeout=120)
        if proc.returncode != 0:
            raise BootstrapError(
                f"the KCL {lock.generation} launcher failed its self-check (exit {proc.returncode}):\n"
                f"{(proc.stderr + proc.stdout).strip()[-4000:]}"
            )
        return built.read_bytes(), f"{javac.path} (Java {javac.major})"


def install_launcher(
    layout: CacheLayout, lock: Lock, jar: bytes, sources: Mapping[str, bytes], built_by: str
) -> None:
    """Put the built launcher in the cache (atomically) with its stamp."""
    atomic_write_bytes(layout.launcher_jar, jar)
    st = layout.launcher_jar.stat()
    stamp = {
        "source": lock.launcher.source,
        "sources": list(sources),
        "source_sha256": sources_sha256(sources),
        "main_class": lock.launcher.main_class,
        "jar_sha256": hashlib.sha256(jar).hexdigest(),
        "jar_size": st.st_size,
        "jar_mtime_ns": st.st_mtime_ns,
        "built_by": built_by,
    }
    atomic_write_bytes(layout.launcher_stamp, json.dumps(stamp, indent=1).encode())
