"""Shared fixtures: a real redis-server, the emulator, the app over real HTTP and a client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from redis.asyncio import Redis

from emulator.testing import EmulatorControl
from settings import Settings
from tests.dataverse_emulator import ThreadedEmulator
from tests.helpers import (
    ORG_A,
    ORG_B,
    SECRET,
    TEST_DB,
    GraphQLClient,
    RedisServer,
    make_settings,
    serve,
    serve_app,
    token,
    use_emulator,
)

# Test modules import these from tests.helpers; the names stay here for older imports.
__all__ = [
    "ORG_A",
    "ORG_B",
    "SECRET",
    "GraphQLClient",
    "make_settings",
    "serve",
    "serve_app",
    "token",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs a real redis-server ``integration``.

    A test that starts its own without these fixtures says so itself;
    ``pytest -m "not integration"`` then runs the rest in seconds.
    """
    for item in items:
        if {"redis_server", "own_redis"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


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


@pytest.fixture(scope="session", autouse=True)
def dataverse_emulator() -> Iterator[ThreadedEmulator]:
    """One Dataverse emulator for the session; make_settings points the app at it."""
    emulator = ThreadedEmulator().start()
    use_emulator(emulator)
    yield emulator
    emulator.stop()
    use_emulator(None)


@pytest.fixture
async def dataverse(dataverse_emulator: ThreadedEmulator) -> AsyncIterator[EmulatorControl]:
    """The emulator's control API, with rows, faults and request log wiped for this test."""
    control = EmulatorControl(dataverse_emulator.base_url, token=dataverse_emulator.token)
    await control.reset()
    yield control
    await control.clear_faults()


@pytest.fixture
def settings(redis_server: RedisServer, dataverse: EmulatorControl) -> Settings:
    return make_settings(redis_server)


@pytest.fixture
async def base_url(settings: Settings, redis: Redis) -> AsyncIterator[str]:
    async with serve(settings) as url:
        yield url


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[GraphQLClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        yield GraphQLClient(http, token())
