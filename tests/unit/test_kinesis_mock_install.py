"""kinesis-mock without the engine: the install (a stand-in npm, and the real npm
against a registry that refuses connections), node missing, the loopback preload
(real node, no package), reading listening sockets, and ``up``'s usage errors."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kclpy_local._cli import main
from kclpy_local._emulators import _engine
from kclpy_local._emulators import kinesis_mock as km
from kclpy_local._emulators.kinesis_mock import (
    INTEGRITY,
    VERSION,
    KinesisMock,
    KinesisMockInstallError,
    Listener,
    NodeNotFoundError,
    ensure_installed,
    find_installation,
    install_root,
    listening_sockets,
    node_problem,
    preload_path,
)
from kclpy_local._emulators.registry import PID_FILE

NODE = km.shutil.which("node")
NPM = km.shutil.which("npm")
needs_node = pytest.mark.skipif(NODE is None, reason=f"node is not on PATH ({km.NODE_HINT})")


# -- a stand-in npm ---------------------------------------------------------------------

FAKE_NPM = """\
#!{python}
import json, os, sys
from pathlib import Path
Path(os.environ["FAKE_NPM_LOG"]).open("a").write(json.dumps(sys.argv[1:]) + "\\n")
mode = os.environ.get("FAKE_NPM_MODE", "ok")
if mode == "offline":
    print("npm error code ENOTFOUND", file=sys.stderr)
    print("npm error network request to the registry failed", file=sys.stderr)
    sys.exit(1)
if mode == "missing":
    print("npm error code ETARGET", file=sys.stderr)
    sys.exit(1)
if mode == "crash":
    print("npm error something else", file=sys.stderr)
    sys.exit(7)
prefix = Path(sys.argv[sys.argv.index("--prefix") + 1])
package = prefix / "node_modules" / "kinesis-local"
package.mkdir(parents=True)
version = "0.6.1" if mode == "old" else "{version}"
integrity = "sha512-other" if mode == "tampered" else "{integrity}"
(package / "package.json").write_text(json.dumps({{"name": "kinesis-local", "version": version}}))
(package / "main.js").write_text("// stand-in")
(package / "server.json").write_text("{{}}")
lock = {{"packages": {{"node_modules/kinesis-local": {{"version": version, "integrity": integrity}}}}}}
(prefix / "node_modules" / ".package-lock.json").write_text(json.dumps(lock))
"""


@pytest.fixture
def fake_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ``npm`` on PATH that logs its argv to the returned file; FAKE_NPM_MODE picks what it does."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "npm"
    script.write_text(FAKE_NPM.format(python=sys.executable, version=VERSION, integrity=INTEGRITY))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "npm-calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_NPM_LOG", str(log))
    return log


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def leftovers(cache: Path) -> list[str]:
    root = install_root(cache)
    return sorted(p.name for p in root.iterdir() if p.name != ".lock") if root.exists() else []


def test_install_once_into_the_cache(fake_npm: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    inst = ensure_installed(cache)
    assert inst.root == cache / "kinesis-mock" / VERSION
    assert inst.main_js.is_file() and inst.cert_path.is_file()
    assert stat.S_IMODE(inst.root.stat().st_mode) == 0o755
    assert leftovers(cache) == [VERSION]  # the temporary directory was renamed
    [argv] = calls(fake_npm)
    assert argv[0] == "install" and "--no-save" in argv and "--ignore-scripts" in argv
    assert argv[-1] == f"kinesis-local@{VERSION}"
    prefix = Path(argv[argv.index("--prefix") + 1])
    assert prefix.parent == install_root(cache) and prefix.name.startswith(f".{VERSION}-")
    # Installed: found without npm, and a second call runs nothing.
    assert find_installation(cache) == inst
    assert ensure_installed(cache) == inst
    assert len(calls(fake_npm)) == 1


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("old", "version is '0.6.1', expected '0.6.2'"),
        ("tampered", "integrity is 'sha512-other'"),
        ("missing", "has no kinesis-local@0.6.2"),
        ("crash", "exited with code 7"),
    ],
)
def test_a_failed_install_leaves_nothing_behind(
    fake_npm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, message: str
) -> None:
    monkeypatch.setenv("FAKE_NPM_MODE", mode)
    cache = tmp_path / "cache"
    with pytest.raises(KinesisMockInstallError, match=message) as caught:
        ensure_installed(cache)
    assert caught.value.exit_code == 8
    assert not caught.value.registry_unreachable
    assert leftovers(cache) == []
    assert find_installation(cache) is None


def test_an_unreachable_registry_is_named(
    fake_npm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NPM_MODE", "offline")
    with pytest.raises(KinesisMockInstallError, match="registry is unreachable") as caught:
        ensure_installed(tmp_path / "cache")
    assert caught.value.registry_unreachable
    assert "ENOTFOUND" in str(caught.value)
    assert caught.value.hint is not None and "registry" in caught.value.hint


def test_a_broken_installation_is_replaced(fake_npm: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    inst = ensure_installed(cache)
    (inst.package_dir / "package.json").write_text('{"version": "0.0.1"}')
    stale = install_root(cache) / f".{VERSION}-dead.tmp"
    stale.mkdir()  # a killed installer's temporary directory
    assert find_installation(cache) is None
    assert ensure_installed(cache) == inst
    assert find_installation(cache) == inst
    assert len(calls(fake_npm)) == 2
    assert leftovers(cache) == [VERSION]


@pytest.mark.skipif(NPM is None, reason=f"npm is not on PATH ({km.NODE_HINT})")
def test_real_npm_against_a_registry_that_refuses(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a loopback port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "npm_config_registry": f"http://127.0.0.1:{port}/",
        "npm_config_cache": str(tmp_path / "npm-cache"),  # nothing cached: npm must ask
        "npm_config_fetch_retries": "0",
        "npm_config_offline": "false",
        "npm_config_prefer_offline": "false",
    }
    with pytest.raises(KinesisMockInstallError, match="registry is unreachable") as caught:
        ensure_installed(tmp_path / "cache", env=env, timeout=120)
    assert caught.value.registry_unreachable
    assert leftovers(tmp_path / "cache") == []


# -- node missing -----------------------------------------------------------------------


def test_without_node_the_error_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither node nor npm
    assert node_problem() is not None and "node is not on PATH" in node_problem()  # type: ignore[operator]
    with pytest.raises(NodeNotFoundError) as caught:
        KinesisMock(cache_dir=tmp_path / "cache").start()
    assert caught.value.exit_code == 8
    assert "Node.js 20" in (caught.value.hint or "")
    with pytest.raises(NodeNotFoundError, match="npm is not on PATH"):
        ensure_installed(tmp_path / "cache")


def test_up_without_node_stops_moto_and_writes_no_pid_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import moto.server  # noqa: F401 - the test extra installs it
    # The emulator runs on this interpreter; only node and npm are out of reach.
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("KCLPY_LOCAL_CACHE", str(tmp_path / "cache"))
    state = tmp_path / "state"
    code = main(["up", "--port", "0", "--kinesis", "kinesis-mock", "--state-dir", str(state)])
    out, err = capsys.readouterr()
    assert code == 8, err
    assert "node is not on PATH" in err and "Node.js 20" in err
    assert out == ""
    assert not (state / PID_FILE).exists()
    log = (state / "emulator.log").read_text()
    assert "Running on http://127.0.0.1:" in log  # moto had started, and was stopped:
    port = int(log.split("Running on http://127.0.0.1:")[1].split()[0].strip("/"))
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize(
    "argv",
    [
        ["up", "--kinesis-port", "4568"],
        ["up", "--localstack", "--kinesis", "kinesis-mock"],
    ],
)
def test_up_usage_errors(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "kclpy-local: error:" in capsys.readouterr().err


# -- the loopback preload -----------------------------------------------------------------

LISTENERS_JS = textwrap.dedent("""\
    const net = require('net'), http = require('http'), tls = require('tls');
    const calls = [
      (s, cb) => s.listen(0, cb),                                  // port only: every interface
      (s, cb) => s.listen(cb),                                     // nothing at all
      (s, cb) => s.listen('0', cb),                                // port as a string
      (s, cb) => s.listen(0, '0.0.0.0', 8, cb),                    // an explicit address
      (s, cb) => s.listen(0, '::', cb),                            // IPv6, every interface
      (s, cb) => s.listen({port: 0, host: '::', ipv6Only: true}, cb),
      (s, cb) => s.listen({port: 0}, cb),
    ];
    const kinds = [() => net.createServer(), () => http.createServer(), () => tls.createServer({})];
    const seen = [];
    let pending = calls.length * kinds.length;
    for (const make of kinds) for (const call of calls) {
      const server = make();
      call(server, () => { seen.push(server.address()); if (--pending === 0) done(); });
    }
    function done() {
      let refused = null;
      try { net.createServer().listen({fd: 99}); } catch (e) { refused = e.code; }
      process.stdout.write(JSON.stringify({seen, refused}));
      process.exit(0);
    }
""")


@needs_node
def test_the_preload_keeps_every_listener_on_loopback(tmp_path: Path) -> None:
    script = tmp_path / "listeners.js"
    script.write_text(LISTENERS_JS)
    assert preload_path().is_file()
    proc = subprocess.run(
        [str(NODE), "--require", str(preload_path()), str(script)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert len(result["seen"]) == 21
    assert {a["address"] for a in result["seen"]} == {"127.0.0.1"}
    assert result["refused"] == "ERR_KCLPY_LOCAL_LOOPBACK_ONLY"
    reported = [ln for ln in proc.stderr.splitlines() if ln.startswith("kclpy-local loopback:")]
    assert len(reported) == 21 and all("listening on 127.0.0.1:" in ln for ln in reported)


@needs_node
def test_a_unix_socket_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    script = f"const s = require('net').createServer(); s.listen({json.dumps(str(path))}, () => {{ process.stdout.write(String(s.address())); process.exit(0); }});"
    proc = subprocess.run(
        [str(NODE), "--require", str(preload_path()), "-e", script],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == str(path)


# -- listening sockets from /proc -----------------------------------------------------------


def test_proc_addresses() -> None:
    assert _engine._proc_address("0100007F:1F90") == ("127.0.0.1", 8080)
    assert _engine._proc_address("00000000:0050") == ("0.0.0.0", 80)
    assert _engine._proc_address("00000000000000000000000000000000:1F90") == ("::", 8080)
    assert _engine._proc_address("00000000000000000000000001000000:0016") == ("::1", 22)
    assert _engine._proc_address("0000000000000000FFFF00000100007F:0050") == ("127.0.0.1", 80)
    assert Listener("tcp", "127.0.0.1", 1).loopback
    assert Listener("tcp6", "::1", 1).loopback
    assert not Listener("tcp", "0.0.0.0", 1).loopback
    assert not Listener("tcp6", "::", 1).loopback


@pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="needs /proc")
def test_listening_sockets_of_this_process() -> None:
    with socket.socket() as listening, socket.socket() as bound_only:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        bound_only.bind(("127.0.0.1", 0))  # bound, not listening: not a listener
        found = listening_sockets(os.getpid())
        assert found is not None
        tcp = {(s.address, s.port) for s in found if s.protocol.startswith("tcp")}
        assert ("127.0.0.1", listening.getsockname()[1]) in tcp
        assert ("127.0.0.1", bound_only.getsockname()[1]) not in tcp


def test_listening_sockets_of_a_gone_process() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert listening_sockets(proc.pid) is None
