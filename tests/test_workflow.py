"""The workflow over HTTP: open a draft, add and edit its product and target, read it back."""

from __future__ import annotations

import pytest

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
from tests.helpers import ORG_A, GraphQLClient
from tests.helpers import create_session as create_session  # tests.test_commit imports it here

pytestmark = pytest.mark.anyio


async def test_happy_path_walks_a_draft_through_steps_1_to_3(client: GraphQLClient) -> None:
    # given
    session = await create_session(client)
    sid = session["sessionId"]
    assert session["state"] == "INITIATED"
    assert session["progress"]["percentage"] == 25
    assert session["userId"] == "user-1"
    assert session["organizationGuid"] == ORG_A

    # when
    added = await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input()})
    targeted = await client.data(
        CONFIGURE_TARGET,
        {"sessionId": sid, "input": {"province": ["ONTARIO", "QUEBEC"], "gender": ["FEMALE"]}},
    )
    progress = (await client.data(SESSION_PROGRESS, {"sessionId": sid}))["sessionProgress"]

    # then
    product = added["addProduct"]["session"]["product"]
    assert added["addProduct"]["userErrors"] == []
    assert added["addProduct"]["session"]["state"] == "PRODUCT_ADDED"
    assert product["productCode"] == "OSOT-WORKSHOP-2026"
    assert product["generalPrice"] == 199.99
    assert product["productCategory"] == "EVENT"
    assert product["taxes"] == 13
    target_session = targeted["configureTarget"]["session"]
    assert target_session["state"] == "TARGET_CONFIGURED"
    assert target_session["audienceTarget"]["province"] == ["ONTARIO", "QUEBEC"]
    assert target_session["audienceTarget"]["gender"] == ["FEMALE"]
    assert target_session["audienceTarget"]["language"] is None
    assert progress["state"] == "TARGET_CONFIGURED"
    assert progress["percentage"] == 75
    assert progress["canCommit"] is True
    assert progress["steps"] == {"productAdded": True, "targetConfigured": True, "committed": False}
    assert 7100 < progress["secondsRemaining"] <= 7200
    assert progress["expiringSoon"] is False
    assert progress["version"] == 3


async def test_every_mutation_payload_carries_an_operation_id(client: GraphQLClient) -> None:
    body = await client.data(CREATE_SESSION)
    again = await client.data(CREATE_SESSION)

    first, second = body["createSession"]["operationId"], again["createSession"]["operationId"]
    assert first and second and first != second


async def test_add_product_again_replaces_the_product(client: GraphQLClient) -> None:
    # given
    sid = (await create_session(client))["sessionId"]
    await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input()})

    # when
    edited = await client.data(
        ADD_PRODUCT,
        {"sessionId": sid, "input": product_input(productName="Renamed workshop", generalPrice=10)},
    )

    # then
    session = edited["addProduct"]["session"]
    assert session["product"]["productName"] == "Renamed workshop"
    assert session["product"]["generalPrice"] == 10
    assert session["version"] == 3
    stored = (await client.data(SESSION, {"sessionId": sid}))["session"]
    assert stored["product"]["productName"] == "Renamed workshop"


async def test_editing_the_product_keeps_a_configured_target(client: GraphQLClient) -> None:
    sid = (await create_session(client))["sessionId"]
    await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input()})
    await client.data(CONFIGURE_TARGET, {"sessionId": sid, "input": {"province": ["ONTARIO"]}})

    edited = await client.data(
        ADD_PRODUCT, {"sessionId": sid, "input": product_input(productName="Other name")}
    )

    session = edited["addProduct"]["session"]
    assert session["state"] == "TARGET_CONFIGURED"
    assert session["audienceTarget"]["province"] == ["ONTARIO"]


async def test_configure_target_again_replaces_the_whole_target(client: GraphQLClient) -> None:
    sid = (await create_session(client))["sessionId"]
    await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input()})
    await client.data(
        CONFIGURE_TARGET, {"sessionId": sid, "input": {"province": ["ONTARIO"], "gender": ["MALE"]}}
    )

    replaced = await client.data(
        CONFIGURE_TARGET, {"sessionId": sid, "input": {"practiceArea": ["OTHER"]}}
    )

    target = replaced["configureTarget"]["session"]["audienceTarget"]
    assert target["province"] is None
    assert target["gender"] is None
    assert target["practiceArea"] == ["OTHER"]


async def test_an_empty_target_is_configured_and_open_to_everyone(client: GraphQLClient) -> None:
    sid = (await create_session(client))["sessionId"]
    await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input()})

    result = await client.data(CONFIGURE_TARGET, {"sessionId": sid, "input": {}})

    session = result["configureTarget"]["session"]
    assert session["state"] == "TARGET_CONFIGURED"
    assert session["progress"]["steps"]["targetConfigured"] is True
    assert all(value is None for value in session["audienceTarget"].values())


async def test_an_empty_list_is_kept_apart_from_an_omitted_criterion(client: GraphQLClient) -> None:
    sid = (await create_session(client))["sessionId"]
    await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input()})

    await client.data(CONFIGURE_TARGET, {"sessionId": sid, "input": {"gender": []}})
    stored = (await client.data(SESSION, {"sessionId": sid}))["session"]["audienceTarget"]

    assert stored["gender"] == []
    assert stored["province"] is None


async def test_configure_target_before_a_product_is_invalid_state(client: GraphQLClient) -> None:
    sid = (await create_session(client))["sessionId"]

    result = await client.data(
        CONFIGURE_TARGET, {"sessionId": sid, "input": {"province": ["ONTARIO"]}}
    )

    payload = result["configureTarget"]
    assert payload["session"] is None
    assert [e["code"] for e in payload["userErrors"]] == ["INVALID_STATE"]
    assert "addProduct" in payload["userErrors"][0]["message"]


async def test_session_query_returns_the_whole_draft_for_a_reload(client: GraphQLClient) -> None:
    sid = (await create_session(client))["sessionId"]
    await client.data(
        ADD_PRODUCT,
        {"sessionId": sid, "input": product_input(startDate="2026-03-01", endDate="2026-03-02")},
    )

    session = (await client.data(SESSION, {"sessionId": sid}))["session"]

    assert session["sessionId"] == sid
    assert session["product"]["startDate"] == "2026-03-01"
    assert session["product"]["activeMembershipOnly"] is True
    assert session["product"]["otStuPrice"] == 149.99
    assert session["createdAt"] < session["expiresAt"]


async def test_my_sessions_lists_only_the_callers_open_drafts(client: GraphQLClient) -> None:
    from tests.helpers import token

    mine = [(await create_session(client))["sessionId"] for _ in range(2)]
    await create_session(client, token=token("someone-else"))

    listed = (await client.data(MY_SESSIONS))["mySessions"]

    assert sorted(s["sessionId"] for s in listed) == sorted(mine)


async def test_cancel_deletes_the_draft(client: GraphQLClient) -> None:
    sid = (await create_session(client))["sessionId"]

    cancelled = (await client.data(CANCEL_SESSION, {"sessionId": sid}))["cancelSession"]
    after = await client.execute(SESSION_PROGRESS, {"sessionId": sid})

    assert cancelled == {
        "sessionId": sid,
        "cancelled": True,
        "userErrors": [],
        "operationId": cancelled["operationId"],
    }
    assert after["data"]["sessionProgress"] is None
    assert after["errors"][0]["extensions"]["code"] == "SESSION_NOT_FOUND"


async def test_money_is_exact_to_the_cent(client: GraphQLClient) -> None:
    sid = (await create_session(client))["sessionId"]

    result = await client.data(
        ADD_PRODUCT,
        {
            "sessionId": sid,
            "input": product_input(generalPrice=0.1, otStuPrice="999999.99", shipping=0.3),
        },
    )

    product = result["addProduct"]["session"]["product"]
    assert product["generalPrice"] == 0.1
    assert product["otStuPrice"] == 999999.99
    assert product["shipping"] == 0.3
