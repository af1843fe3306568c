"""Every answer of /graphql is JSON with errors a client can read, in the media type it asked
for, with the GraphQL-over-HTTP spec's status codes (web/answers.py)."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from tests.graphql_documents import ADD_PRODUCT, CREATE_SESSION, MY_SESSIONS, SESSION, product_input
from tests.helpers import GraphQLClient, create_session, token
from web.answers import negotiate

pytestmark = pytest.mark.anyio

JSON = "application/json"
GRAPHQL_JSON = "application/graphql-response+json"
TWO_OPERATIONS = "query A { mySessions { state } } query B { mySessions { state } }"
OPERATION_ID = re.compile(r"[0-9a-f]{32}")

# name: (request, status answering application/json, status answering graphql-response+json,
# extensions.code)
REFUSED: dict[str, tuple[dict[str, Any], int, int, str]] = {
    "body-not-json": (
        {"content": b"{nope", "headers": {"content-type": JSON}},
        400,
        400,
        "BAD_REQUEST",
    ),
    "batch": ({"json": [{"query": MY_SESSIONS}]}, 400, 400, "BAD_REQUEST"),
    "no-query": ({"json": {"variables": {}}}, 400, 400, "BAD_REQUEST"),
    "text-plain": (
        {"content": b"{ mySessions { state } }", "headers": {"content-type": "text/plain"}},
        400,
        400,
        "BAD_REQUEST",
    ),
    "mutation-over-get": (
        {"method": "GET", "params": {"query": CREATE_SESSION}},
        405,
        405,
        "METHOD_NOT_ALLOWED",
    ),
    "put": ({"method": "PUT", "json": {"query": MY_SESSIONS}}, 405, 405, "METHOD_NOT_ALLOWED"),
    "subscription-over-post": (
        {"json": {"query": 'subscription { sessionStateChanged(sessionId: "x") { type } }'}},
        400,
        400,
        "BAD_REQUEST",
    ),
    "unknown-operation-name": (
        {"json": {"query": TWO_OPERATIONS, "operationName": "C"}},
        200,
        400,
        "OPERATION_RESOLUTION_FAILURE",
    ),
    "document-does-not-parse": (
        {"json": {"query": "query {"}},
        200,
        400,
        "GRAPHQL_PARSE_FAILED",
    ),
    "document-does-not-validate": (
        {"json": {"query": "query { nope }"}},
        200,
        400,
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "expired-token": (
        {"json": {"query": MY_SESSIONS}, "headers": {"authorization": f"Bearer {token(ttl=-100)}"}},
        200,
        401,
        "UNAUTHENTICATED",
    ),
    "owner-token": (
        {
            "json": {"query": MY_SESSIONS},
            "headers": {"authorization": f"Bearer {token(privilege='owner')}"},
        },
        200,
        403,
        "FORBIDDEN",
    ),
}


async def _send(base_url: str, accept: str, request: dict[str, Any]) -> httpx.Response:
    request = dict(request)
    headers = {"authorization": f"Bearer {token()}", "accept": accept, **request.pop("headers", {})}
    async with httpx.AsyncClient(base_url=base_url) as http:
        return await http.request(
            request.pop("method", "POST"), "/graphql", headers=headers, **request
        )


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_JSON])
@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
async def test_every_refusal_is_a_graphql_response_with_the_specs_status(
    base_url: str, case: str, accept: str
) -> None:
    request, json_status, graphql_status, code = REFUSED[case]

    response = await _send(base_url, accept, request)

    body = response.json()  # JSON, whatever went wrong
    assert response.status_code == (json_status if accept == JSON else graphql_status)
    assert response.headers["content-type"].startswith(accept)
    assert body.get("data") is None
    if accept == GRAPHQL_JSON:
        assert "data" not in body  # a request error: the spec's 4xx goes with no data
    [error] = body["errors"]
    assert error["extensions"]["code"] == code, error
    assert OPERATION_ID.fullmatch(error["extensions"]["operationId"]), error
    if response.status_code == 405:
        assert "POST" in response.headers["allow"]


async def test_a_result_with_data_is_200_in_both_media_types(client: GraphQLClient) -> None:
    # a query whose field failed (an unknown session) still has data: a partial response
    for accept in (JSON, GRAPHQL_JSON):
        response = await client.http.post(
            "/graphql",
            json={"query": SESSION, "variables": {"sessionId": "nope"}},
            headers={"authorization": f"Bearer {client.default_token}", "accept": accept},
        )
        body = response.json()

        assert response.status_code == 200
        assert body["data"] == {"session": None}
        [error] = body["errors"]
        assert error["extensions"]["code"] == "SESSION_NOT_FOUND"
        assert OPERATION_ID.fullmatch(error["extensions"]["operationId"])


async def test_accepting_neither_media_type_is_406_and_nothing_runs(
    client: GraphQLClient,
) -> None:
    response = await client.http.post(
        "/graphql",
        json={"query": CREATE_SESSION},
        headers={"authorization": f"Bearer {client.default_token}", "accept": "text/html"},
    )

    assert response.status_code == 406
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_ACCEPTABLE"
    assert (await client.data(MY_SESSIONS))["mySessions"] == []


async def test_without_graphiql_a_page_request_gets_json(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        response = await http.get("/graphql", headers={"accept": "text/html"})

    assert response.status_code == 404
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, GRAPHQL_JSON),  # the spec's default since its 2025 watershed
        ("", GRAPHQL_JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("application/json", JSON),
        ("application/graphql-response+json,application/json;q=0.9", GRAPHQL_JSON),  # Apollo
        ("application/graphql-response+json, application/json, multipart/mixed", GRAPHQL_JSON),
        ("application/json, application/graphql-response+json", JSON),
        ("application/graphql-response+json;q=0.5, application/json", JSON),
        ("text/html, */*;q=0.8", JSON),
        ("*/*, application/graphql-response+json", GRAPHQL_JSON),
        ("text/html", None),
        ("application/graphql-response+json;q=0", None),
        ("application/xml", None),
    ],
)
def test_accept_picks_the_media_type(accept: str | None, media_type: str | None) -> None:
    assert negotiate(accept) == media_type


async def _add_product(
    client: GraphQLClient, query: str, variables: dict[str, Any], accept: str
) -> httpx.Response:
    return await client.http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {client.default_token}", "accept": accept},
    )


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_JSON])
async def test_a_bad_price_and_a_bad_enum_are_two_errors_naming_their_fields(
    client: GraphQLClient, accept: str
) -> None:
    # given
    sid = (await create_session(client))["sessionId"]
    product = product_input(generalPrice="12,50", productCategory="WORKSHOP")

    # when
    response = await _add_product(client, ADD_PRODUCT, {"sessionId": sid, "input": product}, accept)

    # then
    body = response.json()
    assert response.status_code == (200 if accept == JSON else 400)
    assert "data" not in body
    errors = {tuple(e["extensions"]["field"]): e for e in body["errors"]}
    assert set(errors) == {("input", "generalPrice"), ("input", "productCategory")}
    assert {e["extensions"]["code"] for e in errors.values()} == {"BAD_USER_INPUT"}
    assert errors[("input", "generalPrice")]["message"] == (
        'General price must be an amount in dollars and cents, such as 199.99 (you sent "12,50").'
    )
    assert errors[("input", "productCategory")]["message"].startswith(
        "Product category must be one of the 11 ProductCategory options"
    )
    assert len({e["extensions"]["operationId"] for e in body["errors"]}) == 1


async def test_literal_values_of_the_wrong_type_name_their_fields_too(
    client: GraphQLClient,
) -> None:
    query = """mutation Literal {
      addProduct(sessionId: "x", input: {
        productName: "Workshop", generalPrice: "12,50", productCategory: WORKSHOP, taxes: true
      }) { operationId }
    }"""

    body = (await _add_product(client, query, {}, JSON)).json()

    assert all("field" in e["extensions"] for e in body["errors"]), body
    fields = sorted(e["extensions"]["field"] for e in body["errors"])
    assert fields == [["input", "generalPrice"], ["input", "productCategory"], ["input", "taxes"]]
    assert {e["extensions"]["code"] for e in body["errors"]} == {"BAD_USER_INPUT"}


async def test_a_missing_variable_and_an_unknown_field_are_placed_too(
    client: GraphQLClient,
) -> None:
    body = (await _add_product(client, ADD_PRODUCT, {"input": {"nope": 1}}, JSON)).json()

    placed = {tuple(e["extensions"]["field"]): e["message"] for e in body["errors"]}
    assert placed[("sessionId",)] == "sessionId is required."
    assert placed[("input", "nope")] == 'ProductInput has no field "nope".'


async def test_an_error_echoing_a_lone_surrogate_is_still_json(base_url: str) -> None:
    body = json.dumps({"query": TWO_OPERATIONS, "operationName": "\ud800"})

    response = await _send(base_url, JSON, {"content": body, "headers": {"content-type": JSON}})

    assert response.json()["errors"][0]["extensions"]["code"] == "OPERATION_RESOLUTION_FAILURE"
