"""A draft expires exactly at expiresAt: saves do not extend it, and then it is gone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import anyio
import httpx
import pytest

from tests.conftest import GraphQLClient, make_settings, serve, token
from tests.graphql_documents import ADD_PRODUCT, CONFIGURE_TARGET, SESSION_PROGRESS, product_input
from tests.test_workflow import create_session

pytestmark = pytest.mark.anyio

TTL = 2


@pytest.fixture
async def short_lived(redis_server: Any, redis: Any) -> AsyncIterator[GraphQLClient]:
    settings = make_settings(redis_server, session_ttl_seconds=TTL)
    async with serve(settings) as url, httpx.AsyncClient(base_url=url) as http:
        yield GraphQLClient(http, token())


async def test_expires_at_is_creation_plus_ttl(short_lived: GraphQLClient) -> None:
    session = await create_session(short_lived)

    created = datetime.fromisoformat(session["createdAt"])
    expires = datetime.fromisoformat(session["expiresAt"])
    assert (expires - created).total_seconds() == TTL


async def test_saving_does_not_extend_the_draft(short_lived: GraphQLClient) -> None:
    # given
    session = await create_session(short_lived)
    sid = session["sessionId"]
    await anyio.sleep(TTL * 0.6)

    # when it is saved shortly before expiry
    saved = await short_lived.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input()})
    await anyio.sleep(TTL * 0.6)

    # then it is gone at the original expiresAt, with the same not-found answer as ever
    assert saved["addProduct"]["session"]["expiresAt"] == session["expiresAt"]
    body = await short_lived.execute(SESSION_PROGRESS, {"sessionId": sid})
    assert body["data"]["sessionProgress"] is None
    assert body["errors"][0]["extensions"]["code"] == "SESSION_NOT_FOUND"
    late = await short_lived.data(CONFIGURE_TARGET, {"sessionId": sid, "input": {}})
    assert late["configureTarget"]["userErrors"][0]["code"] == "SESSION_NOT_FOUND"
    assert late["configureTarget"]["userErrors"][0]["message"] == body["errors"][0]["message"]


async def test_expiry_releases_the_product_code(short_lived: GraphQLClient) -> None:
    first = (await create_session(short_lived))["sessionId"]
    await short_lived.data(ADD_PRODUCT, {"sessionId": first, "input": product_input()})
    await anyio.sleep(TTL + 0.2)

    second = (await create_session(short_lived))["sessionId"]
    taken = await short_lived.data(ADD_PRODUCT, {"sessionId": second, "input": product_input()})

    assert taken["addProduct"]["userErrors"] == []
