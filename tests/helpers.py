"""Helpers shared by the test modules: tokens, settings, the app served over HTTP, a client.

Fixtures stay in ``conftest.py``; everything a test module imports by name lives here.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import uvicorn
from litestar import Litestar

from app import create_app
from cli import RedisServer, serve_in_this_loop
from services.auth import mint_token
from settings import Settings
from tests.dataverse_emulator import ThreadedEmulator
from tests.graphql_documents import CREATE_SESSION

__all__ = [
    "ORG_A",
    "ORG_B",
    "SECRET",
    "TEST_DB",
    "GraphQLClient",
    "RedisServer",
    "claims",
    "create_session",
    "eventually",
    "make_settings",
    "serve",
    "serve_app",
    "token",
    "use_emulator",
]

SECRET = "test-secret-that-is-32-bytes-long!!"
ORG_A = "6f1e3c9a-1111-4a4a-9c9c-000000000001"
ORG_B = "6f1e3c9a-2222-4b4b-9c9c-000000000002"
TEST_DB = 15

_emulator: ThreadedEmulator | None = None


def use_emulator(emulator: ThreadedEmulator | None) -> None:
    """Point make_settings at the session's Dataverse emulator (the conftest fixture does)."""
    global _emulator
    _emulator = emulator


def make_settings(redis_server: RedisServer, **overrides: Any) -> Settings:
    """Return settings for an app on *redis_server* (DB 15) and the session's emulator."""
    values: dict[str, Any] = {
        "redis_url": redis_server.url(TEST_DB),
        "jwt_secret": SECRET,
        "dataverse_url": _emulator.base_url if _emulator else None,
        "dataverse_token": _emulator.token if _emulator else None,
        "commit_max_wait_seconds": 5,
        **overrides,
    }
    return Settings(_env_file=None, **values)


def claims(**overrides: Any) -> dict[str, Any]:
    """Return the claims of a valid Admin token of user-1 in ORG_A; None removes a claim."""
    now = int(time.time())
    values: dict[str, Any] = {
        "sub": "user-1",
        "privilege": 2,
        "organizationGuid": ORG_A,
        "iat": now,
        "exp": now + 600,
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def token(
    sub: str = "user-1",
    *,
    privilege: str | int = "admin",
    org: str = ORG_A,
    ttl: int = 3600,
    secret: str = SECRET,
) -> str:
    """Mint a token as the existing backend would."""
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


async def eventually(check: Callable[[], Any], expected: Any = True, within: float = 5) -> None:
    """Wait until ``check()`` (sync or async) returns *expected*: state owned by another task.

    *within* only bounds a wait that went wrong; it is never what the test measures.
    """
    with anyio.fail_after(within):
        while True:
            value = check()
            if inspect.isawaitable(value):
                value = await value
            if value == expected:
                return
            await anyio.sleep(0.02)


async def create_session(client: GraphQLClient, **kwargs: Any) -> dict[str, Any]:
    """Open a draft through the API and return its session."""
    payload = (await client.data(CREATE_SESSION, **kwargs))["createSession"]
    assert payload["userErrors"] == []
    return payload["session"]


@asynccontextmanager
async def serve_app(app: Litestar, **options: Any) -> AsyncIterator[tuple[str, uvicorn.Server]]:
    """Run *app* under uvicorn on a free port in this event loop; yield its URL and server.

    *options* are cli.server_config's (e.g. ``graceful_shutdown``).
    """
    async with serve_in_this_loop(app, port=0, **options) as server:
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}", server


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[str]:
    """Run the app built from *settings*; yield its base URL."""
    async with serve_app(create_app(settings)) as (url, _):
        yield url
