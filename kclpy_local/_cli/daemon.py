"""``kclpy-local daemon PROPERTIES``: run the KCL daemon in the foreground.

The JVM's log goes to stderr.  With ``--kcl 3`` the file is translated from the
1.x form first (into a temporary copy), one line per change on stderr
(``kclpy-local: translated for KCL 3.x: ...``).  A worker that reads by
enhanced fan-out (KCL 3.x with ``retrievalMode = FANOUT``) is refused before the
JVM starts when its Kinesis engine cannot serve it: by name for an engine that
``kclpy-local up`` started at the file's Kinesis endpoint, else by asking the
endpoint (HTTP/2 as the launcher speaks it, and SubscribeToShard).  SIGINT and
SIGTERM ask it to stop gracefully (record processors get shutdownRequested); a second signal
kills it.  The exit code is the daemon's (128+N when it died of signal N), except
4 when its log says a record processor failed and no stop was asked for, as
``run`` exits (the KCL daemon itself exits 1 then).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from .._emulators.fanout import values_check
from .._jvm.daemon import Daemon
from .._jvm.supervise import DaemonLog, StopSignals, run_exit_code
from . import _common
from ._common import seconds

__all__ = ["register"]


def register(subparsers: _common.Subparsers) -> None:
    summary = "run the KCL daemon (our launcher) on a properties file, in the foreground"
    p = _common.add_command(subparsers, "daemon", summary, _common.paragraph(__doc__, 0))
    p.add_argument("properties", type=Path, metavar="PROPERTIES")
    _common.add_kcl_argument(
        p,
        "KCL generation: %(choices)s (default: %(default)s); 3 translates the file "
        "from the 1.x form",
    )
    _common.add_cache_dir_argument(p, "the bootstrap cache directory")
    _common.add_java_argument(p)
    p.add_argument(
        "--print-command", action="store_true", help="print the java command line and exit"
    )
    p.add_argument(
        "--stop-timeout",
        type=seconds(),
        default=30.0,
        metavar="SECONDS",
        help="grace period after SIGTERM before SIGKILL (default: %(default)s)",
    )
    p.add_argument(
        "--no-validate",
        dest="validate",
        action="store_false",
        help="start even if the properties validator reports errors (or the Kinesis engine "
        "cannot serve the worker's enhanced fan-out)",
    )
    _common.add_guard_argument(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    sink = DaemonLog(sys.stderr)  # the log as it comes, and why the daemon exited
    daemon = Daemon(
        args.properties,
        **_common.daemon_options(args),
        log=sink,
        ready_timeout=None,
        stop_timeout=args.stop_timeout,
        validate=args.validate,
        checks=(values_check(args.kcl),) if args.validate else (),
    )
    if args.print_command:
        print(shlex.join(daemon.argv()))
        return 0
    with StopSignals() as signals:
        try:
            daemon.start(wait_ready=False)
            code: int | None = None
            stopping = False
            while code is None:
                code = daemon.wait(timeout=0.2)
                if code is None and signals.requested.is_set() and not stopping:
                    stopping = True
                    print("kclpy-local: stopping the daemon (again to kill it)", file=sys.stderr)
                    daemon.terminate()
                if code is None and signals.count > 1:
                    code = daemon.stop(timeout=0)
            return run_exit_code(code, sink.reason, stopping=stopping)
        finally:
            daemon.stop()
