"""The GraphQL controller as browsers and their clients meet it: origins, GraphiQL, close codes,
and answers every client can read (web/answers.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from cross_web import HTTPException
from litestar import Request, Response
from strawberry.exceptions import ConnectionRejectionError
from strawberry.litestar.controller import GraphQLController
from strawberry.types import ExecutionResult

from schema import input_errors
from schema.internals import (
    CannotGetOperationTypeError,
    LegacyWebSocketHandlerBase,
    TransportWebSocketHandlerBase,
    graphql_core_schema,
)
from web import answers, graphiql
from web.origins import OriginPolicy

# What graphql-transport-ws sends when connection_init is refused; the legacy protocol
# has no code of its own, and Strawberry's 1011 ("internal error") misleads clients.
FORBIDDEN = 4403


def _not_text(schema: Any, payload: Any, context: Any) -> list[Any]:
    """Return BAD_USER_INPUT errors (formatted) for variables spelling a lone surrogate."""
    if not isinstance(payload, dict):
        return []
    problems = input_errors.surrogate_problems(
        graphql_core_schema(schema),
        payload.get("query"),
        payload.get("variables"),
        payload.get("operationName"),
    )
    errors = [problem.formatted for problem in problems]
    for error in errors:
        error.setdefault("extensions", {})["operationId"] = getattr(context, "operation_id", None)
    return errors


class TransportWebSocketHandler(TransportWebSocketHandlerBase):
    """graphql-transport-ws, refusing at their field variables that are not text."""

    async def handle_subscribe(self, message: Any) -> None:
        # JSON can spell a lone surrogate ("\ud800"); Redis and the answer's encoding refuse
        # it. Refused here, as over HTTP, rather than failing inside the operation.
        errors = _not_text(self.schema, message.get("payload"), self.context)
        if errors and self.connection_acknowledged and message.get("id") not in self.operations:
            await self.send_message({"id": message["id"], "type": "error", "payload": errors})
            return
        await super().handle_subscribe(message)


class LegacyWebSocketHandler(LegacyWebSocketHandlerBase):
    """The legacy graphql-ws protocol, closing a refused connection with 4403 Forbidden."""

    async def handle_start(self, message: Any) -> None:
        errors = _not_text(self.schema, message.get("payload"), self.context)
        if errors and self.connection_acknowledged:
            await self.send_message({"type": "error", "id": message["id"], "payload": errors[0]})
            return
        await super().handle_start(message)

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
    """Return *controller* answering as browsers and their clients need.

    Every answer JSON in the negotiated media type (web/answers.py), values of the wrong
    type per field (schema/input_errors.py), *origins* applied to websocket handshakes,
    4403 for a refused legacy websocket, and GraphiQL served offline (only if the
    controller was made with ``graphql_ide`` set).
    """

    core_schema = graphql_core_schema(controller.schema)  # type: ignore[arg-type]

    class BrowserController(controller):  # type: ignore[valid-type,misc]
        graphql_ws_handler_class = LegacyWebSocketHandler
        graphql_transport_ws_handler_class = TransportWebSocketHandler

        async def execute_request(
            self, request: Request[Any, Any, Any], context: Any, root_value: Any
        ) -> Response[Any]:
            # Strawberry's own path (GET, and POSTs the short path leaves to it). JSON that
            # spells a lone surrogate reaches only this path (orjson refuses it): refuse it
            # at its field before it reaches Redis or an answer's encoding.
            parts = await answers.request_parts(request, only_with_lone_surrogates=True)
            if parts is not None:
                problems = input_errors.surrogate_problems(core_schema, *parts)
                if problems:
                    body = {"errors": [e.formatted for e in problems]}
                    return answers.response(answers.with_operation_ids(body))
            try:
                return await self.run(request, context=context, root_value=root_value)  # type: ignore[no-any-return]
            except HTTPException as exc:
                if isinstance(exc.__cause__, CannotGetOperationTypeError):
                    # No operation to run (an unknown operationName): a GraphQL request
                    # error, as a document that does not validate is.
                    body = answers.error_body(exc.reason, "OPERATION_RESOLUTION_FAILURE")
                    return answers.response(body)
                return answers.refusal(exc.status_code, exc.reason)

        async def process_result(
            self, request: Request[Any, Any, Any], result: ExecutionResult
        ) -> Any:
            body = await super().process_result(request=request, result=result)
            errors = result.errors or []
            if errors and result.data is None and not any(e.path for e in errors):
                # Refused before execution: codes, and values of the wrong type per field.
                query, variables, operation_name = await answers.request_parts(request) or (
                    None,
                    None,
                    None,
                )
                described = input_errors.describe(
                    core_schema, query, variables, operation_name, errors
                )
                body = {k: v for k, v in body.items() if k not in ("data", "errors")}
                body["errors"] = [e.formatted for e in described]
            return answers.with_operation_ids(body)

        def create_response(self, response_data: Any, sub_response: Response[Any]) -> Response[Any]:
            return answers.response(response_data, sub_response)

        def is_websocket_origin_allowed(self, request: Any, origin: str) -> bool:
            # Called for cross-origin handshakes only; ALLOWED_ORIGINS, as for CORS.
            return origins.allows(origin)

        async def render_graphql_ide(self, request: Request[Any, Any, Any]) -> Response[str]:
            return graphiql.page(request.url.path)

    return BrowserController
