"""Waiting for a condition that another process brings about: bounded, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from tests.conftest import GraphQLClient
from tests.graphql_documents import SESSION_PROGRESS

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    condition: Callable[[T], bool],
    *,
    within: float = 20.0,
    every: float = 0.1,
) -> T:
    """Call *probe* until *condition* holds for its value; fail after *within* seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if condition(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s; last value: {value!r}")
        await anyio.sleep(every)


async def eventually_state(
    client: GraphQLClient, sid: str, state: str, *, within: float = 20.0
) -> dict[str, Any]:
    """Return the session's progress once it reaches *state*."""

    async def progress() -> dict[str, Any]:
        return (await client.data(SESSION_PROGRESS, {"sessionId": sid}))["sessionProgress"]

    return await eventually(progress, lambda p: p["state"] == state, within=within)
