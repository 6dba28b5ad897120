"""``kclpy-local bootstrap``: fetch and verify the KCL jars, build the launcher.

Idempotent: a second run finds everything in the cache and makes no network
request.  Prints a one-line summary (or, with ``--json``, a JSON object with
the classpath and what was done) on stdout; progress goes to stderr (every step
on a terminal, else one line per jar downloaded and per 4 MiB of it).  All the
downloads together are bounded by ``$KCLPY_LOCAL_DOWNLOAD_TIMEOUT`` seconds
(default 900).  SIGTERM and SIGHUP stop it like Ctrl-C (exit 130): the partial
download is deleted, and a later bootstrap deletes what a killed one left.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from types import FrameType

from .._env import default_cache_dir
from .._jvm.bootstrap import run_bootstrap
from . import _common

__all__ = ["register"]


def register(subparsers: _common.Subparsers) -> None:
    summary = "fetch and verify the KCL jars and build the launcher (once)"
    p = _common.add_command(subparsers, "bootstrap", summary, _common.paragraph(__doc__, 0))
    _common.add_kcl_argument(p, "KCL generation: %(choices)s (default: %(default)s)")
    _common.add_cache_dir_argument(p)
    p.add_argument(
        "--repository",
        metavar="URL",
        help="Maven repository base URL (default: $KCLPY_LOCAL_MAVEN_REPO or Maven Central)",
    )
    p.add_argument(
        "--from",
        dest="from_dir",
        type=Path,
        metavar="DIR",
        help="install from a directory of jars (flat or Maven layout), without network",
    )
    p.add_argument(
        "--offline", action="store_true", help="never download; fail if a jar is missing or damaged"
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show progress on stderr (default: every step on a terminal, else the "
        "downloads, one line per jar and per 4 MiB)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_run)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt, so every ``finally`` runs (the
    partial download is removed) instead of the process ending on the spot."""
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(args: argparse.Namespace) -> int:
    with _signals_interrupt():
        result = run_bootstrap(
            args.kcl,
            cache_dir=args.cache_dir,
            repository=args.repository,
            from_dir=args.from_dir,
            offline=args.offline,
            progress=args.progress,
        )
    inst, summary = result.installation, result.summary
    cache = args.cache_dir or default_cache_dir()
    if args.json:
        payload = {
            "generation": inst.generation,
            "cache_dir": str(cache),
            "main_class": inst.main_class,
            "launcher_jar": str(inst.launcher_jar),
            "jars": [str(j) for j in inst.jars],
            "classpath": inst.classpath(),
            "summary": asdict(summary),
        }
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        done = [
            f"{len(summary.downloaded)} downloaded" if summary.downloaded else "",
            f"{len(summary.copied)} copied" if summary.copied else "",
            f"{len(summary.replaced)} replaced" if summary.replaced else "",
            f"{len(summary.reused)} already cached" if summary.reused else "",
            "launcher built" if summary.launcher_built else "launcher up to date",
        ]
        print(
            f"KCL {inst.generation}: {len(inst.jars)} jars verified in "
            f"{inst.launcher_jar.parent} ({', '.join(d for d in done if d)}; "
            f"{summary.seconds:.1f}s)"
        )
    return 0
