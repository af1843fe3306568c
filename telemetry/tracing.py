"""OpenTelemetry traces: off unless OTEL_EXPORTER_OTLP_ENDPOINT is set.

When on, each GraphQL request is a server span (``telemetry.http``) and the process's Redis
client and Dataverse HTTP client get the official instrumentations, so a commit's trace shows
the GraphQL operation, each Redis command (arguments replaced by ``?``) and each Dataverse
request (``POST $batch``; the URL without its query, which holds product codes). Only server
spans start a trace: the expiry sweeper's Redis calls every second would otherwise be a trace
each. Clients are instrumented one by one, not by patching the libraries process-wide, so the
app (and every test app) owns its tracer provider and nothing leaks between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from opentelemetry.context import Context
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, Span, SpanKind, Tracer
from opentelemetry.util.types import Attributes
from redis.asyncio import Redis, RedisCluster

SERVICE = "product-orchestrator"


class ServerSpansStartTraces(Sampler):
    """Sample every trace that a server span (an incoming request) starts, and no other."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if kind is SpanKind.SERVER:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        return SamplingResult(Decision.DROP)

    def get_description(self) -> str:
        return "ServerSpansStartTraces"


class Tracing:
    """The process's tracer provider, and the instrumentation of its clients."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer: Tracer = provider.get_tracer("orchestrator")
        self._http_clients: list[httpx.AsyncClient] = []

    @classmethod
    def exporting_to(cls, exporter: SpanExporter, *, batch: bool = True) -> Tracing:
        """Return tracing that sends spans to *exporter* (batched, or one by one for tests)."""
        provider = TracerProvider(
            resource=Resource.create({SERVICE_NAME: SERVICE}),
            sampler=ParentBased(root=ServerSpansStartTraces()),
        )
        provider.add_span_processor(
            BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        )
        return cls(provider)

    def instrument_redis(self, client: Redis | RedisCluster) -> None:
        """Give each command of *client* a span under the current request's."""
        RedisInstrumentor.instrument_client(client, tracer_provider=self.provider)

    def instrument_http(self, client: httpx.AsyncClient) -> None:
        """Give each request of *client* (the Dataverse client) a span."""
        HTTPXClientInstrumentor.instrument_client(
            client, tracer_provider=self.provider, request_hook=_name_dataverse_span
        )
        self._http_clients.append(client)

    def shutdown(self) -> None:
        """Export what is pending and stop."""
        for client in self._http_clients:
            HTTPXClientInstrumentor.uninstrument_client(client)
        self._http_clients.clear()
        self.provider.shutdown()


def tracing_from_settings(endpoint: str | None) -> Tracing | None:
    """Return tracing to the OTLP/HTTP collector at *endpoint*, or None when it is unset."""
    if not endpoint:
        return None
    # Imported only when on: the exporter pulls in protobuf and requests.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # As the SDK does for OTEL_EXPORTER_OTLP_ENDPOINT: the traces path under the base URL.
    return Tracing.exporting_to(OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces"))


async def _name_dataverse_span(span: Span, request: Any) -> None:
    # "POST $batch" rather than "POST"; the query ($filter with a product code) stays out.
    url = urlsplit(str(request.url))
    resource = url.path.rstrip("/").rsplit("/", 1)[-1].split("(", 1)[0]
    method = request.method.decode() if isinstance(request.method, bytes) else request.method
    span.update_name(f"{method} {resource}")
    bare = urlunsplit((url.scheme, url.netloc, url.path, "", ""))
    span.set_attribute("url.full", bare)
    span.set_attribute("http.url", bare)
