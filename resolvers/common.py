"""What every resolver needs: the caller, and turning service errors into userErrors."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

from graphql import GraphQLError, OperationType

from schema.context import Info
from schema.enums import ErrorCode
from schema.payloads import UserError
from schema.session import Session
from services.errors import AuthenticationError, AuthError, RateLimitedError, UserInputError
from services.models import Draft, Principal
from telemetry.context import note_operation, note_session, note_user

P = TypeVar("P")


async def authenticate(info: Info) -> Principal:
    """Return the caller, checking the token (and so the privilege) on every operation.

    Each root field of a mutation also counts once against the caller's rate limit
    (mutation resolvers call this once).
    """
    context = info.context
    operation = info.operation
    note_operation(operation.name.value if operation.name else None, operation.operation.value)
    try:
        principal = context.principal
        if principal is None:
            principal = await context.verifier.authenticate(context.credentials())
            context.principal = principal
        elif principal.token_expires_at <= datetime.now(tz=UTC):
            # A websocket keeps its context for the whole connection.
            raise AuthenticationError("Token expired: sign in again.")
    except AuthError:
        # No status here: web/answers.py gives UNAUTHENTICATED and FORBIDDEN theirs (401/403
        # in application/graphql-response+json, 200 in application/json, as the spec says).
        raise
    note_user(principal.user_id)
    if (
        operation.operation is OperationType.MUTATION
        and info.path.prev is None
        and context.rate_limiter is not None
    ):
        await _count_mutation(info, principal)
    return principal


async def _count_mutation(info: Info, principal: Principal) -> None:
    try:
        await info.context.rate_limiter.acquire(principal)  # type: ignore[union-attr]
    except RateLimitedError as exc:
        retry_after = math.ceil(exc.retry_after * 1000) / 1000  # never early
        if info.context.response is not None:
            info.context.response.status_code = 429
            info.context.response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        raise GraphQLError(
            exc.message, extensions={"code": exc.code, "retryAfter": retry_after}
        ) from None


def user_errors(exc: UserInputError) -> list[UserError]:
    """Return one UserError per problem the exception describes."""
    return [
        UserError(field=list(e.field) or None, message=e.message, code=ErrorCode(e.code))
        for e in exc.field_errors
    ]


def _plain(value: Any) -> Any:
    # Module level: a recursive closure is a reference cycle left for the collector.
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def plain_values(obj: Any) -> dict[str, Any]:
    """Return a GraphQL input object's fields, enum members replaced by their values."""
    return {name: _plain(value) for name, value in vars(obj).items()}


async def session_mutation(
    info: Info,
    payload: Callable[..., P],
    change: Callable[[Principal], Awaitable[Draft]],
) -> P:
    """Run a change for the caller and wrap the outcome in *payload*."""
    principal = await authenticate(info)
    operation_id = info.context.operation_id
    try:
        draft = await change(principal)
    except UserInputError as exc:
        return payload(session=None, user_errors=user_errors(exc), operation_id=operation_id)
    note_session(draft.session_id)
    return payload(session=Session.from_draft(draft), user_errors=[], operation_id=operation_id)
