"""Fixtures: a fresh emulator per test (in-memory SQLite, free port) and clients for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from emulator import Emulator, EmulatorConfig, start_emulator
from emulator.testing import EmulatorControl


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with start_emulator(EmulatorConfig()) as running:
        yield running


@pytest.fixture
async def dv(emulator: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    """A Web API client sending the headers Microsoft recommends (compose-http-requests docs)."""
    headers = {
        "Authorization": f"Bearer {emulator.token}",
        "Accept": "application/json",
        "OData-MaxVersion": "4.0",
        "OData-Version": "4.0",
        "If-None-Match": "null",
    }
    async with httpx.AsyncClient(
        base_url=emulator.web_api_url, headers=headers, timeout=5
    ) as client:
        yield client


@pytest.fixture
def control(emulator: Emulator) -> EmulatorControl:
    return EmulatorControl(emulator.base_url, token=emulator.token)
