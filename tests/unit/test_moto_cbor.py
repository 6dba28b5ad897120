"""The embedded moto server's Smithy RPC v2 CBOR front (``_emulators/moto_server.py``).

Bodies in ``cbor_requests/`` are PutMetricData requests the AWS SDK for Java v2 of
KCL 3.x sent (captured from a real run: indefinite-length maps, integral doubles as
CBOR integers, no timestamps). The protocol details are checked on the front over
moto's real application in this process (werkzeug's test client); what a client
sees is checked on the real server process, with boto3 reading back in AWS JSON and
botocore's own RPC v2 CBOR client writing.
"""

from __future__ import annotations

import base64
import gzip
import http.server
import json
import math
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.model
import cbor2
import pytest
from werkzeug.test import Client, EnvironBuilder

from kclpy_local import _aws
from kclpy_local._emulators import moto_server
from kclpy_local._emulators.moto import EmbeddedEmulator, is_moto_process
from kclpy_local._emulators.moto_server import CborFront, decode_request, to_json

BODIES = Path(__file__).with_name("cbor_requests")
START = BODIES / "kcl3-put-metric-data-start.cbor"
RECORDS = BODIES / "kcl3-put-metric-data-records.cbor"
PATH = "/service/GraniteServiceVersion20100801/operation/"
#: What the SDK sends besides the body (its signature's scope routes the request in moto).
HEADERS = {
    "smithy-protocol": "rpc-v2-cbor",
    "Content-Type": "application/cbor",
    "Accept": "application/cbor",
    "x-amzn-query-mode": "true",
    "Authorization": "AWS4-HMAC-SHA256 Credential=test/20261203/us-east-1/monitoring/aws4_request, "
    "SignedHeaders=host;smithy-protocol, Signature=0",
}


@pytest.fixture(scope="module")
def front() -> Client:
    return Client(moto_server.make_app())


def call(
    client: Client, operation: str, body: bytes, **headers: str
) -> tuple[int, dict[str, str], Any]:
    response = client.post(PATH + operation, data=body, headers={**HEADERS, **headers})
    assert response.headers["smithy-protocol"] == "rpc-v2-cbor"
    assert response.headers["Content-Type"] == "application/cbor"
    assert int(response.headers["Content-Length"]) == len(response.data)
    return response.status_code, dict(response.headers), cbor2.loads(response.data)


def renamed(body: bytes, namespace: str) -> bytes:
    """A real body put into another namespace (the rest as the SDK wrote it)."""
    document = cbor2.loads(body)
    document["Namespace"] = namespace
    return bytes(cbor2.dumps(document))


def statistics(client: Client, namespace: str, name: str, dimensions: list[dict[str, str]]) -> Any:
    now = datetime.now(UTC)
    request = {
        "Namespace": namespace,
        "MetricName": name,
        "Dimensions": dimensions,
        "StartTime": now - timedelta(hours=1),
        "EndTime": now + timedelta(minutes=5),
        "Period": 3600,
        "Statistics": ["SampleCount", "Sum", "Minimum", "Maximum"],
    }
    status, _headers, answer = call(
        client, "GetMetricStatistics", cbor2.dumps(request, datetime_as_timestamp=True)
    )
    assert status == 200, answer
    return answer


# -- the SDK's own bodies ----------------------------------------------------------------


def test_the_kcl_sdk_bodies_decode_as_sent() -> None:
    document = decode_request(RECORDS.read_bytes())
    assert document["Namespace"] == "recorder"
    data = document["MetricData"]
    assert isinstance(data, list) and len(data) == 20
    records = [m for m in data if m["MetricName"] == "RecordsProcessed"]
    assert records == [
        {
            "MetricName": "RecordsProcessed",
            "Dimensions": [
                {"Name": "Operation", "Value": "ProcessTask"},
                {"Name": "ShardId", "Value": "shardId-000000000000"},
            ],
            "StatisticValues": {"SampleCount": 5, "Sum": 113, "Minimum": 0, "Maximum": 113},
            "Unit": "Count",
        }
    ]
    assert {m["Unit"] for m in data} <= {"Count", "Milliseconds", "Bytes", "None"}
    # The start-up flush: the KCL's lease and leader metrics, one datum each.
    start = decode_request(START.read_bytes())["MetricData"]
    assert isinstance(start, list)
    assert {"LeaderDecider:IsLeader", "CurrentLeases", "StatusOrdinal"} <= {
        m["MetricName"] for m in start
    }


def test_put_metric_data_from_the_sdk_lands_in_moto(front: Client) -> None:
    namespace = f"app-{uuid.uuid4().hex[:8]}"
    status, headers, answer = call(front, "PutMetricData", renamed(RECORDS.read_bytes(), namespace))
    assert (status, answer) == (200, {})  # PutMetricData has no output: an empty map
    assert headers["x-amzn-requestid"]
    status, _, listed = call(front, "ListMetrics", cbor2.dumps({"Namespace": namespace}))
    names = {m["MetricName"] for m in listed["Metrics"]}
    assert {
        "RecordsProcessed",
        "DataBytesProcessed",
        "MillisBehindLatest",
        "Time",
        "Success",
    } <= names
    shard = [
        {"Name": "Operation", "Value": "ProcessTask"},
        {"Name": "ShardId", "Value": "shardId-000000000000"},
    ]
    (point,) = statistics(front, namespace, "RecordsProcessed", shard)["Datapoints"]
    assert point["SampleCount"] == 5.0 and point["Sum"] == 113.0 and point["Maximum"] == 113.0
    assert point["Unit"] == "Count"
    # Timestamps come back as CBOR tag 1 (a datetime), doubles as floats.
    assert isinstance(point["Timestamp"], datetime) and point["Timestamp"].tzinfo is not None
    assert isinstance(point["Minimum"], float)


def test_a_gzip_body_is_read_as_the_sdk_compresses_large_ones(front: Client) -> None:
    namespace = f"gz-{uuid.uuid4().hex[:8]}"
    body = gzip.compress(renamed(RECORDS.read_bytes(), namespace))
    status, _, answer = call(front, "PutMetricData", body, **{"Content-Encoding": "gzip"})
    assert (status, answer) == (200, {})
    shard = [
        {"Name": "Operation", "Value": "ProcessTask"},
        {"Name": "ShardId", "Value": "shardId-000000000000"},
    ]
    (point,) = statistics(front, namespace, "RecordsProcessed", shard)["Datapoints"]
    assert point["Sum"] == 113.0


def test_every_member_of_a_datum(front: Client) -> None:
    """Value, Values with Counts, StatisticValues as floats, Timestamp as tag 1 (integer
    and fractional epoch seconds), Unit, StorageResolution, null members."""
    namespace = f"all-{uuid.uuid4().hex[:8]}"
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    body = cbor2.dumps(
        {
            "Namespace": namespace,
            "MetricData": [
                {
                    "MetricName": "single",
                    "Value": 2.5,
                    "Unit": "Seconds",
                    "StorageResolution": 1,
                    "Timestamp": cbor2.CBORTag(1, int(when.timestamp())),
                    "Dimensions": [{"Name": "d", "Value": "x"}],
                },
                {
                    "MetricName": "values",
                    "Values": [1.0, 4.0],
                    "Counts": [2.0, 1.0],
                    "Unit": "Count",
                    "Timestamp": cbor2.CBORTag(1, when.timestamp() + 0.25),
                    "StatisticValues": None,
                },
                {
                    "MetricName": "stats",
                    "StatisticValues": {
                        "SampleCount": 4.0,
                        "Sum": 10.0,
                        "Minimum": 1.5,
                        "Maximum": 4.0,
                    },
                },
            ],
        }
    )
    status, _, answer = call(front, "PutMetricData", body)
    assert (status, answer) == (200, {})
    (single,) = statistics(front, namespace, "single", [{"Name": "d", "Value": "x"}])["Datapoints"]
    assert single["Sum"] == 2.5 and single["Unit"] == "Seconds"
    assert single["Timestamp"] <= when + timedelta(seconds=1)
    (values,) = statistics(front, namespace, "values", [])["Datapoints"]
    assert values["SampleCount"] == 3.0 and values["Sum"] == 6.0 and values["Maximum"] == 4.0
    (stats,) = statistics(front, namespace, "stats", [])["Datapoints"]
    assert (stats["SampleCount"], stats["Sum"], stats["Minimum"], stats["Maximum"]) == (
        4.0,
        10.0,
        1.5,
        4.0,
    )


def test_the_aws_json_document_of_each_cbor_type() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)
    document = decode_request(
        cbor2.dumps(
            {
                "t": cbor2.CBORTag(1, when.timestamp()),
                "b": b"\x00\xff",
                "n": None,
                "u": cbor2.undefined,
                "f": [math.nan, math.inf, -math.inf, 1.5],
                "l": [{"x": None, "y": 1}],
            }
        )
    )
    assert document == {
        "t": when,
        "b": b"\x00\xff",
        "f": [document["f"][0], math.inf, -math.inf, 1.5],
        "l": [{"y": 1}],
    }
    assert to_json(document) == {
        "t": when.timestamp(),
        "b": "AP8=",
        "f": ["NaN", "Infinity", "-Infinity", 1.5],
        "l": [{"y": 1}],
    }
    assert decode_request(b"") == {}  # no body: an empty input


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "headers", "says"),
    [
        (b"\xff\xff", {}, "the body is not valid CBOR (break code"),
        (RECORDS.read_bytes()[:-40], {}, "the body is not valid CBOR (premature end of stream"),
        (b"\x82\x01\x02", {}, "the body is a CBOR list, not a map"),
        (b"\x64text", {}, "the body is a CBOR str, not a map"),
        (b"\xa1\x01\x02", {}, "a map key in the body is a int, not text"),
        (
            cbor2.dumps(
                {
                    "Namespace": "n",
                    "MetricData": [{"MetricName": "m", "Value": cbor2.CBORTag(99, 1)}],
                }
            ),
            {},
            "MetricData[0].Value holds a CBOR item of type CBORTag",
        ),
        (b"not gzip", {"Content-Encoding": "gzip"}, "the body is not valid gzip"),
        (
            RECORDS.read_bytes(),
            {"Content-Encoding": "br"},
            "Content-Encoding 'br' is not supported (only gzip)",
        ),
    ],
    ids=["garbage", "truncated", "list", "text", "int-key", "unknown-tag", "not-gzip", "brotli"],
)
def test_a_body_that_is_not_one_cbor_map_is_a_400_naming_what_is_wrong(
    front: Client, body: bytes, headers: dict[str, str], says: str
) -> None:
    status, _, answer = call(front, "PutMetricData", body, **headers)
    assert status == 400
    assert answer["__type"] == "SerializationException"
    assert answer["message"].startswith("PutMetricData: " + says), answer


def test_a_body_over_the_limit_is_refused_before_it_is_read(front: Client) -> None:
    environ = EnvironBuilder(
        path=PATH + "PutMetricData", method="POST", data=b"\xa0", headers=HEADERS
    ).get_environ()
    environ["CONTENT_LENGTH"] = str(moto_server.MAX_BODY_BYTES + 1)  # what a client announces
    started: list[str] = []
    body = b"".join(moto_server.make_app()(environ, lambda status, headers: started.append(status)))
    assert started == ["400 Bad Request"]
    assert cbor2.loads(body)["message"].startswith("PutMetricData: the body is larger than")
    bomb = gzip.compress(b"\x00" * (moto_server.MAX_BODY_BYTES + 1))
    status, _, answer = call(front, "PutMetricData", bomb, **{"Content-Encoding": "gzip"})
    assert status == 400 and "once decompressed" in answer["message"]


def test_an_input_the_model_refuses_is_the_services_own_error(front: Client) -> None:
    status, headers, answer = call(
        front, "PutMetricData", cbor2.dumps({"MetricData": [{"MetricName": "m", "Value": 1}]})
    )
    assert status == 400
    assert answer == {
        "__type": "MissingRequiredParameterException",
        "message": 'Missing required parameter in input: "Namespace"',
    }
    assert headers["x-amzn-query-error"] == "MissingParameter;Sender"
    status, headers, answer = call(
        front,
        "PutMetricData",
        cbor2.dumps({"Namespace": "n", "MetricData": [{"MetricName": "m", "Value": "one"}]}),
    )
    assert status == 400 and answer["__type"] == "InvalidParameterValueException"
    assert answer["message"].startswith(
        "Invalid type for parameter MetricData[0].Value, value: one"
    )
    assert headers["x-amzn-query-error"] == "InvalidParameterValue;Sender"


def test_moto_s_own_errors_keep_their_type_and_code(front: Client) -> None:
    body = cbor2.dumps(
        {"Namespace": "n", "MetricData": [{"MetricName": "m", "Value": 1.0, "Values": [1.0]}]}
    )
    status, headers, answer = call(front, "PutMetricData", body)
    assert status == 400
    assert answer["__type"].endswith("#InvalidParameterValueException")
    assert "mutually exclusive" in answer["message"]
    assert headers["x-amzn-query-error"] == "InvalidParameterValue;Sender"


def test_unknown_operations_and_services_are_404(front: Client) -> None:
    status, _, answer = call(front, "PutMetricDataFast", b"\xa0")
    assert (status, answer["__type"]) == (404, "UnknownOperationException")
    assert answer["message"] == "GraniteServiceVersion20100801 has no operation PutMetricDataFast"
    response = front.post(
        "/service/Kinesis_20131202/operation/PutRecords", data=b"\xa0", headers=HEADERS
    )
    assert response.status_code == 404
    answer = cbor2.loads(response.data)
    assert (
        answer["__type"] == "UnknownOperationException"
        and "not Kinesis_20131202" in answer["message"]
    )


def test_a_failure_inside_moto_is_a_cbor_500() -> None:
    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("backend exploded")

    status, _, answer = call(Client(CborFront(broken)), "ListMetrics", b"\xa0")
    assert status == 500
    assert answer == {
        "__type": "InternalFailure",
        "message": "ListMetrics: RuntimeError: backend exploded",
    }


def test_other_requests_reach_moto_untouched(front: Client) -> None:
    assert front.get("/moto-api/data.json").status_code == 200
    # Without the protocol header the path is moto's (and its 404).
    response = front.post(
        PATH + "PutMetricData",
        data=b"\xa0",
        headers={k: v for k, v in HEADERS.items() if k != "smithy-protocol"},
    )
    assert "smithy-protocol" not in response.headers


# -- the real server ---------------------------------------------------------------------


@pytest.fixture
def cbor_botocore(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """botocore's clients made now speak Smithy RPC v2 CBOR where a service has it."""
    monkeypatch.setattr(
        botocore.model, "PRIORITY_ORDERED_SUPPORTED_PROTOCOLS", ("smithy-rpc-v2-cbor", "query")
    )
    yield


def test_the_server_answers_sdk_bodies_and_boto3_reads_them(
    fresh_emulator: EmbeddedEmulator,
) -> None:
    """Real bodies over HTTP to the server process; boto3 (AWS JSON) lists what they put."""
    # The server with its front is still told apart as moto's (``down``, the registry).
    assert fresh_emulator.pid is not None and is_moto_process(fresh_emulator.pid) is True
    for path in (START, RECORDS):
        request = urllib.request.Request(
            fresh_emulator.endpoint_url + PATH + "PutMetricData",
            data=path.read_bytes(),
            headers=HEADERS,
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200 and response.headers["smithy-protocol"] == "rpc-v2-cbor"
            assert response.read() == b"\xa0"
    cw = _aws.client("cloudwatch", fresh_emulator.endpoint_url)
    names = {m.name for m in _aws.list_metrics(cw, "recorder")}
    assert {"RecordsProcessed", "LeaderDecider:IsLeader", "CurrentLeases"} <= names
    shard = {"Operation": "ProcessTask", "ShardId": "shardId-000000000000"}
    points = _aws.metric_statistics(cw, "recorder", "RecordsProcessed", shard)
    assert sum(p.sum or 0 for p in points) == 113
    assert _aws.rpc_v2_cbor_problem(fresh_emulator.endpoint_url) is None


@pytest.mark.usefixtures("cbor_botocore")
def test_botocore_s_rpc_v2_cbor_client_round_trips(fresh_emulator: EmbeddedEmulator) -> None:
    cw = _aws.client("cloudwatch", fresh_emulator.endpoint_url)
    assert cw.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
    when = datetime.now(UTC) - timedelta(minutes=1)
    cw.put_metric_data(
        Namespace="cbor",
        MetricData=[
            {
                "MetricName": "Latency",
                "Dimensions": [{"Name": "Op", "Value": "get"}],
                "Timestamp": when,
                "StatisticValues": {"SampleCount": 2, "Sum": 3.5, "Minimum": 1.25, "Maximum": 2.25},
                "Unit": "Milliseconds",
                "StorageResolution": 60,
            },
        ],
    )
    (point,) = _aws.metric_statistics(cw, "cbor", "Latency", {"Op": "get"})
    assert (point.sample_count, point.sum, point.minimum, point.maximum) == (2.0, 3.5, 1.25, 2.25)
    assert abs((point.timestamp - when).total_seconds()) < 1
    with pytest.raises(cw.exceptions.InvalidParameterValueException) as info:
        cw.put_metric_data(
            Namespace="cbor", MetricData=[{"MetricName": "x", "Value": 1, "Values": [1]}]
        )
    assert info.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


class _Answer(http.server.BaseHTTPRequestHandler):
    """Answers every POST with the class's status, headers and body."""

    status = 404
    headers_out: dict[str, str] = {}
    body = b""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(self.status)
        for name, value in self.headers_out.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def answering() -> Iterator[Any]:
    """An HTTP server on loopback whose answer a test sets (``.handler``, ``.url``)."""

    class Handler(_Answer):
        pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.handler = Handler  # type: ignore[attr-defined]
    server.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    yield server
    server.shutdown()
    server.server_close()


def test_the_probe_tells_an_endpoint_that_does_not_answer(answering: Any) -> None:
    url = answering.url
    assert _aws.rpc_v2_cbor_problem(url) == "HTTP 404 without an RPC v2 CBOR answer"
    # Marked as RPC v2 CBOR but JSON text: what MiniStack without cbor2 answers.
    answering.handler.status = 200
    answering.handler.headers_out = {
        "smithy-protocol": "rpc-v2-cbor",
        "Content-Type": "application/cbor",
    }
    answering.handler.body = b"{}"
    assert _aws.rpc_v2_cbor_problem(url) == (
        "HTTP 200 marked rpc-v2-cbor, but the body is not a CBOR map (b'{}')"
    )
    answering.handler.body = cbor2.dumps({"Metrics": []})
    assert _aws.rpc_v2_cbor_problem(url) is None
    answering.shutdown()
    answering.server_close()
    assert str(_aws.rpc_v2_cbor_problem(url)).startswith("no answer (")  # nobody listens any more
    assert _aws.rpc_v2_cbor_problem("https://monitoring.us-east-1.amazonaws.com") == (
        "not a local endpoint (not asked)"
    )
    # The probe's body is the CBOR map it says it is.
    assert cbor2.loads(_aws._CBOR_PROBE_BODY) == {"Namespace": "kclpy-local/probe"}


def test_list_metrics_names_each_metric_once(fresh_emulator: EmbeddedEmulator) -> None:
    """moto alone lists a metric with two or more dimensions once per data point put;
    the server lists each namespace, name and set of dimensions once, as CloudWatch."""
    cw = _aws.client("cloudwatch", fresh_emulator.endpoint_url)
    shard = [{"Name": "Operation", "Value": "ProcessTask"}, {"Name": "ShardId", "Value": "s-0"}]
    for value in range(5):
        cw.put_metric_data(
            Namespace="once",
            MetricData=[
                {"MetricName": "RecordsProcessed", "Dimensions": shard, "Value": value},
                {
                    "MetricName": "RecordsProcessed",
                    "Dimensions": shard[::-1],
                    "Value": value,
                },  # same set
                {"MetricName": "RecordsProcessed", "Dimensions": shard[:1], "Value": value},
                {"MetricName": "Time", "Value": value},
            ],
        )
    listed = [
        (m["MetricName"], sorted((d["Name"], d["Value"]) for d in m["Dimensions"]))
        for page in cw.get_paginator("list_metrics").paginate(Namespace="once")
        for m in page["Metrics"]
    ]
    assert sorted(listed) == [
        ("RecordsProcessed", [("Operation", "ProcessTask")]),
        ("RecordsProcessed", [("Operation", "ProcessTask"), ("ShardId", "s-0")]),
        ("Time", []),
    ]
    filtered = cw.list_metrics(Namespace="once", Dimensions=[{"Name": "ShardId", "Value": "s-0"}])[
        "Metrics"
    ]
    assert [m["MetricName"] for m in filtered] == ["RecordsProcessed"]
    # Every data point is still there for the statistics.
    (point,) = _aws.metric_statistics(
        cw, "once", "RecordsProcessed", dict((d["Name"], d["Value"]) for d in shard)
    )
    assert point.sample_count == 10 and point.sum == 20


def test_requests_are_routed_without_listing_moto_s_folders_each_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """moto lists its package directory on every request; the server lists it once."""
    from moto import backends

    listed = list(backends.list_of_moto_modules())
    monkeypatch.setattr(backends, "list_of_moto_modules", backends.list_of_moto_modules)
    assert moto_server.list_moto_modules_once()

    def no_listing(path: object) -> list[str]:
        raise AssertionError(f"listed {path} again")

    monkeypatch.setattr("os.listdir", no_listing)
    assert "kinesis" in listed and "dynamodb" in listed
    assert sorted(backends.list_of_moto_modules()) == sorted(listed)
    assert "kinesis" in backends.list_of_moto_modules()
    assert "kinesis.us-east-1.amazonaws.com" not in backends.list_of_moto_modules()


def _kinesis(client: Client, operation: str, document: dict[str, Any]) -> Any:
    response = client.post(
        "/",
        data=json.dumps(document),
        headers={
            "Authorization": HEADERS["Authorization"].replace("/monitoring/", "/kinesis/"),
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"Kinesis_20131202.{operation}",
        },
    )
    assert response.status_code == 200, response.get_data()
    return response


def test_get_records_answers_what_moto_itself_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server encodes GetRecords directly: the same members and values as moto's
    own encoding (binary data, non-ASCII keys, an empty record, a short page, the
    end of the shard), in a fraction of the time."""
    from moto.kinesis.responses import KinesisResponse

    monkeypatch.setattr(KinesisResponse, "get_records", KinesisResponse.get_records)
    client = Client(moto_server.make_app())
    stream = f"direct-{uuid.uuid4().hex[:8]}"
    _kinesis(client, "CreateStream", {"StreamName": stream, "ShardCount": 1})
    payloads = [b"", bytes(range(256)), "é→✓".encode(), b"x" * 1000]
    for i, data in enumerate(payloads * 3):
        _kinesis(
            client,
            "PutRecord",
            {
                "StreamName": stream,
                "PartitionKey": f"key-{i}-ü",
                "Data": base64.b64encode(data).decode(),
            },
        )
    iterator = json.loads(
        _kinesis(
            client,
            "GetShardIterator",
            {
                "StreamName": stream,
                "ShardId": "shardId-000000000000",
                "ShardIteratorType": "TRIM_HORIZON",
            },
        ).get_data()
    )["ShardIterator"]

    def pages() -> list[tuple[str | None, Any]]:
        out, at = [], iterator
        for limit in (5, None, 10):  # a short page, the rest, then the end of the shard
            body = {"ShardIterator": at, **({"Limit": limit} if limit else {})}
            response = _kinesis(client, "GetRecords", body)
            out.append((response.headers.get("Content-Type"), json.loads(response.get_data())))
            at = out[-1][1]["NextShardIterator"]
        return out

    own = pages()
    assert moto_server.encode_get_records_directly()
    direct = pages()
    assert direct == own
    assert [len(page["Records"]) for _, page in direct] == [5, 7, 0]
    first = direct[0][1]["Records"]
    assert [base64.b64decode(r["Data"]) for r in first] == (payloads * 2)[:5]
    assert first[0]["PartitionKey"] == "key-0-ü"
    assert all(isinstance(r["ApproximateArrivalTimestamp"], (int, float)) for r in first)
