"""The short POST path (graphql_http.py) answers exactly as Strawberry's own controller does.

The app's /graphql runs with_fast_post; the same app also mounts Strawberry's controller
without it at /graphql-stock (``app.graphql_controller(fast_post=False)``). Requests go to
both and the answers must be the same bytes: status, headers and body. The only values
allowed to differ are those that differ between any two requests: generated ids (operation,
session, Dataverse GUIDs) and clock readings, replaced by same-shaped placeholders first.
"""

from __future__ import annotations

import gc
import json
import re
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import strawberry
from graphql import FieldNode, OperationDefinitionNode, parse
from redis.asyncio import Redis
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.types.graphql import OperationType

from api import schema
from app import create_app, graphql_controller
from emulator.testing import EmulatorControl
from graphql_http import PreparedDocuments
from schema.internals import GraphQLRequestData, graphql_core_schema
from settings import Settings
from tests.graphql_documents import (
    ADD_PRODUCT,
    CANCEL_SESSION,
    CONFIGURE_TARGET,
    CREATE_SESSION,
    MY_SESSIONS,
    SESSION,
    SESSION_PROGRESS,
    product_input,
)
from tests.helpers import serve_app, token
from tests.test_catalog import CATALOG
from tests.test_commit import COMMIT

pytestmark = pytest.mark.anyio

_VOLATILE = [
    (re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), b"<uuid>"),
    (re.compile(rb"\b[0-9a-f]{32}\b"), b"<operation-id>"),
    (re.compile(rb"\d{4}-\d\d-\d\dT[\d:.]+(\+00:00|Z)?"), b"<timestamp>"),
    (re.compile(rb'"secondsRemaining":\d+'), b'"secondsRemaining":<n>'),
]
_HEADERS_THAT_VARY = {"date", "content-length"}
TWO_OPERATIONS = "query A { mySessions { sessionId } } query B { mySessions { state } }"
SESSION_STATE_CHANGED = (
    "subscription Watch($sessionId: ID!) { sessionStateChanged(sessionId: $sessionId) { type } }"
)


@pytest.fixture
async def urls(settings: Settings, redis: Redis) -> AsyncIterator[tuple[str, str]]:
    application = create_app(settings)
    application.register(graphql_controller(settings, path="/graphql-stock", fast_post=False))
    async with serve_app(application) as (base, _):
        yield f"{base}/graphql", f"{base}/graphql-stock"


Answer = tuple[int, list[tuple[str, str]], bytes]


def _answer(response: httpx.Response) -> Answer:
    body = response.content
    for pattern, placeholder in _VOLATILE:
        body = pattern.sub(placeholder, body)
    headers = sorted((k, v) for k, v in response.headers.items() if k not in _HEADERS_THAT_VARY)
    return response.status_code, headers, body


async def _both(urls: tuple[str, str], **request: Any) -> tuple[Answer, Answer]:
    async with httpx.AsyncClient(timeout=30) as http:
        fast = await http.post(urls[0], **request)
        stock = await http.post(urls[1], **request)
    return _answer(fast), _answer(stock)


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


def _root_fields(query: str) -> set[str]:
    return {
        selection.name.value
        for definition in parse(query).definitions
        if isinstance(definition, OperationDefinitionNode)
        for selection in definition.selection_set.selections
        if isinstance(selection, FieldNode)
    }


def _schema_root_fields() -> set[str]:
    core = graphql_core_schema(schema)
    roots = [core.query_type, core.mutation_type, core.subscription_type]
    return {name for root in roots if root is not None for name in root.fields}


async def _walk(url: str, fields: set[str]) -> list[tuple[str, Answer]]:
    """Run every operation of the schema, successes and refusals, through *url*."""
    answers: list[tuple[str, Answer]] = []
    async with httpx.AsyncClient(timeout=30, headers=AUTH) as http:

        async def send(step: str, query: str, **variables: Any) -> dict[str, Any]:
            fields.update(_root_fields(query))
            response = await http.post(url, json=_graphql(query, variables))
            answers.append((step, _answer(response)))
            is_json = response.headers["content-type"].startswith("application/json")
            return response.json() if is_json else {}

        created = await send("createSession", CREATE_SESSION)
        sid = created["data"]["createSession"]["session"]["sessionId"]
        await send("mySessions", MY_SESSIONS)
        await send("catalog", CATALOG)
        await send("session", SESSION, sessionId=sid)
        await send("sessionProgress", SESSION_PROGRESS, sessionId=sid)
        await send("configureTarget before a product", CONFIGURE_TARGET, sessionId=sid, input={})
        await send("commit before a product", COMMIT, sessionId=sid)
        await send("addProduct", ADD_PRODUCT, sessionId=sid, input=product_input())
        await send(
            "addProduct invalid",
            ADD_PRODUCT,
            sessionId=sid,
            input=product_input(productName=None, taxes=140, generalPrice="12.345"),
        )
        await send(
            "addProduct stale", ADD_PRODUCT, sessionId=sid, input=product_input(), expectedVersion=1
        )
        await send(
            "configureTarget",
            CONFIGURE_TARGET,
            sessionId=sid,
            input={"province": ["ONTARIO", "QUEBEC"], "membershipCategory": ["OT_PR"]},
        )
        await send(
            "configureTarget invalid",
            CONFIGURE_TARGET,
            sessionId=sid,
            input={"province": ["ONTARIO", "ONTARIO"]},
        )
        await send("session after steps 2 and 3", SESSION, sessionId=sid)
        await send("commit", COMMIT, sessionId=sid)
        await send("commit again", COMMIT, sessionId=sid)
        await send("cancelSession committed", CANCEL_SESSION, sessionId=sid)
        await send("sessionProgress committed", SESSION_PROGRESS, sessionId=sid)
        other = await send("createSession again", CREATE_SESSION)
        other_sid = other["data"]["createSession"]["session"]["sessionId"]
        await send("addProduct code taken", ADD_PRODUCT, sessionId=other_sid, input=product_input())
        await send("cancelSession", CANCEL_SESSION, sessionId=other_sid)
        await send("cancelSession again", CANCEL_SESSION, sessionId=other_sid)
        await send("session cancelled", SESSION, sessionId=other_sid)
        await send("commit unknown", COMMIT, sessionId="no-such-session")
        await send("sessionStateChanged over HTTP", SESSION_STATE_CHANGED, sessionId=sid)
    return answers


async def test_every_operation_answers_byte_for_byte_as_strawberry_does(
    urls: tuple[str, str], redis: Redis, dataverse: EmulatorControl
) -> None:
    # given the same walk through the workflow on each path, each from an empty store
    walked: set[str] = set()
    fast = await _walk(urls[0], walked)
    await redis.flushdb()
    await dataverse.reset()

    # when
    stock = await _walk(urls[1], walked)

    # then every answer is the same, step by step
    assert [step for step, _ in fast] == [step for step, _ in stock]
    for (step, fast_answer), (_, stock_answer) in zip(fast, stock, strict=True):
        assert fast_answer == stock_answer, step
    # and the walk went where it meant to: every operation of the schema, successes and
    # refusals (a field added to Query, Mutation or Subscription must join _walk)
    assert walked == _schema_root_fields()
    bodies = {
        step: json.loads(answer[2].replace(b"<n>", b"0"))
        for step, answer in fast
        if answer[2].startswith(b"{")
    }
    assert bodies["commit"]["data"]["commit"]["success"] is True
    assert bodies["addProduct invalid"]["data"]["addProduct"]["userErrors"]
    assert bodies["session cancelled"]["errors"][0]["extensions"]["code"] == "SESSION_NOT_FOUND"


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
    assert json.loads(fast[2])["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"


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


class _RequestContext:
    """Stands for what a request's executor holds: its context, request and response."""


async def test_prepared_execution_leaves_no_reference_cycle() -> None:
    # graphql-core's executor refers to itself (docs/design/executor-fixes.md): a cycle per
    # request kept each request's objects for the slower, older-generation collections.
    documents = PreparedDocuments(schema)
    query = "query { __typename }"
    request = GraphQLRequestData(
        query=query, variables=None, operation_name=None, extensions=None, protocol="http"
    )
    document = documents.document(query)
    assert document is not None
    context = _RequestContext()
    released = weakref.ref(context)
    gc.disable()  # only reference counting may free it
    try:
        result = await documents.execute(document, request, OperationType.QUERY, context)
        del context

        assert result.data == {"__typename": "Query"}
        assert released() is None, "the executor kept the request's context alive"
    finally:
        gc.enable()
