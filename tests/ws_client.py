"""A small GraphQL-over-websocket client for the tests: graphql-transport-ws and graphql-ws."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"

# What each protocol calls the same thing (enisdenjo/graphql-ws PROTOCOL.md, and
# apollographql/subscriptions-transport-ws PROTOCOL.md for the legacy one).
_SUBSCRIBE = {TRANSPORT_WS: "subscribe", LEGACY_WS: "start"}
_STOP = {TRANSPORT_WS: "complete", LEGACY_WS: "stop"}
_RESULT = {TRANSPORT_WS: "next", LEGACY_WS: "data"}


class GraphQLWebSocket:
    """One websocket speaking one of the two GraphQL protocols."""

    def __init__(self, ws: ClientConnection, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self, within: float = 5) -> dict[str, Any]:
        """Return the next message, skipping keep-alives."""
        with anyio.fail_after(within):
            while True:
                message = json.loads(await self.ws.recv())
                if message.get("type") not in ("ka", "ping", "pong"):
                    return message

    async def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send connection_init and return the server's answer (connection_ack if accepted)."""
        await self.send({"type": "connection_init", "payload": payload or {}})
        return await self.receive()

    async def subscribe(
        self, query: str, variables: dict[str, Any] | None = None, op_id: str = "1"
    ) -> None:
        payload = {"query": query, "variables": variables or {}}
        await self.send({"type": _SUBSCRIBE[self.protocol], "id": op_id, "payload": payload})

    async def stop(self, op_id: str = "1") -> None:
        await self.send({"type": _STOP[self.protocol], "id": op_id})

    async def result(self, op_id: str = "1", within: float = 5) -> dict[str, Any]:
        """Return the payload of the next result message (``next``/``data``) of *op_id*."""
        message = await self.receive(within)
        assert message.get("id") == op_id and message["type"] == _RESULT[self.protocol], message
        return message["payload"]

    async def event(self, op_id: str = "1", within: float = 5) -> dict[str, Any]:
        """Return the next sessionStateChanged event, asserting it carries no errors."""
        payload = await self.result(op_id, within)
        assert "errors" not in payload, payload["errors"]
        return payload["data"]["sessionStateChanged"]

    async def completed(self, op_id: str = "1", within: float = 5) -> None:
        message = await self.receive(within)
        assert message == {"type": "complete", "id": op_id}, message

    async def closed(self, within: float = 5) -> tuple[int | None, str]:
        """Wait until the server closes the socket; return the close code and reason."""
        with anyio.fail_after(within):
            try:
                while True:
                    await self.ws.recv()
            except ConnectionClosed as exc:
                frame = exc.rcvd
                return (frame.code, frame.reason) if frame else (None, "")


@asynccontextmanager
async def open_ws(
    base_url: str,
    *,
    protocol: str = TRANSPORT_WS,
    headers: dict[str, str] | None = None,
    origin: str | None = None,
    compression: str | None = "deflate",
) -> AsyncIterator[GraphQLWebSocket]:
    """Open a websocket to ``<base_url>/graphql`` speaking *protocol*."""
    url = base_url.replace("http://", "ws://", 1) + "/graphql"
    async with connect(
        url,
        subprotocols=[protocol],  # type: ignore[list-item]
        additional_headers=headers,
        origin=origin,  # type: ignore[arg-type]
        compression=compression,
        proxy=None,
        open_timeout=5,
        close_timeout=2,
    ) as ws:
        yield GraphQLWebSocket(ws, protocol)


@asynccontextmanager
async def subscription(
    base_url: str,
    token: str,
    query: str,
    variables: dict[str, Any],
    *,
    protocol: str = TRANSPORT_WS,
) -> AsyncIterator[GraphQLWebSocket]:
    """Open a socket, authenticate in connection_init and start one subscription (id "1")."""
    async with open_ws(base_url, protocol=protocol) as ws:
        ack = await ws.init({"Authorization": f"Bearer {token}"})
        assert ack["type"] == "connection_ack", ack
        await ws.subscribe(query, variables)
        yield ws
