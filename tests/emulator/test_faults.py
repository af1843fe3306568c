"""Fault injection over real HTTP: throttling, outages, dropped connections, latency, log."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from emulator import Emulator
from emulator.testing import EmulatorControl, drop, error, throttle, unavailable, write_then_drop

from .helpers import Op, product, send_batch

pytestmark = pytest.mark.anyio

PRODUCTS = "osot_table_products"


async def test_throttle_is_429_with_retry_after_and_not_executed(
    dv: httpx.AsyncClient, control: EmulatorControl
) -> None:
    await control.set_faults(queue=[throttle(retry_after=2)])

    response = await dv.post(PRODUCTS, json=product())

    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.json() == {
        "error": {
            "code": "0x80072322",
            "message": "Number of requests exceeded the limit of 6000 over time window of 300 "
            "seconds.",
        }
    }
    assert await control.products() == []
    assert (await dv.post(PRODUCTS, json=product())).status_code == 204  # one-shot
    assert (await control.faults())["queue"] == []


async def test_unavailable_and_error_faults(
    dv: httpx.AsyncClient, control: EmulatorControl
) -> None:
    await control.set_faults(
        queue=[unavailable(), error(status=500, code="0x80044151", message="SQL timeout.")]
    )

    first = await dv.get(PRODUCTS)
    second = await dv.get(PRODUCTS)

    assert first.status_code == 503
    assert first.json()["error"]["code"].startswith("0x")
    assert second.status_code == 500
    assert second.json() == {"error": {"code": "0x80044151", "message": "SQL timeout."}}
    assert (await dv.get(PRODUCTS)).status_code == 200


async def test_drop_is_a_transport_error_and_nothing_is_written(
    dv: httpx.AsyncClient, control: EmulatorControl
) -> None:
    await control.set_faults(queue=[drop(match="write")])

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await dv.post(PRODUCTS, json=product())

    assert await control.products() == []
    log = await control.requests()
    assert [(r["method"], r["status"], r["fault"]) for r in log] == [("POST", None, "drop")]


async def test_write_then_drop_commits_then_loses_the_reply(
    dv: httpx.AsyncClient, control: EmulatorControl
) -> None:
    product_id = str(uuid.uuid4())
    await control.set_faults(queue=[write_then_drop(match="batch")])

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await send_batch(
            dv, [Op("POST", f"/api/data/v9.2/{PRODUCTS}", product(osot_table_productid=product_id))]
        )

    rows = await control.products()
    assert [row["osot_table_productid"] for row in rows] == [product_id]
    # The client can then learn the outcome by reading (the connection pool recovers).
    assert (await dv.get(f"{PRODUCTS}({product_id})")).status_code == 200


async def test_match_selects_the_request_kind(
    dv: httpx.AsyncClient, control: EmulatorControl
) -> None:
    await control.set_faults(queue=[throttle(match="batch")])

    assert (await dv.get(PRODUCTS)).status_code == 200
    assert (await dv.post(PRODUCTS, json=product())).status_code == 204
    throttled = await send_batch(dv, [Op("POST", f"/api/data/v9.2/{PRODUCTS}", product())])
    assert throttled.status_code == 429


async def test_latency_delays_web_api_responses(
    dv: httpx.AsyncClient, control: EmulatorControl
) -> None:
    await control.set_faults(latency_ms=150)
    started = time.perf_counter()
    assert (await dv.get(PRODUCTS)).status_code == 200
    assert time.perf_counter() - started >= 0.15

    await control.clear_faults()
    started = time.perf_counter()
    await dv.get(PRODUCTS)
    assert time.perf_counter() - started < 0.15


async def test_client_timeout_on_latency(emulator: Emulator, control: EmulatorControl) -> None:
    await control.set_faults(latency_ms=500)
    headers = {"Authorization": f"Bearer {emulator.token}"}
    async with httpx.AsyncClient(
        base_url=emulator.web_api_url, headers=headers, timeout=0.1
    ) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(PRODUCTS)


async def test_invalid_fault_config_is_rejected(emulator: Emulator) -> None:
    async with httpx.AsyncClient(base_url=emulator.base_url) as client:
        bad_kind = await client.put("/_emulator/faults", json={"queue": [{"kind": "explode"}]})
        bad_latency = await client.put("/_emulator/faults", json={"latency_ms": -1})
        health = await client.get("/_emulator/health")
    assert bad_kind.status_code == 400
    assert bad_latency.status_code == 400
    assert health.json() == {"status": "ok"}


async def test_faults_do_not_apply_to_unauthorized_requests(
    emulator: Emulator, control: EmulatorControl
) -> None:
    await control.set_faults(queue=[throttle()])
    async with httpx.AsyncClient(base_url=emulator.web_api_url) as client:
        assert (await client.get(PRODUCTS)).status_code == 401
    assert len((await control.faults())["queue"]) == 1
