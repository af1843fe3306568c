"""The GraphQL controller as browsers and their clients meet it: origins, GraphiQL, close codes."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response
from strawberry.exceptions import ConnectionRejectionError
from strawberry.litestar.controller import GraphQLController

from schema.internals import LegacyWebSocketHandlerBase
from web import graphiql
from web.origins import OriginPolicy

# What graphql-transport-ws sends when connection_init is refused; the legacy protocol
# has no code of its own, and Strawberry's 1011 ("internal error") misleads clients.
FORBIDDEN = 4403


class LegacyWebSocketHandler(LegacyWebSocketHandlerBase):
    """The legacy graphql-ws protocol, closing a refused connection with 4403 Forbidden."""

    async def handle_connection_init(self, message: Any) -> None:
        # Strawberry's own method, but for the close code of a refused connection.
        payload = message.get("payload")
        if payload is not None and not isinstance(payload, dict):
            await self.send_message({"type": "connection_error"})
            await self.websocket.close(code=1000, reason="")
            return
        self.context.connection_params = payload
        try:
            ack_payload = await self.view.on_ws_connect(self.context)
        except ConnectionRejectionError as exc:
            await self.send_message({"type": "connection_error", "payload": exc.payload})
            await self.websocket.close(code=FORBIDDEN, reason="Forbidden")
            return
        if isinstance(ack_payload, dict):
            await self.send_message({"type": "connection_ack", "payload": ack_payload})
        else:  # UNSET or None: an ack without a payload
            await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True
        if self.keep_alive:
            self.keep_alive_task = asyncio.create_task(self.handle_keep_alive())


def with_browser_support(
    controller: type[GraphQLController], origins: OriginPolicy
) -> type[GraphQLController]:
    """Return *controller* applying *origins* to websocket handshakes and serving GraphiQL offline.

    GraphiQL is served only if the controller was made with ``graphql_ide`` set.
    """

    class BrowserController(controller):  # type: ignore[valid-type,misc]
        graphql_ws_handler_class = LegacyWebSocketHandler

        def is_websocket_origin_allowed(self, request: Any, origin: str) -> bool:
            # Called for cross-origin handshakes only; ALLOWED_ORIGINS, as for CORS.
            return origins.allows(origin)

        async def render_graphql_ide(self, request: Request[Any, Any, Any]) -> Response[str]:
            return graphiql.page(request.url.path)

    return BrowserController
