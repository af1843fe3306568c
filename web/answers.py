"""Every answer of /graphql is JSON a client can read, in the media type it asked for.

Content negotiation follows the GraphQL-over-HTTP spec (graphql/graphql-over-http,
``spec/GraphQLOverHTTP.md``, "Body" and "Status Codes"):

- ``Accept`` picks ``application/graphql-response+json`` or ``application/json``; without
  an ``Accept`` header, the former (the spec's default since its 2025 watershed); ``*/*``
  alone, the latter, which any client reads. Asking for neither is ``406`` (GraphiQL's
  page aside), answered before anything runs.
- ``application/graphql-response+json``: a result with data is ``200``; a request refused
  before execution (a document that does not parse or validate, values of the wrong type,
  an unknown ``operationName``) has no ``data`` and is ``400``; one refused for the caller
  (``UNAUTHENTICATED``, ``FORBIDDEN`` on every root field) has no ``data`` either and is
  ``401``/``403`` (an internal error before any data, ``500``). Apollo Client 4 reads such
  a body as GraphQL errors.
- ``application/json``: ``200`` for every well-formed request, whatever its GraphQL errors
  (Apollo Client and others raise a bare server error for any other status).
- Either way, a request that is not a GraphQL-over-HTTP request at all (a body that is not
  JSON, a batch, a missing ``query``) is ``400``, a mutation over GET ``405``, and the body
  is a GraphQL response with ``errors``, never plain text.

Every top-level error carries ``extensions.code`` and ``extensions.operationId`` (the id
the logs carry), and values of the wrong type become one BAD_USER_INPUT error per field
(``schema/input_errors.py``).
"""

from __future__ import annotations

import json
import re
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from litestar import Request, Response
from litestar.enums import ScopeType
from litestar.exceptions.responses import create_exception_response
from litestar.types import ASGIApp, HTTPResponseStartEvent, Receive, Scope, Send

from telemetry.context import current_operation_id

GRAPHQL_PATH = "/graphql"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
_CONTENT_TYPES = {
    GRAPHQL_RESPONSE_JSON: "application/graphql-response+json; charset=utf-8",
    JSON: "application/json",
}
_MEDIA = {GRAPHQL_RESPONSE_JSON: GRAPHQL_RESPONSE_JSON, JSON: JSON}
_WILDCARDS = {"*/*": JSON, "application/*": JSON}
_REFUSED_FOR_THE_CALLER = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403}

# What Strawberry's plain-text refusals mean, as (status, code, message for a person).
_REFUSALS: dict[str, tuple[int, str, str]] = {
    "Unable to parse request body as JSON": (
        400,
        "BAD_REQUEST",
        'The request body is not JSON: send {"query": "...", "variables": {...}} as '
        "application/json.",
    ),
    "Batching is not enabled": (
        400,
        "BAD_REQUEST",
        "Batched requests (a JSON array) are not supported: send one operation per request.",
    ),
    "No GraphQL query found in the request": (
        400,
        "BAD_REQUEST",
        'The request has no query: send {"query": "..."}.',
    ),
    "Unsupported content type": (
        400,
        "BAD_REQUEST",
        "Send the request as Content-Type: application/json.",
    ),
    "mutations are not allowed when using GET": (
        405,
        "METHOD_NOT_ALLOWED",
        "Mutations are not allowed over GET: send them with POST.",
    ),
    "subscriptions are not allowed when using POST": (
        400,
        "BAD_REQUEST",
        "Subscriptions are served over the websocket at /graphql (graphql-transport-ws), "
        "not over POST.",
    ),
    "Not Found": (
        404,
        "NOT_FOUND",
        "GraphiQL is not served here (GRAPHIQL=false); POST GraphQL requests as JSON.",
    ),
}
_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE"}


@dataclass(slots=True)
class Answer:
    """How this request is answered: the media type its Accept header chose."""

    media_type: str = JSON


_ANSWER: ContextVar[Answer | None] = ContextVar("graphql_answer", default=None)


def current() -> Answer:
    """Return this request's Answer (application/json outside the negotiation middleware)."""
    answer = _ANSWER.get()
    if answer is None:
        answer = Answer()
        _ANSWER.set(answer)
    return answer


@lru_cache(maxsize=256)
def negotiate(accept: str | None) -> str | None:
    """Return the media type to answer in for an ``Accept`` value, or None if none fits."""
    if accept is None or not accept.strip():
        return GRAPHQL_RESPONSE_JSON
    best: tuple[float, int, int] | None = None
    chosen = None
    for position, part in enumerate(accept.split(",")):
        media, _, parameters = part.partition(";")
        media = media.strip().lower()
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        specific = media in _MEDIA
        candidate = _MEDIA.get(media) or _WILDCARDS.get(media)
        if candidate is None or quality <= 0:
            continue
        rank = (quality, int(specific), -position)  # then the more specific, then the first
        if best is None or rank > best:
            best, chosen = rank, candidate
    return chosen


def _wants_html(accept: str | None) -> bool:
    return accept is not None and "text/html" in accept.lower()


def negotiate_graphql(app: ASGIApp, path: str = GRAPHQL_PATH) -> ASGIApp:
    """Wrap *app*: each HTTP request to *path* is answered in its negotiated media type.

    A request accepting neither media type gets 406 before anything runs (a GET asking
    for HTML goes on, for GraphiQL's page).
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"] != path:
            await app(scope, receive, send)
            return
        method = scope["method"]
        if method == "OPTIONS":  # a CORS preflight: Litestar's CORS middleware answers it
            await app(scope, receive, send)
            return
        accept = None
        for name, value in scope["headers"]:
            if name == b"accept":
                accept = value.decode("latin-1")
                break
        media_type = negotiate(accept)
        if media_type is None and not (method == "GET" and _wants_html(accept)):
            body = error_body(
                "This endpoint answers application/graphql-response+json or "
                "application/json: ask for one of them in Accept.",
                "NOT_ACCEPTABLE",
            )
            await _send_json(send, 406, body, JSON)
            return
        token = _ANSWER.set(Answer(media_type=media_type or JSON))
        try:
            await app(scope, receive, send)
        finally:
            _ANSWER.reset(token)

    return middleware


async def _send_json(send: Send, status: int, body: dict[str, Any], media_type: str) -> None:
    content = encode(body)
    headers = [
        (b"content-type", _CONTENT_TYPES[media_type].encode()),
        (b"content-length", str(len(content)).encode()),
    ]
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": headers,
    }
    await send(start)
    await send({"type": "http.response.body", "body": content, "more_body": False})


def encode(body: Any) -> bytes:
    """Return *body* as JSON; a lone surrogate an error echoes comes out escaped."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:  # orjson refuses text that is not valid UTF-8
        return json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode()


def error_body(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    """Return a GraphQL response without data: one error with its code and operation id."""
    return {
        "errors": [
            {
                "message": message,
                "extensions": {
                    "code": code,
                    "operationId": current_operation_id(),
                    **extensions,
                },
            }
        ]
    }


def refusal(status: int, reason: str) -> Response[bytes]:
    """Answer a request Strawberry refused with plain text, as a GraphQL response."""
    known = _REFUSALS.get(reason)
    if known is not None:
        status, code, message = known
    else:
        code, message = _CODES.get(status, "BAD_REQUEST"), reason
    answer = current()
    headers = {"Allow": "POST"} if status == 405 else {}
    return Response(
        encode(error_body(message, code)),
        status_code=status,
        media_type=_CONTENT_TYPES[answer.media_type],
        headers=headers,
    )


def with_operation_ids(body: dict[str, Any]) -> dict[str, Any]:
    """Put the request's operation id in the extensions of every top-level error."""
    errors = body.get("errors")
    if errors:
        operation_id = current_operation_id()
        for error in errors:
            extensions = error.setdefault("extensions", {})
            extensions.setdefault("operationId", operation_id)
    return body


def status_and_body(body: dict[str, Any], hint: int | None) -> tuple[int, dict[str, Any], str]:
    """Return the status, body and content type answering *body* in the negotiated type.

    *hint* is a status a resolver asked for (429 with Retry-After, from the rate limit).
    """
    answer = current()
    errors = body.get("errors") or []
    codes = {(e.get("extensions") or {}).get("code") for e in errors}
    if answer.media_type == GRAPHQL_RESPONSE_JSON:
        if (
            "data" in body
            and body["data"] is None
            and codes
            and codes <= set(_REFUSED_FOR_THE_CALLER)
        ):
            # Refused for who the caller is: a request error, so no data (spec: 401/403).
            body = {k: v for k, v in body.items() if k != "data"}
        if "data" in body:
            status = hint if hint == 429 else 200
        elif "INTERNAL_SERVER_ERROR" in codes:
            status = 500
        else:
            status = min(
                (_REFUSED_FOR_THE_CALLER[c] for c in codes if c in _REFUSED_FOR_THE_CALLER),
                default=400,
            )
    else:
        status = hint if hint == 429 else 200
    return status, body, _CONTENT_TYPES[answer.media_type]


def response(body: dict[str, Any], sub_response: Response[Any] | None = None) -> Response[bytes]:
    """Return the HTTP response for GraphQL response *body*, as negotiated.

    *sub_response* carries what resolvers set: headers (Retry-After), cookies, and a
    status they asked for (429 from the rate limit; 401/403 are decided here).
    """
    hint = sub_response.status_code if sub_response is not None else None
    status, body, content_type = status_and_body(body, hint)
    answer = Response(encode(body), status_code=status, media_type=content_type)
    if sub_response is not None:
        answer.headers.update(sub_response.headers)
        answer.cookies.extend(sub_response.cookies)
        answer.background = sub_response.background
    if status == 405:
        answer.headers["Allow"] = "POST"
    return answer


_LONE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


async def request_parts(
    request: Request[Any, Any, Any], *, only_with_lone_surrogates: bool = False
) -> tuple[str | None, dict[str, Any] | None, str | None] | None:
    """Return the request's query, variables and operationName, or None if it has none.

    With *only_with_lone_surrogates*, None unless the request spells a surrogate escape
    (a cheap look at the raw text first: almost no request does).
    """
    if request.method == "GET":
        params = request.query_params
        raw = params.get("variables") or ""
        if only_with_lone_surrogates and not _LONE_SURROGATE.search(raw.encode()):
            return None
        try:
            variables = json.loads(raw) if raw else None
        except ValueError:
            return None
        return params.get("query"), _object(variables), params.get("operationName")
    body = await request.body()
    if only_with_lone_surrogates and not _LONE_SURROGATE.search(body):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    query, name = data.get("query"), data.get("operationName")
    return (
        query if isinstance(query, str) else None,
        _object(data.get("variables")),
        name if isinstance(name, str) else None,
    )


def _object(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def graphql_exception_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Answer what Litestar itself refuses on /graphql (405 for PUT, 413...) as GraphQL does.

    Any other path keeps Litestar's own answer.
    """
    if request.url.path != GRAPHQL_PATH:
        return create_exception_response(request, exc)
    status = getattr(exc, "status_code", 500)
    headers = dict(getattr(exc, "headers", None) or {})
    if status >= 500:
        code, message = (
            "INTERNAL_SERVER_ERROR",
            (f"Internal error. Quote operation {current_operation_id()} when reporting it."),
        )
    else:
        code, message = _CODES.get(status, "BAD_REQUEST"), str(getattr(exc, "detail", exc))
    # Routing refusals come before the negotiation middleware: negotiate here.
    media_type = negotiate(request.headers.get("accept")) or JSON
    return Response(
        encode(error_body(message, code)),
        status_code=status,
        media_type=_CONTENT_TYPES[media_type],
        headers=headers,
    )
