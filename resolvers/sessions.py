"""Resolvers of the workflow: open a draft, set its product and target, cancel, read it."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from graphql import GraphQLError

from resolvers.common import authenticate, plain_values, session_mutation, user_errors
from schema.context import Info
from schema.payloads import (
    AddProductPayload,
    CancelSessionPayload,
    ConfigureTargetPayload,
    CreateSessionPayload,
)
from schema.product import ProductInput
from schema.session import Session, SessionProgress
from schema.target import AudienceTargetInput
from services.errors import SessionNotFoundError, UserInputError
from services.models import Draft
from services.progress import progress_of
from services.validation import validate_product, validate_target
from telemetry.context import note_session

MAX_PAGE = 50

SessionId = Annotated[
    strawberry.ID, strawberry.argument(description="The session, as returned by createSession.")
]
ExpectedVersion = Annotated[
    int | None,
    strawberry.argument(
        description="The session version you last saw; the change is refused with "
        "STALE_VERSION if the session has moved on since. Omit to write unconditionally."
    ),
]


async def resolve_create_session(info: Info) -> CreateSessionPayload:
    sessions, operation_id = info.context.sessions, info.context.operation_id
    return await session_mutation(
        info,
        CreateSessionPayload,
        lambda principal: sessions.create(principal, operation_id=operation_id),
    )


async def resolve_add_product(
    info: Info,
    session_id: SessionId,
    input: Annotated[
        ProductInput,
        strawberry.argument(description="The whole product; it replaces any stored one."),
    ],
    expected_version: ExpectedVersion = None,
) -> AddProductPayload:
    note_session(str(session_id))
    sessions = info.context.sessions

    async def change(principal: Any) -> Draft:
        product = validate_product(plain_values(input))
        assert product.productCode is not None  # required: validation refused it otherwise
        await info.context.commits.ensure_code_available(
            principal, str(session_id), product.productCode
        )
        return await sessions.add_product(
            principal, str(session_id), product, expected_version=expected_version
        )

    return await session_mutation(info, AddProductPayload, change)


async def resolve_configure_target(
    info: Info,
    session_id: SessionId,
    input: Annotated[
        AudienceTargetInput,
        strawberry.argument(description="The whole target; it replaces any stored one."),
    ],
    expected_version: ExpectedVersion = None,
) -> ConfigureTargetPayload:
    note_session(str(session_id))
    sessions = info.context.sessions

    async def change(principal: Any) -> Draft:
        target = validate_target(plain_values(input))
        return await sessions.configure_target(
            principal, str(session_id), target, expected_version=expected_version
        )

    return await session_mutation(info, ConfigureTargetPayload, change)


async def resolve_cancel_session(
    info: Info, session_id: SessionId, expected_version: ExpectedVersion = None
) -> CancelSessionPayload:
    note_session(str(session_id))
    principal = await authenticate(info)
    operation_id = info.context.operation_id
    try:
        await info.context.sessions.cancel(
            principal, str(session_id), expected_version=expected_version
        )
    except UserInputError as exc:
        return CancelSessionPayload(
            session_id=None,
            cancelled=False,
            user_errors=user_errors(exc),
            operation_id=operation_id,
        )
    return CancelSessionPayload(
        session_id=session_id, cancelled=True, user_errors=[], operation_id=operation_id
    )


async def _load(info: Info, session_id: strawberry.ID) -> Draft:
    note_session(str(session_id))
    principal = await authenticate(info)
    try:
        return await info.context.sessions.get(principal, str(session_id))
    except SessionNotFoundError as exc:
        raise GraphQLError(exc.message, extensions={"code": exc.code}) from None


async def resolve_session(info: Info, session_id: SessionId) -> Session | None:
    return Session.from_draft(await _load(info, session_id))


async def resolve_session_progress(info: Info, session_id: SessionId) -> SessionProgress | None:
    # A query never writes: a commit whose process died is finished by the recoverer.
    return SessionProgress.from_progress(progress_of(await _load(info, session_id)))


async def resolve_my_sessions(
    info: Info,
    limit: Annotated[
        int,
        strawberry.argument(description=f"How many sessions to return, 1 to {MAX_PAGE}."),
    ] = 20,
    offset: Annotated[
        int,
        strawberry.argument(description="How many of the newest sessions to skip first."),
    ] = 0,
) -> list[Session]:
    principal = await authenticate(info)
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise GraphQLError(
            f"limit must be between 1 and {MAX_PAGE} and offset at least 0.",
            extensions={"code": "BAD_USER_INPUT"},
        )
    drafts = await info.context.sessions.list_open(principal, offset=offset, limit=limit)
    return [Session.from_draft(d) for d in drafts]
