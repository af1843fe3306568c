"""No bad input is an internal error: each value found from outside answers at its field.

A value that breaks a rule is a userError (VALIDATION_FAILED); one of the wrong type is a
top-level BAD_USER_INPUT error whose extensions.field is its path, before anything runs.

Regressions of issue 9's list: huge numbers, exponents, malformed URLs, lone surrogates,
emoji counted as Dataverse counts them (UTF-16 units), non-ASCII digits, "1_000", -0.0.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.graphql_documents import ADD_PRODUCT, SESSION_PROGRESS, product_input
from tests.helpers import GraphQLClient, create_session, token
from tests.ws_client import LEGACY_WS, TRANSPORT_WS, open_ws

pytestmark = pytest.mark.anyio


async def add_product_raw(client: GraphQLClient, product: dict[str, Any]) -> dict[str, Any]:
    """POST addProduct with the JSON escaped to ASCII, so lone surrogates travel as \\ud800."""
    sid = (await create_session(client))["sessionId"]
    body = {"query": ADD_PRODUCT, "variables": {"sessionId": sid, "input": product}}
    response = await client.http.post(
        "/graphql",
        content=json.dumps(body),
        headers={
            "authorization": f"Bearer {client.default_token}",
            "content-type": "application/json",
        },
    )
    return response.json()


RULE_ERRORS = [
    ("generalPrice", {"generalPrice": 1e26}, "between 0 and 999,999.99"),
    ("generalPrice", {"generalPrice": 1e308}, "between 0 and 999,999.99"),
    ("generalPrice", {"generalPrice": "9" * 400}, "between 0 and 999,999.99"),
    ("generalPrice", {"generalPrice": "0." + "0" * 399 + "1"}, "at most 2 decimal places"),
    ("generalPrice", {"generalPrice": -0.0}, "between 0 and 999,999.99"),
    ("generalPrice", {"generalPrice": "-0.00"}, "between 0 and 999,999.99"),
    ("taxes", {"taxes": 1e27}, "between 0% and 100%"),
    ("insuranceLimit", {"insuranceLimit": 1e28}, "between 0 and 999,999,999.99"),
    ("productPicture", {"productPicture": "http://[::1/a.b"}, "http or https URL"),
    ("productPicture", {"productPicture": "http://example.org:99999/a.png"}, "http or https URL"),
    ("productPicture", {"productPicture": "https://example.org/a\nb.png"}, "http or https URL"),
    ("productName", {"productName": "\U0001f600" * 51}, "(it has 102)"),
    ("productCode", {"productCode": "\U0001f600" * 13}, "(it has 26)"),
    ("productYear", {"productYear": "\u0662\u0660\u0662\u0666"}, "four digits"),
    ("productYear", {"productYear": "２０２６"}, "four digits"),  # noqa: RUF001 - fullwidth digits
    ("productCode", {"productCode": "ＡＢＣ"}, "letters, digits"),  # noqa: RUF001 - fullwidth
    ("productCode", {"productCode": "straße"}, "letters, digits"),
    ("startDate", {"startDate": "1600-01-01"}, "on or after 1753-01-01"),
]


@pytest.mark.parametrize(
    ("field", "overrides", "message"),
    RULE_ERRORS,
    ids=[f"{field}-{i}" for i, (field, _, _) in enumerate(RULE_ERRORS)],
)
async def test_out_of_rule_values_are_field_errors(
    client: GraphQLClient, field: str, overrides: dict[str, Any], message: str
) -> None:
    body = await add_product_raw(client, product_input(**overrides))

    assert "errors" not in body, body["errors"]
    errors = body["data"]["addProduct"]["userErrors"]
    assert [(e["field"], e["code"]) for e in errors] == [(["input", field], "VALIDATION_FAILED")]
    assert message in errors[0]["message"]


async def test_lengths_count_utf16_units_as_dataverse_does(client: GraphQLClient) -> None:
    # 50 emoji are 100 UTF-16 units: the most a product name may hold.
    body = await add_product_raw(client, product_input(productName="\U0001f600" * 50))

    assert body["data"]["addProduct"]["userErrors"] == []


NOT_VALUES = [
    ("taxes", {"taxes": "1e27"}, "Taxes must be a percentage such as 13 or 14.97"),
    ("insuranceLimit", {"insuranceLimit": "1e28"}, "Insurance limit must be an amount"),
    ("generalPrice", {"generalPrice": "1_000"}, "General price must be an amount in dollars"),
    ("generalPrice", {"generalPrice": " 12"}, "General price must be an amount"),
    ("generalPrice", {"generalPrice": "12,50"}, 'such as 199.99 (you sent "12,50")'),
    ("generalPrice", {"generalPrice": "NaN"}, "General price must be an amount"),
    ("generalPrice", {"generalPrice": "\u0661\u0662"}, "General price must be an amount"),
    ("generalPrice", {"generalPrice": True}, "General price must be an amount"),
    ("startDate", {"startDate": "20260131"}, "Start date must be a date written YYYY-MM-DD"),
    ("startDate", {"startDate": "2026-W05-1"}, "Start date must be a date"),
    ("startDate", {"startDate": "2026-02-30"}, "Start date must be a date"),
    ("inventory", {"inventory": 2**40}, "Inventory must be a whole number"),
    ("productCategory", {"productCategory": "NOPE"}, "Product category must be one of the"),
    ("productCategory", {"productCategory": "\ud800"}, "Product category contains an invalid"),
    ("productName", {"productName": "ok \ud800 name"}, "Product name contains an invalid"),
    ("productDescription", {"productDescription": "\udfff" * 20}, "contains an invalid"),
    ("nope", {"nope": 1}, 'ProductInput has no field "nope"'),
]


@pytest.mark.parametrize(
    ("field", "overrides", "message"),
    NOT_VALUES,
    ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(NOT_VALUES)],
)
async def test_values_of_the_wrong_type_are_bad_user_input_at_their_field(
    client: GraphQLClient, field: str, overrides: dict[str, Any], message: str
) -> None:
    body = await add_product_raw(client, product_input(**overrides))

    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == ["input", field]
    assert message in error["message"]


async def test_a_lone_surrogate_in_a_session_id_is_bad_user_input(client: GraphQLClient) -> None:
    body = {"query": SESSION_PROGRESS, "variables": {"sessionId": "\ud800"}}
    response = await client.http.post(
        "/graphql",
        content=json.dumps(body),
        headers={
            "authorization": f"Bearer {client.default_token}",
            "content-type": "application/json",
        },
    )

    [error] = response.json()["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        ["sessionId"],
    )


async def test_money_keeps_its_exact_decimal_text(client: GraphQLClient) -> None:
    body = await add_product_raw(
        client, product_input(generalPrice="1000.50", otStuPrice=0.1, shipping=10)
    )

    product = body["data"]["addProduct"]["session"]["product"]
    assert (product["generalPrice"], product["otStuPrice"], product["shipping"]) == (
        1000.5,
        0.1,
        10,
    )


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_lone_surrogate_in_a_subscriptions_variable_is_bad_user_input(
    base_url: str, protocol: str
) -> None:
    query = "subscription S($id: ID!) { sessionStateChanged(sessionId: $id) { type } }"
    subscribe = {"query": query, "variables": {"id": "\ud800"}}
    kind = "subscribe" if protocol == TRANSPORT_WS else "start"

    async with open_ws(base_url, protocol=protocol) as ws:
        await ws.init({"Authorization": f"Bearer {token()}"})
        await ws.ws.send(json.dumps({"type": kind, "id": "1", "payload": subscribe}))
        message = await ws.receive()

    assert message["type"] == "error", message
    payload = message["payload"]
    error = payload[0] if isinstance(payload, list) else payload
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        ["sessionId"],
    )
