"""Test helpers: an async client for the emulator's control API, fault builders, and row readers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

PRODUCTS = "osot_table_products"
TARGETS = "osot_table_audience_targets"
ORGANIZATIONS = "osot_table_organizations"


def throttle(match: str = "any", retry_after: int | str = 1) -> dict[str, Any]:
    """429 with Retry-After and code 0x80072322; the request is not executed."""
    return {"kind": "throttle", "match": match, "retry_after": retry_after}


def unavailable(match: str = "any") -> dict[str, Any]:
    """503 with a Dataverse error body; the request is not executed."""
    return {"kind": "unavailable", "match": match}


def drop(match: str = "any") -> dict[str, Any]:
    """Close the connection without answering; the request is not executed."""
    return {"kind": "drop", "match": match}


def write_then_drop(match: str = "any") -> dict[str, Any]:
    """Execute (and commit) the request, then close the connection without answering."""
    return {"kind": "write_then_drop", "match": match}


def delay(delay_ms: int, match: str = "any") -> dict[str, Any]:
    """Run the request only after *delay_ms*, even if the client gave up waiting meanwhile."""
    return {"kind": "delay", "match": match, "delay_ms": delay_ms}


def passthrough(match: str = "any") -> dict[str, Any]:
    """Let the next matching request through untouched; the faults after it hit later ones."""
    return {"kind": "pass", "match": match}


def malformed(match: str = "read") -> dict[str, Any]:
    """Answer 200 with ``{"value": [{}]}``: a row without the columns that were asked for."""
    return {"kind": "malformed", "match": match}


def error(
    status: int = 500,
    code: str = "0x80044151",
    message: str = "SQL timeout expired.",
    match: str = "any",
) -> dict[str, Any]:
    """Answer with this status and error body; the request is not executed."""
    return {"kind": "error", "match": match, "status": status, "code": code, "message": message}


class EmulatorControl:
    """Talks to a running emulator: ``EmulatorControl(emu.base_url, token=emu.token)``."""

    def __init__(self, base_url: str, token: str = "emulator-token", timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout) as client:
            response = await client.request(method, path, **kwargs)
        response.raise_for_status()
        return response

    # -- control API -----------------------------------------------------------------------

    async def health(self) -> bool:
        return (await self._call("GET", "/_emulator/health")).json()["status"] == "ok"

    async def set_faults(
        self, *, latency_ms: int = 0, queue: Sequence[Mapping[str, Any]] = ()
    ) -> dict[str, Any]:
        """Replace the fault configuration; faults in ``queue`` fire once each, in order."""
        body = {"latency_ms": latency_ms, "queue": [dict(fault) for fault in queue]}
        return (await self._call("PUT", "/_emulator/faults", json=body)).json()

    async def faults(self) -> dict[str, Any]:
        """The current configuration; ``queue`` holds the faults not fired yet."""
        return (await self._call("GET", "/_emulator/faults")).json()

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/_emulator/faults")

    async def requests(self) -> list[dict[str, Any]]:
        """Web API requests received: method, path, status, fault, and ``operations`` for $batch."""
        return (await self._call("GET", "/_emulator/requests")).json()["requests"]

    async def clear_requests(self) -> None:
        await self._call("DELETE", "/_emulator/requests")

    async def retire_options(self, entity_set: str, column: str, values: Sequence[int]) -> None:
        """Remove options from a choice column, as a Dataverse administrator might."""
        await self._call(
            "PUT", f"/_emulator/options/{entity_set}/{column}", json={"retire": list(values)}
        )

    async def reset(self) -> None:
        """Delete all rows (organizations are seeded again), faults and the request log."""
        await self._call("POST", "/_emulator/reset")

    # -- reading rows (via the control API: no token needed, not in the request log) --------

    async def rows(self, entity_set: str, filter: str | None = None) -> list[dict[str, Any]]:
        """Rows as the Web API returns them (``$filter`` syntax as the Web API's)."""
        params = {"$filter": filter} if filter else None
        response = await self._call("GET", f"/_emulator/rows/{entity_set}", params=params)
        return response.json()["value"]

    async def products(self, filter: str | None = None) -> list[dict[str, Any]]:
        return await self.rows(PRODUCTS, filter)

    async def targets(self, filter: str | None = None) -> list[dict[str, Any]]:
        return await self.rows(TARGETS, filter)

    async def organizations(self) -> list[dict[str, Any]]:
        return await self.rows(ORGANIZATIONS)
