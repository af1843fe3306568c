"""The short POST path (graphql_http.py) answers exactly as Strawberry's own controller does.

The app's /graphql runs with_fast_post; the same app also mounts Strawberry's stock
controller at /graphql-stock. Each request goes to both, and the answers must match:
status, content type and body (ids and timestamps aside).
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import strawberry
import uvicorn
from litestar.di import Provide
from redis.asyncio import Redis
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.http import GraphQLRequestData
from strawberry.litestar import make_graphql_controller
from strawberry.types.graphql import OperationType

import app as app_module
from app import create_app
from graphql_http import PreparedDocuments
from schema import schema
from settings import Settings
from tests.conftest import token
from tests.graphql_documents import (
    ADD_PRODUCT,
    CREATE_SESSION,
    SESSION_PROGRESS,
    product_input,
)

pytestmark = pytest.mark.anyio

_VOLATILE = re.compile(
    r"[0-9a-f]{32}"  # operation ids
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # session ids
    r"|\d{4}-\d\d-\d\dT[\d:.]+(\+00:00|Z)?"  # timestamps
)
TWO_OPERATIONS = "query A { mySessions { sessionId } } query B { mySessions { state } }"


@pytest.fixture
async def urls(settings: Settings, redis: Redis) -> AsyncIterator[tuple[str, str]]:
    application = create_app(settings)
    stock = make_graphql_controller(
        schema, path="/graphql-stock", graphql_ide=None, context_getter=app_module.provide_context
    )
    stock.dependencies = {**stock.dependencies, "response": Provide(app_module._no_sub_response)}
    application.register(stock)
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    try:
        yield f"{base}/graphql", f"{base}/graphql-stock"
    finally:
        server.should_exit = True
        await task


def _normalized(response: httpx.Response) -> tuple[int, str, Any]:
    content_type = response.headers.get("content-type", "")
    text = _VOLATILE.sub("<id>", response.text)
    body = json.loads(text) if content_type.startswith("application/json") else text
    return response.status_code, content_type, body


async def _both(urls: tuple[str, str], **request: Any) -> tuple[Any, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        fast = await http.post(urls[0], **request)
        stock = await http.post(urls[1], **request)
    return _normalized(fast), _normalized(stock)


def _graphql(query: str, variables: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"query": query, "variables": variables, **extra}


AUTH = {"authorization": f"Bearer {token()}"}
CASES: dict[str, dict[str, Any]] = {
    "create-session": {"json": _graphql(CREATE_SESSION), "headers": AUTH},
    "add-product-invalid-input": {
        "json": _graphql(ADD_PRODUCT, {"sessionId": "nope", "input": {"productCode": 5}}),
        "headers": AUTH,
    },
    "add-product-unknown-session": {
        "json": _graphql(ADD_PRODUCT, {"sessionId": "nope", "input": product_input()}),
        "headers": AUTH,
    },
    "progress-unknown-session": {
        "json": _graphql(SESSION_PROGRESS, {"sessionId": "nope"}),
        "headers": AUTH,
    },
    "missing-variable": {"json": _graphql(SESSION_PROGRESS), "headers": AUTH},
    "unknown-field": {"json": _graphql("query { nope }"), "headers": AUTH},
    "syntax-error": {"json": _graphql("query {"), "headers": AUTH},
    "too-many-tokens": {
        "json": _graphql("query { " + "mySessions { sessionId } " * 1000 + "}"),
        "headers": AUTH,
    },
    "too-many-aliases": {
        "json": _graphql(
            "query { " + " ".join(f"a{i}: mySessions {{ state }}" for i in range(20)) + " }"
        ),
        "headers": AUTH,
    },
    "two-operations-unnamed": {"json": _graphql(TWO_OPERATIONS), "headers": AUTH},
    "two-operations-named": {"json": _graphql(TWO_OPERATIONS, operationName="B"), "headers": AUTH},
    "unknown-operation-name": {
        "json": _graphql(TWO_OPERATIONS, operationName="C"),
        "headers": AUTH,
    },
    "subscription": {
        "json": _graphql('subscription { sessionStateChanged(sessionId: "x") { type } }'),
        "headers": AUTH,
    },
    "no-token": {"json": _graphql(SESSION_PROGRESS, {"sessionId": "x"})},
    "owner-token": {
        "json": _graphql(SESSION_PROGRESS, {"sessionId": "x"}),
        "headers": {"authorization": f"Bearer {token(privilege='owner')}"},
    },
    "missing-query": {"json": {"variables": {}}, "headers": AUTH},
    "empty-query": {"json": _graphql(""), "headers": AUTH},
    "query-not-a-string": {"json": {"query": 5}, "headers": AUTH},
    "variables-not-an-object": {
        "json": {"query": SESSION_PROGRESS, "variables": [1]},
        "headers": AUTH,
    },
    "batch": {"json": [_graphql(CREATE_SESSION)], "headers": AUTH},
    "not-json": {"content": b"{nope", "headers": {**AUTH, "content-type": "application/json"}},
    "json-with-charset": {
        "content": json.dumps(_graphql("query { mySessions { state } }")).encode(),
        "headers": {**AUTH, "content-type": "application/json; charset=utf-8"},
    },
    "json-upper-case": {
        "content": json.dumps(_graphql("query { mySessions { state } }")).encode(),
        "headers": {**AUTH, "content-type": "Application/JSON"},
    },
    "text-plain": {
        "content": b"query { mySessions { state } }",
        "headers": {**AUTH, "content-type": "text/plain"},
    },
    "non-ascii": {
        "json": _graphql('query { session(sessionId: "é✓") { state } }'),
        "headers": AUTH,
    },
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
async def test_fast_post_answers_as_strawberry_does(urls: tuple[str, str], case: str) -> None:
    fast, stock = await _both(urls, **CASES[case])

    assert fast == stock


async def test_fast_post_masks_an_unexpected_error_as_strawberry_does(
    urls: tuple[str, str], redis: Redis
) -> None:
    # given a draft whose stored document got corrupted
    async with httpx.AsyncClient(timeout=30, headers=AUTH) as http:
        created = (await http.post(urls[0], json=_graphql(CREATE_SESSION))).json()
    sid = created["data"]["createSession"]["session"]["sessionId"]
    await redis.set(f"{{orchestrator}}:draft:{sid}", '{"sessionId": "broken"}', keepttl=True)

    # when
    fast, stock = await _both(
        urls, json=_graphql(SESSION_PROGRESS, {"sessionId": sid}), headers=AUTH
    )

    # then
    assert fast == stock
    assert fast[2]["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"


def test_prepared_documents_know_every_extension_of_the_schema() -> None:
    # A new extension would silently send every request down Strawberry's slower path.
    assert PreparedDocuments(schema).enabled


def test_prepared_documents_step_aside_for_an_extension_they_do_not_know() -> None:
    class Audit(SchemaExtension):
        def on_execute(self) -> Iterator[None]:
            yield

    class Masking(MaskErrors):  # a known class whose hooks changed
        def on_execute(self) -> Iterator[None]:
            yield

    @strawberry.type
    class Query:
        ping: str = "pong"

    for extension in (Audit, Masking):
        assert not PreparedDocuments(strawberry.Schema(query=Query, extensions=[extension])).enabled


async def test_prepared_execution_leaves_no_reference_cycle() -> None:
    # graphql-core's executor refers to itself; a cycle per request kept each request's
    # objects for the slower, older-generation collections.
    documents = PreparedDocuments(schema)
    query = "query { __typename }"
    request = GraphQLRequestData(
        query=query, variables=None, operation_name=None, extensions=None, protocol="http"
    )
    document = documents.document(query)
    assert document is not None
    gc.collect()
    gc.disable()
    try:
        result = await documents.execute(document, request, OperationType.QUERY, context=None)
        assert result.data == {"__typename": "Query"}
        assert gc.collect() == 0
    finally:
        gc.enable()
