"""CORS: ALLOWED_ORIGINS lets browser pages on other origins call /graphql over HTTP too."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis
from websockets.exceptions import InvalidStatus

from tests.graphql_documents import MY_SESSIONS
from tests.helpers import RedisServer, make_settings, serve, token
from tests.ws_client import open_ws
from web.origins import DEV_ORIGINS, OriginPolicy, normalize_entry

pytestmark = pytest.mark.anyio

APP = "https://app.example.com"
PREFLIGHT = {
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization,content-type",
}


@pytest.fixture
async def api(redis_server: RedisServer, redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(redis_server, allowed_origins=f"{APP},http://localhost:*")
    async with serve(settings) as url, httpx.AsyncClient(base_url=url) as http:
        yield http


@pytest.mark.parametrize("origin", [APP, "http://localhost:5173", "http://localhost"])
async def test_preflight_from_an_allowed_origin_allows_the_api_call(
    api: httpx.AsyncClient, origin: str
) -> None:
    response = await api.options("/graphql", headers={"origin": origin, **PREFLIGHT})

    assert 200 <= response.status_code < 300
    assert response.headers["access-control-allow-origin"] == origin
    allowed_headers = response.headers["access-control-allow-headers"].lower().split(", ")
    assert {"authorization", "content-type"} <= set(allowed_headers)
    assert "POST" in response.headers["access-control-allow-methods"].split(", ")
    assert int(response.headers["access-control-max-age"]) > 0
    assert "origin" in response.headers["vary"].lower()


async def test_an_allowed_origins_post_carries_its_origin(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/graphql",
        json={"query": MY_SESSIONS},
        headers={"origin": APP, "authorization": f"Bearer {token()}"},
    )

    assert response.json() == {"data": {"mySessions": []}}
    assert response.headers["access-control-allow-origin"] == APP


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "https://app.example.com.evil.example", "http://127.0.0.1:5173"],
)
async def test_any_other_origin_gets_no_cors_header(api: httpx.AsyncClient, origin: str) -> None:
    preflight = await api.options("/graphql", headers={"origin": origin, **PREFLIGHT})
    post = await api.post(
        "/graphql",
        json={"query": MY_SESSIONS},
        headers={"origin": origin, "authorization": f"Bearer {token()}"},
    )

    assert preflight.status_code >= 400
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in post.headers


async def test_without_allowed_origins_no_response_carries_cors_headers(
    base_url: str,
) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        preflight = await http.options("/graphql", headers={"origin": APP, **PREFLIGHT})
        post = await http.post("/graphql", json={"query": MY_SESSIONS}, headers={"origin": APP})

    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in post.headers


async def test_star_is_answered_only_when_configured(
    redis_server: RedisServer, redis: Redis
) -> None:
    settings = make_settings(redis_server, allowed_origins="*")
    async with serve(settings) as url, httpx.AsyncClient(base_url=url) as http:
        preflight = await http.options("/graphql", headers={"origin": APP, **PREFLIGHT})

    assert preflight.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [("http://localhost:5173", True), ("https://app.example.com", True), (APP + ":8443", False)],
)
async def test_the_websocket_handshake_follows_the_same_origins(
    redis_server: RedisServer, redis: Redis, origin: str, accepted: bool
) -> None:
    settings = make_settings(redis_server, allowed_origins=f"{APP},http://localhost:*")
    async with serve(settings) as url:
        if accepted:
            async with open_ws(url, origin=origin) as ws:
                ack = await ws.init({"Authorization": f"Bearer {token()}"})
            assert ack["type"] == "connection_ack"
        else:
            with pytest.raises(InvalidStatus) as refused:
                async with open_ws(url, origin=origin):
                    pass
            assert refused.value.response.status_code == 403


def test_entries_are_normalized_as_browsers_send_origins() -> None:
    assert normalize_entry("HTTPS://App.Example.com:443/") == APP
    assert normalize_entry("http://localhost:*") == "http://localhost:*"
    for bad in ["https://app.example.com/path", "ftp://x", "http://a:99999", "null", "a:*:1"]:
        with pytest.raises(ValueError, match="origins like"):
            normalize_entry(bad)


def test_dev_origins_allow_any_local_port_and_nothing_else() -> None:
    dev = OriginPolicy.of(DEV_ORIGINS)

    assert dev.allows("http://localhost:5173") and dev.allows("http://127.0.0.1:3000")
    assert not dev.allows("http://localhost.evil.example:5173")
    assert not dev.allows("https://localhost:5173")  # another scheme is another origin
