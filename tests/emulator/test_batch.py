"""$batch conformance: multipart format, change set atomicity, Content-ID references."""

from __future__ import annotations

import uuid

import httpx
import pytest

from emulator import Emulator
from emulator.testing import EmulatorControl

from .helpers import Op, parse_batch_response, product, send_batch

pytestmark = pytest.mark.anyio

PRODUCTS = "osot_table_products"
TARGETS = "osot_table_audience_targets"
API = "/api/data/v9.2/"


async def test_changeset_with_content_id_reference(
    dv: httpx.AsyncClient, emulator: Emulator, control: EmulatorControl
) -> None:
    product_id = str(uuid.uuid4())
    response = await send_batch(
        dv,
        [
            Op(
                "POST", f"{API}{PRODUCTS}", product(osot_table_productid=product_id), content_id="1"
            ),
            Op(
                "POST",
                f"{API}{TARGETS}",
                {"osot_membership_category": "1,11", "osot_Table_Product@odata.bind": "$1"},
                content_id="2",
            ),
        ],
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("multipart/mixed; boundary=batchresponse_")
    assert response.headers["odata-version"] == "4.0"
    assert "Content-Type: multipart/mixed; boundary=changesetresponse_" in response.text
    parts = parse_batch_response(response)
    assert [(p.status, p.content_id, p.in_changeset) for p in parts] == [
        (204, "1", True),
        (204, "2", True),
    ]
    assert "HTTP/1.1 204 No Content\r\nOData-Version: 4.0\r\nLocation: " in response.text
    product_url = f"{emulator.web_api_url}{PRODUCTS}({product_id})"
    assert parts[0].headers["OData-EntityId"] == product_url
    assert parts[0].headers["Location"] == product_url
    assert parts[0].body == ""

    targets = await control.targets()
    assert len(targets) == 1
    assert targets[0]["_osot_table_product_value"] == product_id
    assert targets[0]["osot_membership_category"] == "1,11"
    assert (
        parts[1]
        .headers["OData-EntityId"]
        .endswith(f"{TARGETS}({targets[0]['osot_table_audience_targetid']})")
    )
    log = await control.requests()
    assert [(r["method"], r["path"], r["status"]) for r in log] == [("POST", f"{API}$batch", 200)]
    assert [(o["method"], o["status"], o["content_id"]) for o in log[0]["operations"]] == [
        ("POST", 204, "1"),
        ("POST", 204, "2"),
    ]


async def test_changeset_is_atomic(dv: httpx.AsyncClient, control: EmulatorControl) -> None:
    product_id = str(uuid.uuid4())
    response = await send_batch(
        dv,
        [
            Op(
                "POST", f"{API}{PRODUCTS}", product(osot_table_productid=product_id), content_id="1"
            ),
            Op(
                "POST",
                f"{API}{TARGETS}",
                {"osot_gender": "999", "osot_Table_Product@odata.bind": "$1"},
                content_id="2",
            ),
        ],
    )

    # The batch reports the failing request's status; the change set is rolled back as a whole.
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("multipart/mixed; boundary=batchresponse_")
    parts = parse_batch_response(response)
    assert len(parts) == 1
    failed = parts[0]
    assert (failed.status, failed.content_id, failed.in_changeset) == (400, "2", True)
    assert failed.headers["Content-Type"] == "application/json; odata.metadata=minimal"
    assert failed.json()["error"]["code"] == "0x8004431A"
    assert await control.products() == []
    assert await control.targets() == []
    operations = (await control.requests())[0]["operations"]
    assert [(o["status"], o["rolled_back"]) for o in operations] == [(204, True), (400, True)]
    # Autonumbers come from a SQL sequence that a rollback does not give back.
    await dv.post(PRODUCTS, json=product())
    assert [row["osot_productid"] for row in await control.products()] == ["osot-prod-0000002"]


async def test_create_only_upserts_in_a_changeset_fail_as_a_unit(
    dv: httpx.AsyncClient, control: EmulatorControl
) -> None:
    product_id, target_id = str(uuid.uuid4()), str(uuid.uuid4())
    changeset = [
        Op(
            "PATCH",
            f"{API}{PRODUCTS}({product_id})",
            product(),
            content_id="1",
            headers={"If-None-Match": "*"},
        ),
        Op(
            "PATCH",
            f"{API}{TARGETS}({target_id})",
            {"osot_Table_Product@odata.bind": f"/{PRODUCTS}({product_id})"},
            content_id="2",
            headers={"If-None-Match": "*"},
        ),
    ]
    first = await send_batch(dv, changeset)
    assert first.status_code == 200

    retry = await send_batch(dv, changeset)
    assert retry.status_code == 412
    [failed] = parse_batch_response(retry)
    assert failed.json() == {
        "error": {
            "code": "0x80040237",
            "message": "A record with matching key values already exists.",
        }
    }
    assert len(await control.products()) == 1
    assert len(await control.targets()) == 1


async def test_content_id_in_url_and_relative_and_absolute_urls(
    dv: httpx.AsyncClient, emulator: Emulator
) -> None:
    response = await send_batch(
        dv,
        [
            Op("POST", f"{emulator.web_api_url}{PRODUCTS}", product(), content_id="1"),
            Op("PATCH", "$1", {"osot_product_name": "Patched"}, content_id="2"),
        ],
        Op("GET", f"{PRODUCTS}?$select=osot_product_name"),
    )
    assert response.status_code == 200
    parts = parse_batch_response(response)
    assert [p.status for p in parts] == [204, 204, 200]
    assert parts[1].headers["OData-EntityId"] == parts[0].headers["OData-EntityId"]
    assert not parts[2].in_changeset
    assert [row["osot_product_name"] for row in parts[2].json()["value"]] == ["Patched"]


async def test_undeclared_content_id_is_400(
    dv: httpx.AsyncClient, control: EmulatorControl
) -> None:
    response = await send_batch(
        dv,
        [
            Op("POST", f"{API}{PRODUCTS}", product(), content_id="2"),
            Op("POST", f"{API}{TARGETS}", {"osot_Table_Product@odata.bind": "$1"}, content_id="3"),
        ],
    )
    assert response.status_code == 400
    [failed] = parse_batch_response(response)
    assert (
        failed.json()["error"]["message"]
        == "Content-ID Reference: '$1' does not exist in the batch context."
    )
    assert await control.products() == []


async def test_content_ids_do_not_cross_changesets(
    dv: httpx.AsyncClient, control: EmulatorControl
) -> None:
    response = await send_batch(
        dv,
        [Op("POST", f"{API}{PRODUCTS}", product(), content_id="1")],
        [Op("POST", f"{API}{TARGETS}", {"osot_Table_Product@odata.bind": "$1"}, content_id="2")],
    )
    assert response.status_code == 400
    parts = parse_batch_response(response)
    assert [p.status for p in parts] == [204, 400]
    assert len(await control.products()) == 1  # the first change set had committed
    assert await control.targets() == []


async def test_failure_outside_changeset_stops_the_batch(
    dv: httpx.AsyncClient, control: EmulatorControl
) -> None:
    response = await send_batch(
        dv,
        Op("GET", f"{API}{PRODUCTS}({uuid.uuid4()})"),
        Op("POST", f"{API}{PRODUCTS}", product()),
    )
    assert response.status_code == 404
    [failed] = parse_batch_response(response)
    assert failed.json()["error"]["code"] == "0x80040217"
    assert await control.products() == []


async def test_continue_on_error(dv: httpx.AsyncClient, control: EmulatorControl) -> None:
    from .helpers import batch_body

    content_type, body = batch_body(
        Op("POST", f"{API}{PRODUCTS}", product(osot_product_code="X" * 30)),
        Op("POST", f"{API}{PRODUCTS}", product()),
    )
    response = await dv.post(
        "$batch",
        content=body.encode(),
        headers={"Content-Type": content_type, "Prefer": "odata.continue-on-error"},
    )
    assert response.status_code == 200
    assert [p.status for p in parse_batch_response(response)] == [400, 204]
    assert len(await control.products()) == 1


async def test_get_inside_changeset_is_rejected_unexecuted(
    dv: httpx.AsyncClient, control: EmulatorControl
) -> None:
    response = await send_batch(
        dv, [Op("POST", f"{API}{PRODUCTS}", product()), Op("GET", f"{API}{PRODUCTS}")]
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json; odata.metadata=minimal"
    assert "change set" in response.json()["error"]["message"]
    assert await control.products() == []


async def test_malformed_batches_are_400(dv: httpx.AsyncClient) -> None:
    from .helpers import batch_body

    content_type, body = batch_body([Op("POST", f"{API}{PRODUCTS}", product())])
    lf_only = await dv.post(
        "$batch",
        content=body.replace("\r\n", "\n").encode(),
        headers={"Content-Type": content_type},
    )
    assert lf_only.status_code == 400
    not_multipart = await dv.post("$batch", json={"requests": []})
    assert not_multipart.status_code == 400
    wrong_method = await dv.get("$batch")
    assert wrong_method.status_code == 405
