"""Concurrent edits are serialized, none is lost silently; stale tabs are refused."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from tests.graphql_documents import ADD_PRODUCT, SESSION, product_input
from tests.helpers import GraphQLClient, create_session

pytestmark = pytest.mark.anyio


async def test_concurrent_edits_each_land_as_their_own_version(client: GraphQLClient) -> None:
    # given
    sid = (await create_session(client))["sessionId"]
    results: list[dict[str, Any]] = []

    async def edit(n: int) -> None:
        product = product_input(productName=f"Edit number {n:02d}")
        results.append(
            (await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product}))["addProduct"]
        )

    # when 20 edits race
    async with anyio.create_task_group() as tg:
        for n in range(20):
            tg.start_soon(edit, n)

    # then each was applied atomically, in some order, and the last one applied is stored
    versions = sorted(r["session"]["version"] for r in results)
    assert versions == list(range(2, 22))
    last = max(results, key=lambda r: r["session"]["version"])["session"]
    stored = (await client.data(SESSION, {"sessionId": sid}))["session"]
    assert stored["version"] == 21
    assert stored["product"]["productName"] == last["product"]["productName"]


async def test_a_stale_version_is_refused_and_changes_nothing(client: GraphQLClient) -> None:
    # given two tabs that loaded version 1
    sid = (await create_session(client))["sessionId"]
    tab_a = product_input(productName="Tab A edit")
    tab_b = product_input(productName="Tab B edit")

    # when both save with the version they saw
    first = await client.data(ADD_PRODUCT, {"sessionId": sid, "input": tab_a, "expectedVersion": 1})
    second = await client.data(
        ADD_PRODUCT, {"sessionId": sid, "input": tab_b, "expectedVersion": 1}
    )

    # then the second is told the draft moved on, and the first edit survives
    assert first["addProduct"]["userErrors"] == []
    error = second["addProduct"]["userErrors"][0]
    assert error["code"] == "STALE_VERSION"
    assert error["field"] == ["expectedVersion"]
    assert "version 2" in error["message"]
    stored = (await client.data(SESSION, {"sessionId": sid}))["session"]
    assert stored["product"]["productName"] == "Tab A edit"


async def test_concurrent_edits_with_the_same_version_let_exactly_one_win(
    client: GraphQLClient,
) -> None:
    sid = (await create_session(client))["sessionId"]
    codes: list[str | None] = []

    async def edit(n: int) -> None:
        variables = {
            "sessionId": sid,
            "input": product_input(productName=f"Racer {n}"),
            "expectedVersion": 1,
        }
        errors = (await client.data(ADD_PRODUCT, variables))["addProduct"]["userErrors"]
        codes.append(errors[0]["code"] if errors else None)

    async with anyio.create_task_group() as tg:
        for n in range(10):
            tg.start_soon(edit, n)

    assert codes.count(None) == 1
    assert codes.count("STALE_VERSION") == 9
