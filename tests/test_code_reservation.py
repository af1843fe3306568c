"""A product code held by one draft cannot be taken by another until released."""

from __future__ import annotations

from typing import Any

import pytest

from tests.graphql_documents import ADD_PRODUCT, CANCEL_SESSION, product_input
from tests.helpers import GraphQLClient, create_session, token

pytestmark = pytest.mark.anyio


async def add(client: GraphQLClient, sid: str, code: str, **kwargs: str) -> list[dict[str, Any]]:
    variables = {"sessionId": sid, "input": product_input(productCode=code)}
    return (await client.data(ADD_PRODUCT, variables, **kwargs))["addProduct"]["userErrors"]


async def test_a_code_held_by_another_draft_is_taken(client: GraphQLClient) -> None:
    first = (await create_session(client))["sessionId"]
    other_user = token("user-2")
    second = (await create_session(client, token=other_user))["sessionId"]
    await add(client, first, "SHARED-1")

    errors = await add(client, second, "shared-1", token=other_user)

    assert errors == [
        {
            "field": ["input", "productCode"],
            "code": "PRODUCT_CODE_TAKEN",
            "message": "Product code SHARED-1 is already used by another draft.",
        }
    ]


async def test_the_same_draft_may_save_its_own_code_again(client: GraphQLClient) -> None:
    sid = (await create_session(client))["sessionId"]
    await add(client, sid, "MINE-1")

    assert await add(client, sid, "MINE-1") == []


async def test_changing_the_code_releases_the_old_one(client: GraphQLClient) -> None:
    first = (await create_session(client))["sessionId"]
    second = (await create_session(client))["sessionId"]
    await add(client, first, "OLD-CODE")

    await add(client, first, "NEW-CODE")

    assert await add(client, second, "OLD-CODE") == []
    assert (await add(client, second, "NEW-CODE"))[0]["code"] == "PRODUCT_CODE_TAKEN"


async def test_cancel_releases_the_code(client: GraphQLClient) -> None:
    first = (await create_session(client))["sessionId"]
    second = (await create_session(client))["sessionId"]
    await add(client, first, "CANCELLED-1")

    await client.data(CANCEL_SESSION, {"sessionId": first})

    assert await add(client, second, "CANCELLED-1") == []


async def test_a_refused_code_leaves_no_reservation_behind(client: GraphQLClient, redis) -> None:
    first = (await create_session(client))["sessionId"]
    second = (await create_session(client))["sessionId"]
    await add(client, first, "HELD-1")
    await add(client, second, "HELD-1")

    await client.data(CANCEL_SESSION, {"sessionId": second})

    assert await redis.hkeys("{orchestrator}:codes") == ["HELD-1"]
