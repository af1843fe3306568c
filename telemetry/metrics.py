"""The service's Prometheus metrics. Their names are a contract: dashboards and alerts use them.

Every metric is defined here, once, on prometheus-client's default registry; the README lists
them. With several worker processes, set ``PROMETHEUS_MULTIPROC_DIR`` before the workers start
(``prepare_multiprocess_dir`` does it for ``serve``): each process then writes its figures to
files there and ``/metrics`` adds up every process's (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncGenerator, Callable
from typing import TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

T = TypeVar("T")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# One series per metric, not a second `_created` one holding a timestamp nobody alerts on.
disable_created_metrics()
CONTENT_TYPE = CONTENT_TYPE_LATEST

# A commit includes its retries and their waits (up to COMMIT_MAX_WAIT_SECONDS).
_COMMIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

COMMITS = Counter(
    "orchestrator_commits_total",
    "Commits that reached an outcome: committed, failed, or conflict (the product code was taken).",
    ["outcome"],
)
COMMIT_DURATION = Histogram(
    "orchestrator_commit_duration_seconds",
    "Time from a commit call to its outcome, retries and their waits included.",
    buckets=_COMMIT_BUCKETS,
)
COMMIT_RETRIES = Counter(
    "orchestrator_commit_retries_total",
    "Commit attempts that failed transiently and were retried, by cause.",
    ["cause"],
)
DATAVERSE_REQUESTS = Counter(
    "orchestrator_dataverse_requests_total",
    "Requests sent to the Dataverse Web API, by operation and HTTP status "
    "(or timeout / connection_error when no answer came).",
    ["operation", "status"],
)
DATAVERSE_DURATION = Histogram(
    "orchestrator_dataverse_request_duration_seconds",
    "Duration of one Dataverse Web API request, by operation.",
    ["operation"],
    buckets=_REQUEST_BUCKETS,
)
DRAFTS_CREATED = Counter("orchestrator_drafts_created_total", "Drafts opened by createSession.")
DRAFTS_EXPIRED = Counter(
    "orchestrator_drafts_expired_total", "Drafts that reached their expiry without a commit."
)
DRAFTS_CANCELLED = Counter(
    "orchestrator_drafts_cancelled_total", "Drafts deleted by cancelSession."
)
SUBSCRIPTIONS_ACTIVE = Gauge(
    "orchestrator_subscriptions_active",
    "sessionStateChanged streams open now.",
    multiprocess_mode="livesum",
)
SUBSCRIPTION_EVENTS = Counter(
    "orchestrator_subscription_events_total",
    "Events delivered to subscription streams, by event type.",
    ["type"],
)
REDIS_ERRORS = Counter(
    "orchestrator_redis_errors_total", "Redis commands that failed (connection, timeout, error)."
)
HTTP_REQUESTS = Counter(
    "orchestrator_http_requests_total",
    "GraphQL HTTP requests, by operation name and HTTP status.",
    ["operation", "status"],
)
HTTP_DURATION = Histogram(
    "orchestrator_http_request_duration_seconds",
    "Duration of one GraphQL HTTP request, by operation name.",
    ["operation"],
    buckets=_REQUEST_BUCKETS,
)
RATE_LIMITED = Counter("orchestrator_rate_limited_total", "Mutations refused with RATE_LIMITED.")
REFUSED = Counter(
    "orchestrator_requests_refused_total",
    "Requests refused by a limit before they ran, by reason.",
    ["reason"],
)


class OperationLabels:
    """Metric labels for GraphQL operation names, which clients choose: only the first
    *limit* distinct names get their own series, so that random names cannot grow the
    process (and Prometheus) without bound."""

    def __init__(self, limit: int = 200) -> None:
        self.limit = limit
        self._seen: set[str] = set()

    def __call__(self, name: str | None, *, known: bool = True) -> str:
        """Return the label for *name*; *known* is False for a request refused before it ran."""
        if not known:
            return "_refused"
        if not name:
            return "_anonymous"
        if name in self._seen:
            return name
        if len(self._seen) >= self.limit or len(name) > 100:
            return "_other"
        self._seen.add(name)
        return name


operation_label = OperationLabels()


def record_commit(succeeded: bool, failure_code: str | None, seconds: float) -> None:
    """Count one commit's outcome and how long it took (retries and their waits included)."""
    if succeeded:
        outcome = "committed"
    elif failure_code == "PRODUCT_CODE_TAKEN":
        outcome = "conflict"
    else:
        outcome = "failed"
    COMMITS.labels(outcome).inc()
    COMMIT_DURATION.observe(seconds)


def record_retry(error: BaseException | None) -> None:
    """Count a commit attempt about to be retried, by what failed (services/dataverse/errors.py)."""
    status = getattr(error, "status", None)
    if status == 429:
        cause = "throttled"  # service protection limits
    elif status is not None and status >= 500:
        cause = "unavailable"  # Dataverse answered with a server error
    elif getattr(error, "ambiguous", False):
        cause = "dropped"  # no answer after the request left: timeout or dropped connection
    elif error is not None and status is None:
        cause = "unreachable"  # not sent: connection refused, DNS, pool timeout
    else:
        cause = "other"
    COMMIT_RETRIES.labels(cause).inc()


async def counted_stream(
    stream: AsyncGenerator[T, None], type_of: Callable[[T], str]
) -> AsyncGenerator[T, None]:
    """Yield what *stream* yields, counting it as an open subscription and each event by type."""
    SUBSCRIPTIONS_ACTIVE.inc()
    try:
        async for event in stream:
            SUBSCRIPTION_EVENTS.labels(type_of(event)).inc()
            yield event
    finally:
        SUBSCRIPTIONS_ACTIVE.dec()
        await stream.aclose()


def render() -> bytes:
    """Return every metric in the Prometheus text format, summed over worker processes."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def prepare_multiprocess_dir(workers: int) -> str | None:
    """Before starting several workers: give them an empty directory for their figures.

    Call it in the parent process, before any worker imports prometheus-client. An operator
    may set ``PROMETHEUS_MULTIPROC_DIR`` instead (it is then emptied, as the client needs).
    """
    path = os.environ.get(MULTIPROC_ENV)
    if workers <= 1 and not path:
        return None
    if path:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)
    else:
        path = tempfile.mkdtemp(prefix="orchestrator-metrics-")
        os.environ[MULTIPROC_ENV] = path
    return path


def process_exited() -> None:
    """In multiprocess mode, drop this process's live gauges (its open subscriptions)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(os.getpid())
