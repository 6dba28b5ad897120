"""kclpy-local metrics APPLICATION: the CloudWatch metrics a KCL application published.

The KCL publishes its metrics in the CloudWatch namespace named after its
applicationName (APPLICATION), every metricsBufferTimeMillis (10 s by
default), at the detail metricsLevel asks for. One row per metric name and
set of dimensions, with the statistics over the last --since minutes:

    metric            dimensions                                           unit   samples  sum  average  min  max
    RecordsProcessed  Operation=ProcessTask, ShardId=shardId-000000000000  Count        6  120       20    0   50

--name METRIC (repeatable) keeps only those metric names. --json prints a
list of objects instead: {"name", "dimensions": {NAME: VALUE}, "unit",
"sample_count", "sum", "average", "minimum", "maximum"}. Metrics listed in
the namespace but without data points in the window are left out.

No metrics is not an error: a note and a hint go to stderr, --json prints
[], and the exit code is 0.

Exit codes: 0 success (with or without metrics); 1 the endpoint refused a
request; 2 bad arguments (an invalid --endpoint URL too); 8 the endpoint cannot
be reached.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import _aws
from .._aws import Datapoint, Metric
from . import _common
from ._table import Column, render

__all__ = ["MetricSummary", "register", "run", "summarize"]

DEFAULT_SINCE = 60
#: CloudWatch keeps data points for 15 months (455 days).
MAX_SINCE = 455 * 24 * 60

_COLUMNS = (
    Column("metric"),
    Column("dimensions"),
    Column("unit"),
    Column("samples", numeric=True),
    Column("sum", numeric=True),
    Column("average", numeric=True),
    Column("min", numeric=True),
    Column("max", numeric=True),
)


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """One metric's statistics over the whole window."""

    metric: Metric
    unit: str | None
    sample_count: float
    sum: float
    minimum: float | None
    maximum: float | None

    @property
    def average(self) -> float | None:
        return self.sum / self.sample_count if self.sample_count else None

    def document(self) -> dict[str, Any]:
        """The JSON object ``--json`` prints."""
        return {
            "name": self.metric.name,
            "dimensions": dict(self.metric.dimensions),
            "unit": self.unit,
            "sample_count": self.sample_count,
            "sum": self.sum,
            "average": self.average,
            "minimum": self.minimum,
            "maximum": self.maximum,
        }


def _minutes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of minutes: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1 minute, got {value}")
    if value > MAX_SINCE:
        raise argparse.ArgumentTypeError(
            f"must be at most {MAX_SINCE} minutes (CloudWatch keeps 15 months), got {value}"
        )
    return value


def _metric_name(text: str) -> str:
    if not 1 <= len(text) <= 255:
        raise argparse.ArgumentTypeError(f"a metric name has 1 to 255 characters, not {len(text)}")
    return text


def register(subparsers: _common.Subparsers) -> None:
    summary = "show the CloudWatch metrics a KCL application published"
    p = _common.add_application_command(
        subparsers,
        "metrics",
        summary,
        __doc__,
        application="the KCL applicationName (= the namespace)",
        listing="metrics",
    )
    p.add_argument(
        "--since",
        metavar="MINUTES",
        type=_minutes,
        default=DEFAULT_SINCE,
        help="window: the last MINUTES minutes (default: %(default)s)",
    )
    p.add_argument(
        "--name",
        metavar="METRIC",
        type=_metric_name,
        action="append",
        default=None,
        help="only this metric name (repeatable)",
    )
    p.set_defaults(func=run)


def summarize(metric: Metric, points: Sequence[Datapoint]) -> MetricSummary | None:
    """Fold a metric's data points into one summary; ``None`` without data points."""
    if not points:
        return None
    minima = [p.minimum for p in points if p.minimum is not None]
    maxima = [p.maximum for p in points if p.maximum is not None]
    units = sorted({p.unit for p in points if p.unit and p.unit != "None"})
    return MetricSummary(
        metric=metric,
        unit=", ".join(units) or None,
        sample_count=sum(p.sample_count or 0.0 for p in points),
        sum=sum(p.sum or 0.0 for p in points),
        minimum=min(minima) if minima else None,
        maximum=max(maxima) if maxima else None,
    )


def _period(window: timedelta) -> int:
    """A period that covers the whole window in one or two buckets.

    A multiple of 3600 past an hour: CloudWatch wants multiples of 300 or 3600
    for data older than 15 or 63 days.
    """
    seconds = window.total_seconds()
    unit = 60 if seconds <= 3600 else 3600
    return max(unit, math.ceil(seconds / unit) * unit)


def _number(value: float | None) -> str | None:
    if value is None:
        return None
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _row(summary: MetricSummary) -> list[object]:
    dims = ", ".join(f"{k}={v}" for k, v in summary.metric.dimensions)
    return [
        summary.metric.name,
        dims,
        summary.unit,
        _number(summary.sample_count),
        _number(summary.sum),
        _number(summary.average),
        _number(summary.minimum),
        _number(summary.maximum),
    ]


def _namespaces(cloudwatch: Any) -> list[str]:
    """Namespaces with metrics at the endpoint (first page of ListMetrics only)."""
    page = cloudwatch.list_metrics()
    return sorted({m["Namespace"] for m in page.get("Metrics", [])})


def _explain_nothing(
    args: argparse.Namespace, endpoint: str, cloudwatch: Any, listed: int
) -> tuple[str, str]:
    """Why there is nothing to show: (note, hint)."""
    where = f"in namespace {args.application} at {endpoint}"
    named = f" named {' or '.join(args.name)}" if args.name else ""
    if listed:
        return (
            f"{listed} metric(s){named} {where}, but none with data "
            f"in the last {args.since} minute(s)",
            "widen the window with --since MINUTES",
        )
    if args.name:
        names = sorted({m.name for m in _aws.list_metrics(cloudwatch, args.application)})
        if names:
            return f"no metrics{named} {where}", f"metric names there: {', '.join(names)}"
    others = ", ".join(_namespaces(cloudwatch)) or "none"
    return (
        f"no metrics {where}",
        "the KCL publishes under its applicationName only when metricsLevel is not NONE, "
        "and stock KCL 1.x sends metrics to real CloudWatch: the properties need "
        f"cloudWatchEndpoint = {endpoint}; the first batch comes after "
        f"metricsBufferTimeMillis (10 s by default). Namespaces with metrics here: {others}",
    )


def run(args: argparse.Namespace) -> int:
    endpoint = _common.endpoint_for(args.endpoint, "cloudwatch")
    end = datetime.now(UTC) + timedelta(minutes=1)
    start = end - timedelta(minutes=args.since + 1)
    period = _period(end - start)
    summaries: list[MetricSummary] = []
    explanation: tuple[str, str] | None = None
    with _aws.endpoint_errors(endpoint):
        cloudwatch = _aws.client("cloudwatch", endpoint, args.region, max_attempts=2)
        metrics: list[Metric] = []
        for name in args.name or [None]:
            metrics.extend(_aws.list_metrics(cloudwatch, args.application, name))
        for metric in sorted(set(metrics), key=lambda m: (m.name, m.dimensions)):
            points = _aws.metric_statistics(
                cloudwatch,
                args.application,
                metric.name,
                metric.dimensions,
                start=start,
                end=end,
                period=period,
            )
            summary = summarize(metric, points)
            if summary is not None:
                summaries.append(summary)
        if not summaries:
            explanation = _explain_nothing(args, endpoint, cloudwatch, len(set(metrics)))
    if args.json:
        _common.print_json([s.document() for s in summaries])
    elif summaries:
        print(render(_COLUMNS, [_row(s) for s in summaries]))
    if explanation is not None:
        note, hint = explanation
        print(f"kclpy-local: {note}", file=sys.stderr)
        print(f"hint: {hint}", file=sys.stderr)
    return 0
