"""The trouble classifier: real daemon logs (tests/unit/daemon_logs/; KCL 1.15.3 and 3.x
provoked against MiniStack 1.5.33: CBOR on without cbor2, a stream that does not exist,
AUTH=true with unknown keys; stack frames left out) give one console line per kind, with
a hint. The throttling lines are written in the SDK's format, not captured."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from kclpy_local._cli.run import _View
from kclpy_local._jvm.daemon import READY_MARKER
from kclpy_local._jvm.supervise import DaemonLog, Supervisor
from kclpy_local._jvm.trouble import TroubleWatch, classify, parse_service_error
from kclpy_local._runtime.progress import ProgressBoard

LOGS = Path(__file__).with_name("daemon_logs")


def lines(name: str) -> list[str]:
    return (LOGS / name).read_text(encoding="utf-8").splitlines()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def watch_over(name: str, clock: Clock | None = None) -> tuple[TroubleWatch, list[str]]:
    watch = TroubleWatch(clock=clock or Clock())
    for line in lines(name):
        watch.feed(line)
    return watch, watch.check()


def test_cbor_on_against_an_engine_without_cbor() -> None:
    watch, notices = watch_over("kcl1_ministack_cbor_on.log")
    assert notices == [
        "warning: Kinesis answers SerializationException: the endpoint does not read the SDK's "
        "CBOR requests; hint: the engine does not speak CBOR: set isCBORProtocolDisabled = true "
        "(moto has no CBOR, kinesis-mock's CBOR records are unreadable, MiniStack needs the cbor2 "
        "package)"
    ]
    assert watch.kinds() == ["cbor"]
    assert watch.check() == []  # once per kind


def test_a_stream_that_does_not_exist() -> None:
    _, notices = watch_over("kcl1_ministack_no_stream.log")
    assert len(notices) == 1
    assert notices[0].startswith(
        "warning: the stream nope does not exist at the Kinesis endpoint "
        "(ResourceNotFoundException); hint: create it"
    )


def test_credentials_refused() -> None:
    _, notices = watch_over("kcl1_ministack_credentials_refused.log")
    assert len(notices) == 1
    assert notices[0].startswith(
        "warning: DynamoDB refuses the credentials (UnrecognizedClientException); "
        "hint: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )


def test_kcl3_cbor_on_against_an_engine_without_cbor() -> None:
    watch, notices = watch_over("kcl3_ministack_cbor_on.log")
    assert len(notices) == 1 and notices[0].startswith("warning: Kinesis answers SerializationException")
    assert watch.kinds() == ["cbor"]


def test_kcl3_a_stream_that_does_not_exist() -> None:
    _, notices = watch_over("kcl3_ministack_no_stream.log")
    assert len(notices) == 1
    assert notices[0].startswith("warning: the stream nope3 does not exist at the Kinesis endpoint")


def test_kcl3_an_untrusted_certificate_of_a_loopback_engine() -> None:
    """Enhanced fan-out on kinesis-mock's TLS port without kinesisTrustLoopbackCertificates:
    the JVM refuses its self-signed certificate and the KCL retries for ever."""
    watch, notices = watch_over("kcl3_kinesis_mock_tls_untrusted.log")
    assert notices == [
        "warning: the JVM does not trust an endpoint's TLS certificate (PKIX path building failed); "
        "hint: for an engine on this machine with a self-signed certificate (kinesis-mock's TLS "
        "port) set kinesisTrustLoopbackCertificates = true (KCL 3.x, loopback Kinesis endpoints "
        "only), or use its http:// port"
    ]
    assert watch.kinds() == ["certificate"]


def test_repeats_are_counted_in_a_reminder_at_most_every_interval() -> None:
    clock = Clock()
    watch, first = watch_over("kcl1_ministack_cbor_on.log", clock)
    assert len(first) == 1
    # Three failed shard syncs in the log: the eager sync's note repeats the first
    # one's request id, so two more count.
    clock.now += 10
    assert watch.check() == []
    clock.now += 60
    (reminder,) = watch.check()
    assert reminder.startswith("still: Kinesis answers SerializationException")
    assert "(2 more times in 70s, 3 in all)" in reminder
    clock.now += 120
    assert watch.check() == []  # nothing new


def test_with_cbor_off_a_serialization_exception_is_not_about_cbor() -> None:
    watch = TroubleWatch()
    watch.feed("kclpy-local: CBOR disabled (isCBORProtocolDisabled = true)")
    for line in lines("kcl1_ministack_cbor_on.log"):
        watch.feed(line)
    assert watch.check() == []


SDK1_THROTTLED = (
    "com.amazonaws.services.kinesis.model.ProvisionedThroughputExceededException: Rate exceeded "
    "for shard shardId-000000000000 in stream s under account 000000000000. (Service: "
    "AmazonKinesis; Status Code: 400; Error Code: ProvisionedThroughputExceededException; "
    "Request ID: 1b6d; Proxy: null)"
)
SDK1_LIMIT = (
    "com.amazonaws.services.kinesis.model.LimitExceededException: Rate exceeded for stream s "
    "(Service: AmazonKinesis; Status Code: 400; Error Code: LimitExceededException; Request ID: "
    "8c1f; Proxy: null)"
)
SDK2_NO_STREAM = (
    "software.amazon.awssdk.services.kinesis.model.ResourceNotFoundException: Stream nope under "
    "account 000000000000 not found. (Service: Kinesis, Status Code: 400, Request ID: 4e2a)"
)
SDK2_SIGNATURE = (
    "software.amazon.awssdk.services.dynamodb.model.DynamoDbException: The request signature we "
    "calculated does not match (Service: DynamoDb, Status Code: 400, Request ID: 77aa)"
)
SDK2_UNRECOGNIZED = (
    "java.util.concurrent.CompletionException: software.amazon.awssdk.services.kinesis.model."
    "KinesisException: x (Service: Kinesis, Status Code: 400, Request ID: 9)"
)


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (SDK1_THROTTLED, "throttled"),
        (SDK1_LIMIT, "throttled"),
        (SDK2_NO_STREAM, "stream"),
        (
            "com.fasterxml.jackson.core.JsonParseException: Current token (VALUE_STRING) not "
            "VALUE_EMBEDDED_OBJECT, can not access as binary",
            "cbor",
        ),
        (
            "com.amazonaws.services.dynamodbv2.model.AmazonDynamoDBException: The request "
            "signature we calculated does not match the signature you provided. (Service: "
            "AmazonDynamoDBv2; Status Code: 400; Error Code: InvalidSignatureException; "
            "Request ID: null; Proxy: null)",
            "credentials",
        ),
    ],
)
def test_classify(line: str, kind: str) -> None:
    found = classify(line)
    assert found is not None and found[0].kind == kind


@pytest.mark.parametrize(
    "line",
    [
        SDK2_SIGNATURE,  # a generic DynamoDbException names no code we know
        SDK2_UNRECOGNIZED,
        # DynamoDB's ResourceNotFoundException is the lease table, which the KCL creates.
        "com.amazonaws.services.dynamodbv2.model.ResourceNotFoundException: Requested resource "
        "not found (Service: AmazonDynamoDBv2; Status Code: 400; Error Code: "
        "ResourceNotFoundException; Request ID: x; Proxy: null)",
        # A record processor's own stderr is its business.
        "Received error line from subprocess [botocore.errorfactory.ResourceNotFoundException: "
        "(Service: AmazonKinesis; Status Code: 400; Error Code: ResourceNotFoundException; "
        "Request ID: 1; Proxy: null)] for shard shardId-000000000000",
        "INFO: Initialization attempt 1",
    ],
)
def test_not_trouble(line: str) -> None:
    assert classify(line) is None


def test_the_service_error_fields() -> None:
    error = parse_service_error(SDK2_NO_STREAM)
    assert error is not None
    assert (error.service, error.status, error.code, error.request_id) == (
        "Kinesis",
        400,
        "ResourceNotFoundException",
        "4e2a",
    )
    assert error.kinesis and error.service_label == "Kinesis"


class LinesDaemon:
    """Says its lines when started, then runs until stopped."""

    def __init__(self, sink: DaemonLog, said: list[str]) -> None:
        self.sink, self.said = sink, said
        self.began = 0.0
        self.terminated = False

    def start(self, *, wait_ready: bool = True) -> LinesDaemon:
        self.began = time.monotonic()
        for line in self.said:
            self.sink(line)
        return self

    def wait(self, timeout: float | None = None) -> int | None:
        if self.terminated:
            return 0
        time.sleep(timeout or 0)
        return 3 if time.monotonic() - self.began > 1.2 else None

    def terminate(self) -> None:
        self.terminated = True

    def stop(self, timeout: float | None = None) -> int:
        return 0

    def log_tail(self) -> tuple[str, ...]:
        return tuple(self.said[-3:])


def test_the_supervisor_prints_the_trouble_on_the_console_at_once(tmp_path: Path) -> None:
    err = io.StringIO()
    sink = DaemonLog(io.StringIO())
    daemon = LinesDaemon(sink, lines("kcl1_ministack_cbor_on.log"))
    supervisor = Supervisor(
        sink=sink,
        board=ProgressBoard(tmp_path / "progress.jsonl"),
        console=_View(err, False),
        started=time.time(),
        ready_timeout=None,
        policy=None,
    )
    assert READY_MARKER not in "".join(daemon.said)
    assert supervisor.run(lambda: daemon) == 3  # type: ignore[arg-type,return-value]
    out = err.getvalue()
    assert out.count("kclpy-local: warning: Kinesis answers SerializationException") == 1
    # Printed before the daemon's exit is reported.
    assert out.index("SerializationException") < out.index("error: the daemon exited with code 3")
