"""Litestar glue for operating the service: GET /metrics, a span, figures and a log line per
GraphQL request, and a logging config that leaves the process's handlers alone."""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager, nullcontext
from logging import Logger
from typing import Any

from litestar import Response, get
from litestar.logging.config import BaseLoggingConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry.trace import Span, SpanKind, StatusCode, use_span

from telemetry import metrics
from telemetry.context import RequestScope, request_scope
from telemetry.tracing import Tracing

logger = logging.getLogger("orchestrator.http")

GRAPHQL_PATH = "/graphql"


@get("/metrics", sync_to_thread=False, include_in_schema=False)
def metrics_endpoint() -> Response[bytes]:
    """Every metric in the Prometheus text format (all worker processes together)."""
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)


class ProcessLogging(BaseLoggingConfig):
    """Litestar's logging config that configures nothing: ``telemetry.logs`` owns the handlers.

    Litestar still logs what its exception middleware catches (with the request's fields),
    through the standard ``litestar`` logger, except client errors (4xx, or the exception
    classes given): those are the caller's, and the code refusing them logs a line.
    """

    def __init__(self, quiet: tuple[type[Exception], ...] = ()) -> None:
        self.log_exceptions = "always"
        self.traceback_line_limit = -1
        self.disable_stack_trace: set[int | type[Exception]] = {*range(400, 500), *quiet}
        self.exception_logging_handler = _log_uncaught

    def configure(self) -> Any:
        return logging.getLogger

    @staticmethod
    def set_level(logger: Any, level: int) -> None:
        logger.setLevel(level)


def _log_uncaught(logger: Logger, scope: Scope, tb: list[str]) -> None:
    logger.error("uncaught exception serving %s %s", scope["type"], scope["path"], exc_info=True)


def observe_graphql(app: ASGIApp, tracing: Tracing | None = None) -> ASGIApp:
    """Wrap *app*: each HTTP request to /graphql gets a request scope, a server span (when
    tracing is on), its count and duration by operation name, and one log line."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != GRAPHQL_PATH:
            await app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        with request_scope() as request:
            span = tracing.tracer.start_span("graphql", kind=SpanKind.SERVER) if tracing else None
            active: AbstractContextManager[Any] = nullcontext()
            if span is not None:
                active = use_span(span, end_on_exit=True)
            with active:
                try:
                    await app(scope, receive, send_status)
                finally:
                    elapsed = time.perf_counter() - started
                    label = metrics.operation_label(
                        request.operation_name, known=request.operation_type is not None
                    )
                    metrics.HTTP_REQUESTS.labels(label, str(status)).inc()
                    metrics.HTTP_DURATION.labels(label).observe(elapsed)
                    if span is not None:
                        _describe(span, request, status)
                    _log_request(scope, status, elapsed, request.operation_type)

    return middleware


def _describe(span: Span, request: RequestScope, status: int) -> None:
    if request.operation_type:
        span.update_name(f"{request.operation_type} {request.operation_name or 'anonymous'}")
        span.set_attribute("graphql.operation.type", request.operation_type)
    if request.operation_name:
        span.set_attribute("graphql.operation.name", request.operation_name)
    span.set_attribute("orchestrator.operation_id", request.operation_id)
    if request.session_id:
        span.set_attribute("orchestrator.session_id", request.session_id)
    if request.user_id:
        span.set_attribute("enduser.id", request.user_id)
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(StatusCode.ERROR)


def _log_request(scope: Scope, status: int, elapsed: float, operation_type: str | None) -> None:
    logger.info(
        "%s %s %d in %.1f ms",
        scope["method"],
        scope["path"],
        status,
        elapsed * 1000,
        extra={
            "http_status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "operation_type": operation_type,
        },
    )
