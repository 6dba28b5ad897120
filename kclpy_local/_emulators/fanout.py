"""Enhanced fan-out on local engines: which Kinesis engines serve it, and the check
a command makes before a worker reads by it.

A KCL 3.x worker that reads by enhanced fan-out (``retrievalMode = FANOUT``, or
``DEFAULT`` with no polling key) registers a stream consumer with
RegisterStreamConsumer, waits until it is ACTIVE, and reads every shard with
SubscribeToShard, an event stream over HTTP/2. The 3.x launcher gives its Kinesis
client the KCL's own HTTP/2 configuration then, on local endpoints too: over
``http://`` that is HTTP/2 without TLS with prior knowledge (h2c), over
``https://`` to a loopback host HTTP/2 negotiated by ALPN. So the engine must
serve SubscribeToShard, and serve it over HTTP/2.

:data:`FANOUT_SUPPORT` says so for the engines the project starts (measured with
the real KCL 3.x). :func:`check_engine` is what ``run`` and ``daemon`` call before
the JVM starts: an engine known not to serve it is refused by name
(:class:`~kclpy_local._exceptions.FanoutUnsupportedError`, exit 2); an engine of
unknown kind on a local endpoint is asked (:func:`probe`): does it speak HTTP/2 as
the launcher will (h2c: the HTTP/2 connection preface; TLS: ALPN ``h2``), and does
it have SubscribeToShard. AWS endpoints are not checked.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from .. import _aws
from .._config.endpoints import is_loopback_url
from .._config.generations import Generation
from .._config.generations import generation as _generation
from .._config.keyspec import java_trim
from .._env import default_state_dir
from .._exceptions import FanoutUnsupportedError
from . import kinesis_mock, ministack
from .engines import EngineSupport
from .registry import read_record, record_is_live

__all__ = [
    "FANOUT_HINT",
    "FANOUT_SUPPORT",
    "check_engine",
    "check_values",
    "engine_at",
    "h2_problem",
    "probe",
    "values_check",
]

#: What to do about an engine without enhanced fan-out.
FANOUT_HINT = (
    "put Kinesis on kinesis-mock (run --kinesis kinesis-mock, or up --kinesis kinesis-mock), "
    "or set retrievalMode = POLLING"
)
#: The HTTP/2 connection preface and an empty SETTINGS frame (RFC 9113, 3.4 and 6.5).
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_SETTINGS = 0x4
_PROBE_TIMEOUT = 3.0


FANOUT_SUPPORT = (
    EngineSupport(
        "moto", False, "moto has no SubscribeToShard (it answers HTTP 500) and speaks no HTTP/2"
    ),
    EngineSupport(
        "kinesis-mock",
        kinesis_mock.FANOUT_WORKS,
        "SubscribeToShard since 0.6.0, over HTTP/2 without TLS (h2c) on its plain port and "
        "by ALPN on its TLS port",
    ),
    EngineSupport(
        "ministack",
        ministack.FANOUT_WORKS,
        "SubscribeToShard over HTTP/2 without TLS (h2c)",
    ),
)
_BY_ENGINE = {support.engine: support for support in FANOUT_SUPPORT}


def h2_problem(endpoint_url: str, timeout: float = _PROBE_TIMEOUT) -> str | None:
    """Why the launcher's HTTP/2 cannot reach ``endpoint_url``; ``None`` when it can,
    or when nothing answers (a connection failure says nothing about the engine).

    ``http://``: the HTTP/2 connection preface with prior knowledge must be answered
    with a SETTINGS frame. ``https://``: the TLS handshake must settle on ``h2`` by
    ALPN (on a loopback host the certificate is not checked: only the protocol is
    asked, nothing is sent).
    """
    parts = urlsplit(endpoint_url)
    host = parts.hostname or ""
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            if tls:
                context = ssl.create_default_context()
                if is_loopback_url(endpoint_url):
                    # Only the protocol is asked, nothing is sent: a loopback engine's
                    # self-signed certificate may stay unchecked. Anything else is checked.
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                context.set_alpn_protocols(["h2", "http/1.1"])
                with context.wrap_socket(raw, server_hostname=host) as conn:
                    chosen = conn.selected_alpn_protocol()
                if chosen != "h2":
                    return f"it offers no HTTP/2 by ALPN over TLS (it chose {chosen or 'none'})"
                return None
            raw.sendall(_PREFACE)
            answer = _read_some(raw, 9)
            if len(answer) == 9 and answer[3] == _SETTINGS:
                return None
            if answer:  # the rest of its first line, to say what it answered
                raw.settimeout(0.5)
                answer += _read_some(raw, 80, until=b"\n")
    except (ConnectionError, socket.gaierror):
        return None
    except (OSError, ssl.SSLError) as exc:
        return f"it does not speak HTTP/2 ({exc})"
    first_line = answer.split(b"\n", 1)[0].rstrip(b"\r").decode("ascii", "replace")
    shown = repr(first_line) if answer else "nothing"
    return (
        "it does not speak HTTP/2 without TLS (h2c, prior knowledge): it answered the "
        f"HTTP/2 preface with {shown}, not a SETTINGS frame"
    )


def _read_some(conn: socket.socket, size: int, until: bytes | None = None) -> bytes:
    """Up to ``size`` bytes (fewer at the end of the stream, at ``until``, or at a timeout
    once something was read)."""
    data = b""
    while len(data) < size and not (until and until in data):
        try:
            chunk = conn.recv(size - len(data))
        except TimeoutError:
            if data or until:
                break
            raise
        if not chunk:
            break
        data += chunk
    return data


def probe(endpoint_url: str, region: str = "us-east-1", *, http2: bool = True) -> str | None:
    """Why the engine at ``endpoint_url`` cannot serve a KCL 3.x worker's enhanced
    fan-out; ``None`` when it can (or does not answer). ``http2``: the launcher speaks
    HTTP/2 to it (else HTTP/1.1, ``kinesisHttpProtocol = HTTP1_1``)."""
    return (http2 and h2_problem(endpoint_url)) or _aws.subscribe_to_shard_problem(
        endpoint_url, region
    )


def check_engine(
    engine: str | None, endpoint: str | None, region: str = "us-east-1", *, http2: bool = True
) -> None:
    """Refuse enhanced fan-out on ``engine`` (its name; ``None``: unknown) at
    ``endpoint`` with :class:`FanoutUnsupportedError` when it cannot serve it.

    An engine named in :data:`FANOUT_SUPPORT` is judged by it (its ``endpoint`` may be
    ``None``: not started yet); an engine of unknown kind on a local endpoint is asked
    (:func:`probe`); AWS (no endpoint, or an AWS host) is not checked."""
    support = _BY_ENGINE.get(engine or "")
    if support is not None:
        if not support.works:
            raise FanoutUnsupportedError(engine, endpoint, support.why, hint=FANOUT_HINT)
        return
    if not endpoint or not _aws.is_local_endpoint(endpoint):
        return
    problem = probe(endpoint, region, http2=http2)
    if problem is not None:
        raise FanoutUnsupportedError(engine, endpoint, problem, hint=FANOUT_HINT)


def engine_at(endpoint: str, state_dir: Path | None = None) -> str | None:
    """The engine ``kclpy-local up`` started that serves Kinesis at ``endpoint`` (its
    URL, or for kinesis-mock its TLS port on a loopback host too); ``None``: none it
    started, as the registry in ``state_dir`` says."""
    record = read_record(state_dir if state_dir is not None else default_state_dir())
    if record is None or not record_is_live(record):
        return None
    wanted = endpoint.rstrip("/")
    engine = record.kinesis
    if engine is not None:
        if engine.endpoint.rstrip("/") == wanted:
            return engine.engine
        parts = urlsplit(wanted)
        if (
            parts.scheme == "https"
            and is_loopback_url(wanted)
            and engine.tls_port
            and parts.port == engine.tls_port
        ):
            return engine.engine
        return None
    return record.engine if record.endpoint.rstrip("/") == wanted else None


def check_values(
    values: Mapping[str, str],
    generation: int | Generation,
    *,
    engine: str | None = None,
    state_dir: Path | None = None,
) -> None:
    """:func:`check_engine` for a worker with these effective ``values``, if it reads by
    enhanced fan-out; the engine is ``engine``, else the one ``up`` started at the
    file's Kinesis endpoint (:func:`engine_at`), else unknown."""
    kcl = _generation(generation)
    if not kcl.reads_by_fanout(values):
        return
    endpoint = java_trim(kcl.endpoint_values(values).get("kinesisEndpoint", "")) or None
    region = java_trim(values.get("regionName", "")) or "us-east-1"
    if engine is None and endpoint is not None:
        engine = engine_at(endpoint, state_dir)
    check_engine(engine, endpoint, region, http2=kcl.local_kinesis_http2(values))


def values_check(generation: int | Generation) -> Callable[[Mapping[str, str]], None]:
    """:func:`check_values` for ``generation``, as a check of a daemon's effective values."""
    return lambda values: check_values(values, generation)
