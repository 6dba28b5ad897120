"""What runs inside the embedded moto server: moto's application behind a Smithy RPC v2 CBOR front.

The AWS SDK for Java v2 that KCL 3.x runs on sends CloudWatch requests in the
Smithy RPC v2 CBOR protocol only (``POST /service/GraniteServiceVersion20100801/
operation/PutMetricData``, header ``smithy-protocol: rpc-v2-cbor``, a CBOR body),
which moto does not read. moto does read CloudWatch's other protocol with the
same document shape, AWS JSON 1.0 (what boto3 sends). :class:`CborFront` is a
WSGI layer in front of moto's application that turns each RPC v2 CBOR request
for a service of :data:`SERVICES` into that JSON request, lets moto answer it
(its own parsing, validation, account and region from the signature, and
backend), and turns the answer back into RPC v2 CBOR:

- request: the body (gzip-decoded when ``Content-Encoding: gzip``, as the SDK
  compresses large ``PutMetricData`` calls) is one CBOR map; timestamps (tag 1,
  epoch seconds) become epoch seconds, byte strings base64 text, NaN and the
  infinities the strings AWS JSON uses, a null member is absent;
- response: status and ``x-amzn-RequestId`` / ``x-amzn-query-error`` (the error
  code the SDK reads for this query-compatible service) are moto's; the JSON
  result becomes a CBOR map with the operation's output shape read from
  botocore's model (timestamps as tag 1, blobs as byte strings, doubles as
  floats); an operation with no output answers an empty map; an error is a CBOR
  map with ``__type`` and the error's members; every answer has
  ``smithy-protocol: rpc-v2-cbor`` and ``Content-Type: application/cbor``.

A body that is not one CBOR map (or not gzip, or over :data:`MAX_BODY_BYTES`)
is a 400 ``SerializationException`` naming what is wrong; an unknown service
or operation a 404 ``UnknownOperationException``; a failure inside moto a 500
``InternalFailure``. Every other request goes to moto untouched.

:func:`main` is the server process's entry (see
:data:`kclpy_local._emulators.moto._SERVER_MAIN`): ``-H HOST -p PORT``, moto's
application and request handler on werkzeug's threaded server, SIGTERM and
SIGINT ending it with status 0, as ``python -m moto.server`` does. This module
imports moto, werkzeug and cbor2, so only that process imports it.

It also lists each metric once (:func:`list_each_metric_once`): moto 5.2.5's
``ListMetrics`` returns a metric with two or more dimensions once per data point
put (its comparison of dimension lists fails on all but identical single-pair
lists) and takes time quadratic in the data points: about 4 s for the 10,000 a
KCL 3.x worker on two shards puts in three minutes, 130 s for 50,000. The
server's ``ListMetrics`` answers each namespace, name and set of dimensions
once, as CloudWatch does, in one pass over the data points. And two costs of
moto's own go: it routes a request without listing moto's package directory
each time (:func:`list_moto_modules_once`), and its Kinesis encodes a GetRecords
answer straight to AWS JSON instead of through botocore's model, record by
record (:func:`encode_get_records_directly`; the same document, a third of the
time).
"""

from __future__ import annotations

import argparse
import base64
import calendar
import datetime as dt
import functools
import gzip
import io
import json
import math
import os
import re
import signal
import sys
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

import cbor2

__all__ = [
    "CONTENT_TYPE",
    "MAX_BODY_BYTES",
    "PROTOCOL",
    "PROTOCOL_HEADER",
    "SERVICES",
    "CborFront",
    "decode_request",
    "encode_get_records_directly",
    "list_each_metric_once",
    "list_moto_modules_once",
    "main",
    "make_app",
    "to_json",
]

#: The header (and its value) that marks a request and a response as RPC v2 CBOR.
PROTOCOL_HEADER = "smithy-protocol"
PROTOCOL = "rpc-v2-cbor"
CONTENT_TYPE = "application/cbor"


@dataclass(frozen=True, slots=True)
class Service:
    """A service the front answers: its botocore model, its SigV4 signing name (moto
    routes a request by it), and the errors it answers an input its model refuses
    with (a missing member; any other problem)."""

    model: str
    signing_name: str
    missing: str
    invalid: str


#: The services the front answers, by their Smithy service name (the path's).
SERVICES: Mapping[str, Service] = {
    "GraniteServiceVersion20100801": Service(
        "cloudwatch",
        "monitoring",
        missing="MissingRequiredParameterException",
        invalid="InvalidParameterValueException",
    ),
}
#: A decoded body larger than this is refused (CloudWatch takes 1 MB per request).
MAX_BODY_BYTES = 8 * 1024 * 1024

_PATH = re.compile(r"/service/(?P<service>[^/]+)/operation/(?P<operation>[^/]+)\Z")
_JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
_KINESIS_CONTENT_TYPE = "application/x-amz-json-1.1"  # Kinesis's own AWS JSON
_PASSED_HEADERS = ("x-amzn-requestid", "x-amzn-query-error")
_JSON_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_STATUS_TEXT = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass(frozen=True, slots=True)
class Answer:
    """What the front sends back: the status, moto's headers it passes on, and the
    document it encodes as the CBOR body."""

    status: int
    headers: Mapping[str, str]
    document: object


def _error(status: int, code: str, message: str) -> Answer:
    return Answer(status, {}, {"__type": code, "message": message})


# -- CBOR to AWS JSON -------------------------------------------------------------


def _checked(item: object, where: str) -> object:
    """A decoded CBOR item with its null members dropped (a null member is an absent
    one); ``ValueError`` for a map key that is not text or an item no Smithy shape
    takes (a tag other than timestamps, a simple value...)."""
    if isinstance(item, bool | int | float | str | bytes | dt.datetime) or item is None:
        return item
    if isinstance(item, bytearray):
        return bytes(item)
    if isinstance(item, list):
        return [_checked(v, f"{where}[{i}]") for i, v in enumerate(item)]
    if isinstance(item, dict):
        out = {}
        for key, value in item.items():
            if not isinstance(key, str):
                raise ValueError(
                    f"a map key in {where or 'the body'} is a {type(key).__name__}, not text"
                )
            if value is not None and value is not cbor2.undefined:
                out[key] = _checked(value, f"{where}.{key}" if where else key)
        return out
    raise ValueError(f"{where or 'the body'} holds a CBOR item of type {type(item).__name__}")


def to_json(item: object) -> object:
    """A checked input document as AWS JSON holds it: timestamps as epoch seconds,
    byte strings as base64 text, NaN and the infinities as strings."""
    if isinstance(item, float):
        if math.isnan(item):
            return "NaN"
        if math.isinf(item):
            return "Infinity" if item > 0 else "-Infinity"
        return item
    if isinstance(item, bytes):
        return base64.b64encode(item).decode("ascii")
    if isinstance(item, dt.datetime):
        return (item if item.tzinfo else item.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(item, list):
        return [to_json(v) for v in item]
    if isinstance(item, dict):
        return {k: to_json(v) for k, v in item.items()}
    return item


def decode_request(body: bytes, content_encoding: str | None = None) -> dict[str, object]:
    """The input structure of an RPC v2 CBOR request body (null members dropped);
    ``ValueError`` naming what is wrong when it is not one CBOR map (the front's
    400). An empty body is an empty input."""
    encoding = (content_encoding or "").strip().lower()
    if encoding == "gzip":
        try:
            body = _gunzip(body)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"the body is not valid gzip ({exc})") from None
    elif encoding not in ("", "identity"):
        raise ValueError(f"Content-Encoding {content_encoding!r} is not supported (only gzip)")
    if not body:
        return {}
    try:
        item = cbor2.loads(body)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"the body is not valid CBOR ({exc})") from None
    if not isinstance(item, dict):
        raise ValueError(f"the body is a CBOR {type(item).__name__}, not a map")
    document = _checked(item, "")
    assert isinstance(document, dict)
    return document


def _invalid(document: Mapping[str, object], shape: Any) -> str | None:
    """What botocore's validator finds wrong with ``document`` for the input ``shape``
    (missing required members, wrong types, lengths and ranges), one line each;
    members the model does not know are left to moto, which ignores them."""
    from botocore.validate import ParamValidator

    if shape is None:
        return None
    report = ParamValidator().validate(dict(document), shape)
    if not report.has_errors():
        return None
    lines = [line for line in report.generate_report().splitlines() if line.strip()]
    kept = [line for line in lines if not line.startswith("Unknown parameter")]
    return "; ".join(kept) or None


def _gunzip(body: bytes) -> bytes:
    with gzip.GzipFile(fileobj=io.BytesIO(body)) as f:
        data = f.read(MAX_BODY_BYTES + 1)
    if len(data) > MAX_BODY_BYTES:
        raise ValueError(f"the body is larger than {MAX_BODY_BYTES} bytes once decompressed")
    return data


# -- AWS JSON to CBOR -------------------------------------------------------------


def _from_json(value: object, shape: Any) -> object:
    """A JSON value of moto's answer as RPC v2 CBOR carries it, per its botocore shape."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        members = shape.members
        return {k: _from_json(v, members.get(k)) for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_from_json(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _from_json(v, shape.value) for k, v in value.items()}
    if kind == "timestamp":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return dt.datetime.fromtimestamp(value, dt.UTC)
        if isinstance(value, str):
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    if kind == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    if kind in ("double", "float"):
        if isinstance(value, str) and value in _JSON_FLOATS:
            return _JSON_FLOATS[value]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return value


def _encode(document: object) -> bytes:
    return cbor2.dumps(document, datetime_as_timestamp=True, timezone=dt.UTC)


@functools.cache
def _service_model(name: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(name)


# -- the WSGI front ---------------------------------------------------------------


class CborFront:
    """WSGI: RPC v2 CBOR requests for :data:`SERVICES` through moto's JSON protocol;
    everything else to ``app`` as it came (see the module documentation)."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        match = _PATH.match(environ.get("PATH_INFO") or "")
        marked = (environ.get("HTTP_SMITHY_PROTOCOL") or "").strip().lower() == PROTOCOL
        if match is None or not marked or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        answer = self.answer(environ, match.group("service"), match.group("operation"))
        body = _encode(answer.document)
        head = [
            (PROTOCOL_HEADER, PROTOCOL),
            ("Content-Type", CONTENT_TYPE),
            ("Content-Length", str(len(body))),
            *answer.headers.items(),
        ]
        start_response(f"{answer.status} {_STATUS_TEXT.get(answer.status, 'Status')}", head)
        return [body]

    def answer(self, environ: dict[str, Any], service: str, operation: str) -> Answer:
        """The answer to one RPC v2 CBOR request for ``service``'s ``operation``."""
        known = SERVICES.get(service)
        if known is None:
            return _error(
                404,
                "UnknownOperationException",
                f"this server answers RPC v2 CBOR for {', '.join(SERVICES)} only, not {service}",
            )
        model = _service_model(known.model)
        if operation not in model.operation_names:
            return _error(
                404, "UnknownOperationException", f"{service} has no operation {operation}"
            )
        try:
            document = decode_request(_read_body(environ), environ.get("HTTP_CONTENT_ENCODING"))
        except ValueError as exc:
            return _error(400, "SerializationException", f"{operation}: {exc}")
        operation_model = model.operation_model(operation)
        problem = _invalid(document, operation_model.input_shape)
        if problem is not None:
            return _invalid_answer(model, known, problem)
        target = f"{service}.{operation}"
        try:
            status, headers, raw = self._call_moto(
                environ, target, to_json(document), known.signing_name
            )
        except Exception as exc:  # moto failed: a CBOR 500, not a dropped connection
            return _error(500, "InternalFailure", f"{operation}: {type(exc).__name__}: {exc}")
        passed = {k: v for k, v in headers.items() if k.lower() in _PASSED_HEADERS}
        try:
            result = json.loads(raw) if raw.strip() else {}
        except ValueError:
            result = None
        if status >= 300:
            if not isinstance(result, dict) or "__type" not in result:
                code = "UnknownOperationException" if status == 404 else "InternalFailure"
                text = raw.decode("utf-8", "replace").strip()[:500]
                result = {"__type": code, "message": text or f"HTTP {status} from moto"}
            return Answer(status, passed, result)
        if not isinstance(result, dict):
            return _error(500, "InternalFailure", f"moto's answer to {operation} is not JSON")
        output = operation_model.output_shape
        return Answer(status, passed, {} if output is None else _from_json(result, output))

    def _call_moto(
        self, environ: dict[str, Any], target: str, document: object, signing_name: str
    ) -> tuple[int, dict[str, str], bytes]:
        """moto's status, headers and body for ``document`` sent as AWS JSON 1.0."""
        body = json.dumps(document).encode()
        inner = dict(environ)
        for key in ("HTTP_CONTENT_ENCODING", "HTTP_SMITHY_PROTOCOL", "HTTP_TRANSFER_ENCODING"):
            inner.pop(key, None)
        inner.update(
            {
                "PATH_INFO": "/",
                "QUERY_STRING": "",
                "CONTENT_TYPE": _JSON_CONTENT_TYPE,
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_X_AMZ_TARGET": target,
                "wsgi.input": io.BytesIO(body),
            }
        )
        if not inner.get("HTTP_AUTHORIZATION"):
            # moto routes by the signature's scope (and checks no signature).
            inner["HTTP_AUTHORIZATION"] = (
                f"AWS4-HMAC-SHA256 Credential=test/20000101/us-east-1/{signing_name}/aws4_request"
            )
        started: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            started[:] = [status, headers]

        chunks = self.app(inner, capture)
        try:
            raw = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        if not started:
            raise RuntimeError("moto did not answer")
        return int(str(started[0]).split(" ", 1)[0]), dict(started[1]), raw


def _invalid_answer(model: Any, service: Service, problem: str) -> Answer:
    """A 400 for an input the model refuses: the service's missing-member error when
    a member is missing, else its invalid-value error, with the code a query-compatible
    client reads (``x-amzn-query-error``)."""
    missing = problem.startswith("Missing required parameter")
    name = service.missing if missing else service.invalid
    code = model.shape_for(name).metadata.get("error", {}).get("code", name)
    return Answer(
        400, {"x-amzn-query-error": f"{code};Sender"}, {"__type": name, "message": problem}
    )


def _read_body(environ: Mapping[str, Any]) -> bytes:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH") or ""
    if length.strip():
        try:
            size = int(length)
        except ValueError:
            raise ValueError(f"Content-Length {length!r} is not a number") from None
        if size > MAX_BODY_BYTES:
            raise ValueError(f"the body is larger than {MAX_BODY_BYTES} bytes")
        return bytes(stream.read(size)) if size > 0 else b""
    if environ.get("wsgi.input_terminated"):  # chunked: the server ends the stream
        data = bytes(stream.read(MAX_BODY_BYTES + 1))
        if len(data) > MAX_BODY_BYTES:
            raise ValueError(f"the body is larger than {MAX_BODY_BYTES} bytes")
        return data
    return b""


# -- the server process -----------------------------------------------------------


def _exit(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)


def list_each_metric_once() -> bool:
    """Make moto's CloudWatch backends list each metric (namespace, name, set of
    dimensions) once, the first one put, in one pass; whether it was done (not on a
    moto whose backend has another shape: its own listing stays)."""
    from moto.cloudwatch import models

    backend = getattr(models, "CloudWatchBackend", None)
    if backend is None or not callable(getattr(backend, "get_filtered_metrics", None)):
        return False
    if not callable(getattr(backend, "get_all_metrics", None)):
        return False

    def get_filtered_metrics(
        self: Any, metric_name: str, namespace: str, dimensions: list[dict[str, str]]
    ) -> list[Any]:
        first: dict[tuple[str, str, frozenset[tuple[str, str]]], Any] = {}
        for datum in self.get_all_metrics():
            if datum.filter(namespace=namespace, name=metric_name, dimensions=dimensions):
                pairs = frozenset((d.name, d.value) for d in datum.dimensions)
                first.setdefault((datum.namespace, datum.name, pairs), datum)
        return list(first.values())

    backend.get_filtered_metrics = get_filtered_metrics
    return True


def list_moto_modules_once() -> bool:
    """Make moto's routing read the list of its service folders once: moto 5.2.5's
    ``DomainDispatcherApplication`` lists its package directory (a ``stat`` per
    folder, some 200) on every request, under the lock that every request takes,
    which cost about a tenth of the server's time on a stream of GetRecords. The
    folders do not change while the server runs. Whether it was done (not on a
    moto without that function: its own stays)."""
    from moto import backends

    original = getattr(backends, "list_of_moto_modules", None)
    if not callable(original):
        return False
    folders = frozenset(original())
    backends.list_of_moto_modules = lambda: folders
    return True


def encode_get_records_directly() -> bool:
    """Make moto's Kinesis answer ``GetRecords`` with the records encoded straight
    to AWS JSON: moto 5.2.5 decodes each record's base64, then walks botocore's
    model for every member of every record to encode it again, which took about a
    third of the server's time on a stream of GetRecords (28 ms of CPU for 1,000
    records). The request, its parameters, the backend's reading and its errors
    stay moto's; the answer has the same members and values (the data's base64,
    the arrival time in epoch seconds truncated to the millisecond). Whether it
    was done (not on a moto whose Kinesis has another shape: its own stays)."""
    from moto.kinesis.responses import KinesisResponse

    own = getattr(KinesisResponse, "get_records", None)
    if not callable(own) or not hasattr(KinesisResponse, "kinesis_backend"):
        return False

    def get_records(self: Any) -> Any:
        next_iterator, records, millis_behind = self.kinesis_backend.get_records(
            self._get_param("StreamARN"), self._get_param("ShardIterator"), self._get_param("Limit")
        )
        try:
            encoded = [_record_json(record) for record in records]
        except (AttributeError, TypeError, ValueError):  # a record of another shape
            return own(self)
        document = {
            "Records": encoded,
            "NextShardIterator": next_iterator,
            "MillisBehindLatest": millis_behind,
        }
        return json.dumps(document), {"Content-Type": _KINESIS_CONTENT_TYPE}

    KinesisResponse.get_records = get_records  # type: ignore[method-assign]
    return True


def _record_json(record: Any) -> dict[str, object]:
    """One moto Kinesis record as GetRecords answers it in AWS JSON."""
    at: dt.datetime = record.created_at_datetime
    seconds: float = calendar.timegm(at.timetuple())
    if at.microsecond:  # as botocore's serializer: truncated to the millisecond
        seconds += (at.microsecond // 1000) / 1000.0
    return {
        "SequenceNumber": str(record.sequence_number),
        "ApproximateArrivalTimestamp": seconds,
        "Data": base64.b64encode(base64.b64decode(record.data)).decode("ascii"),
        "PartitionKey": record.partition_key,
    }


def make_app() -> WsgiApp:
    """moto's application (every service, routed by the signature) behind :class:`CborFront`."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return CborFront(DomainDispatcherApplication(create_backend_app))


def main(argv: list[str] | None = None) -> None:
    """Serve moto with the front on ``-H HOST -p PORT`` until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="moto.server")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # moto writes it into URLs it returns
    signal.signal(signal.SIGINT, _exit)
    signal.signal(signal.SIGTERM, _exit)
    list_each_metric_once()
    list_moto_modules_once()
    encode_get_records_directly()

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import run_simple

    run_simple(args.host, args.port, make_app(), threaded=True, request_handler=MotoRequestHandler)
