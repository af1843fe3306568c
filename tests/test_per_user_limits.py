"""Limits one user cannot talk past: mutation rate, open drafts, page size, list lengths."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from redis.asyncio import Redis

from emulator.testing import EmulatorControl
from settings import Settings
from tests.graphql_documents import (
    CANCEL_SESSION,
    CONFIGURE_TARGET,
    CREATE_SESSION,
    MY_SESSIONS,
    SESSION,
)
from tests.helpers import GraphQLClient, create_session, serve, token
from tests.test_commit import commit, ready_draft

pytestmark = pytest.mark.anyio

PAGE = """
query Page($limit: Int!, $offset: Int!) { mySessions(limit: $limit, offset: $offset) { sessionId } }
"""


@asynccontextmanager
async def client_for(settings: Settings, **overrides: object) -> AsyncIterator[GraphQLClient]:
    """Serve an app with these settings changed; yield a client of it."""
    async with (
        serve(settings.model_copy(update=overrides)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        yield GraphQLClient(http, token())


@pytest.fixture
async def limited(settings: Settings, redis: Redis) -> AsyncIterator[GraphQLClient]:
    async with client_for(settings, mutation_rate_per_second=1, mutation_burst=3) as client:
        yield client


# -- mutation rate ------------------------------------------------------------------------


async def test_mutations_past_the_burst_are_rate_limited_with_a_retry_after(
    limited: GraphQLClient,
) -> None:
    # given a burst of 3 at 1 per second
    for _ in range(3):
        await create_session(limited)

    # when a fourth comes at once
    response = await limited.post(CREATE_SESSION)

    # then it is refused, saying when to retry; nothing was created
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert 0 < error["extensions"]["retryAfter"] <= 1
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert len((await limited.data(MY_SESSIONS))["mySessions"]) == 3


async def test_queries_and_other_users_are_not_held_back(limited: GraphQLClient) -> None:
    for _ in range(3):
        await create_session(limited)
    assert (await limited.execute(CREATE_SESSION))["errors"][0]["extensions"]["code"] == (
        "RATE_LIMITED"
    )

    # reads still work, and another user has an allowance of their own
    assert len((await limited.data(MY_SESSIONS))["mySessions"]) == 3
    await create_session(limited, token=token("someone-else"))


async def test_the_allowance_comes_back_at_the_rate(settings: Settings, redis: Redis) -> None:
    async with client_for(settings, mutation_rate_per_second=20, mutation_burst=1) as client:
        await create_session(client)
        refused = (await client.execute(CREATE_SESSION))["errors"][0]["extensions"]
        assert refused["code"] == "RATE_LIMITED" and refused["retryAfter"] <= 0.05

        await asyncio.sleep(refused["retryAfter"])

        await create_session(client)


async def test_the_limit_holds_across_instances(settings: Settings, redis: Redis) -> None:
    limit = {"mutation_rate_per_second": 1, "mutation_burst": 2}
    async with client_for(settings, **limit) as first, client_for(settings, **limit) as second:
        await create_session(first)
        await create_session(second)

        body = await first.execute(CREATE_SESSION)

        assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


# -- open drafts --------------------------------------------------------------------------


async def test_open_drafts_are_capped_per_user(
    settings: Settings, redis: Redis, dataverse: EmulatorControl
) -> None:
    async with client_for(settings, max_open_drafts=2) as client:
        # given two open drafts
        first = await ready_draft(client)
        second = (await create_session(client))["sessionId"]

        # when a third is opened
        refused = (await client.data(CREATE_SESSION))["createSession"]

        # then it is refused, and nothing was created
        assert refused["session"] is None
        [error] = refused["userErrors"]
        assert error["code"] == "TOO_MANY_DRAFTS"
        assert "2 open drafts" in error["message"]
        assert len((await client.data(MY_SESSIONS))["mySessions"]) == 2
        # another user has a cap of their own
        await create_session(client, token=token("someone-else"))

        # cancelling one, or committing one, makes room again
        await client.data(CANCEL_SESSION, {"sessionId": second})
        await create_session(client)
        assert (await commit(client, first))["success"] is True
        await create_session(client)
        assert (await client.data(CREATE_SESSION))["createSession"]["userErrors"][0][
            "code"
        ] == "TOO_MANY_DRAFTS"


# -- mySessions pages ---------------------------------------------------------------------


async def test_my_sessions_comes_in_pages_newest_first(client: GraphQLClient) -> None:
    # given five drafts, opened one after the other
    opened = []
    for _ in range(5):
        opened.append((await create_session(client))["sessionId"])
        await asyncio.sleep(0.002)  # distinct creation times (milliseconds)
    newest_first = opened[::-1]

    # when
    pages = [
        [s["sessionId"] for s in (await client.data(PAGE, {"limit": 2, "offset": o}))["mySessions"]]
        for o in (0, 2, 4, 6)
    ]
    default = [s["sessionId"] for s in (await client.data(MY_SESSIONS))["mySessions"]]

    # then
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:], []]
    assert default == newest_first  # 20 by default


@pytest.mark.parametrize(("limit", "offset"), [(0, 0), (51, 0), (10, -1)])
async def test_my_sessions_refuses_a_page_out_of_bounds(
    client: GraphQLClient, limit: int, offset: int
) -> None:
    body = await client.execute(PAGE, {"limit": limit, "offset": offset})

    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "between 1 and 50" in body["errors"][0]["message"]


# -- list lengths -------------------------------------------------------------------------


async def test_a_huge_list_is_refused_before_graphql_reads_it(
    client: GraphQLClient, dataverse: EmulatorControl
) -> None:
    sid = await ready_draft(client)

    # 10,000 copies of one value in one variable
    variables = {"sessionId": sid, "input": {"province": ["ONTARIO"] * 10_000}}
    response = await client.http.post(
        "/graphql",
        json={"query": CONFIGURE_TARGET, "variables": variables},
        headers={
            "authorization": f"Bearer {token()}",
            "accept": "application/graphql-response+json",
        },
    )

    # refused whole, before GraphQL coerced an item: nothing ran (a request error: 400)
    assert response.status_code == 400
    assert "data" not in response.json()
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith("Variable $input.province has 10000 items")
    assert (await client.data(SESSION, {"sessionId": sid}))["session"]["version"] == 2


async def test_an_over_long_target_list_is_refused_without_looking_at_its_items(
    client: GraphQLClient, dataverse: EmulatorControl
) -> None:
    sid = await ready_draft(client)

    # 60 copies of one value: over the 50-item limit, and full of duplicates
    body = await client.data(
        CONFIGURE_TARGET, {"sessionId": sid, "input": {"province": ["ONTARIO"] * 60}}
    )

    # only the length is reported, for the form to show: the items were never looked at
    [error] = body["configureTarget"]["userErrors"]
    assert error["field"] == ["input", "province"]
    assert error["message"] == "Choose at most 50 values for province (you chose 60)."


async def test_repeated_target_values_are_each_named_once(
    client: GraphQLClient, dataverse: EmulatorControl
) -> None:
    sid = await ready_draft(client)

    body = await client.data(
        CONFIGURE_TARGET,
        {"sessionId": sid, "input": {"province": ["QUEBEC", "ONTARIO", "QUEBEC", "ONTARIO"]}},
    )

    [error] = body["configureTarget"]["userErrors"]
    assert error["message"].startswith("province lists ONTARIO, QUEBEC more than once")
