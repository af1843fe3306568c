"""A draft expires exactly at expiresAt: saves do not extend it, and then it is gone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.graphql_documents import ADD_PRODUCT, CONFIGURE_TARGET, SESSION_PROGRESS, product_input
from tests.helpers import GraphQLClient, create_session, eventually, make_settings, serve, token

pytestmark = pytest.mark.anyio

TTL = 2


@pytest.fixture
async def short_lived(
    redis_server: Any, redis: Any, dataverse: Any
) -> AsyncIterator[GraphQLClient]:
    # dataverse: an emptied emulator, so no earlier test's product holds the code
    settings = make_settings(redis_server, session_ttl_seconds=TTL)
    async with serve(settings) as url, httpx.AsyncClient(base_url=url) as http:
        yield GraphQLClient(http, token())


async def test_expires_at_is_creation_plus_ttl(short_lived: GraphQLClient) -> None:
    session = await create_session(short_lived)

    created = datetime.fromisoformat(session["createdAt"])
    expires = datetime.fromisoformat(session["expiresAt"])
    assert (expires - created).total_seconds() == TTL


async def test_saving_does_not_extend_the_draft(short_lived: GraphQLClient, redis: Redis) -> None:
    # given a draft and the time Redis will delete it
    session = await create_session(short_lived)
    sid = session["sessionId"]
    key = f"{{orchestrator}}:draft:{sid}"
    expires_ms = await redis.pexpiretime(key)

    # when it is saved
    saved = await short_lived.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input()})

    # then its expiry did not move: the same instant, in the answer and in Redis
    assert saved["addProduct"]["session"]["expiresAt"] == session["expiresAt"]
    assert await redis.pexpiretime(key) == expires_ms
    assert expires_ms == int(datetime.fromisoformat(session["expiresAt"]).timestamp() * 1000)

    # and once Redis has let it go, it answers as any unknown session
    await eventually(lambda: redis.exists(key), 0, within=TTL + 5)
    body = await short_lived.execute(SESSION_PROGRESS, {"sessionId": sid})
    assert body["data"]["sessionProgress"] is None
    assert body["errors"][0]["extensions"]["code"] == "SESSION_NOT_FOUND"
    late = await short_lived.data(CONFIGURE_TARGET, {"sessionId": sid, "input": {}})
    assert late["configureTarget"]["userErrors"][0]["code"] == "SESSION_NOT_FOUND"
    assert late["configureTarget"]["userErrors"][0]["message"] == body["errors"][0]["message"]


async def test_expiry_releases_the_product_code(short_lived: GraphQLClient, redis: Redis) -> None:
    first = (await create_session(short_lived))["sessionId"]
    await short_lived.data(ADD_PRODUCT, {"sessionId": first, "input": product_input()})
    await eventually(lambda: redis.exists(f"{{orchestrator}}:draft:{first}"), 0, within=TTL + 5)

    second = (await create_session(short_lived))["sessionId"]
    taken = await short_lived.data(ADD_PRODUCT, {"sessionId": second, "input": product_input()})

    assert taken["addProduct"]["userErrors"] == []
