"""What a GraphQL request over HTTP must pass before any GraphQL work is done for it.

``admit`` runs in the context getter (``app.provide_context``), which both Strawberry's
controller and the short POST path (graphql_http.py) resolve before they parse anything:

1. Headers are at most ``MAX_HEADER_BYTES`` (431; uvicorn's h11 already stops buffering a
   few reads past that), and the body is read once, refused with 413 past
   ``MAX_REQUEST_BYTES`` (Litestar stops reading there, or at once when Content-Length says
   so).
2. A JSON body must decode (orjson; nothing nested deeper than ``MAX_JSON_DEPTH``) to an
   object or a batch; ``"x"``, ``null``, ``5`` or 3,000 nested arrays are a 400, not a 500.
3. The query text is at most ``MAX_QUERY_BYTES`` (comments count here, not as tokens), and
   no variable holds a list of more than ``MAX_LIST_ITEMS``: refused before GraphQL coerces
   a single item (10,000 values each in 34 lists took 24 s). Lists between the inputs'
   own limit (50) and this one are refused by validation, field by field, before any
   other work on them, so that a form can show which selection is too long.
4. The token is verified: without a valid one nothing is parsed or validated, so an
   anonymous caller gets neither the schema nor "Did you mean ...?" suggestions.

A refusal is a ``Refused`` exception; ``refusal_response`` logs it and answers it as every
refusal of /graphql is answered (web/answers.py: the negotiated media type, ``errors``
without ``data``, the operation id): a refused caller or a variable list that is too long
is a GraphQL request error (401/403/400 in application/graphql-response+json, 200 in
application/json); what is not a GraphQL request at all keeps its own status (400, 413,
431). Websockets authenticate at connection_init instead.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import ClientException
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE

from schema.documents import MAX_QUERY_BYTES, query_too_large
from services.auth import TokenVerifier
from services.catalog import target_fields
from services.errors import AuthError
from services.models import Principal
from telemetry import metrics
from web import answers

logger = logging.getLogger("orchestrator.http")

MAX_JSON_DEPTH = 32
# Four times the longest list any input takes (a target criterion's 50 selections): past
# it a list is no form's slip, and not worth coercing to say which field it was.
MAX_LIST_ITEMS = 4 * max(field.max_items for field in target_fields())
_AUTH_STATUS = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403}


class Refused(Exception):  # noqa: N818 - a refusal, not an error of the service
    """The request is refused before any GraphQL work: *status*, a message and a code."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        *,
        reason: str,
        headers: dict[str, str] | None = None,
        graphql_error: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.reason = reason  # the metric label: orchestrator_requests_refused_total{reason}
        self.headers = headers or {}
        # A GraphQL request error: its status follows the negotiated media type.
        self.graphql_error = graphql_error


async def admit(
    connection: ASGIConnection[Any, Any, Any, Any],
    verifier: TokenVerifier,
    *,
    max_request_bytes: int,
    max_header_bytes: int,
) -> Principal | None:
    """Check an HTTP request to /graphql (see the module docstring); return its caller.

    Return None, checking nothing, for what carries no operation: a websocket handshake,
    or GraphiQL's page (a GET without a query).
    """
    if connection.scope["type"] != ScopeType.HTTP:
        return None
    assert isinstance(connection, Request)
    _check_headers(connection.scope, max_header_bytes)
    if connection.method == "POST":
        body = await _body(connection, max_request_bytes)
        if _is_json(connection.headers.get("content-type", "")):
            _check_json_body(body)
    elif "query" in connection.query_params:
        _check_query(connection.query_params["query"])
        variables = connection.query_params.get("variables")
        if variables:
            _check_variables(_decode(variables.encode(), "The variables parameter"))
    else:
        return None
    try:
        return await verifier.authenticate(connection.headers.get("authorization"))
    except AuthError as exc:
        status = _AUTH_STATUS[exc.code]
        challenge = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
        raise Refused(
            status,
            exc.message,
            exc.code,
            reason="token",
            headers=challenge,
            graphql_error=True,
        ) from None


def refusal_response(request: Request[Any, Any, Any], exc: Refused) -> Response[bytes]:
    """The answer to a refused request (a Litestar exception handler), as negotiated."""
    status, body, content_type = answers.status_and_body(
        answers.error_body(exc.message, exc.code), None
    )
    if not exc.graphql_error:
        status = exc.status
    metrics.REFUSED.labels(exc.reason).inc()
    logger.info("refused (%s, HTTP %d): %s", exc.reason, status, exc.message)
    return Response(
        answers.encode(body), status_code=status, media_type=content_type, headers=exc.headers
    )


async def _body(request: Request[Any, Any, Any], max_request_bytes: int) -> bytes:
    try:
        return await request.body()  # Litestar keeps it: the handler's read costs nothing
    except ClientException as exc:
        if exc.status_code != HTTP_413_REQUEST_ENTITY_TOO_LARGE:
            raise
        raise Refused(
            413,
            f"The request body is larger than {max_request_bytes} bytes, the most this "
            "service accepts (MAX_REQUEST_BYTES).",
            "REQUEST_TOO_LARGE",
            reason="body_size",
        ) from None


def _check_headers(scope: Any, max_header_bytes: int) -> None:
    size = len(scope.get("raw_path", b"")) + len(scope.get("query_string", b""))
    size += sum(len(name) + len(value) + 4 for name, value in scope["headers"])
    if size > max_header_bytes:
        raise Refused(
            431,
            f"The request line and headers are larger than {max_header_bytes} bytes, the "
            "most this service accepts (MAX_HEADER_BYTES).",
            "HEADERS_TOO_LARGE",
            reason="header_size",
        )


def _is_json(content_type: str) -> bool:
    return content_type.partition(";")[0].strip().lower() == "application/json"


def _decode(raw: bytes, what: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        # What orjson refuses and the json module accepts (a lone surrogate in a string,
        # NaN) is what Strawberry's own path reads: the input rules report it, field by field.
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise Refused(
            400,
            f"{what} is not valid JSON (or is nested more than 1,024 levels deep).",
            "BAD_REQUEST",
            reason="malformed_body",
        ) from None


def _check_json_body(body: bytes) -> None:
    data = _decode(body, "The request body")
    if type(data) not in (dict, list):
        raise Refused(
            400,
            'The request body must be a JSON object, such as {"query": "...", "variables": {}}.',
            "BAD_REQUEST",
            reason="malformed_body",
        )
    _check_depth(data)
    for request in data if type(data) is list else [data]:
        if type(request) is dict:
            if type(query := request.get("query")) is str:
                _check_query(query)
            if type(variables := request.get("variables")) is dict:
                _check_variables(variables)


def _check_query(query: str) -> None:
    error = query_too_large(query, MAX_QUERY_BYTES)
    if error is not None:
        raise Refused(413, error.message, "QUERY_TOO_LARGE", reason="query_size")


def _check_depth(data: Any) -> None:
    # Strawberry's own path decodes the body again with the json module, which raises
    # RecursionError (a 500) near 1,000 levels; nothing the schema takes nests past a few.
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise Refused(
                400,
                f"The request body is nested more than {MAX_JSON_DEPTH} levels deep.",
                "BAD_REQUEST",
                reason="malformed_body",
            )
        items = value.values() if type(value) is dict else value
        pending.extend((item, depth + 1) for item in items if type(item) in (dict, list))


def _check_variables(variables: Any) -> None:
    # Lengths first, items never: a list over the limit is refused without being walked.
    pending: list[tuple[Any, str]] = [(variables, "")]
    while pending:
        value, path = pending.pop()
        if type(value) is dict:
            pending.extend(
                (item, f"{path}.{key}" if path else f"${key}")
                for key, item in value.items()
                if type(item) in (dict, list)
            )
        elif type(value) is list:
            if len(value) > MAX_LIST_ITEMS:
                raise Refused(
                    400,
                    f"Variable {path or '$variables'} has {len(value)} items; no input takes "
                    f"more than {MAX_LIST_ITEMS // 4}. Nothing was run.",
                    "BAD_USER_INPUT",
                    reason="list_length",
                    graphql_error=True,
                )
            pending.extend(
                (item, f"{path}[{i}]") for i, item in enumerate(value) if type(item) in (dict, list)
            )
