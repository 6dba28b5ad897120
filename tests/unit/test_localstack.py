"""LocalStack through docker compose: ``kclpy-local up/down --localstack`` via ``main()``.

The engine-unreachable path runs for real wherever a docker CLI has no engine
behind it. Everything else puts a stand-in ``docker`` executable first on PATH:
it records each argv it is given and answers as a docker CLI would, so these
tests check our argv and our error handling, not Docker.
"""

from __future__ import annotations

import http.server
import json
import re
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kclpy_local._cli import main
from kclpy_local._emulators import localstack as _localstack
from kclpy_local._emulators.localstack import (
    AUTH_TOKEN_ENV,
    LOCALSTACK_IMAGE,
    configured_image,
    image_needs_token,
)
from kclpy_local._env import LOCALSTACK_IMAGE as IMAGE_VARIABLE
from kclpy_local._exceptions import EmulatorError

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"

FAKE_DOCKER = """\
#!{python}
import json, os, sys

args = sys.argv[1:]
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps({{"argv": args, "token": os.environ.get("LOCALSTACK_AUTH_TOKEN")}}) + "\\n")

def fail(message, code=1):
    sys.stderr.write(message + "\\n")
    sys.exit(code)

if args[:1] == ["info"]:
    if os.environ.get("FAKE_DOCKER_INFO") == "fail":
        fail("Cannot connect to the Docker daemon at unix:///fake/docker.sock. "
             "Is the docker daemon running?")
    print("28.2.2")
    sys.exit(0)
if args[:1] != ["compose"]:
    fail("fake docker: unexpected " + repr(args))
if os.environ.get("FAKE_DOCKER_COMPOSE") == "missing":
    fail("docker: unknown command: docker compose")
rest = args[1:]
if rest[:1] == ["-f"]:
    rest = rest[2:]
if rest == ["version"]:
    print("Docker Compose version v2.36.2")
elif rest == ["config", "--images"]:
    print(os.environ.get("FAKE_DOCKER_IMAGES", ""))
elif rest == ["up", "-d", "--wait"]:
    if os.environ.get("FAKE_DOCKER_UP") == "fail":
        sys.stderr.write(" Container kclpy-localstack-1  Starting\\n")
        fail(" Container kclpy-localstack-1  Error\\ndependency failed to start: "
             "container kclpy-localstack-1 exited (55)")
elif rest == ["port", "localstack", "4566"]:
    if not os.environ.get("FAKE_DOCKER_PORT"):
        fail("no port published")
    print(os.environ["FAKE_DOCKER_PORT"])
elif rest == ["down"]:
    if os.environ.get("FAKE_DOCKER_DOWN") == "fail":
        fail("permission denied")
else:
    fail("fake docker: unexpected " + repr(args))
"""


class FakeDocker:
    """A ``docker`` stand-in on PATH; ``calls()`` lists what it was run with."""

    def __init__(self, directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        directory.mkdir()
        self.path = directory / "docker"
        self.path.write_text(FAKE_DOCKER.format(python=sys.executable))
        self.path.chmod(0o755)
        self.log = directory / "calls.jsonl"
        self.monkeypatch = monkeypatch
        monkeypatch.setenv("PATH", str(directory))
        monkeypatch.setenv("FAKE_DOCKER_LOG", str(self.log))
        for name in ("INFO", "COMPOSE", "IMAGES", "UP", "PORT", "DOWN"):
            monkeypatch.delenv(f"FAKE_DOCKER_{name}", raising=False)

    def set(self, name: str, value: str) -> None:
        self.monkeypatch.setenv(f"FAKE_DOCKER_{name}", value)

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line)["argv"] for line in self.log.read_text().splitlines()]

    def tokens(self) -> list[str | None]:
        return [json.loads(line)["token"] for line in self.log.read_text().splitlines()]


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    monkeypatch.delenv(AUTH_TOKEN_ENV, raising=False)
    return FakeDocker(tmp_path / "bin", monkeypatch)


@pytest.fixture
def compose_file(tmp_path: Path) -> Path:
    path = tmp_path / "project" / "docker-compose.yml"
    path.parent.mkdir()
    path.write_text("services: {}\n")
    return path


@pytest.fixture
def health_server() -> Iterator[int]:
    """A loopback HTTP server answering 200 to LocalStack's health path; yields its port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path == "/_localstack/health"
            body = b'{"services": {"kinesis": "available"}}' if ok else b"{}"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("kclpy-local: error:")]


# -- images and tokens ----------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "needs"),
    [
        ("localstack/localstack:4.14.0", False),
        ("localstack/localstack:4.14", False),
        ("localstack/localstack:4.4.0", False),
        ("localstack/localstack:3.8", False),
        ("localstack/localstack:0.12.8", False),
        ("docker.io/localstack/localstack:4.12", False),
        ("localstack/localstack:4.14.0@sha256:" + "0" * 64, False),
        ("localstack/localstack:2026.03.0", True),
        (LOCALSTACK_IMAGE, True),
        ("localstack/localstack", True),
        ("localstack/localstack:latest", True),
        ("localstack/localstack:stable", True),
        ("mirror.example:5000/localstack/localstack:2026.09.0", True),
        ("mirror.example:5000/localstack/localstack:4.14.0", False),
        ("localstack/localstack-pro:4.5", True),
        ("ghcr.io/etspaceman/kinesis-mock:0.4.8", False),
        ("notlocalstack/localstack:2026.09.0", False),
    ],
)
def test_image_needs_token(image: str, needs: bool) -> None:
    assert image_needs_token(image) is needs


def test_configured_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(IMAGE_VARIABLE.name, raising=False)
    assert configured_image() == LOCALSTACK_IMAGE
    monkeypatch.setenv(IMAGE_VARIABLE.name, "localstack/localstack:4.14.0")
    assert configured_image() == "localstack/localstack:4.14.0"


def test_compose_file_matches_the_pinned_image_and_settings() -> None:
    text = COMPOSE_FILE.read_text()
    image = re.search(r"^\s+image:\s*(\S+)\s*$", text, re.MULTILINE)
    assert image is not None
    assert image.group(1) == f"${{{IMAGE_VARIABLE.name}:-{LOCALSTACK_IMAGE}}}"
    assert ":latest" not in text.split("services:", 1)[1]
    assert re.search(r'^\s+- "127\.0\.0\.1:4566:4566"$', text, re.MULTILINE)
    assert re.search(r"^\s+SERVICES: kinesis,dynamodb,cloudwatch$", text, re.MULTILINE)
    assert re.search(
        r"^\s+LOCALSTACK_AUTH_TOKEN: \$\{LOCALSTACK_AUTH_TOKEN:-\}$", text, re.MULTILINE
    )
    assert "/_localstack/health" in text.split("healthcheck:", 1)[1]


# -- no Docker --------------------------------------------------------------------


def test_up_fails_cleanly_without_a_docker_engine(capsys: pytest.CaptureFixture[str]) -> None:
    """The real docker CLI, no engine behind it (the case on machines without Docker)."""
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI here (the fake-CLI tests cover that path)")
    if _localstack.engine_problem() is None:
        pytest.skip("a Docker engine answers here; this test needs one that does not")
    assert main(["up", "--localstack", "--compose-file", str(COMPOSE_FILE)]) == 8
    out, err = capsys.readouterr()
    assert out == ""
    errors = _error_lines(err)
    assert len(errors) == 1, err
    assert "Docker engine is unreachable" in errors[0]
    assert "hint: start Docker, or use the embedded emulator" in err
    assert "kclpy-local up" in err


def test_down_fails_cleanly_without_a_docker_engine(
    fake_docker: FakeDocker, compose_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_docker.set("INFO", "fail")
    assert main(["down", "--localstack", "--compose-file", str(compose_file)]) == 8
    out, err = capsys.readouterr()
    assert out == ""
    errors = _error_lines(err)
    assert len(errors) == 1
    assert "Docker engine is unreachable: Cannot connect to the Docker daemon" in errors[0]
    assert "hint: start Docker" in err
    assert fake_docker.calls() == [["info", "--format", "{{.ServerVersion}}"]]


def test_up_fails_cleanly_without_the_docker_cli(
    tmp_path: Path, compose_file: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert main(["up", "--localstack", "--compose-file", str(compose_file)]) == 8
    out, err = capsys.readouterr()
    assert out == ""
    assert _error_lines(err) == [
        "kclpy-local: error: the docker CLI is not on PATH; LocalStack runs in Docker"
    ]
    assert "kclpy-local up" in err


def test_a_missing_compose_file_is_named(
    fake_docker: FakeDocker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere" / "compose.yml"
    for command in ("up", "down"):
        assert main([command, "--localstack", "--compose-file", str(missing)]) == 8
        err = capsys.readouterr().err
        assert _error_lines(err) == [f"kclpy-local: error: compose file not found: {missing}"]
        assert "--compose-file" in err
    assert fake_docker.calls() == []


def test_the_default_compose_file_is_the_one_in_the_current_directory(
    fake_docker: FakeDocker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["up", "--localstack"]) == 8
    assert f"compose file not found: {tmp_path / 'docker-compose.yml'}" in capsys.readouterr().err


def test_a_missing_compose_plugin_is_named(
    fake_docker: FakeDocker, compose_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_docker.set("COMPOSE", "missing")
    assert main(["up", "--localstack", "--compose-file", str(compose_file)]) == 8
    err = capsys.readouterr().err
    assert _error_lines(err) == [
        "kclpy-local: error: docker compose (the Compose v2 plugin) is not available: "
        "docker: unknown command: docker compose"
    ]


# -- with a (stand-in) Docker -----------------------------------------------------------


@pytest.mark.parametrize("published_host", ["127.0.0.1", "0.0.0.0"])
def test_up_runs_compose_and_prints_the_endpoint(
    fake_docker: FakeDocker, compose_file: Path, health_server: int, published_host: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_docker.monkeypatch.setenv(AUTH_TOKEN_ENV, "ls-test-token")
    fake_docker.set("PORT", f"{published_host}:{health_server}")
    assert main(["up", "--localstack", "--compose-file", str(compose_file)]) == 0
    out, err = capsys.readouterr()
    assert out == f"http://127.0.0.1:{health_server}\n"
    assert f"kclpy-local down --localstack --compose-file {compose_file}" in err
    path = str(compose_file.resolve())
    assert fake_docker.calls() == [
        ["info", "--format", "{{.ServerVersion}}"],
        ["compose", "version"],
        ["compose", "-f", path, "up", "-d", "--wait"],
        ["compose", "-f", path, "port", "localstack", "4566"],
    ]
    # The token reaches compose through the environment (the file passes it on).
    assert fake_docker.tokens()[2] == "ls-test-token"


def test_up_refuses_an_image_that_needs_a_token_when_none_is_set(
    fake_docker: FakeDocker, compose_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_docker.set("IMAGES", LOCALSTACK_IMAGE)
    assert main(["up", "--localstack", "--compose-file", str(compose_file)]) == 8
    out, err = capsys.readouterr()
    assert out == ""
    assert _error_lines(err) == [
        f"kclpy-local: error: the LocalStack image {LOCALSTACK_IMAGE} needs "
        "LOCALSTACK_AUTH_TOKEN, which is not set"
    ]
    assert f"{IMAGE_VARIABLE.name}=localstack/localstack:4.14.0" in err
    assert not any("up" in call for call in fake_docker.calls())


def test_up_starts_a_community_image_without_a_token(
    fake_docker: FakeDocker, compose_file: Path, health_server: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_docker.set("IMAGES", "localstack/localstack:4.14.0")
    fake_docker.set("PORT", f"127.0.0.1:{health_server}")
    assert main(["up", "--localstack", "--compose-file", str(compose_file)]) == 0
    assert capsys.readouterr().out == f"http://127.0.0.1:{health_server}\n"
    path = str(compose_file.resolve())
    assert ["compose", "-f", path, "config", "--images"] in fake_docker.calls()
    assert ["compose", "-f", path, "up", "-d", "--wait"] in fake_docker.calls()


def test_a_failed_compose_up_shows_its_output_and_where_to_look(
    fake_docker: FakeDocker, compose_file: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(AUTH_TOKEN_ENV, "ls-test-token")
    fake_docker.set("UP", "fail")
    assert main(["up", "--localstack", "--compose-file", str(compose_file)]) == 8
    out, err = capsys.readouterr()
    assert out == ""
    assert _error_lines(err) == ["kclpy-local: error: docker compose up failed (exit code 1):"]
    assert "container kclpy-localstack-1 exited (55)" in err
    assert "logs localstack" in err
    assert "kclpy-local down --localstack" in err


def test_down_runs_compose_down(
    fake_docker: FakeDocker, compose_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["down", "--localstack", "--compose-file", str(compose_file)]) == 0
    assert "LocalStack stopped" in capsys.readouterr().out
    assert fake_docker.calls()[-1] == ["compose", "-f", str(compose_file.resolve()), "down"]


def test_a_failed_compose_down_is_an_error(
    fake_docker: FakeDocker, compose_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_docker.set("DOWN", "fail")
    assert main(["down", "--localstack", "--compose-file", str(compose_file)]) == 8
    err = capsys.readouterr().err
    assert "docker compose down failed (exit code 1)" in err
    assert "permission denied" in err


def test_the_endpoint_defaults_to_4566_when_compose_cannot_tell(
    fake_docker: FakeDocker, compose_file: Path
) -> None:
    docker = str(fake_docker.path)
    assert _localstack._published_endpoint(docker, compose_file) == "http://127.0.0.1:4566"
    fake_docker.set("PORT", "[::]:14566")
    assert _localstack._published_endpoint(docker, compose_file) == "http://127.0.0.1:14566"


def test_compose_up_raises_emulator_error(fake_docker: FakeDocker, compose_file: Path) -> None:
    fake_docker.set("INFO", "fail")
    with pytest.raises(EmulatorError) as info:
        _localstack.compose_up(compose_file)
    assert info.value.exit_code == 8
    assert info.value.hint is not None and "kclpy-local up" in info.value.hint


@pytest.mark.parametrize(
    "argv",
    [
        ["up", "--localstack", "--foreground"],
        ["up", "--localstack", "--port", "0"],
        ["up", "--localstack", "--state-dir", "x"],
        ["up", "--compose-file", "docker-compose.yml"],
        ["down", "--localstack", "--state-dir", "x"],
        ["down", "--compose-file", "docker-compose.yml"],
    ],
)
def test_option_mixes_that_make_no_sense_are_usage_errors(
    fake_docker: FakeDocker, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert _error_lines(capsys.readouterr().err)
    assert fake_docker.calls() == []


def test_no_shell_is_involved(fake_docker: FakeDocker, tmp_path: Path) -> None:
    """A compose file path with shell metacharacters reaches docker as one argument."""
    odd = tmp_path / "a dir; echo owned" / "$(x) compose.yml"
    odd.parent.mkdir()
    odd.write_text("services: {}\n")
    assert main(["down", "--localstack", "--compose-file", str(odd)]) == 0
    assert fake_docker.calls()[-1] == ["compose", "-f", str(odd.resolve()), "down"]
