"""Commit over HTTP, service to emulator: atomic, exactly once, retried, recovered."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from emulator.testing import EmulatorControl, drop, error, throttle, unavailable, write_then_drop
from services.sessions import SessionService
from tests.conftest import ORG_A, GraphQLClient, token
from tests.graphql_documents import (
    ADD_PRODUCT,
    CONFIGURE_TARGET,
    SESSION,
    SESSION_PROGRESS,
    product_input,
)
from tests.test_workflow import create_session
from tests.waiting import eventually_state

pytestmark = pytest.mark.anyio

COMMIT = """
mutation Commit($sessionId: ID!) {
  commit(sessionId: $sessionId) {
    success productGuid targetGuid productCode errors operationId
    userErrors { field message code }
    session { sessionId state version errors productGuid targetGuid committedAt }
  }
}
"""


async def ready_draft(
    client: GraphQLClient, *, target: dict[str, Any] | None = None, **product: Any
) -> str:
    sid = (await create_session(client))["sessionId"]
    added = await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input(**product)})
    assert added["addProduct"]["userErrors"] == []
    if target is not None:
        configured = await client.data(CONFIGURE_TARGET, {"sessionId": sid, "input": target})
        assert configured["configureTarget"]["userErrors"] == []
    return sid


async def commit(client: GraphQLClient, sid: str) -> dict[str, Any]:
    return (await client.data(COMMIT, {"sessionId": sid}))["commit"]


async def test_commit_creates_product_and_target_bound_together(
    client: GraphQLClient, dataverse: EmulatorControl
) -> None:
    # given
    sid = await ready_draft(
        client,
        target={"province": ["ONTARIO", "QUEBEC"], "membershipCategory": ["OT_PR"], "gender": []},
        productPicture="https://example.org/workshop.png",
        startDate="2026-03-01",
        endDate="2026-03-02",
    )

    # when
    result = await commit(client, sid)

    # then
    assert result["success"] is True, result
    assert result["errors"] == [] and result["userErrors"] == []
    assert result["productCode"] == "OSOT-WORKSHOP-2026"
    assert result["session"]["state"] == "COMMITTED"
    [product] = await dataverse.products()
    [target] = await dataverse.targets()
    assert product["osot_table_productid"] == result["productGuid"]
    assert target["osot_table_audience_targetid"] == result["targetGuid"]
    assert target["_osot_table_product_value"] == result["productGuid"]
    assert product["_osot_table_organization_value"] == ORG_A
    assert product["osot_productid"].startswith("osot-prod-")
    assert target["osot_target"].startswith("osot-tgt-")
    assert product["osot_product_code"] == "OSOT-WORKSHOP-2026"
    assert product["osot_product_name"] == "Advanced OT Workshop 2026"
    assert product["osot_product_category"] == 4
    assert product["osot_product_status"] == 1
    assert product["osot_product_gl_code"] == 14
    assert product["osot_user_type"] == 1
    assert product["osot_general_price"] == 199.99
    assert product["osot_otstu_price"] == 149.99
    assert product["osot_taxes"] == 13
    assert product["osot_inventory"] == 50
    assert product["osot_start_date"] == "2026-03-01"
    assert product["osot_active_membership_only"] is True
    assert product["osot_product_picture"] == "https://example.org/workshop.png"
    assert product.get("osot_insurance_type") is None
    assert target["osot_province"] == "1,11"
    assert target["osot_membership_category"] == "1"
    assert target["osot_gender"] is None
    assert target["osot_language"] is None


async def test_commit_without_target_writes_an_empty_target(
    client: GraphQLClient, dataverse: EmulatorControl
) -> None:
    sid = await ready_draft(client)

    result = await commit(client, sid)

    assert result["success"] is True
    [target] = await dataverse.targets()
    assert target["_osot_table_product_value"] == result["productGuid"]
    assert target["osot_province"] is None


async def test_commit_costs_one_uniqueness_read_and_one_transaction(
    client: GraphQLClient, dataverse: EmulatorControl
) -> None:
    sid = await ready_draft(client, target={"province": ["ONTARIO"]})
    await dataverse.clear_requests()

    await commit(client, sid)

    requests = await dataverse.requests()
    assert [(r["method"], r["path"].split("?")[0].rsplit("/", 1)[-1]) for r in requests] == [
        ("GET", "osot_table_products"),
        ("POST", "$batch"),
    ]


async def test_throttled_commit_honours_retry_after_then_succeeds(
    client: GraphQLClient, dataverse: EmulatorControl
) -> None:
    sid = await ready_draft(client)
    await dataverse.set_faults(queue=[throttle("batch", retry_after=2)])

    started = time.monotonic()
    result = await commit(client, sid)
    elapsed = time.monotonic() - started

    assert result["success"] is True
    assert elapsed >= 2
    assert len(await dataverse.products()) == 1


async def test_two_503s_then_success(client: GraphQLClient, dataverse: EmulatorControl) -> None:
    sid = await ready_draft(client)
    await dataverse.set_faults(queue=[unavailable("batch"), unavailable("batch")])

    result = await commit(client, sid)

    assert result["success"] is True
    assert len(await dataverse.products()) == 1
    batches = [r for r in await dataverse.requests() if r["path"].endswith("$batch")]
    assert len(batches) == 3


async def test_exhausted_retries_fail_cleanly_and_a_later_commit_succeeds(
    client: GraphQLClient, dataverse: EmulatorControl
) -> None:
    # given three transient failures in a row
    sid = await ready_draft(client)
    await dataverse.set_faults(
        queue=[unavailable("batch"), error(500, "0x80044151", match="batch"), unavailable("batch")]
    )

    # when
    failed = await commit(client, sid)
    progress = (await client.data(SESSION_PROGRESS, {"sessionId": sid}))["sessionProgress"]

    # then the session is FAILED with a readable cause; a 5xx may hide an applied write,
    # so the draft says so and stays as it was, and nothing is in Dataverse
    assert failed["success"] is False
    assert failed["session"]["state"] == "FAILED"
    assert failed["userErrors"][0]["code"] == "DATAVERSE_UNAVAILABLE"
    assert "Try again in" in failed["errors"][0]
    assert "may have reached Dataverse" in failed["errors"][0]
    assert progress["state"] == "FAILED" and progress["canCommit"] is True
    assert await dataverse.products() == [] and await dataverse.targets() == []

    # when Dataverse recovers, committing again succeeds
    retried = await commit(client, sid)
    assert retried["success"] is True
    assert len(await dataverse.products()) == 1


async def test_write_then_drop_is_reconciled_into_one_product(
    client: GraphQLClient, dataverse: EmulatorControl
) -> None:
    sid = await ready_draft(client, target={"province": ["ONTARIO"]})
    await dataverse.set_faults(queue=[write_then_drop("batch")])

    result = await commit(client, sid)

    assert result["success"] is True, result
    products, targets = await dataverse.products(), await dataverse.targets()
    assert [p["osot_table_productid"] for p in products] == [result["productGuid"]]
    assert [t["osot_table_audience_targetid"] for t in targets] == [result["targetGuid"]]


async def test_a_dropped_connection_before_the_write_is_retried(
    client: GraphQLClient, dataverse: EmulatorControl
) -> None:
    sid = await ready_draft(client)
    await dataverse.set_faults(queue=[drop("batch")])

    result = await commit(client, sid)

    assert result["success"] is True
    assert len(await dataverse.products()) == 1


async def test_concurrent_commits_create_exactly_one_product(
    client: GraphQLClient, dataverse: EmulatorControl
) -> None:
    # given a slow Dataverse so the commits overlap
    sid = await ready_draft(client)
    await dataverse.set_faults(latency_ms=300)
    results: list[dict[str, Any]] = []

    async def run() -> None:
        results.append(await commit(client, sid))

    # when
    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(run)

    # then one wrote, the others were told a commit is in progress
    assert sum(r["success"] for r in results) == 1
    losers = [r for r in results if not r["success"]]
    assert all(r["userErrors"][0]["code"] == "COMMIT_IN_PROGRESS" for r in losers)
    assert len(await dataverse.products()) == 1


async def test_a_commit_whose_process_died_after_writing_is_recovered(
    client: GraphQLClient, dataverse: EmulatorControl, redis: Redis
) -> None:
    # given a process that took the commit lease, wrote to Dataverse, then died
    from services.dataverse import (
        CHANGESET_PRODUCT_REF,
        DataverseClient,
        StaticTokenAuth,
        build_http_client,
        product_columns,
        target_columns,
    )

    sid = await ready_draft(client, target={"province": ["ONTARIO"]})
    sessions = SessionService(redis)
    draft = await sessions.get(_principal(), sid)
    crashed = await sessions.begin_commit(
        _principal(),
        sid,
        lease_owner="dead-process",
        lease=timedelta(seconds=1),
        operation_id="op-crashed",
    )
    assert crashed.commit is not None
    assert draft.product is not None and draft.audience_target is not None
    http = build_http_client(dataverse.base_url, StaticTokenAuth(dataverse.token))
    async with DataverseClient(http) as dv:
        await dv.create_product_with_target(
            product_columns=product_columns(draft.product, ORG_A, crashed.commit.product_guid),
            target_columns=target_columns(
                draft.audience_target, crashed.commit.target_guid, CHANGESET_PRODUCT_REF
            ),
        )
    in_flight = (await client.data(SESSION_PROGRESS, {"sessionId": sid}))["sessionProgress"]

    # when the lease has expired, a recoverer takes the commit over
    recovered = await eventually_state(client, sid, "COMMITTED")
    again = await commit(client, sid)

    # then the earlier write is recognised: committed once, with the crashed commit's GUIDs
    assert in_flight["state"] == "COMMITTING"
    assert recovered["state"] == "COMMITTED"
    assert again["success"] is True
    assert again["productGuid"] == crashed.commit.product_guid
    assert len(await dataverse.products()) == 1
    assert len(await dataverse.targets()) == 1


async def test_a_commit_whose_process_died_before_writing_becomes_retryable(
    client: GraphQLClient, dataverse: EmulatorControl, redis: Redis
) -> None:
    sid = await ready_draft(client)
    await SessionService(redis).begin_commit(
        _principal(), sid, lease_owner="dead", lease=timedelta(seconds=1), operation_id="op"
    )
    await anyio.sleep(1.2)

    result = await commit(client, sid)

    assert result["success"] is True
    assert len(await dataverse.products()) == 1


async def test_code_created_elsewhere_before_commit_is_taken_and_nothing_is_written(
    client: GraphQLClient, dataverse: EmulatorControl
) -> None:
    # given a draft, then someone creates the same code directly in Dataverse
    sid = await ready_draft(client, productCode="RACE-1")
    await _create_product_elsewhere(dataverse, "race-1")

    # when
    result = await commit(client, sid)

    # then
    assert result["success"] is False
    assert result["userErrors"][0]["code"] == "PRODUCT_CODE_TAKEN"
    assert "RACE-1" in result["errors"][0]
    assert len(await dataverse.products()) == 1  # only the other one
    assert await dataverse.targets() == []
    assert result["session"]["state"] == "FAILED"


async def test_add_product_refuses_a_code_that_exists_in_dataverse(
    client: GraphQLClient, dataverse: EmulatorControl
) -> None:
    await _create_product_elsewhere(dataverse, "EXISTING-1", status=2)  # DISCONTINUED still counts
    sid = (await create_session(client))["sessionId"]

    result = await client.data(
        ADD_PRODUCT, {"sessionId": sid, "input": product_input(productCode="existing-1")}
    )

    assert result["addProduct"]["userErrors"] == [
        {
            "field": ["input", "productCode"],
            "code": "PRODUCT_CODE_TAKEN",
            "message": "Product code EXISTING-1 is already used by an existing Dataverse product.",
        }
    ]


async def test_add_product_fails_closed_when_dataverse_cannot_be_asked(
    client: GraphQLClient, dataverse: EmulatorControl
) -> None:
    sid = (await create_session(client))["sessionId"]
    await dataverse.set_faults(queue=[unavailable("read")] * 3)

    result = await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input()})

    error = result["addProduct"]["userErrors"][0]
    assert error["code"] == "DATAVERSE_UNAVAILABLE"
    assert error["field"] == ["input", "productCode"]
    stored = (await client.data(SESSION, {"sessionId": sid}))["session"]
    assert stored["product"] is None


async def test_committed_session_is_cleaned_up_but_its_receipt_answers(
    client: GraphQLClient, dataverse: EmulatorControl, redis: Redis
) -> None:
    sid = await ready_draft(client)
    first = await commit(client, sid)
    assert 0 < await redis.pttl(f"{{orchestrator}}:draft:{sid}") <= 5000
    assert await redis.ttl(f"{{orchestrator}}:receipt:{sid}") > 23 * 3600

    await anyio.sleep(5.2)
    progress = (await client.data(SESSION_PROGRESS, {"sessionId": sid}))["sessionProgress"]
    again = await commit(client, sid)
    stranger = await client.data(COMMIT, {"sessionId": sid}, token=token("user-2"))

    assert await redis.exists(f"{{orchestrator}}:draft:{sid}") == 0
    assert progress["state"] == "COMMITTED" and progress["percentage"] == 100
    assert again["success"] is True
    assert (again["productGuid"], again["targetGuid"], again["productCode"]) == (
        first["productGuid"],
        first["targetGuid"],
        first["productCode"],
    )
    assert stranger["commit"]["userErrors"][0]["code"] == "SESSION_NOT_FOUND"
    assert len(await dataverse.products()) == 1


async def test_a_committed_draft_can_no_longer_be_edited(
    client: GraphQLClient, dataverse: EmulatorControl
) -> None:
    sid = await ready_draft(client)
    await commit(client, sid)

    edit = await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input()})

    assert edit["addProduct"]["userErrors"][0]["code"] == "INVALID_STATE"


async def test_commit_without_a_product_is_invalid_state(
    client: GraphQLClient, dataverse: EmulatorControl
) -> None:
    sid = (await create_session(client))["sessionId"]

    result = await commit(client, sid)

    assert result["success"] is False
    assert result["userErrors"][0]["code"] == "INVALID_STATE"
    assert await dataverse.products() == []


def _principal() -> Any:
    from datetime import UTC, datetime

    from services.models import Principal, Privilege

    return Principal("user-1", Privilege.ADMIN, ORG_A, datetime.now(tz=UTC))


async def _create_product_elsewhere(dataverse: EmulatorControl, code: str, status: int = 1) -> None:
    import httpx

    async with httpx.AsyncClient(
        base_url=f"{dataverse.base_url}/api/data/v9.2/",
        headers={"Authorization": f"Bearer {dataverse.token}"},
    ) as http:
        response = await http.post(
            "osot_table_products",
            json={
                "osot_product_name": "Made elsewhere",
                "osot_product_code": code,
                "osot_product_description": "Created directly in Dataverse.",
                "osot_product_category": 4,
                "osot_product_status": status,
                "osot_product_gl_code": 14,
                "osot_user_type": 1,
                "osot_taxes": 13,
                "osot_product_year": "2026",
            },
        )
        assert response.status_code == 204, response.text


async def test_an_option_dataverse_rejects_fails_clearly_and_writes_nothing(
    client: GraphQLClient, dataverse: EmulatorControl
) -> None:
    # given a target option an administrator has since removed from Dataverse's choice set
    sid = await ready_draft(client, target={"province": ["ONTARIO", "QUEBEC"]})
    await dataverse.retire_options("osot_table_audience_targets", "osot_province", [11])

    # when
    result = await commit(client, sid)

    # then the cause is named, the session can be fixed and committed again
    assert result["success"] is False
    assert result["userErrors"][0]["code"] == "COMMIT_FAILED"
    assert "osot_province" in result["errors"][0]
    assert "Nothing was written" in result["errors"][0]
    assert await dataverse.products() == [] and await dataverse.targets() == []
    await client.data(CONFIGURE_TARGET, {"sessionId": sid, "input": {"province": ["ONTARIO"]}})
    assert (await commit(client, sid))["success"] is True
    assert len(await dataverse.products()) == 1
