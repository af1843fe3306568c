"""Each validation rule, one failing case each, asserting the field path and code."""

from __future__ import annotations

from typing import Any

import pytest

from tests.graphql_documents import ADD_PRODUCT, CONFIGURE_TARGET, SESSION, product_input
from tests.helpers import GraphQLClient, create_session

pytestmark = pytest.mark.anyio


async def add_product(client: GraphQLClient, product: dict[str, Any]) -> dict[str, Any]:
    sid = (await create_session(client))["sessionId"]
    return (await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product}))["addProduct"]


PRODUCT_RULES = [
    ("productName", {"productName": "ab"}, "3 to 100 characters"),
    ("productName", {"productName": "x" * 101}, "3 to 100 characters"),
    ("productName", {"productName": None}, "is required"),
    ("productName", {"productName": "   "}, "is required"),
    ("productCode", {"productCode": "bad code!"}, "letters, digits, hyphens"),
    ("productCode", {"productCode": "AB"}, "3 to 25 characters"),
    ("productCode", {"productCode": "A" * 26}, "3 to 25 characters"),
    ("productDescription", {"productDescription": "too short"}, "10 to 4000"),
    ("productPicture", {"productPicture": "not a url"}, "http or https URL"),
    ("productPicture", {"productPicture": "https://example.org/" + "a" * 840}, "at most 850"),
    ("productCategory", {"productCategory": None}, "is required"),
    ("productStatus", {"productStatus": None}, "is required"),
    ("productGlCode", {"productGlCode": None}, "is required"),
    ("userType", {"userType": None}, "is required"),
    ("taxes", {"taxes": None}, "is required"),
    ("taxes", {"taxes": 100.01}, "between 0% and 100%"),
    ("taxes", {"taxes": 13.555}, "at most 2 decimal places"),
    ("productYear", {"productYear": "26"}, "four digits"),
    ("generalPrice", {"generalPrice": 1_000_000}, "between 0 and 999,999.99"),
    ("generalPrice", {"generalPrice": -1}, "between 0 and 999,999.99"),
    ("otaNgPrice", {"otaNgPrice": 10.001}, "at most 2 decimal places"),
    ("generalPrice", {"generalPrice": None, "otStuPrice": None}, "at least one price"),
    ("shipping", {"shipping": 1_000_000}, "between 0 and 999,999.99"),
    ("inventory", {"inventory": -1}, "between 0 and 2,147,483,647"),
    ("insuranceType", {"productCategory": "INSURANCE", "insuranceLimit": 1000}, "insurance type"),
    (
        "insuranceLimit",
        {"productCategory": "INSURANCE", "insuranceType": "PROFESSIONAL"},
        "insurance limit",
    ),
    ("insuranceLimit", {"insuranceLimit": 1_000_000_000}, "between 0 and 999,999,999.99"),
    ("endDate", {"startDate": "2026-05-02", "endDate": "2026-05-01"}, "on or after the start date"),
    ("productAdditionalInfo", {"productAdditionalInfo": "x" * 4001}, "at most 4000"),
    ("postPurchaseInfo", {"postPurchaseInfo": "x" * 4001}, "at most 4000"),
]


@pytest.mark.parametrize(
    ("field", "overrides", "message"),
    PRODUCT_RULES,
    ids=[f"{field}-{i}" for i, (field, _, _) in enumerate(PRODUCT_RULES)],
)
async def test_product_rule_reports_field_and_code(
    client: GraphQLClient, field: str, overrides: dict[str, Any], message: str
) -> None:
    payload = await add_product(client, product_input(**overrides))

    assert payload["session"] is None
    assert len(payload["userErrors"]) == 1, payload["userErrors"]
    error = payload["userErrors"][0]
    assert error["field"] == ["input", field]
    assert error["code"] == "VALIDATION_FAILED"
    assert message.lower() in error["message"].lower()


async def test_general_price_alone_is_accepted(client: GraphQLClient) -> None:
    # The old DTO rejected any generalPrice (D21, docs/design/old-service-defects.md).
    payload = await add_product(client, product_input(otStuPrice=None, generalPrice=25))

    assert payload["userErrors"] == []
    assert payload["session"]["product"]["generalPrice"] == 25


async def test_a_free_product_counts_as_priced(client: GraphQLClient) -> None:
    payload = await add_product(client, product_input(generalPrice=0, otStuPrice=None))

    assert payload["userErrors"] == []


async def test_insurance_product_with_type_and_limit_is_accepted(client: GraphQLClient) -> None:
    payload = await add_product(
        client,
        product_input(
            productCategory="INSURANCE", insuranceType="PROPERTY", insuranceLimit=2_000_000
        ),
    )

    assert payload["userErrors"] == []
    assert payload["session"]["product"]["insuranceType"] == "PROPERTY"


async def test_product_code_is_trimmed_and_upper_cased(client: GraphQLClient) -> None:
    payload = await add_product(client, product_input(productCode="  ws_2026-a  "))

    assert payload["session"]["product"]["productCode"] == "WS_2026-A"


async def test_end_date_equal_to_start_date_is_accepted(client: GraphQLClient) -> None:
    payload = await add_product(client, product_input(startDate="2026-05-01", endDate="2026-05-01"))

    assert payload["userErrors"] == []


async def test_all_problems_of_one_request_are_reported_together(client: GraphQLClient) -> None:
    payload = await add_product(
        client,
        {"productCode": "no spaces allowed", "generalPrice": 1.001, "taxes": 101},
    )

    fields = {tuple(e["field"]) for e in payload["userErrors"]}
    assert {
        ("input", "productName"),
        ("input", "productCode"),
        ("input", "productDescription"),
        ("input", "productCategory"),
        ("input", "productStatus"),
        ("input", "productGlCode"),
        ("input", "userType"),
        ("input", "productYear"),
        ("input", "generalPrice"),
        ("input", "taxes"),
    } <= fields
    assert {e["code"] for e in payload["userErrors"]} == {"VALIDATION_FAILED"}


async def test_a_rejected_product_leaves_the_stored_one_untouched(client: GraphQLClient) -> None:
    sid = (await create_session(client))["sessionId"]
    await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input()})

    await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input(productName="x")})
    stored = (await client.data(SESSION, {"sessionId": sid}))["session"]

    assert stored["product"]["productName"] == "Advanced OT Workshop 2026"
    assert stored["version"] == 2


async def test_unknown_product_field_is_rejected_by_graphql(client: GraphQLClient) -> None:
    sid = (await create_session(client))["sessionId"]

    body = await client.execute(
        ADD_PRODUCT, {"sessionId": sid, "input": product_input(osot_location_province=[1])}
    )

    assert body.get("data") is None
    assert "osot_location_province" in body["errors"][0]["message"]


async def test_an_option_name_outside_its_set_is_rejected(client: GraphQLClient) -> None:
    sid = (await create_session(client))["sessionId"]

    body = await client.execute(
        ADD_PRODUCT, {"sessionId": sid, "input": product_input(productCategory="TRAINING")}
    )

    assert body.get("data") is None
    assert "TRAINING" in body["errors"][0]["message"]


async def target_errors(client: GraphQLClient, target: dict[str, Any]) -> list[dict[str, Any]]:
    sid = (await create_session(client))["sessionId"]
    await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input()})
    payload = await client.data(CONFIGURE_TARGET, {"sessionId": sid, "input": target})
    return payload["configureTarget"]["userErrors"]


async def test_target_field_with_more_than_50_selections_is_rejected(client: GraphQLClient) -> None:
    cities = ["AJAX", "ACTON", "ALMA"] * 17  # 51 values; duplicates reported separately

    errors = await target_errors(client, {"membershipCity": cities})

    assert {"field": ["input", "membershipCity"], "code": "VALIDATION_FAILED"} in [
        {"field": e["field"], "code": e["code"]} for e in errors
    ]
    assert any("at most 50" in e["message"] for e in errors)


async def test_target_field_with_a_repeated_value_is_rejected(client: GraphQLClient) -> None:
    errors = await target_errors(client, {"province": ["ONTARIO", "QUEBEC", "ONTARIO"]})

    assert errors == [
        {
            "field": ["input", "province"],
            "code": "VALIDATION_FAILED",
            "message": "province lists ONTARIO more than once; choose each value once.",
        }
    ]


async def test_target_accepts_50_distinct_selections(client: GraphQLClient) -> None:
    from services.catalog import choice_sets

    cities = [c.name for c in choice_sets()["City"][:50]]

    assert await target_errors(client, {"membershipCity": cities}) == []


async def test_fictional_legacy_target_fields_are_rejected(client: GraphQLClient) -> None:
    # D16 (docs/design/old-service-defects.md): the old service stored a public target.
    sid = (await create_session(client))["sessionId"]
    await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input()})

    body = await client.execute(
        CONFIGURE_TARGET, {"sessionId": sid, "input": {"osot_location_province": ["ONTARIO"]}}
    )

    assert body.get("data") is None
    assert "osot_location_province" in body["errors"][0]["message"]
