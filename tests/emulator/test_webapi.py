"""Conformance of single Web API requests: create, upsert, retrieve, query, delete, errors, auth."""

from __future__ import annotations

import uuid

import httpx
import pytest

from emulator import DEFAULT_ORGANIZATIONS, Emulator
from emulator.testing import EmulatorControl

from .helpers import ORG_ID, product

pytestmark = pytest.mark.anyio

PRODUCTS = "osot_table_products"
TARGETS = "osot_table_audience_targets"


def error_of(response: httpx.Response) -> dict[str, str]:
    assert response.headers["content-type"] == "application/json; odata.metadata=minimal"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    return body["error"]


async def test_create_returns_204_with_odata_entity_id(
    dv: httpx.AsyncClient, emulator: Emulator
) -> None:
    response = await dv.post(PRODUCTS, json=product())

    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["odata-version"] == "4.0"
    entity_id = response.headers["odata-entityid"]
    assert entity_id.startswith(f"{emulator.web_api_url}{PRODUCTS}(")
    guid = entity_id[len(f"{emulator.web_api_url}{PRODUCTS}(") : -1]
    row = (await dv.get(f"{PRODUCTS}({guid})")).json()
    assert row["osot_productid"] == "osot-prod-0000001"
    assert row["osot_product_name"] == "Annual Conference"
    assert row["_osot_table_organization_value"] == ORG_ID
    assert row["@odata.etag"].startswith('W/"')


async def test_create_with_representation_returns_201_and_exact_decimals(
    dv: httpx.AsyncClient,
) -> None:
    record_id = str(uuid.uuid4())
    raw = (
        '{"osot_table_productid": "ID", "osot_product_name": "Gold",'
        ' "osot_general_price": 1234567.89, "osot_insurance_limit": 999999999.99,'
        ' "osot_taxes": 13.05, "osot_inventory": 7,'
        ' "osot_active_membership_only": true, "osot_start_date": "2026-02-28"}'
    ).replace("ID", record_id)
    response = await dv.post(
        f"{PRODUCTS}?$select=osot_product_name,osot_general_price,osot_insurance_limit,osot_taxes",
        content=raw,
        headers={"Content-Type": "application/json", "Prefer": "return=representation"},
    )

    assert response.status_code == 201
    assert "odata-entityid" not in response.headers
    assert response.headers["preference-applied"] == "return=representation"
    assert '"osot_general_price":1234567.89' in response.text
    assert '"osot_insurance_limit":999999999.99' in response.text
    body = response.json()
    assert body["@odata.context"].endswith(
        f"$metadata#{PRODUCTS}(osot_product_name,osot_general_price,osot_insurance_limit,osot_taxes)/$entity"
    )
    assert body["osot_table_productid"] == record_id
    assert body["osot_taxes"] == 13.05
    full = (await dv.get(f"{PRODUCTS}({record_id})")).json()
    assert full["osot_inventory"] == 7
    assert full["osot_active_membership_only"] is True
    assert full["osot_start_date"] == "2026-02-28"
    assert full["osot_productid"] == "osot-prod-0000001"


async def test_duplicate_client_guid_is_412_with_dataverse_body(dv: httpx.AsyncClient) -> None:
    record_id = str(uuid.uuid4())
    first = await dv.post(PRODUCTS, json=product(osot_table_productid=record_id))
    assert first.status_code == 204

    again = await dv.post(PRODUCTS, json=product(osot_table_productid=record_id.upper()))

    assert again.status_code == 412
    assert again.json() == {
        "error": {
            "code": "0x80040237",
            "message": "A record with matching key values already exists.",
        }
    }


async def test_upsert_if_none_match_creates_once(dv: httpx.AsyncClient) -> None:
    record_id = str(uuid.uuid4())
    url = f"{PRODUCTS}({record_id})"

    created = await dv.patch(url, json=product(), headers={"If-None-Match": "*"})
    assert created.status_code == 204
    assert created.headers["odata-entityid"].endswith(url)

    again = await dv.patch(url, json=product(), headers={"If-None-Match": "*"})
    assert again.status_code == 412
    assert error_of(again)["code"] == "0x80040237"
    assert len((await dv.get(PRODUCTS)).json()["value"]) == 1


async def test_upsert_if_match_updates_only(dv: httpx.AsyncClient) -> None:
    record_id = str(uuid.uuid4())
    url = f"{PRODUCTS}({record_id})"

    missing = await dv.patch(url, json={"osot_product_name": "x" * 3}, headers={"If-Match": "*"})
    assert missing.status_code == 404
    assert error_of(missing) == {
        "code": "0x80040217",
        "message": f"osot_table_product With Id = {record_id} Does Not Exist",
    }

    await dv.post(PRODUCTS, json=product(osot_table_productid=record_id))
    etag = (await dv.get(url)).json()["@odata.etag"]
    updated = await dv.patch(
        url,
        json={"osot_product_name": "Renamed"},
        headers={"If-Match": "*", "Prefer": "return=representation"},
    )
    assert updated.status_code == 200
    assert updated.json()["osot_product_name"] == "Renamed"
    assert updated.json()["osot_product_code"] == "CONF-2026"  # untouched columns stay

    stale = await dv.patch(url, json={"osot_product_name": "Again"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert error_of(stale)["code"] == "0x80060882"


async def test_plain_patch_creates_or_updates(dv: httpx.AsyncClient) -> None:
    record_id = str(uuid.uuid4())
    url = f"{PRODUCTS}({record_id})"
    created = await dv.patch(url, json=product(), headers={"Prefer": "return=representation"})
    assert created.status_code == 201
    updated = await dv.patch(url, json={"osot_product_status": 2})
    assert updated.status_code == 204
    assert (await dv.get(url)).json()["osot_product_status"] == 2


async def test_retrieve_missing_is_404(dv: httpx.AsyncClient) -> None:
    record_id = str(uuid.uuid4())
    response = await dv.get(f"{PRODUCTS}({record_id})")
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "0x80040217",
            "message": f"osot_table_product With Id = {record_id} Does Not Exist",
        }
    }


async def test_filter_is_case_insensitive_and_supports_lookups(dv: httpx.AsyncClient) -> None:
    other_org = DEFAULT_ORGANIZATIONS[1][0]
    await dv.post(
        PRODUCTS, json=product(osot_product_code="ABC-1", osot_product_name="O'Brien Kit")
    )
    await dv.post(
        PRODUCTS,
        json=product(
            osot_product_code="ABC-2",
            **{"osot_Table_Organization@odata.bind": f"/osot_table_organizations({other_org})"},
        ),
    )

    async def codes(expression: str) -> list[str]:
        response = await dv.get(
            PRODUCTS, params={"$filter": expression, "$select": "osot_product_code"}
        )
        assert response.status_code == 200, response.text
        return [row["osot_product_code"] for row in response.json()["value"]]

    assert await codes("osot_product_code eq 'abc-1'") == ["ABC-1"]
    assert await codes("osot_product_name eq 'o''brien kit'") == ["ABC-1"]
    assert await codes(f"_osot_table_organization_value eq {other_org}") == ["ABC-2"]
    assert (
        await codes(f"osot_product_code eq 'ABC-2' and _osot_table_organization_value eq {ORG_ID}")
        == []
    )
    assert await codes("(osot_product_code eq 'abc-1' or osot_product_code eq 'ABC-2')") == [
        "ABC-1",
        "ABC-2",
    ]
    assert await codes("osot_privilege eq null and osot_product_category eq 0") == [
        "ABC-1",
        "ABC-2",
    ]
    top = await dv.get(PRODUCTS, params={"$top": "1"})
    assert len(top.json()["value"]) == 1


@pytest.mark.parametrize(
    "expression",
    [
        "contains(osot_product_code,'ABC')",
        "osot_product_code gt 'A'",
        "osot_product_code eq 'unterminated",
        "osot_product_code eq",
    ],
)
async def test_unsupported_filter_is_400(dv: httpx.AsyncClient, expression: str) -> None:
    response = await dv.get(PRODUCTS, params={"$filter": expression})
    assert response.status_code == 400
    assert error_of(response)["code"] == "0x80060888"


async def test_filter_type_mismatch_and_unknown_column_are_400(dv: httpx.AsyncClient) -> None:
    mismatch = await dv.get(PRODUCTS, params={"$filter": "osot_product_category eq '1'"})
    assert mismatch.status_code == 400
    assert "incompatible types" in error_of(mismatch)["message"]
    unknown = await dv.get(PRODUCTS, params={"$filter": "osot_nope eq 'x'"})
    assert unknown.status_code == 400
    assert "osot_nope" in error_of(unknown)["message"]


async def test_select_unknown_column_is_400(dv: httpx.AsyncClient) -> None:
    response = await dv.get(PRODUCTS, params={"$select": "osot_product_name,Osot_Product_Code"})
    assert response.status_code == 400
    assert error_of(response) == {
        "code": "0x80060888",
        "message": "Could not find a property named 'Osot_Product_Code' on type "
        "'Microsoft.Dynamics.CRM.osot_table_product'.",
    }


async def test_unsupported_query_option_is_400(dv: httpx.AsyncClient) -> None:
    response = await dv.get(PRODUCTS, params={"$orderby": "osot_product_name"})
    assert response.status_code == 400


async def test_invalid_option_values_are_400(dv: httpx.AsyncClient) -> None:
    choice = await dv.post(PRODUCTS, json=product(osot_product_category=99))
    assert choice.status_code == 400
    assert error_of(choice)["code"] == "0x8004431A"
    assert "osot_product_category" in error_of(choice)["message"]

    multi = await dv.post(TARGETS, json={"osot_gender": "1,99"})
    assert multi.status_code == 400
    assert error_of(multi)["code"] == "0x8004431A"
    assert (await dv.get(PRODUCTS)).json()["value"] == []


async def test_multiselect_round_trips_as_a_string(dv: httpx.AsyncClient) -> None:
    response = await dv.post(
        TARGETS,
        json={"osot_membership_category": "1,11", "osot_gender": None},
        headers={"Prefer": "return=representation"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["osot_membership_category"] == "1,11"
    assert body["osot_gender"] is None
    assert body["osot_target"] == "osot-tgt-0000001"


async def test_overlong_string_is_400(dv: httpx.AsyncClient) -> None:
    response = await dv.post(PRODUCTS, json=product(osot_product_code="X" * 26))
    assert response.status_code == 400
    assert error_of(response) == {
        "code": "0x80044331",
        "message": "A validation error occurred.  The length of the 'osot_product_code' attribute "
        "of the 'osot_table_product' entity exceeded the maximum allowed length of '25'.",
    }
    exact = await dv.post(PRODUCTS, json=product(osot_product_code="X" * 25))
    assert exact.status_code == 204


async def test_unknown_property_is_400(dv: httpx.AsyncClient) -> None:
    response = await dv.post(PRODUCTS, json=product(osot_colour="red"))
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "0x80060888"
    assert error["message"].startswith(
        "The property 'osot_colour' does not exist on type "
        "'Microsoft.Dynamics.CRM.osot_table_product'."
    )


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("osot_inventory", "5"),
        ("osot_inventory", 1.5),
        ("osot_inventory", -1),
        ("osot_product_category", True),
        ("osot_general_price", "10.00"),
        ("osot_general_price", 1_000_000_000_000_000),
        ("osot_start_date", "2026-02-30"),
        ("osot_start_date", "2026-02-01T00:00:00Z"),
        ("osot_active_membership_only", "true"),
        ("osot_product_name", 12),
    ],
)
async def test_wrongly_typed_values_are_400(
    dv: httpx.AsyncClient, column: str, value: object
) -> None:
    response = await dv.post(PRODUCTS, json=product(**{column: value}))
    assert response.status_code == 400, response.text
    assert error_of(response)["code"].startswith("0x")


async def test_bind_to_missing_organization_is_404(dv: httpx.AsyncClient) -> None:
    missing = str(uuid.uuid4())
    response = await dv.post(
        PRODUCTS,
        json=product(
            **{"osot_Table_Organization@odata.bind": f"/osot_table_organizations({missing})"}
        ),
    )
    assert response.status_code == 404
    assert error_of(response) == {
        "code": "0x80040217",
        "message": f"osot_table_organization With Id = {missing} Does Not Exist",
    }


async def test_bind_must_name_the_related_entity_set(dv: httpx.AsyncClient) -> None:
    response = await dv.post(
        PRODUCTS,
        json=product(**{"osot_Table_Organization@odata.bind": f"/osot_table_products({ORG_ID})"}),
    )
    assert response.status_code == 400


async def test_delete(dv: httpx.AsyncClient) -> None:
    record_id = str(uuid.uuid4())
    await dv.post(PRODUCTS, json=product(osot_table_productid=record_id))
    target = await dv.post(
        TARGETS,
        json={"osot_Table_Product@odata.bind": f"{PRODUCTS}({record_id})"},
        headers={"Prefer": "return=representation"},
    )
    target_id = target.json()["osot_table_audience_targetid"]

    assert (await dv.delete(f"{PRODUCTS}({record_id})")).status_code == 204
    assert (await dv.delete(f"{PRODUCTS}({record_id})")).status_code == 404
    # A referential relationship removes the link rather than the child.
    assert (await dv.get(f"{TARGETS}({target_id})")).json()["_osot_table_product_value"] is None


async def test_bearer_token_is_required(emulator: Emulator) -> None:
    async with httpx.AsyncClient(base_url=emulator.web_api_url) as client:
        anonymous = await client.get(PRODUCTS)
        wrong = await client.get(PRODUCTS, headers={"Authorization": "Bearer nope"})
    for response in (anonymous, wrong):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert error_of(response)["code"].startswith("0x")


async def test_unknown_entity_set_and_wrong_method(dv: httpx.AsyncClient) -> None:
    unknown = await dv.get("osot_table_product")
    assert unknown.status_code == 404
    assert error_of(unknown) == {
        "code": "0x8006088a",
        "message": "Resource not found for the segment 'osot_table_product'.",
    }
    wrong = await dv.put(f"{PRODUCTS}({uuid.uuid4()})", json={})
    assert wrong.status_code == 405
    assert error_of(wrong)["code"].startswith("0x")
    bad_key = await dv.get(f"{PRODUCTS}(not-a-guid)")
    assert bad_key.status_code == 400


async def test_body_needs_json_content_type(dv: httpx.AsyncClient) -> None:
    response = await dv.post(PRODUCTS, content=b"{}", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


async def test_control_rows_do_not_count_as_requests(
    dv: httpx.AsyncClient, control: EmulatorControl
) -> None:
    await dv.post(PRODUCTS, json=product())
    assert len(await control.products()) == 1
    assert len(await control.products("osot_product_code eq 'conf-2026'")) == 1
    assert len(await control.organizations()) == len(DEFAULT_ORGANIZATIONS)
    assert [(r["method"], r["status"]) for r in await control.requests()] == [("POST", 204)]

    await control.reset()
    assert await control.products() == []
    assert len(await control.organizations()) == len(DEFAULT_ORGANIZATIONS)
    assert await control.requests() == []


async def test_retired_option_is_rejected_until_reset(
    emulator: Emulator, dv: httpx.AsyncClient
) -> None:
    control = EmulatorControl(emulator.base_url, token=emulator.token)
    await control.retire_options("osot_table_audience_targets", "osot_province", [11])

    rejected = await dv.post("osot_table_audience_targets", json={"osot_province": "1,11"})
    await control.reset()
    accepted = await dv.post("osot_table_audience_targets", json={"osot_province": "1,11"})

    assert rejected.status_code == 400
    assert rejected.json()["error"]["code"] == "0x8004431A"
    assert accepted.status_code == 204
