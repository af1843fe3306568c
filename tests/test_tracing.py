"""Traces: one commit's spans, GraphQL operation over Redis commands and Dataverse requests."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from redis.asyncio import Redis

from app import create_app
from emulator.testing import EmulatorControl
from settings import Settings
from telemetry.logs import configure_logging, stop_logging
from telemetry.tracing import Tracing
from tests.helpers import GraphQLClient, serve_app, token
from tests.test_commit import commit, ready_draft
from tests.test_logs import process_logging  # noqa: F401 - the fixture, used by name

pytestmark = pytest.mark.anyio


@pytest.fixture
async def traced(
    settings: Settings, redis: Redis, dataverse: EmulatorControl
) -> AsyncIterator[tuple[GraphQLClient, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    app = create_app(settings, tracing=Tracing.exporting_to(exporter, batch=False))
    async with serve_app(app) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as http:
        yield GraphQLClient(http, token()), exporter


def _under(span: ReadableSpan, root: ReadableSpan, by_id: dict[int, ReadableSpan]) -> bool:
    """Whether *span* descends from *root*."""
    while span.parent is not None:
        if span.parent.span_id == root.context.span_id:
            return True
        parent = by_id.get(span.parent.span_id)
        if parent is None:
            return False
        span = parent
    return False


async def test_a_commit_is_one_trace_graphql_then_redis_then_dataverse_batch(
    traced: tuple[GraphQLClient, InMemorySpanExporter],
) -> None:
    # given a draft ready to commit
    client, exporter = traced
    sid = await ready_draft(client, target={"province": ["ONTARIO"]})
    exporter.clear()

    # when
    result = await commit(client, sid)

    # then one server span for the operation, with the ids a support request quotes
    assert result["success"] is True
    spans = exporter.get_finished_spans()
    [operation] = [s for s in spans if s.kind is SpanKind.SERVER]
    assert operation.name == "mutation Commit"
    assert operation.attributes is not None
    assert operation.attributes["graphql.operation.name"] == "Commit"
    assert operation.attributes["graphql.operation.type"] == "mutation"
    assert operation.attributes["orchestrator.operation_id"] == result["operationId"]
    assert operation.attributes["orchestrator.session_id"] == sid
    assert operation.attributes["enduser.id"] == "user-1"
    # and under it every Redis command and Dataverse request of the commit, in order
    by_id = {s.context.span_id: s for s in spans}
    children = sorted((s for s in spans if s is not operation), key=lambda s: s.start_time or 0)
    assert all(s.context.trace_id == operation.context.trace_id for s in children)
    assert all(_under(s, operation, by_id) for s in children)
    assert [s.name for s in children if s.kind is SpanKind.CLIENT] == [
        "EVALSHA",  # the caller's mutation rate limit
        "EVALSHA",  # begin_commit: COMMITTING under a lease
        "GET osot_table_products",  # the code is still free
        "EVALSHA",  # fence: still the lease holder, right before the write
        "INFO",  # the draft's node has no replica here, so no WAIT before the write
        "POST $batch",  # product and target in one change set
        "EVALSHA",  # commit_succeeded
    ]
    batch = next(s for s in children if s.name == "POST $batch")
    lookup = next(s for s in children if s.name == "GET osot_table_products")
    assert batch.attributes is not None and lookup.attributes is not None
    assert batch.attributes["http.url"].endswith("/api/data/v9.2/$batch")
    assert "?" not in lookup.attributes["http.url"]  # the filter holds the product code
    redis_span = next(s for s in children if s.name == "EVALSHA")
    assert redis_span.attributes is not None
    assert set(redis_span.attributes["db.statement"].split()) <= {"EVALSHA", "?"}


@pytest.mark.usefixtures("process_logging")
async def test_log_lines_carry_the_trace_id(
    traced: tuple[GraphQLClient, InMemorySpanExporter],
) -> None:
    client, exporter = traced
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)

    result = await commit(client, await ready_draft(client))
    stop_logging()

    [operation] = [
        s
        for s in exporter.get_finished_spans()
        if s.kind is SpanKind.SERVER and s.name == "mutation Commit"
    ]
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [line for line in lines if line.get("operation_id") == result["operationId"]]
    assert {line["logger"] for line in mine} >= {"orchestrator.commit", "orchestrator.http"}
    assert {line["trace_id"] for line in mine} == {format(operation.context.trace_id, "032x")}
    assert logging.getLogger().handlers  # the fixture restores pytest's handlers afterwards


async def test_tracing_is_off_unless_an_endpoint_is_set(settings: Settings) -> None:
    from telemetry.tracing import tracing_from_settings

    assert settings.otel_exporter_otlp_endpoint is None
    assert tracing_from_settings(None) is None
    on = tracing_from_settings("http://127.0.0.1:4318")
    assert on is not None
    on.shutdown()
