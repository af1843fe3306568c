"""When Redis is down the API says so clearly, and it recovers by itself when Redis returns."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import pytest

from tests.graphql_documents import CREATE_SESSION, SESSION_PROGRESS
from tests.helpers import GraphQLClient, RedisServer, make_settings, serve, token

pytestmark = pytest.mark.anyio


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.cleanup()


async def test_redis_down_is_service_unavailable_then_recovers(own_redis: RedisServer) -> None:
    settings = make_settings(own_redis, redis_url=own_redis.url())
    async with serve(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        client = GraphQLClient(http, token())
        sid = (await client.data(CREATE_SESSION))["createSession"]["session"]["sessionId"]

        # when Redis goes away (the app's Redis timeouts are seconds: a hang would trip this)
        own_redis.stop()
        with anyio.fail_after(30):
            down = await client.execute(CREATE_SESSION)
            read = await client.execute(SESSION_PROGRESS, {"sessionId": sid})
        ready = await http.get("/ready")

        # then callers get a clear, typed error quickly (no hang, no traceback)
        assert down["data"] is None
        assert down["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert "temporarily unavailable" in down["errors"][0]["message"]
        assert read["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert ready.status_code == 503

        # when Redis comes back, the same app serves again without a restart
        own_redis.start()
        again = await client.data(CREATE_SESSION)
        assert again["createSession"]["session"]["state"] == "INITIATED"
        assert (await http.get("/ready")).status_code == 200
