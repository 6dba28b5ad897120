"""The examples of environment substitution and profiles, computed by running them.

Each example row is the answer of :mod:`kclpy_local._config.properties` itself,
so the page shows what the code does.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .. import _exceptions
from . import _config_api as config
from ._markdown import code, table

__all__ = ["profile_parts", "substitution_parts"]

_SUBSTITUTION_ENV: Mapping[str, str] = {"KCLPY_LOCAL_STREAM": "orders", "EMPTY": ""}
_SUBSTITUTION_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("${KCLPY_LOCAL_STREAM}", "a set variable"),
    ("${KCLPY_LOCAL_STREAM:-demo}", "a set variable wins over the default"),
    ("${UNSET_VAR:-demo}", "an unset variable takes the default"),
    ("${EMPTY:-demo}", "so does an empty one"),
    ("${EMPTY}", "an empty variable without default is the empty string"),
    ("http://${HOST:-127.0.0.1}:4566", "inside a longer value"),
    ("$${KCLPY_LOCAL_STREAM}", "`$${` is a literal `${`"),
    ("cost$5", "a `$` not followed by `{` is literal"),
    ("${UNSET_VAR}", "an unset variable without default is an error"),
    ("${KCLPY_LOCAL_STREAM", "so is a `${` that is not a reference"),
)


def substitution_parts() -> dict[str, str]:
    """The substitution examples, each value substituted by the properties module."""
    rows = []
    for value, why in _SUBSTITUTION_EXAMPLES:
        try:
            result = config.substitute(value, key="streamName", environ=_SUBSTITUTION_ENV)
            shown = code(result) if result else "(empty)"
        except _exceptions.PropertiesError as exc:
            shown = f"error: {exc}"
        rows.append((code(value), shown, why))
    env = ", ".join(f"`{k}={v}`" for k, v in _SUBSTITUTION_ENV.items())
    header = ("value in the file", "value the daemon sees", "rule")
    return {"env": env, "substitution": "\n".join(table(header, rows))}


_BASE_PROPERTIES: Mapping[str, str] = {
    "applicationName": "my-app",
    "streamName": "my-stream",
    "executableName": "python3 processor.py",
    "AWSCredentialsProvider": "DefaultAWSCredentialsProviderChain",
    "regionName": "us-east-1",
    **dict.fromkeys(config.ENDPOINT_KEYS, "http://127.0.0.1:4566"),
}


def _scenario(**changes: str | None) -> dict[str, str]:
    values = {**_BASE_PROPERTIES, **changes}
    return {key: value for key, value in values.items() if value is not None}


_PROFILE_SCENARIOS: tuple[tuple[str, Mapping[str, str]], ...] = (
    ("all three endpoints on `127.0.0.1`", _scenario()),
    (
        "all three endpoints on `localhost`",
        _scenario(**dict.fromkeys(config.ENDPOINT_KEYS, "http://localhost:4566")),
    ),
    (
        "all three on another host (`http://localstack:4566`)",
        _scenario(**dict.fromkeys(config.ENDPOINT_KEYS, "http://localstack:4566")),
    ),
    (
        "no endpoint at all: every client goes to AWS",
        _scenario(**dict.fromkeys(config.ENDPOINT_KEYS)),
    ),
    ("`cloudWatchEndpoint` missing", _scenario(cloudWatchEndpoint=None)),
    (
        "all three on AWS hosts (`https://kinesis.us-east-1.amazonaws.com`, ...)",
        _scenario(
            kinesisEndpoint="https://kinesis.us-east-1.amazonaws.com",
            dynamoDBEndpoint="https://dynamodb.us-east-1.amazonaws.com",
            cloudWatchEndpoint="https://monitoring.us-east-1.amazonaws.com",
        ),
    ),
    ("an endpoint that is not an http(s) URL", _scenario(kinesisEndpoint="127.0.0.1:4566")),
    ("`regionName` missing, endpoints set", _scenario(regionName=None)),
    (
        "CBOR turned on (`isCBORProtocolDisabled = false`)",
        _scenario(isCBORProtocolDisabled="false"),
    ),
)
_PROFILE_FILE_NAMES = (
    "local.properties",
    "my-local.properties",
    "ci_localstack.properties",
    "orders.aws.properties",
    "aws-orders.properties",
    "app.properties",
)


def _verdict(values: Mapping[str, str], profile: config.Profile | None) -> str:
    document = config.PropertiesDocument(tuple(config.Entry(k, v) for k, v in values.items()))
    problems = config.validate_properties(document, profile=profile, environ={})
    if any(p.severity == "error" for p in problems):
        return "refused"
    return "warning" if problems else "ok"


def profile_parts() -> dict[str, str]:
    """Profiles detected from file names, and each profile's verdict on example files."""
    columns: list[config.Profile | None] = [*config.PROFILES, None]
    detected = []
    for file_name in _PROFILE_FILE_NAMES:
        profile = config.detect_profile(config.PropertiesDocument((), Path(file_name)))
        detected.append((code(file_name), code(profile) if profile else "none"))
    verdicts = [
        (label, *(_verdict(values, p) for p in columns)) for label, values in _PROFILE_SCENARIOS
    ]
    names = [f"`{p}`" if p else "no profile" for p in columns]
    return {
        "detected": "\n".join(table(("file name", "profile"), detected)),
        "verdicts": "\n".join(table(("file", *names), verdicts)),
    }
