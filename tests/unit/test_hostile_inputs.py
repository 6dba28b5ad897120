"""Hostile input to the command line: a documented exit code and one clear line, never a traceback.

Every row of :data:`CASES` is ``(argv, env, code, message)``: the command
``python -m kclpy_local ARGV...`` run in a subprocess, with ``env`` added to a
clean environment (no ``KCLPY_LOCAL_*`` or ``JAVA_HOME`` of the caller, dummy
AWS credentials, a private state directory, ``$KCLPY_LOCAL_ENDPOINT`` a closed
loopback port), must exit with ``code`` and say
``message`` on stderr, with no ``Traceback``. The codes are the README's: 2
usage or properties error, 3 protocol error, 5 bootstrap error, 6 no usable Java.

Conventions of the table:

- ``{name}`` in an argument or a value is a file made for the run (see
  :func:`_files`): ``{dir}`` a directory, ``{file}`` a plain file, ``{binary}``
  bytes that are not UTF-8, ``{unreadable}`` / ``{unreadable_py}`` /
  ``{unreadable_properties}`` files nobody may read (mode 000), ``{syntax_py}``
  and ``{nul_py}`` processors that do not compile, ``{missing}`` a path that
  does not exist, ``{recorder}`` the example processor, ``{local}`` the built-in
  local properties profile, ``{tmp}`` the run's directory.
- An ``argv`` starting with ``<FILE`` feeds FILE on stdin, as a shell would.
- An ``argv`` whose first word is ``{recorder}`` runs the processor script itself
  (``python processors/recorder.py``) instead of a ``kclpy-local`` command.
- ``NOWHERE`` is a loopback URL where nothing listens: a row with it must fail
  before any request (nothing starts a JVM or an emulator here either).

Run as root, the commands lose the capabilities that let root read any file,
so that mode 000 means unreadable for them too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOWHERE = "http://127.0.0.1:9"
RUN = ["run", "{recorder}", "--stream", "s", "--endpoint", NOWHERE]  # fails before NOWHERE

Case = tuple[list[str], dict[str, str], int, str]

CASES: list[Case] = [
    # -- not UTF-8 ---------------------------------------------------------------------
    (["validate", "{binary}"], {}, 3, "{binary} is not UTF-8 text (byte b'\\xff')"),
    (["<{binary}", "validate", "-"], {}, 3, "- is not UTF-8 text"),
    (["<{binary}", "{recorder}"], {}, 3, "protocol error on line 1"),
    # -- endpoints -----------------------------------------------------------------------
    (["leases", "app", "--endpoint", "http://127.0.0.1:99999"], {}, 2, "invalid endpoint URL 'http://127.0.0.1:99999'"),
    (["leases", "app", "--endpoint", "http://[::1"], {}, 2, "invalid endpoint URL 'http://[::1'"),
    (["leases", "app", "--endpoint", "ftp://127.0.0.1"], {}, 2, "invalid endpoint URL 'ftp://127.0.0.1'"),
    (["leases", "app", "--endpoint", ""], {}, 2, "argument --endpoint: an empty URL"),
    ([*RUN[:4], "--endpoint", ""], {}, 2, "argument --endpoint: an empty URL"),
    (["doctor", "--endpoint", ""], {}, 2, "argument --endpoint: an empty URL"),
    (["put", "--stream", "s", "--count", "1"], {"KCLPY_LOCAL_ENDPOINT": "http://127.0.0.1:70000"}, 2,
     "invalid endpoint URL 'http://127.0.0.1:70000'"),
    # -- ports ---------------------------------------------------------------------------
    (["up", "--port", "99999"], {}, 2, "argument --port: port 99999 is out of range (0 to 65535)"),
    (["up", "--port", "-1"], {}, 2, "argument --port: port -1 is out of range"),
    (["up", "--kinesis-port", "65536"], {}, 2, "argument --kinesis-port: port 65536 is out of range"),
    ([*RUN, "--port", "99999"], {}, 2, "argument --port: port 99999 is out of range"),
    ([*RUN, "--port", "-5"], {}, 2, "argument --port: port -5 is out of range"),
    ([*RUN, "--port", "http"], {}, 2, "argument --port: 'http' is not a port number"),
    # -- whole numbers -------------------------------------------------------------------
    ([*RUN, "--shards", "0"], {}, 2, "argument --shards: must be at least 1, got 0"),
    ([*RUN, "--shards", "-3"], {}, 2, "argument --shards: must be at least 1, got -3"),
    ([*RUN, "--shards", "1e3"], {}, 2, "argument --shards: not a whole number: '1e3'"),
    ([*RUN, "--shards", "100000000"], {}, 2, "argument --shards: must be at most 10000, got 100000000"),
    ([*RUN, "--restart", "--max-restarts", "-1"], {}, 2, "--max-restarts must be 0 or more, not -1"),
    ([*RUN, "--max-restarts", "3"], {}, 2, "--max-restarts is for --restart"),
    (["put", "--stream", "s", "--count", "0"], {}, 2, "argument --count: must be at least 1, got 0"),
    (["put", "--stream", "s", "--count", "-5"], {}, 2, "argument --count: must be at least 1, got -5"),
    (["put", "--stream", "s", "--count", "ten"], {}, 2, "argument --count: not a whole number: 'ten'"),
    (["put", "--stream", "s", "--count", "1", "--size", "0"], {}, 2, "argument --size: must be at least 1, got 0"),
    (["put", "--stream", "s", "--count", "1", "--size", "99999999999"], {}, 2,
     "--size 99999999999: a record and its partition key take at most 1048576 bytes"),
    (["put", "--stream", "s", "--create", "--shards", "0"], {}, 2, "argument --shards: must be at least 1, got 0"),
    (["put", "--stream", "s", "--create", "--shards", "99999999999999999999"], {}, 2,
     "argument --shards: must be at most 10000, got 99999999999999999999"),
    (["put", "--stream", "s", "--size", "10"], {}, 2, "--size needs --count"),
    (["put", "--stream", "s", "--count", "3", "--json-input"], {}, 2, "--json-input reads lines"),
    (["metrics", "app", "--since", "0"], {}, 2, "argument --since: must be at least 1 minute, got 0"),
    (["metrics", "app", "--since", "-5"], {}, 2, "argument --since: must be at least 1 minute, got -5"),
    (["metrics", "app", "--since", "999999999999"], {}, 2, "argument --since: must be at most 655200 minutes"),
    # -- seconds -------------------------------------------------------------------------
    ([*RUN, "--ready-timeout", "0"], {}, 2, "argument --ready-timeout: must be more than 0 seconds, got 0"),
    ([*RUN, "--ready-timeout", "nan"], {}, 2, "argument --ready-timeout: must be more than 0 seconds, got nan"),
    ([*RUN, "--ready-timeout", "soon"], {}, 2, "argument --ready-timeout: not a number of seconds: 'soon'"),
    ([*RUN, "--ready-timeout", "1e300"], {}, 2, "argument --ready-timeout: must be at most 2592000 seconds, got 1e300"),
    ([*RUN, "--restart", "--backoff", "-2"], {}, 2, "--backoff must be 0 or more seconds, not -2"),
    ([*RUN, "--restart", "--backoff", "1e309"], {}, 2, "--backoff must be 0 or more seconds, not inf"),
    (["up", "--timeout", "0"], {}, 2, "argument --timeout: must be more than 0 seconds, got 0"),
    (["up", "--timeout", "nan"], {}, 2, "argument --timeout: must be more than 0 seconds, got nan"),
    (["up", "--timeout", "-1"], {}, 2, "argument --timeout: must be more than 0 seconds, got -1"),
    (["up", "--timeout", "1e12"], {}, 2, "argument --timeout: must be at most 2592000 seconds, got 1e12"),
    (["down", "--timeout", "-1"], {}, 2, "argument --timeout: must be 0 or more seconds, got -1"),
    (["down", "--timeout", "inf"], {}, 2, "argument --timeout: must be 0 or more seconds, got inf"),
    (["daemon", "{local}", "--stop-timeout", "-1"], {}, 2, "argument --stop-timeout: must be 0 or more seconds"),
    # -- names ---------------------------------------------------------------------------
    (["run", "{recorder}", "--stream", "", "--endpoint", NOWHERE], {}, 2,
     "argument --stream: '' is not a valid stream name: its length is 0; 1 to 128 characters are allowed"),
    (["run", "{recorder}", "--stream", "a b", "--endpoint", NOWHERE], {}, 2,
     "argument --stream: 'a b' is not a valid stream name: only letters, digits"),
    (["run", "{recorder}", "--stream", "s" * 129, "--endpoint", NOWHERE], {}, 2, "its length is 129; 1 to 128"),
    # several streams: KCL 3.x only, each once, each a stream name
    (["run", "{recorder}", "--stream", "a", "--stream", "b", "--endpoint", NOWHERE], {}, 2,
     "several --stream options: one application on several streams is the KCL's multi-stream mode, "
     "which KCL 3.x has and KCL 1.x has not"),
    (["run", "{recorder}", "--kcl", "3", "--stream", "a", "--stream", "b", "--stream", "a", "--endpoint", NOWHERE],
     {}, 2, "--stream a is given twice"),
    (["run", "{recorder}", "--kcl", "3", "--stream", "a", "--stream", "a:b", "--endpoint", NOWHERE], {}, 2,
     "argument --stream: 'a:b' is not a valid stream name: only letters, digits"),
    ([*RUN, "--app", ""], {}, 2, "argument --app: '' is not a valid application name"),
    ([*RUN, "--app", "ab"], {}, 2, "argument --app: 'ab' is not a valid application name: its length is 2; 3 to 255"),
    (["put", "--stream", "", "--count", "1"], {}, 2, "argument --stream: '' is not a valid stream name"),
    (["put", "--stream", "orders/eu", "--count", "1"], {}, 2, "'orders/eu' is not a valid stream name"),
    (["put", "--stream", "s", "--count", "1", "--partition-key", ""], {}, 2,
     "--partition-key must have 1 to 256 characters"),
    (["put", "--stream", "s", "--count", "1", "--region", ""], {}, 2, "argument --region: '' is not a valid region name"),
    (["leases", ""], {}, 2, "argument APPLICATION: '' is not a valid application name"),
    (["leases", "app", "--region", "moon base"], {}, 2, "'moon base' is not a valid region name: write it like us-east-1"),
    (["metrics", ""], {}, 2, "argument APPLICATION: '' is not a valid application name"),
    (["metrics", "app", "--name", ""], {}, 2, "argument --name: a metric name has 1 to 255 characters, not 0"),
    # -- choices ---------------------------------------------------------------------------
    ([*RUN, "--kinesis", "kinesalite"], {}, 2, "argument --kinesis: invalid choice: 'kinesalite'"),
    (["up", "--kinesis", "kinesalite"], {}, 2, "argument --kinesis: invalid choice: 'kinesalite'"),
    ([*RUN, "--kcl", "7"], {}, 2, "argument --kcl: invalid choice: 7 (choose from 1, 3)"),
    (["daemon", "{local}", "--kcl", "2"], {}, 2, "argument --kcl: invalid choice: 2 (choose from 1, 3)"),
    (["bootstrap", "--kcl", "2"], {}, 2, "argument --kcl: invalid choice: 2 (choose from 1, 3)"),
    (["properties", "keys", "--kcl", "0"], {}, 2, "argument --kcl: invalid choice: 0 (choose from 1, 3)"),
    (["validate", "{file}", "--direction", "sideways"], {}, 2, "argument --direction: invalid choice: 'sideways'"),
    (["up", "--kinesis-port", "5000"], {}, 2, "--kinesis-port needs --kinesis kinesis-mock"),
    (["down", "--compose-file", "{file}"], {}, 2, "--compose-file needs --localstack"),
    # -- the processor ---------------------------------------------------------------------
    (["run", "{missing}", "--stream", "s", "--endpoint", NOWHERE], {}, 2, "processor not found: {missing}"),
    (["run", "{dir}", "--stream", "s", "--endpoint", NOWHERE], {}, 2, "processor {dir} is a directory, not a file"),
    (["run", "{unreadable_py}", "--stream", "s", "--endpoint", NOWHERE], {}, 2,
     "cannot read processor {unreadable_py}: Permission denied"),
    (["run", "{syntax_py}", "--stream", "s", "--endpoint", NOWHERE], {}, 2,
     "processor {syntax_py} line 2: SyntaxError: expected ':'"),
    (["run", "{nul_py}", "--stream", "s", "--endpoint", NOWHERE], {}, 2, "processor {nul_py}: SyntaxError"),
    (["run", "{file}", "--stream", "s", "--endpoint", NOWHERE], {}, 2, "{file} is neither a .py file nor executable"),
    # -- files and directories -------------------------------------------------------------
    ([*RUN, "--log", "{missing}/daemon.log"], {}, 2, "argument --log: the directory of {missing}/daemon.log"),
    ([*RUN, "--log", "{dir}"], {}, 2, "argument --log: {dir} is a directory, not a file"),
    ([*RUN, "--log", "{file}/daemon.log"], {}, 2, "{file}, is not a directory"),
    ([*RUN, "--run-dir", "{file}"], {}, 2, "argument --run-dir: {file} is not a directory"),
    ([*RUN, "--cache-dir", "{file}"], {}, 2, "argument --cache-dir: {file} is not a directory"),
    ([*RUN, "--properties", "{missing}"], {}, 2, "properties file not found: {missing}"),
    ([*RUN, "--properties", "{dir}"], {}, 2, "properties file is a directory: {dir}"),
    ([*RUN, "--properties", "{unreadable_properties}"], {}, 2,
     "cannot read properties file {unreadable_properties}: Permission denied"),
    (["daemon", "{dir}"], {}, 2, "properties file is a directory: {dir}"),
    (["daemon", "{missing}"], {}, 2, "properties file not found: {missing}"),
    (["daemon", "{unreadable_properties}"], {}, 2, "cannot read properties file {unreadable_properties}"),
    (["daemon", "{local}", "--cache-dir", "{file}"], {}, 2, "argument --cache-dir: {file} is not a directory"),
    (["properties", "check", "{dir}"], {}, 2, "cannot read properties file {dir}: Is a directory"),
    (["properties", "check", "{unreadable_properties}"], {}, 2, "cannot read properties file {unreadable_properties}"),
    (["properties", "set", "{missing}", "a=b"], {}, 2, "properties file not found: {missing}"),
    (["properties", "set", "{unreadable_properties}", "a=b"], {}, 2, "cannot read properties file"),
    (["properties", "set", "{file}", "=b"], {}, 2, "'=b' is not KEY=VALUE"),
    (["validate", "{dir}"], {}, 2, "cannot read {dir}: Is a directory"),
    (["validate", "{unreadable}"], {}, 2, "cannot read {unreadable}: Permission denied"),
    (["validate", "{missing}"], {}, 2, "cannot read {missing}: No such file or directory"),
    (["put", "--stream", "s", "--file", "{dir}"], {}, 2, "cannot read {dir}: Is a directory"),
    (["put", "--stream", "s", "--file", "{unreadable}"], {}, 2, "cannot read {unreadable}: Permission denied"),
    (["put", "--stream", "s", "--file", "{missing}"], {}, 2, "cannot read {missing}: No such file or directory"),
    (["up", "--state-dir", "{file}"], {}, 2, "argument --state-dir: {file} is not a directory"),
    (["down", "--state-dir", "{file}"], {}, 2, "argument --state-dir: {file} is not a directory"),
    (["bootstrap", "--cache-dir", "{file}"], {}, 2, "argument --cache-dir: {file} is not a directory"),
    (["bootstrap", "--cache-dir", "{tmp}/c", "--from", "{file}"], {}, 2, "--from {file} is not a directory"),
    (["bootstrap", "--cache-dir", "{tmp}/c", "--from", "{missing}"], {}, 2, "--from {missing} does not exist"),
    (["bootstrap", "--cache-dir", "{tmp}/c", "--repository", "not-a-url"], {}, 2,
     "the Maven repository 'not-a-url' (--repository) is not an http(s) or file URL"),
    # -- the KCLPY_LOCAL_* variables (kclpy_local/_env.py) ----------------------------------
    # Not here: KCLPY_LOCAL_STREAM and _APP are values substituted into a properties
    # file; _PROGRESS is set by run itself (an unusable file turns progress off, with a
    # warning); _TEST_ENDPOINT, _TEST_CACHE and _LOCALSTACK_IMAGE are for test suites
    # and Docker.
    (["bootstrap", "--offline"], {"KCLPY_LOCAL_CACHE": "{file}"}, 2,
     "the cache directory {file} ($KCLPY_LOCAL_CACHE) is not a directory"),
    (["bootstrap", "--cache-dir", "{tmp}/c"], {"KCLPY_LOCAL_MAVEN_REPO": "ftp://mirror"}, 2,
     "the Maven repository 'ftp://mirror' (KCLPY_LOCAL_MAVEN_REPO) is not an http(s) or file URL"),
    (["bootstrap", "--cache-dir", "{tmp}/c", "--offline"], {"KCLPY_LOCAL_DOWNLOAD_TIMEOUT": "soon"}, 2,
     "$KCLPY_LOCAL_DOWNLOAD_TIMEOUT must be a number of seconds above 0, not 'soon'"),
    (["bootstrap", "--cache-dir", "{tmp}/c", "--offline"], {"KCLPY_LOCAL_DOWNLOAD_TIMEOUT": "-1"}, 2,
     "$KCLPY_LOCAL_DOWNLOAD_TIMEOUT must be a number of seconds above 0, not '-1'"),
    (["daemon", "{local}", "--print-command"], {"KCLPY_LOCAL_JAVA": "{missing}"}, 6,
     "KCLPY_LOCAL_JAVA={missing} does not exist"),
    (["daemon", "{local}", "--print-command"], {"KCLPY_LOCAL_JAVA": "{dir}"}, 6, "KCLPY_LOCAL_JAVA={dir} is a directory"),
    (["daemon", "{local}", "--print-command"], {"JAVA_HOME": "{missing}"}, 6, "JAVA_HOME={missing} does not exist"),
    (["daemon", "{local}", "--print-command"], {"JAVA_HOME": "{dir}"}, 6, "JAVA_HOME={dir} has no executable bin/java"),
    (["daemon", "{local}", "--print-command"], {"JAVA_HOME": "{file}"}, 6, "JAVA_HOME={file} is not a directory"),
    (["{recorder}"], {"KCLPY_LOCAL_ON_ERROR": "sometimes"}, 2,
     "$KCLPY_LOCAL_ON_ERROR must be 'exit' or 'continue', not 'sometimes'"),
    (["{recorder}"], {"KCLPY_LOCAL_LOG_LEVEL": "LOUD"}, 2, "$KCLPY_LOCAL_LOG_LEVEL must be one of DEBUG, INFO"),
    (["{recorder}"], {"KCLPY_LOCAL_STRICT": "maybe"}, 2, "$KCLPY_LOCAL_STRICT must be 1 or 0"),
    (RUN, {"KCLPY_LOCAL_ON_ERROR": "ignore"}, 2, "$KCLPY_LOCAL_ON_ERROR must be 'exit' or 'continue', not 'ignore'"),
    (RUN, {"KCLPY_LOCAL_LOG_LEVEL": "verbose"}, 2, "$KCLPY_LOCAL_LOG_LEVEL must be one of"),
    (RUN, {"KCLPY_LOCAL_STRICT": "2"}, 2, "$KCLPY_LOCAL_STRICT must be 1 or 0"),
    (["leases", "app"], {"KCLPY_LOCAL_ENDPOINT": "localhost:4566"}, 2, "invalid endpoint URL 'localhost:4566'"),
    (["down"], {"KCLPY_LOCAL_STATE": "{file}"}, 2, "the state directory {file} is not a directory"),
    (["up"], {"KCLPY_LOCAL_STATE": "{file}"}, 2, "the state directory {file} is not a directory"),
    # -- other usage mistakes ------------------------------------------------------------
    ([*RUN, "--set", "novalue"], {}, 2, "--set expects KEY=VALUE, not 'novalue'"),
    # -- enhanced fan-out (KCL 3.x) --------------------------------------------------------
    (["run", "{recorder}", "--stream", "s", "--kcl", "3", "--set", "retrievalMode=FANOUT"],
     {"KCLPY_LOCAL_ENDPOINT": ""}, 2,
     "enhanced fan-out (retrievalMode FANOUT, SubscribeToShard over HTTP/2) on moto: moto has no "
     "SubscribeToShard"),
    (["properties", "set", "{file}"], {}, 2, "nothing to change"),
    (["properties", "check", "{local}", "--translated"], {}, 2, "--translated is for --kcl 3"),
    (["run"], {}, 2, "the following arguments are required: PROCESSOR"),
    ([], {}, 2, "usage: kclpy-local"),
]


def _case_id(case: Case) -> str:
    argv, env, _, _ = case
    text = " ".join(argv) or "(no command)"
    if env:
        text = " ".join(f"{k}={v}" for k, v in env.items()) + " " + text
    return text[:90]


_PY = "{recorder}"

# Drops the capabilities that let root ignore file modes, then becomes the command.
_DROP_DAC = (
    "import ctypes, os, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH\n"
    "    if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP\n"
    "        raise OSError(ctypes.get_errno(), 'prctl(PR_CAPBSET_DROP)')\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n"
)


def _files(tmp: Path) -> dict[str, str]:
    """The files the table's ``{name}`` placeholders stand for."""
    (tmp / "dir").mkdir()
    (tmp / "file").write_text("a plain file\n")
    (tmp / "binary").write_bytes(b'{"action": "initialize", "shardId": "\xff\xfe"}\n')
    (tmp / "syntax.py").write_text("x = 1\nif x\n    pass\n")
    (tmp / "nul.py").write_bytes(b"x = '\x00'\n")
    for name, text in (("unreadable", "a\n"), ("unreadable.py", "pass\n"),
                       ("unreadable.properties", "streamName = s\n")):
        (tmp / name).write_text(text)
        (tmp / name).chmod(0)
    names = {name.replace(".", "_"): str(tmp / name)
             for name in ("dir", "file", "binary", "syntax.py", "nul.py", "unreadable", "unreadable.py",
                          "unreadable.properties")}
    return {**names, "missing": str(tmp / "missing"), "tmp": str(tmp),
            "recorder": str(ROOT / "processors" / "recorder.py"),
            "local": str(ROOT / "kclpy_local" / "_config" / "profiles" / "local.properties")}


def _environment(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KCLPY_LOCAL_") and k != "JAVA_HOME"}
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        KCLPY_LOCAL_STATE=str(tmp / "state"),
        KCLPY_LOCAL_ENDPOINT=NOWHERE,  # a row that reached the network would find nothing there
        AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
        NO_COLOR="1",
    )
    return env


def _run(case: Case, tmp: Path, files: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    argv, env, _, _ = case
    stdin = b""
    if argv and argv[0].startswith("<"):
        stdin = Path(argv[0][1:].format(**files)).read_bytes()
        argv = argv[1:]
    words = [word.format(**files) for word in argv]
    command = words if argv[:1] == [_PY] else ["-m", "kclpy_local", *words]
    prefix = [sys.executable, "-c", _DROP_DAC] if os.geteuid() == 0 else [sys.executable]
    full_env = {**_environment(tmp), **{k: v.format(**files) for k, v in env.items()}}
    return subprocess.run([*prefix, *command], input=stdin, capture_output=True, env=full_env,
                          cwd=tmp, timeout=60, check=False)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], list[subprocess.CompletedProcess[bytes]]]]:
    """Every row run once, a few at a time (each is a fresh interpreter)."""
    tmp = tmp_path_factory.mktemp("hostile")
    files = _files(tmp)
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            done = list(pool.map(lambda case: _run(case, tmp, files), CASES))
        yield files, done
    finally:
        for name in ("unreadable", "unreadable.py", "unreadable.properties"):
            (tmp / name).chmod(0o600)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[_case_id(c) for c in CASES])
def test_hostile_input(
    index: int, results: tuple[dict[str, str], list[subprocess.CompletedProcess[bytes]]]
) -> None:
    files, done = results
    argv, env, code, message = CASES[index]
    proc = done[index]
    err = proc.stderr.decode(errors="replace")
    assert "Traceback" not in err, err
    assert proc.returncode == code, f"exit {proc.returncode}, not {code}:\n{err}"
    assert message.format(**files) in err, err
    # One error, said once (argparse's usage lines aside), on stderr only.
    assert err.count("error:") <= 1, err
    assert proc.stdout == b"", proc.stdout


def test_the_table_covers_every_command() -> None:
    from kclpy_local._cli import commands

    covered = {argv[0] for argv, _, _, _ in CASES if argv and not argv[0].startswith(("<", "{"))}
    assert covered == set(commands())
