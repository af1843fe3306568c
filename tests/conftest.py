"""Shared fixtures: a real redis-server, the app served over real HTTP, tokens and a client."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from litestar import Litestar
from redis.asyncio import Redis

from app import create_app
from cli import server_config
from emulator.testing import EmulatorControl
from services.auth import mint_token
from settings import Settings
from tests.dataverse_emulator import ThreadedEmulator
from tests.redis_server import RedisServer

SECRET = "test-secret-that-is-32-bytes-long!!"
ORG_A = "6f1e3c9a-1111-4a4a-9c9c-000000000001"
ORG_B = "6f1e3c9a-2222-4b4b-9c9c-000000000002"
TEST_DB = 15


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's environment (and .env) out of the tests."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(os.path.dirname(__file__))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url(TEST_DB), decode_responses=True)
    assert client.connection_pool.connection_kwargs["db"] == TEST_DB
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


_emulator: ThreadedEmulator | None = None


@pytest.fixture(scope="session", autouse=True)
def dataverse_emulator() -> Iterator[ThreadedEmulator]:
    """One Dataverse emulator for the session; make_settings points the app at it."""
    global _emulator
    _emulator = ThreadedEmulator().start()
    yield _emulator
    _emulator.stop()
    _emulator = None


@pytest.fixture
async def dataverse(dataverse_emulator: ThreadedEmulator) -> AsyncIterator[EmulatorControl]:
    """The emulator's control API, with rows, faults and request log wiped for this test."""
    control = EmulatorControl(dataverse_emulator.base_url, token=dataverse_emulator.token)
    await control.reset()
    yield control
    await control.clear_faults()


def make_settings(redis_server: RedisServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "redis_url": redis_server.url(TEST_DB),
        "jwt_secret": SECRET,
        "dataverse_url": _emulator.base_url if _emulator else None,
        "dataverse_token": _emulator.token if _emulator else None,
        "commit_max_wait_seconds": 5,
        **overrides,
    }
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings(redis_server: RedisServer, dataverse: EmulatorControl) -> Settings:
    return make_settings(redis_server)


def token(
    sub: str = "user-1",
    *,
    privilege: str | int = "admin",
    org: str = ORG_A,
    ttl: int = 3600,
    secret: str = SECRET,
) -> str:
    return mint_token(
        secret=secret, subject=sub, privilege=privilege, organization_guid=org, ttl_seconds=ttl
    )


class GraphQLClient:
    """Talks to /graphql over real HTTP, as a frontend would."""

    def __init__(self, http: httpx.AsyncClient, default_token: str | None) -> None:
        self.http = http
        self.default_token = default_token

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> httpx.Response:
        bearer = token if token is not None else self.default_token
        headers = {"authorization": f"Bearer {bearer}"} if bearer else {}
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )

    async def execute(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        response = await self.post(query, variables, token=token)
        return response.json()

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        """Return ``data``, asserting that there are no top-level errors."""
        body = await self.execute(query, variables, token=token)
        assert "errors" not in body, body["errors"]
        return body["data"]


@asynccontextmanager
async def serve_app(app: Litestar) -> AsyncIterator[tuple[str, uvicorn.Server]]:
    """Run *app* under uvicorn on a free port in this event loop; yield its URL and server."""
    server = uvicorn.Server(server_config(app, port=0))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def serve(settings: Settings, **app_kwargs: Any) -> AsyncIterator[str]:
    """Run the app built from *settings*; yield its base URL."""
    async with serve_app(create_app(settings, **app_kwargs)) as (url, _):
        yield url


@pytest.fixture
async def base_url(settings: Settings, redis: Redis) -> AsyncIterator[str]:
    async with serve(settings) as url:
        yield url


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[GraphQLClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        yield GraphQLClient(http, token())
