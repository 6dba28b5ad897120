"""The endpoint keys of a properties file and what makes an endpoint local."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["ENDPOINT_KEYS", "host_of", "is_loopback_host", "is_loopback_url"]

#: The keys that point a worker at Kinesis, DynamoDB and CloudWatch.
ENDPOINT_KEYS: tuple[str, ...] = ("kinesisEndpoint", "dynamoDBEndpoint", "cloudWatchEndpoint")


def host_of(url: str) -> str | None:
    """The host of an http(s) URL; ``None`` for anything else."""
    try:
        parts = urlsplit(url)
        return parts.hostname if parts.scheme in ("http", "https") else None
    except ValueError:
        return None


def is_loopback_host(host: str) -> bool:
    """``localhost`` (and its subdomains) or a loopback address."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` is an http(s) URL whose host is a loopback host."""
    host = host_of(url)
    return bool(host) and is_loopback_host(str(host).rstrip("."))
