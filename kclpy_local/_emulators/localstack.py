"""LocalStack in Docker as a local AWS target: the docker CLI and ``docker compose``.

::

    endpoint = compose_up(Path("docker-compose.yml"))   # docker compose up -d --wait
    ...
    compose_down(Path("docker-compose.yml"))            # docker compose down

Every command is an argv list run without a shell. Before anything is started,
the docker CLI must be on PATH and ``docker info`` must reach an engine;
otherwise :class:`~kclpy_local._exceptions.EmulatorError` names the problem,
with a hint towards the embedded emulator (``kclpy-local up``), which needs
neither Docker nor an account.

LocalStack images since 2026.03.0 need ``LOCALSTACK_AUTH_TOKEN``; the community
tags up to 4.14.0 do not (:func:`image_needs_token`).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from .. import _env, _process
from .._exceptions import EmulatorError
from .moto import DEFAULT_HOST, wait_ready

__all__ = [
    "AUTH_TOKEN_ENV",
    "COMPOSE_SERVICE",
    "DEFAULT_COMPOSE_FILE",
    "EDGE_PORT",
    "HEALTH_PATH",
    "LAST_TOKENLESS_VERSION",
    "LOCALSTACK_IMAGE",
    "SERVICES",
    "compose_down",
    "compose_up",
    "configured_image",
    "docker_cli",
    "engine_problem",
    "image_needs_token",
    "require_engine",
]

logger = logging.getLogger(__name__)

#: The pinned image (docker-compose.yml's default is the same tag).
LOCALSTACK_IMAGE = "localstack/localstack:2026.09.0"
AUTH_TOKEN_ENV = "LOCALSTACK_AUTH_TOKEN"
SERVICES = ("kinesis", "dynamodb", "cloudwatch")
EDGE_PORT = 4566
HEALTH_PATH = "/_localstack/health"
DEFAULT_COMPOSE_FILE = "docker-compose.yml"
#: The compose service whose port 4566 is the endpoint.
COMPOSE_SERVICE = "localstack"
#: The newest community release that starts without an auth token.
LAST_TOKENLESS_VERSION = (4, 14, 0)

EMBEDDED_HINT = "or use the embedded emulator, which needs no Docker: kclpy-local up"
_PROBE_TIMEOUT = 30.0
_TAIL = 15


def configured_image(environ: Mapping[str, str] | None = None) -> str:
    """The LocalStack image to run: ``$KCLPY_LOCAL_LOCALSTACK_IMAGE`` or the pinned one."""
    env = os.environ if environ is None else environ
    return _env.LOCALSTACK_IMAGE.get(env) or LOCALSTACK_IMAGE


def image_needs_token(image: str) -> bool:
    """Whether a LocalStack image refuses to start without ``LOCALSTACK_AUTH_TOKEN``.

    Version tags up to 4.14 (``3``, ``4.4.0``, ``4.14.0``...) are community
    releases and start without one; calendar versions (2026.03.0 on),
    ``latest``, any other tag and ``localstack-pro`` images need one. An image
    of another repository is assumed to need none; a registry or mirror prefix
    (``mirror.example:5000/localstack/localstack:...``) is allowed.
    """
    reference = image.split("@", 1)[0]
    head, _, last = reference.rpartition("/")
    name, _, tag = last.partition(":")
    repository = f"/{head}/{name}"  # a registry or mirror prefix may come first
    if repository.endswith("/localstack/localstack-pro"):
        return True
    if not repository.endswith("/localstack/localstack"):
        return False
    match = re.fullmatch(r"v?(\d+)(?:\.(\d+))?(?:\.\d+)?(?:[-.+][\w.-]*)?", tag or "latest")
    if match is None:
        return True
    major, minor = int(match.group(1)), int(match.group(2) or 0)
    return (major, minor) > LAST_TOKENLESS_VERSION[:2]


# -- docker -------------------------------------------------------------------


def docker_cli() -> str:
    """The docker executable on PATH; :class:`EmulatorError` (with a hint) if there is none."""
    found = shutil.which("docker")
    if found is None:
        err = EmulatorError("the docker CLI is not on PATH; LocalStack runs in Docker")
        err.hint = f"install Docker, {EMBEDDED_HINT}"
        raise err
    return found


def _run(
    argv: Sequence[str], timeout: float, *, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    logger.info("running %s", list(argv))
    try:
        # In this process group: Ctrl-C in the terminal reaches docker too.
        return _process.run(_process.Launch(argv, cwd=cwd, new_session=False), timeout)
    except subprocess.TimeoutExpired as exc:
        raise EmulatorError(f"{' '.join(argv[:4])} ... did not finish within {timeout:g}s") from exc
    except OSError as exc:
        raise EmulatorError(f"cannot run {argv[0]}: {exc}") from exc


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _tail(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()][-_TAIL:]
    return "\n".join(f"  {ln}" for ln in lines)


def engine_problem(docker: str | None = None, timeout: float = _PROBE_TIMEOUT) -> str | None:
    """Why no Docker engine can be used (``docker info`` failed), or ``None`` when one answers."""
    if docker is None:
        docker = shutil.which("docker")
        if docker is None:
            return "the docker CLI is not on PATH"
    try:
        result = _run([docker, "info", "--format", "{{.ServerVersion}}"], timeout)
    except EmulatorError as exc:
        return str(exc)
    if result.returncode == 0:
        return None
    reason = _first_line(result.stderr) or _first_line(result.stdout)
    return reason or f"docker info exited with code {result.returncode}"


def require_engine() -> str:
    """The docker executable, once ``docker info`` has reached an engine; else EmulatorError."""
    docker = docker_cli()
    problem = engine_problem(docker)
    if problem is not None:
        err = EmulatorError(f"the Docker engine is unreachable: {problem}")
        err.hint = f"start Docker, {EMBEDDED_HINT}"
        raise err
    return docker


def _require_compose(docker: str) -> None:
    result = _run([docker, "compose", "version"], _PROBE_TIMEOUT)
    if result.returncode != 0:
        reason = _first_line(result.stderr) or _first_line(result.stdout)
        err = EmulatorError(f"docker compose (the Compose v2 plugin) is not available: {reason}")
        err.hint = f"install the Docker Compose plugin, {EMBEDDED_HINT}"
        raise err


def _compose_file(path: Path) -> Path:
    if not path.is_file():
        err = EmulatorError(f"compose file not found: {path.absolute()}")
        err.hint = (
            "run from the project root (it has docker-compose.yml) or pass --compose-file FILE"
        )
        raise err
    return path.resolve()


def _compose(docker: str, compose_file: Path, *args: str) -> list[str]:
    return [docker, "compose", "-f", str(compose_file), *args]


def _check_token(docker: str, compose_file: Path) -> None:
    """Refuse early when the file's LocalStack image needs a token that is not set."""
    if os.environ.get(AUTH_TOKEN_ENV):
        return
    result = _run(_compose(docker, compose_file, "config", "--images"), _PROBE_TIMEOUT)
    if result.returncode != 0:
        return  # an older compose without --images: the start itself will tell
    needing = [img for img in result.stdout.split() if image_needs_token(img)]
    if needing:
        err = EmulatorError(
            f"the LocalStack image {needing[0]} needs {AUTH_TOKEN_ENV}, which is not set"
        )
        err.hint = (
            f"export {AUTH_TOKEN_ENV} (a free LocalStack account has one), or run a community "
            f"tag without one: {_env.LOCALSTACK_IMAGE.name}=localstack/localstack:4.14.0; "
            f"{EMBEDDED_HINT}"
        )
        raise err


def _published_endpoint(docker: str, compose_file: Path) -> str:
    """``http://host:port`` of the service's port 4566 (127.0.0.1:4566 if compose cannot say)."""
    result = _run(
        _compose(docker, compose_file, "port", COMPOSE_SERVICE, str(EDGE_PORT)), _PROBE_TIMEOUT
    )
    address = _first_line(result.stdout) if result.returncode == 0 else ""
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        logger.info("cannot tell the published port (%s); assuming %d", address, EDGE_PORT)
        return f"http://{DEFAULT_HOST}:{EDGE_PORT}"
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = DEFAULT_HOST
    return f"http://{host}:{int(port)}"


def compose_up(compose_file: Path, timeout: float = 600.0) -> str:
    """``docker compose -f FILE up -d --wait``; return LocalStack's endpoint URL.

    ``timeout`` bounds the whole start, an image pull included.
    """
    path = _compose_file(compose_file)
    docker = require_engine()
    _require_compose(docker)
    _check_token(docker, path)
    result = _run(_compose(docker, path, "up", "-d", "--wait"), timeout, cwd=path.parent)
    if result.returncode != 0:
        detail = _tail(result.stderr or result.stdout)
        err = EmulatorError(
            f"docker compose up failed (exit code {result.returncode})"
            + (f":\n{detail}" if detail else "")
        )
        err.hint = (
            f"see the container's log: docker compose -f {path} logs {COMPOSE_SERVICE}; "
            f"clean up with: kclpy-local down --localstack --compose-file {path}"
        )
        raise err
    endpoint = _published_endpoint(docker, path)
    # --wait honours the file's healthcheck; a file without one is checked here.
    wait_ready(endpoint, timeout=min(timeout, 120.0), path=HEALTH_PATH)
    return endpoint


def compose_down(compose_file: Path, timeout: float = 120.0) -> None:
    """``docker compose -f FILE down``: stop and remove the LocalStack container."""
    path = _compose_file(compose_file)
    docker = require_engine()
    _require_compose(docker)
    result = _run(_compose(docker, path, "down"), timeout, cwd=path.parent)
    if result.returncode != 0:
        detail = _tail(result.stderr or result.stdout)
        raise EmulatorError(
            f"docker compose down failed (exit code {result.returncode})"
            + (f":\n{detail}" if detail else "")
        )
