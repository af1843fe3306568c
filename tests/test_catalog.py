"""The form catalogue over HTTP: every input field, truthful about what the service enforces."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.graphql_documents import ADD_PRODUCT, CONFIGURE_TARGET, product_input
from tests.helpers import GraphQLClient, create_session

pytestmark = pytest.mark.anyio

FIELD = """
  name label help required type graphqlType multiple minLength maxLength minValue maxValue
  decimals pattern patternMessage maxSelections choiceSet choices { name label value }
"""
CATALOG = f"""
query Catalog {{
  catalog {{
    product {{ inputType fields {{ {FIELD} }} rules {{ fields description }} }}
    audienceTarget {{ inputType fields {{ {FIELD} }} rules {{ fields description }} }}
  }}
}}
"""
# The input types as introspection shows them, to compare the catalogue with the schema.
INPUT_TYPE = """
query Input($name: String!) {
  __type(name: $name) {
    inputFields { name type { kind name ofType { kind name ofType { kind name } } } }
  }
}
"""
ENUM = "query Enum($name: String!) { __type(name: $name) { enumValues { name description } } }"


def _type_text(type_: dict[str, Any]) -> str:
    if type_["kind"] == "NON_NULL":
        return _type_text(type_["ofType"]) + "!"
    if type_["kind"] == "LIST":
        return f"[{_type_text(type_['ofType'])}]"
    return type_["name"]


async def _catalog(client: GraphQLClient) -> dict[str, Any]:
    return (await client.data(CATALOG))["catalog"]


async def test_catalog_describes_every_input_field_with_its_schema_type(
    client: GraphQLClient,
) -> None:
    # given the catalogue and the schema's own view of the two inputs
    catalog = await _catalog(client)

    for section, input_type in (
        ("product", "ProductInput"),
        ("audienceTarget", "AudienceTargetInput"),
    ):
        schema_fields = (await client.data(INPUT_TYPE, {"name": input_type}))["__type"][
            "inputFields"
        ]
        fields = catalog[section]["fields"]

        # then it lists the same fields, in order, with the same GraphQL types
        assert catalog[section]["inputType"] == input_type
        assert [f["name"] for f in fields] == [f["name"] for f in schema_fields]
        assert [f["graphqlType"] for f in fields] == [_type_text(f["type"]) for f in schema_fields]
        for field in fields:
            # labels and help are words for a person, not API names
            assert field["label"] and not re.search(r"[a-z][A-Z]", field["label"]), field
            assert len(field["help"]) > len(field["label"]), field
    assert len(catalog["product"]["fields"]) == 37
    assert len(catalog["audienceTarget"]["fields"]) == 34


async def test_catalog_choices_are_the_enum_members_with_labels_and_dataverse_values(
    client: GraphQLClient,
) -> None:
    catalog = await _catalog(client)
    fields = {f["name"]: f for s in catalog.values() for f in s["fields"]}

    for field in fields.values():
        if field["type"] != "CHOICE":
            assert field["choices"] == [] and field["choiceSet"] is None
            continue
        enum = (await client.data(ENUM, {"name": field["choiceSet"]}))["__type"]["enumValues"]
        assert [(c["name"], c["label"]) for c in field["choices"]] == [
            (v["name"], v["description"]) for v in enum
        ]
    province = {c["name"]: c for c in fields["province"]["choices"]}
    assert province["QUEBEC"] == {"name": "QUEBEC", "label": "Quebec", "value": 11}
    category = {c["name"]: c["value"] for c in fields["productCategory"]["choices"]}
    assert category["INSURANCE"] == 1
    assert fields["province"]["graphqlType"] == "[Province!]"
    assert fields["province"]["multiple"] is True
    assert fields["province"]["maxSelections"] == 50
    assert fields["productCategory"]["multiple"] is False


async def test_catalog_states_the_limits_and_required_fields(client: GraphQLClient) -> None:
    catalog = await _catalog(client)
    product = {f["name"]: f for f in catalog["product"]["fields"]}

    assert {name for name, f in product.items() if f["required"]} == {
        "productName",
        "productCode",
        "productDescription",
        "productCategory",
        "productStatus",
        "productGlCode",
        "userType",
        "taxes",
        "productYear",
    }
    code = product["productCode"]
    assert (code["type"], code["minLength"], code["maxLength"]) == ("TEXT", 3, 25)
    assert code["pattern"] == "^[A-Z0-9_-]+$" and code["patternMessage"]
    price = product["generalPrice"]
    assert (price["type"], price["minValue"], price["maxValue"], price["decimals"]) == (
        "MONEY",
        0,
        999999.99,
        2,
    )
    assert product["insuranceLimit"]["maxValue"] == 999999999.99
    assert (product["taxes"]["type"], product["taxes"]["maxValue"]) == ("PERCENT", 100)
    assert (product["inventory"]["maxValue"], product["inventory"]["decimals"]) == (2**31 - 1, 0)
    assert product["startDate"]["type"] == "DATE"
    assert product["activeMembershipOnly"]["type"] == "BOOLEAN"
    assert not any(f["required"] for f in catalog["audienceTarget"]["fields"])
    rules = catalog["product"]["rules"]
    assert any({"insuranceType", "insuranceLimit"} <= set(r["fields"]) for r in rules)
    assert any("generalPrice" in r["fields"] and "price" in r["description"] for r in rules)


async def test_catalog_limits_are_the_ones_the_mutations_enforce(client: GraphQLClient) -> None:
    # given a draft and the catalogue's text limits
    catalog = await _catalog(client)
    sid = (await create_session(client))["sessionId"]
    text_limits = [
        f for f in catalog["product"]["fields"] if f["type"] == "TEXT" and f["maxLength"]
    ]
    province = next(f for f in catalog["audienceTarget"]["fields"] if f["name"] == "province")

    # when each text field gets one character more than its maxLength
    too_long = {f["name"]: "7" * (f["maxLength"] + 1) for f in text_limits}
    rejected = (
        await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input(**too_long)})
    )["addProduct"]["userErrors"]
    # and exactly maxLength
    at_limit = {f["name"]: "7" * f["maxLength"] for f in text_limits}
    accepted = (
        await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input(**at_limit)})
    )["addProduct"]["userErrors"]
    # and a target criterion with every one of its choices, more than maxSelections
    names = [c["name"] for c in province["choices"]]
    target = (
        await client.data(CONFIGURE_TARGET, {"sessionId": sid, "input": {"province": names * 4}})
    )["configureTarget"]["userErrors"]

    # then the service refuses exactly what the catalogue says it would
    assert sorted(e["field"][1] for e in rejected) == sorted(too_long)
    assert accepted == []
    assert len(names) * 4 > province["maxSelections"]
    assert any(e["field"] == ["input", "province"] for e in target)


async def test_catalog_needs_a_valid_token(client: GraphQLClient) -> None:
    body = await client.execute(CATALOG, token="")

    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
