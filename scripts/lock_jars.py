#!/usr/bin/env python3
"""Regenerate the pinned jar lockfile of one KCL generation (maintainers only).

Usage::

    python3 scripts/lock_jars.py --kcl 1
    python3 scripts/lock_jars.py --kcl 3

What it does: writes a ``pom.xml`` into a temporary directory, asks Maven
(``mvn``, with strict checksums) to copy the runtime closure in repository
layout, computes the sha256 and size of every jar itself, and rewrites
``kclpy_local/_jvm/locks/kcl<N>.json``.  Every key of an existing lockfile other than
``artifacts`` (``root``, ``launcher``, ``resolve``) is kept, so the launcher
settings (main class, source, shared sources, Java release) stay as a maintainer
wrote them; ``--root`` changes the root.

The pom depends on the root artifact alone, unless the lockfile has a
``resolve`` object: then on each of its ``dependencies`` in order (objects with
``coordinate`` and an optional ``"transitive": false``, which excludes that
artifact's own dependencies), the root first if they do not name it.  Maven's
nearest-wins rule then picks one version per artifact, so a recipe can say
exactly which versions make up a closure; its ``why`` says why (kept as is).

Review the diff before committing: a new version of any artifact is a change of
the software users run.  Installing kclpy-local never runs this script; users'
bootstraps download exactly the pinned files and check them against the pinned
sha256 values.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
LOCK_DIR = Path(__file__).resolve().parent.parent / "kclpy_local" / "_jvm" / "locks"

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>kclpy-local</groupId>
  <artifactId>lock</artifactId>
  <version>0</version>
  <dependencies>
{dependencies}
  </dependencies>
</project>
"""

DEPENDENCY = """    <dependency>
      <groupId>{group}</groupId>
      <artifactId>{artifact}</artifactId>
      <version>{version}</version>{exclusions}
    </dependency>"""

NO_TRANSITIVE = """
      <exclusions>
        <exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion>
      </exclusions>"""


def _coordinate(text: str) -> tuple[str, str, str]:
    parts = text.split(":")
    if len(parts) != 3 or not all(parts):
        raise SystemExit(f"not a group:artifact:version coordinate: {text!r}")
    return parts[0], parts[1], parts[2]


def pom_dependencies(root: str, recipe: dict[str, Any] | None) -> list[tuple[str, bool]]:
    """``(coordinate, transitive)`` for each dependency of the pom, in order."""
    if not recipe:
        return [(root, True)]
    listed: list[tuple[str, bool]] = []
    for entry in recipe.get("dependencies", []):
        if not isinstance(entry, dict) or not isinstance(entry.get("coordinate"), str):
            raise SystemExit(f"resolve.dependencies: not an object with a coordinate: {entry!r}")
        _coordinate(entry["coordinate"])
        listed.append((entry["coordinate"], entry.get("transitive", True) is not False))
    if root not in [c for c, _ in listed]:
        listed.insert(0, (root, True))
    return listed


def render_pom(dependencies: list[tuple[str, bool]]) -> str:
    blocks = []
    for coordinate, transitive in dependencies:
        group, artifact, version = _coordinate(coordinate)
        blocks.append(DEPENDENCY.format(
            group=group, artifact=artifact, version=version,
            exclusions="" if transitive else NO_TRANSITIVE,
        ))
    return POM.format(dependencies="\n".join(blocks))


def resolve(root: str, workdir: Path, recipe: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run Maven and describe every jar of the runtime closure of ``root`` (or of ``recipe``)."""
    group, artifact, _ = _coordinate(root)
    (workdir / "pom.xml").write_text(render_pom(pom_dependencies(root, recipe)), encoding="utf-8")
    out = workdir / "jars"
    argv = [
        "mvn",
        "--batch-mode",
        "--quiet",
        "--strict-checksums",
        "-f",
        str(workdir / "pom.xml"),
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        "-DincludeScope=runtime",
        "-Dmdep.useRepositoryLayout=true",
        f"-DoutputDirectory={out}",
    ]
    subprocess.run(argv, check=True)
    entries: list[dict[str, Any]] = []
    for jar in sorted(out.rglob("*.jar")):
        rel = jar.relative_to(out).parts  # group/parts/.../artifact/version/file.jar
        a_version, a_artifact = rel[-2], rel[-3]
        a_group = ".".join(rel[:-3])
        if jar.name != f"{a_artifact}-{a_version}.jar":
            raise SystemExit(f"unexpected file name (classifier?): {jar}")
        data = jar.read_bytes()
        entries.append(
            {
                "group": a_group,
                "artifact": a_artifact,
                "version": a_version,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            }
        )
    names = [(e["group"], e["artifact"]) for e in entries]
    if len(names) != len(set(names)):
        raise SystemExit("two versions of one artifact in the closure")
    if (group, artifact) not in names:
        raise SystemExit(f"the root {root} is not in the resolved closure")
    entries.sort(key=lambda e: (e["group"], e["artifact"]))
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kcl", type=int, required=True, help="KCL generation (1, 3, ...)")
    parser.add_argument("--root", help="group:artifact:version of the KCL artifact")
    parser.add_argument("--output", type=Path, help="lockfile path (default: the package's)")
    args = parser.parse_args(argv)
    if shutil.which("mvn") is None:
        print("mvn not found on PATH; install Apache Maven", file=sys.stderr)
        return 1
    path: Path = args.output or LOCK_DIR / f"kcl{args.kcl}.json"
    lock: dict[str, Any] = (
        json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    )
    lock["generation"] = args.kcl
    if args.root:
        lock["root"] = args.root
    if "root" not in lock:
        parser.error("--root is required for a new generation")
    with tempfile.TemporaryDirectory(prefix="kclpy-lock-") as tmp:
        lock["artifacts"] = resolve(lock["root"], Path(tmp), lock.get("resolve"))
    path.write_text(json.dumps(lock, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path} ({len(lock['artifacts'])} artifacts)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
