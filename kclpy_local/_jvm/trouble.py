"""Known worker trouble in the daemon's log, as one console line with a hint.

The KCL retries most failures for ever and says so only in its log: a Kinesis
engine that does not speak CBOR answers every ListShards with
``SerializationException``, an engine that checks credentials refuses them with
``UnrecognizedClientException``, a missing stream is ``ResourceNotFoundException``,
and the worker goes on retrying without ever starting. :class:`TroubleWatch`
reads every log line, recognises the AWS SDK's error reports (SDK v1, KCL 1.x:
``(Service: AmazonKinesis; Status Code: 400; Error Code: SerializationException;
...)``; SDK v2, KCL 3.x: ``KinesisException: Service returned error code
SerializationException (Service: Kinesis, Status Code: 400, ...)`` or
``ResourceNotFoundException: ... (Service: Kinesis, ...)``) and KCL 3.x's own
line for a missing stream, and gives one notice per kind of trouble with a hint, then at most one
reminder with a count every ``repeat_every`` seconds while it goes on.

Kinds (:data:`KINDS`): ``cbor`` (the Kinesis endpoint refuses or garbles CBOR),
``credentials`` (the endpoint refuses the credentials or the signature),
``stream`` (the stream does not exist), ``throttled`` (requests are throttled),
``certificate`` (the JVM does not trust an endpoint's TLS certificate, such as the
self-signed one of kinesis-mock's TLS port).
A record processor's own stderr (the daemon logs it as "Received error line from
subprocess [...]") is the processor's business and is not classified here.
"""

from __future__ import annotations

import collections
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "CBOR_DISABLED_MARKER",
    "KINDS",
    "ServiceError",
    "Trouble",
    "TroubleWatch",
    "classify",
    "parse_service_error",
]

#: The launcher's line when ``isCBORProtocolDisabled = true`` (launchers/common/Settings.java).
CBOR_DISABLED_MARKER = "kclpy-local: CBOR disabled"

KINDS = ("cbor", "credentials", "stream", "throttled", "certificate")

# SDK v1: AmazonServiceException.getMessage() ends with this parenthesis.
_SDK1 = re.compile(
    r"\(Service: (?P<service>[\w.-]+); Status Code: (?P<status>\d+); "
    r"Error Code: (?P<code>[\w.-]+); Request ID: (?P<request>[\w-]+)"
)
# SDK v2: AwsServiceException.toString() is "class: message (Service: S, Status Code: N, ...)".
_SDK2 = re.compile(
    r"(?P<cls>[\w$]+(?:Exception|Error)): (?P<message>.*?) ?\(Service: (?P<service>[\w.-]+), "
    r"Status Code: (?P<status>\d+), Request ID: (?P<request>[\w-]*)"
)
_SDK1_HEAD = re.compile(
    r"(?:^|[\s(])(?:[\w$]+\.)*(?P<cls>[\w$]+(?:Exception|Error)): (?P<message>.*?) \(Service: "
)
# SDK v2's generic exception (KinesisException...) names the code in its message.
_SDK2_CODE = re.compile(r"Service returned error code (?P<code>[\w.-]+)")
# KCL 3.x's shard detector on a stream that does not exist (it logs no SDK error).
_KCL3_NO_STREAM = re.compile(
    r"Got ResourceNotFoundException when fetching shard list for (?P<name>[^\s.]+(?:\.[^\s.]+)*)\. "
)
# The Java SDK's CBOR parser on a record whose Data is text (kinesis-mock over CBOR).
_CBOR_DATA = "not VALUE_EMBEDDED_OBJECT"
# The JVM's TLS refusing a certificate it cannot trust, or that names another host.
_UNTRUSTED = (
    "PKIX path building failed",
    "unable to find valid certification path",
    "No subject alternative names",
    "No subject alternative DNS name",
)
_STREAM_NAME = re.compile(r"Stream (?P<name>\S+?) (?:under account \S+ )?not found")
_CHILD_STDERR = "Received error line from subprocess ["

_CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
        "MissingAuthenticationToken",
        "ExpiredTokenException",
        "AccessDeniedException",
    }
)
_THROTTLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "TooManyRequestsException",
    }
)
_KINESIS = frozenset({"AmazonKinesis", "Kinesis"})


@dataclass(frozen=True, slots=True)
class ServiceError:
    """An AWS SDK error report found in a log line."""

    service: str  # as the SDK names it: AmazonKinesis, AmazonDynamoDBv2, Kinesis, DynamoDb...
    status: int
    code: str  # the error code (SDK v1) or the exception's class name (SDK v2)
    message: str
    request_id: str

    @property
    def kinesis(self) -> bool:
        return self.service in _KINESIS

    @property
    def service_label(self) -> str:
        """Kinesis, DynamoDB or CloudWatch (the SDK's own name otherwise)."""
        lowered = self.service.lower()
        for label in ("Kinesis", "DynamoDB", "CloudWatch"):
            if label.lower() in lowered:
                return label
        return self.service


def parse_service_error(line: str) -> ServiceError | None:
    """The AWS SDK error report in ``line``, or ``None``."""
    if "(Service: " not in line:
        return None
    match = _SDK1.search(line)
    if match is not None:
        head = _SDK1_HEAD.search(line)
        return ServiceError(
            service=match["service"],
            status=int(match["status"]),
            code=match["code"],
            message=head["message"] if head is not None else "",
            request_id=match["request"],
        )
    match = _SDK2.search(line)
    if match is not None:
        generic = _SDK2_CODE.search(match["message"])
        return ServiceError(
            service=match["service"],
            status=int(match["status"]),
            code=generic["code"] if generic is not None else match["cls"],
            message=match["message"],
            request_id=match["request"],
        )
    return None


@dataclass(frozen=True, slots=True)
class Trouble:
    """One kind of trouble: what is wrong, and what to do about it."""

    kind: str
    """A short name (``cbor``, ``certificate``, ``credentials``, ...): sightings of
    the same kind are counted under it."""
    text: str
    hint: str

    def line(self) -> str:
        return f"warning: {self.text}; hint: {self.hint}"


_CBOR_HINT = (
    "the engine does not speak CBOR: set isCBORProtocolDisabled = true (moto has no CBOR, "
    "kinesis-mock's CBOR records are unreadable, MiniStack needs the cbor2 package; "
    "ferrokinesis reads CBOR)"
)


def classify(line: str, *, cbor_disabled: bool = False) -> tuple[Trouble, str] | None:
    """The trouble ``line`` reports and a key that tells one occurrence from another
    (the request id, when the SDK names one), or ``None``.

    ``cbor_disabled``: the launcher said it turned CBOR off, so a
    ``SerializationException`` is not about CBOR.
    """
    if _CHILD_STDERR in line:
        return None
    if _CBOR_DATA in line and not cbor_disabled:
        trouble = Trouble(
            "cbor",
            "the Kinesis endpoint sends records the SDK cannot read over CBOR "
            "(Data is not a byte string)",
            _CBOR_HINT,
        )
        return trouble, line
    if any(text in line for text in _UNTRUSTED):
        trouble = Trouble(
            "certificate",
            "the JVM does not trust an endpoint's TLS certificate (" + _untrusted(line) + ")",
            "for an engine on this machine with a self-signed certificate (kinesis-mock's TLS "
            "port) set kinesisTrustLoopbackCertificates = true (KCL 3.x, loopback Kinesis "
            "endpoints only), or use its http:// port",
        )
        return trouble, "certificate"
    missing = _KCL3_NO_STREAM.search(line)
    if missing is not None:
        return _no_stream(f"the stream {missing['name']}"), line
    error = parse_service_error(line)
    if error is None:
        return None
    key = line if error.request_id in ("", "null") else error.request_id
    code, where = error.code, error.service_label
    if code == "SerializationException" and error.kinesis and not cbor_disabled:
        return (
            Trouble(
                "cbor",
                f"{where} answers SerializationException: the endpoint does not read the "
                "SDK's CBOR requests",
                _CBOR_HINT,
            ),
            key,
        )
    if code in _CREDENTIAL_CODES:
        return (
            Trouble(
                "credentials",
                f"{where} refuses the credentials ({code})",
                "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWSCredentialsProvider): "
                "an engine that checks them (MiniStack with AUTH=true, LocalStack with IAM "
                "enforcement) wants keys it knows, such as test/test",
            ),
            key,
        )
    if code == "ResourceNotFoundException" and error.kinesis:
        name = _STREAM_NAME.search(error.message)
        return _no_stream(f"the stream {name['name']}" if name else "the stream"), key
    if code in _THROTTLE_CODES:
        return (
            Trouble(
                "throttled",
                f"{where} throttles the worker's requests ({code})",
                "the KCL backs off and retries; if it persists, poll less often "
                "(idleTimeBetweenReadsInMillis), fetch more per call (maxRecords) or run "
                "fewer workers against the stream",
            ),
            key,
        )
    return None


def _untrusted(line: str) -> str:
    return next(text for text in _UNTRUSTED if text in line)


def _no_stream(stream: str) -> Trouble:
    return Trouble(
        "stream",
        f"{stream} does not exist at the Kinesis endpoint (ResourceNotFoundException)",
        "create it (kclpy-local put --create --stream NAME), or check streamName, "
        "kinesisEndpoint and regionName",
    )


@dataclass
class _Seen:
    trouble: Trouble
    count: int = 1
    reported: int = 1
    last_report: float = 0.0


class TroubleWatch:
    """Fed every daemon log line (any thread); :meth:`check` (the supervising loop)
    returns the console lines: one per kind of trouble when it first shows, then a
    reminder with the count at most every ``repeat_every`` seconds while it goes on.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, repeat_every: float = 60.0
    ) -> None:
        self._clock = clock
        self._repeat_every = repeat_every
        self._lock = threading.Lock()
        self._seen: dict[str, _Seen] = {}
        self._fresh: collections.deque[str] = collections.deque()
        self._keys: collections.deque[str] = collections.deque(maxlen=64)
        self.cbor_disabled = False

    def feed(self, line: str) -> None:
        if line.startswith(CBOR_DISABLED_MARKER):
            self.cbor_disabled = True
            return
        found = classify(line, cbor_disabled=self.cbor_disabled)
        if found is None:
            return
        trouble, key = found
        with self._lock:
            if key in self._keys:  # the same failure again (its cause, a retry note)
                return
            self._keys.append(key)
            seen = self._seen.get(trouble.kind)
            if seen is None:
                self._seen[trouble.kind] = _Seen(trouble, last_report=self._clock())
                self._fresh.append(trouble.kind)
            else:
                seen.count += 1

    def kinds(self) -> list[str]:
        """The kinds of trouble seen so far, in order."""
        with self._lock:
            return list(self._seen)

    def check(self) -> list[str]:
        now = self._clock()
        notices = []
        with self._lock:
            while self._fresh:
                notices.append(self._seen[self._fresh.popleft()].trouble.line())
            for seen in self._seen.values():
                if seen.count > seen.reported and now - seen.last_report >= self._repeat_every:
                    more = seen.count - seen.reported
                    notices.append(
                        f"still: {seen.trouble.text} ({more} more time{'s' if more > 1 else ''} "
                        f"in {now - seen.last_report:.0f}s, {seen.count} in all)"
                    )
                    seen.reported, seen.last_report = seen.count, now
        return notices
