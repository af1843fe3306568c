"""A dict-routed httpx.MockTransport for unit tests of the Dataverse client."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from services.dataverse import DataverseClient, StaticTokenAuth, build_http_client, retry_policy

ORG_URL = "https://org.example.crm.dynamics.com"
Handler = Callable[[httpx.Request], httpx.Response]


def dv_error(status: int, code: str | None, message: str, **headers: str) -> httpx.Response:
    """A Dataverse-style error response."""
    body = (
        {"error": {"code": code, "message": message}} if code else {"error": {"message": message}}
    )
    return httpx.Response(status, json=body, headers=headers)


class Router:
    """Answer by (method, path); a route holds a response, a handler, or a list used in turn."""

    def __init__(self, routes: dict[tuple[str, str], Any] | None = None) -> None:
        self.routes: dict[tuple[str, str], Any] = dict(routes or {})
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.routes.get((request.method, request.url.path))
        if route is None:
            return dv_error(404, "0x8006088a", f"Resource not found for {request.url.path}")
        if isinstance(route, list):
            route = route.pop(0) if len(route) > 1 else route[0]
        if isinstance(route, BaseException):
            raise route
        return route(request) if callable(route) else route

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def make_client(
    router: Router, *, sleeps: list[float] | None = None, **policy: Any
) -> DataverseClient:
    """A client over *router*; waits are recorded in *sleeps* instead of slept."""
    recorded = sleeps if sleeps is not None else []

    async def sleep(seconds: float) -> None:
        recorded.append(seconds)

    http = build_http_client(ORG_URL, StaticTokenAuth("t0ken"), transport=router.transport)
    return DataverseClient(http, retrying=retry_policy(**policy).copy(sleep=sleep))


def json_of(request: httpx.Request) -> Any:
    return json.loads(request.content)
