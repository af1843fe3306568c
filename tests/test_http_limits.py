"""Limits that hold against anonymous callers: body, headers, malformed JSON, query size,
introspection and suggestions, fragment fan-out; the cache keeps only valid documents."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from redis.asyncio import Redis

from schema.documents import (
    INTROSPECTION_DISABLED,
    MAX_QUERY_BYTES,
    DocumentCache,
    document_limits,
)
from schema.extensions import DOCUMENTS
from settings import Settings
from tests.graphql_documents import MY_SESSIONS
from tests.helpers import GraphQLClient, serve, token

pytestmark = pytest.mark.anyio

INTROSPECT = "query Schema { __schema { queryType { name } } }"
JSON = {"content-type": "application/json"}
GRAPHQL_RESPONSE = "application/graphql-response+json"


def fan_out(levels: int) -> str:
    """A ~1 KB query whose fragments each spread the previous one twice (2^levels fields)."""
    fragments = ["fragment F0 on Session { sessionId state }"]
    fragments += [
        f"fragment F{i} on Session {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels)
    ]
    return f"query FanOut {{ mySessions {{ ...F{levels - 1} }} }} {' '.join(fragments)}"


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        yield http


@pytest.fixture
def refusals(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger="orchestrator.http"):
        yield caplog


def _refused(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(("application/json", GRAPHQL_RESPONSE))
    body = response.json()
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"]["code"] == code
    return str(error["message"])


# -- body ---------------------------------------------------------------------------------


async def test_a_body_over_the_limit_is_refused_before_it_is_read(
    http: httpx.AsyncClient, refusals: pytest.LogCaptureFixture
) -> None:
    huge = b'{"query": "' + b"#" * (300 * 1024) + b'"}'

    announced = await http.post("/graphql", content=huge, headers=JSON)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(huge), 64 * 1024):
            yield huge[start : start + 64 * 1024]

    streamed = await http.post("/graphql", content=chunks(), headers=JSON)

    for response in (announced, streamed):
        message = _refused(response, 413, "REQUEST_TOO_LARGE")
        assert "262144 bytes" in message
    assert [r for r in refusals.records if "body_size" in r.getMessage()]


@pytest.mark.parametrize(
    "body",
    [b'"x"', b"null", b"5", b"true", b"[" * 3000 + b"]" * 3000, b'{"query": "{', b""],
    ids=["string", "null", "number", "boolean", "nested-3000", "truncated", "empty"],
)
async def test_a_malformed_body_is_a_400_with_a_json_error_and_a_log_line(
    http: httpx.AsyncClient, refusals: pytest.LogCaptureFixture, body: bytes
) -> None:
    response = await http.post("/graphql", content=body, headers=JSON)

    _refused(response, 400, "BAD_REQUEST")
    [line] = [r for r in refusals.records if "malformed_body" in r.getMessage()]
    assert line.levelno == logging.INFO


async def test_variables_nested_too_deep_are_refused(http: httpx.AsyncClient) -> None:
    # Under orjson's 1,024 levels, over what Strawberry's json module survives (~1,000).
    variables = '{"a":' * 990 + "1" + "}" * 990
    body = '{"query": "query { mySessions { state } }", "variables": ' + variables + "}"

    response = await http.post("/graphql", content=body.encode(), headers=JSON)

    assert "nested more than 32 levels" in _refused(response, 400, "BAD_REQUEST")


async def test_a_query_over_the_size_limit_never_reaches_the_cache(
    client: GraphQLClient,
) -> None:
    # A few tokens, padded with a comment: the token limit does not see comments.
    padded = "# " + "x" * MAX_QUERY_BYTES + "\nquery { mySessions { state } }"
    before = len(DOCUMENTS)

    response = await client.post(padded)

    assert "at most 32768 are accepted" in _refused(response, 413, "QUERY_TOO_LARGE")
    assert len(DOCUMENTS) == before


# -- headers ------------------------------------------------------------------------------


async def test_headers_over_the_limit_are_refused(http: httpx.AsyncClient) -> None:
    # the service checks the exact limit (MAX_HEADER_BYTES, 32 KiB by default)...
    over = await http.post(
        "/graphql", json={"query": MY_SESSIONS}, headers={"x-padding": "x" * (40 * 1024)}
    )
    assert "32768 bytes" in _refused(over, 431, "HEADERS_TOO_LARGE")

    # ...and the HTTP server stops buffering a few reads past it (a 32 MB header was read)
    try:
        huge = await http.post(
            "/graphql",
            json={"query": MY_SESSIONS},
            headers={"authorization": "Bearer " + "x" * (4 * 1024 * 1024)},
        )
    except httpx.TransportError:
        pass  # closed while the client was still sending: refused all the same
    else:
        assert huge.status_code == 400

    # and the server is fine: the next request is served
    assert (await http.get("/health")).status_code == 200


# -- anonymous callers --------------------------------------------------------------------


@pytest.mark.parametrize(
    "query", [INTROSPECT, "query { mySesions { sessionId } }", "query {"], ids=str
)
async def test_anonymous_callers_get_no_schema_and_no_suggestions(
    http: httpx.AsyncClient, query: str
) -> None:
    # 401 in the spec's media type, 200 in application/json (web/answers.py): the same body
    spec = await http.post("/graphql", json={"query": query}, headers={"accept": GRAPHQL_RESPONSE})
    plain = await http.post(
        "/graphql", json={"query": query}, headers={"accept": "application/json"}
    )

    message = _refused(spec, 401, "UNAUTHENTICATED")
    assert _refused(plain, 200, "UNAUTHENTICATED") == message
    for response in (spec, plain):
        assert "Did you mean" not in response.text and "__schema" not in response.text
        assert response.headers["www-authenticate"] == "Bearer"
    assert message.startswith("Authentication required")


async def test_a_signed_in_caller_gets_suggestions(client: GraphQLClient) -> None:
    body = await client.execute("query { mySesions { sessionId } }")

    assert "Did you mean 'mySessions'" in body["errors"][0]["message"]


async def test_admins_may_introspect_main_users_may_not(client: GraphQLClient) -> None:
    admin = await client.execute(INTROSPECT)
    main = await client.execute(INTROSPECT, token=token(privilege="main"))
    typename = await client.execute("query { __typename }", token=token(privilege="main"))

    assert admin == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
    assert main["errors"][0]["message"] == INTROSPECTION_DISABLED
    assert "data" not in main or main["data"] is None
    assert typename == {"data": {"__typename": "Query"}}


async def test_introspection_over_get_follows_the_same_rule(http: httpx.AsyncClient) -> None:
    async def get(privilege: str | None) -> httpx.Response:
        headers = {"accept": GRAPHQL_RESPONSE}
        if privilege:
            headers["authorization"] = f"Bearer {token(privilege=privilege)}"
        return await http.get("/graphql", params={"query": INTROSPECT}, headers=headers)

    admin, main, anonymous = await get("admin"), await get("main"), await get(None)

    assert admin.json()["data"]["__schema"]["queryType"]["name"] == "Query"
    assert main.json()["errors"][0]["message"] == INTROSPECTION_DISABLED
    _refused(anonymous, 401, "UNAUTHENTICATED")


async def test_introspection_false_refuses_admins_too(settings: Settings, redis: Redis) -> None:
    async with (
        serve(settings.model_copy(update={"introspection": False})) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        body = await GraphQLClient(http, token()).execute(INTROSPECT)

    assert body["errors"][0]["message"] == INTROSPECTION_DISABLED


# -- document limits ----------------------------------------------------------------------


@pytest.mark.parametrize("levels", [20, 29, 40])
async def test_fragment_fan_out_is_refused_at_the_cost_of_reading_it(
    client: GraphQLClient, http: httpx.AsyncClient, levels: int
) -> None:
    # 2^29 fields: Strawberry's depth and alias limiters ran for minutes on this.
    query = fan_out(levels)
    assert len(query) < 2048

    post = await client.execute(query)
    get = (
        await http.get(
            "/graphql", params={"query": query}, headers={"authorization": f"Bearer {token()}"}
        )
    ).json()

    for body in (post, get):
        messages = [e["message"] for e in body["errors"]]
        assert f"{2**levels + 1} fields found (fragments expanded). Allowed: 500" in messages
        assert not body.get("data")


async def test_many_copies_of_one_field_are_refused(client: GraphQLClient) -> None:
    copies = "query { " + " ".join(["mySessions { sessionId }"] * 900) + " }"

    body = await client.execute(copies)

    # 3,600 tokens, under the token limit: refused for its size as executed, before
    # validation compared the 900 copies pair by pair
    assert [e["message"] for e in body["errors"]] == [
        "1800 fields found (fragments expanded). Allowed: 500",
        "'mySessions' is selected 900 times at one level. Allowed: 10",
    ]
    eleven = await client.execute("query { " + " ".join(["mySessions { state }"] * 11) + " }")
    assert [e["message"] for e in eleven["errors"]] == [
        "'mySessions' is selected 11 times at one level. Allowed: 10"
    ]


def test_limits_measure_depth_as_strawberry_did() -> None:
    from graphql import parse

    def nested(levels: int) -> str:
        return "query Deep { " + "a { " * levels + "b" + " }" * levels + " }"

    def depth_errors(levels: int) -> list[str]:
        return [e.message for e in document_limits(parse(nested(levels))).errors]

    assert depth_errors(10) == []
    assert depth_errors(11) == ["'Deep' exceeds maximum operation depth of 10"]
    # introspection fields add no depth (GraphiQL's query nests ofType nine deep)
    deep_introspection = "{ __schema { types { " + "ofType { " * 12 + "name" + " }" * 12 + " } } }"
    assert document_limits(parse(deep_introspection)).errors == []
    assert document_limits(parse(deep_introspection)).introspects


def test_limits_count_aliases_through_fragments_once_each() -> None:
    from graphql import parse

    document = parse(
        "query { ...A ...A } fragment A on Query { a1: mySessions { state } a2: mySessions "
        "{ state } ...B } fragment B on Query { b1: mySessions { state } b2: __typename }"
    )

    assert [e.message for e in document_limits(document).errors] == []
    aliases = " ".join(f"a{i}: __typename" for i in range(4))
    twice = parse(f"query {{ ...A ...A ...A ...A }} fragment A on Query {{ {aliases} }}")
    assert [e.message for e in document_limits(twice).errors] == ["16 aliases found. Allowed: 15"]


# -- the document cache -------------------------------------------------------------------


async def test_the_cache_keeps_only_valid_documents(client: GraphQLClient) -> None:
    before = len(DOCUMENTS)

    for i in range(50):  # distinct texts that parse but do not validate
        await client.execute(f"query Invalid{i} {{ mySessions {{ noSuchField{i} }} }}")
    for i in range(5):  # and distinct valid ones
        await client.data(f"query Valid{i} {{ mySessions {{ state }} }}")

    assert len(DOCUMENTS) - before == 5


def test_the_cache_is_bounded_in_bytes_least_recently_used_out() -> None:
    from graphql import parse

    cache = DocumentCache(max_bytes=200_000)
    fields = " ".join(f"f{j}: mySessions {{ state }}" for j in range(10))
    texts = [f"query Q{i} {{ {fields} }}" for i in range(100)]
    for text in texts[:3]:
        cache.put(text, parse(text), introspects=False)
    cache.get(texts[0])  # recently used: stays

    for text in texts[3:]:
        cache.put(text, parse(text), introspects=False)

    assert cache.bytes <= cache.max_bytes
    assert 1 < len(cache) < 100
    assert cache.get(texts[-1]) is not None
    assert cache.get(texts[1]) is None
    oversized = "# " + "x" * MAX_QUERY_BYTES + "\n{ __typename }"
    cache.put(oversized, parse(oversized), introspects=False)
    assert cache.get(oversized) is None
