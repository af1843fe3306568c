"""Resolver of step 4: commit the draft to Dataverse."""

from __future__ import annotations

import strawberry

from resolvers.common import authenticate, user_errors
from resolvers.sessions import SessionId
from schema.context import Info
from schema.enums import ErrorCode
from schema.payloads import CommitPayload, UserError
from schema.session import Session
from services.errors import UserInputError
from telemetry.context import note_session


async def resolve_commit(info: Info, session_id: SessionId) -> CommitPayload:
    note_session(str(session_id))
    principal = await authenticate(info)
    operation_id = info.context.operation_id
    try:
        outcome = await info.context.commits.commit(principal, str(session_id), operation_id)
    except UserInputError as exc:
        return CommitPayload(
            success=False,
            product_guid=None,
            target_guid=None,
            product_code=None,
            errors=[exc.message],
            user_errors=user_errors(exc),
            operation_id=operation_id,
            session=None,
        )
    draft = outcome.draft
    result = outcome.result
    messages = outcome.messages
    failures = []
    if outcome.failure_code:
        failures = [
            UserError(field=None, message=message, code=ErrorCode(outcome.failure_code))
            for message in messages
        ]
    return CommitPayload(
        success=outcome.succeeded,
        product_guid=strawberry.ID(result.product_guid) if result else None,
        target_guid=strawberry.ID(result.target_guid) if result else None,
        product_code=result.product_code if result else (draft.product_code if draft else None),
        errors=messages,
        user_errors=failures,
        operation_id=operation_id,
        session=Session.from_draft(draft) if draft else None,
    )
