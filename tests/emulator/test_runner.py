"""Starting and stopping the emulator: ports, a database file that outlives a restart, shutdown."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from emulator import DEFAULT_ORGANIZATIONS, EmulatorConfig, start_emulator
from emulator.testing import EmulatorControl

from .helpers import product

pytestmark = pytest.mark.anyio


async def test_database_file_survives_a_restart(tmp_path: Path) -> None:
    config = EmulatorConfig(db_path=str(tmp_path / "dataverse.db"), token="t0k3n")
    for expected in ("osot-prod-0000001", "osot-prod-0000002"):
        async with start_emulator(config) as emulator:
            assert emulator.token == "t0k3n"
            assert emulator.base_url == f"http://127.0.0.1:{emulator.port}"
            headers = {"Authorization": "Bearer t0k3n"}
            async with httpx.AsyncClient(base_url=emulator.web_api_url, headers=headers) as dv:
                assert (await dv.post("osot_table_products", json=product())).status_code == 204
            rows = await EmulatorControl(emulator.base_url).products()
            assert rows[-1]["osot_productid"] == expected
            assert len(await EmulatorControl(emulator.base_url).organizations()) == len(
                DEFAULT_ORGANIZATIONS
            )


async def test_stop_closes_idle_keep_alive_connections() -> None:
    async with httpx.AsyncClient() as client:
        async with start_emulator() as emulator:
            assert (await client.get(f"{emulator.base_url}/_emulator/health")).status_code == 200
        with pytest.raises(httpx.TransportError):
            await client.get(f"{emulator.base_url}/_emulator/health")
