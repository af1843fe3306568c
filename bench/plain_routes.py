"""Plain Litestar routes doing what the GraphQL resolvers do, for the benchmark only.

Each route calls the same service methods as its resolver (TokenVerifier.authenticate,
validate_product, CommitService.ensure_code_available, SessionService.create/add_product/
get, progress_of; mutations also count against MutationRateLimiter) and answers the JSON
that the benchmark's GraphQL document selects, so the two differ only in the GraphQL layer.
bench/server.py mounts them; the production app never does.
"""

from __future__ import annotations

import gc
import time
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.status_codes import HTTP_200_OK, HTTP_400_BAD_REQUEST

from services.catalog import FieldKind, choice_sets, product_fields
from services.errors import AuthError, UserInputError
from services.models import Draft, Principal
from services.progress import Progress, progress_of
from services.validation import validate_product

_AUTH_STATUS = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403}
_FIELDS = {f.api: f for f in product_fields()}
_CHOICES = {name: {c.name: c.value for c in choices} for name, choices in choice_sets().items()}


class _BadInputError(Exception):
    pass


def _coerce(api: str, value: Any) -> Any:
    """Turn one JSON input value into what the GraphQL input coercion gives the resolver."""
    field = _FIELDS.get(api)
    if field is None:
        raise _BadInputError(f"unknown field {api}")
    if value is None:
        return None
    match field.kind:
        case FieldKind.CHOICE:
            try:
                return _CHOICES[field.choices or ""][value]
            except (KeyError, TypeError):
                raise _BadInputError(f"{api}: no option {value!r}") from None
        case FieldKind.MONEY | FieldKind.PERCENT:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise _BadInputError(f"{api}: expected a number")
            return Decimal(str(value))  # as the Money scalar does: no binary float error
        case FieldKind.DATE:
            return date.fromisoformat(value)
        case FieldKind.INTEGER:
            if isinstance(value, bool) or not isinstance(value, int):
                raise _BadInputError(f"{api}: expected an integer")
        case FieldKind.BOOLEAN:
            if not isinstance(value, bool):
                raise _BadInputError(f"{api}: expected a boolean")
        case _:
            if not isinstance(value, str):
                raise _BadInputError(f"{api}: expected a string")
    return value


def _user_errors(exc: UserInputError) -> list[dict[str, Any]]:
    return [
        {"field": list(e.field) or None, "message": e.message, "code": e.code}
        for e in exc.field_errors
    ]


def _steps(p: Progress) -> dict[str, bool]:
    return {
        "productAdded": p.product_added,
        "targetConfigured": p.target_configured,
        "committed": p.committed,
    }


async def _principal(request: Request[Any, Any, Any], state: State) -> Principal:
    return await state.verifier.authenticate(request.headers.get("authorization"))


async def _mutating(request: Request[Any, Any, Any], state: State) -> Principal:
    # As resolvers.common.authenticate does for a mutation: it counts against the rate limit.
    principal = await _principal(request, state)
    await state.rate_limiter.acquire(principal)
    return principal


def _auth_failure(exc: AuthError) -> Response[Any]:
    return Response(
        {"errors": [{"message": exc.message, "extensions": {"code": exc.code}}], "data": None},
        status_code=_AUTH_STATUS[exc.code],
    )


def _payload(
    name: str, session: dict[str, Any] | None, errors: list[Any], op: str
) -> dict[str, Any]:
    return {"data": {name: {"session": session, "userErrors": errors, "operationId": op}}}


@post("/plain/sessions", status_code=HTTP_200_OK, include_in_schema=False)
async def plain_create_session(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    """createSession { session { sessionId version state expiresAt progress {...} } ... }"""
    try:
        principal = await _mutating(request, state)
    except AuthError as exc:
        return _auth_failure(exc)
    operation_id = uuid.uuid4().hex
    try:
        draft: Draft = await state.sessions.create(principal, operation_id=operation_id)
    except UserInputError as exc:
        return Response(_payload("createSession", None, _user_errors(exc), operation_id))
    p = progress_of(draft)
    session = {
        "sessionId": draft.session_id,
        "version": draft.version,
        "state": draft.state.value,
        "expiresAt": draft.expires_at.isoformat(),
        "progress": {"percentage": p.percentage, "canCommit": p.can_commit},
    }
    return Response(_payload("createSession", session, [], operation_id))


@post("/plain/sessions/{session_id:str}/product", status_code=HTTP_200_OK, include_in_schema=False)
async def plain_add_product(
    request: Request[Any, Any, Any], state: State, session_id: str, data: dict[str, Any]
) -> Response[Any]:
    """addProduct { session { sessionId version state updatedAt progress {...} } ... }"""
    try:
        principal = await _mutating(request, state)
    except AuthError as exc:
        return _auth_failure(exc)
    try:
        values = {api: _coerce(api, value) for api, value in data.items()}
    except (_BadInputError, ValueError) as exc:
        return Response(
            {"errors": [{"message": str(exc)}], "data": None}, status_code=HTTP_400_BAD_REQUEST
        )
    operation_id = uuid.uuid4().hex
    try:
        product = validate_product({api: values.get(api) for api in _FIELDS})
        await state.commits.ensure_code_available(principal, session_id, product.productCode)
        draft: Draft = await state.sessions.add_product(principal, session_id, product)
    except UserInputError as exc:
        return Response(_payload("addProduct", None, _user_errors(exc), operation_id))
    p = progress_of(draft)
    session = {
        "sessionId": draft.session_id,
        "version": draft.version,
        "state": draft.state.value,
        "updatedAt": draft.updated_at.isoformat(),
        "progress": {"percentage": p.percentage, "canCommit": p.can_commit, "steps": _steps(p)},
    }
    return Response(_payload("addProduct", session, [], operation_id))


@get("/plain/sessions/{session_id:str}/progress", include_in_schema=False)
async def plain_session_progress(
    request: Request[Any, Any, Any], state: State, session_id: str
) -> Response[Any]:
    """sessionProgress { sessionId state version percentage canCommit errors expiresAt ... }"""
    try:
        principal = await _principal(request, state)
    except AuthError as exc:
        return _auth_failure(exc)
    try:
        draft: Draft = await state.sessions.get(principal, session_id)
    except UserInputError as exc:
        return Response(
            {
                "data": {"sessionProgress": None},
                "errors": [{"message": exc.message, "extensions": {"code": exc.code}}],
            }
        )
    p = progress_of(draft)  # as the resolver: a query never writes
    progress = {
        "sessionId": p.session_id,
        "state": p.state.value,
        "version": p.version,
        "percentage": p.percentage,
        "canCommit": p.can_commit,
        "errors": list(p.errors),
        "expiresAt": p.expires_at.isoformat(),
        "secondsRemaining": p.seconds_remaining,
        "expiringSoon": p.expiring_soon,
        "steps": _steps(p),
    }
    return Response({"data": {"sessionProgress": progress}})


class GcClock:
    """Count collections and the time spent in them, per generation."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.collections[info["generation"]] += 1
            self.seconds[info["generation"]] += time.perf_counter() - self._started


GC_CLOCK = GcClock()


@get("/plain/gc", include_in_schema=False, sync_to_thread=False)
def plain_gc() -> dict[str, Any]:
    """The server's garbage collections so far: counts and seconds per generation."""
    return {
        "collections": GC_CLOCK.collections,
        "seconds": GC_CLOCK.seconds,
        "tracked": [len(gc.get_objects(generation)) for generation in range(3)],
        "frozen": gc.get_freeze_count(),
    }


PLAIN_ROUTES = [plain_create_session, plain_add_product, plain_session_progress, plain_gc]
