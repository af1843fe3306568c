"""Resolver of step 4: commit the draft to Dataverse."""

from __future__ import annotations

from typing import Annotated

import strawberry

from resolvers.common import authenticate, user_errors
from resolvers.sessions import SessionId
from schema.context import Info
from schema.enums import ErrorCode
from schema.payloads import CommitPayload, UserError
from schema.session import Session
from services.errors import UserInputError
from telemetry.context import note_session

CommitExpectedVersion = Annotated[
    int | None,
    strawberry.argument(
        description="The session version you last saw: the commit is refused with "
        "STALE_VERSION if the draft is not that version any more (changed elsewhere, or an "
        "edit lost by a Redis failover), so what is written is what you reviewed. Omit to "
        "commit whatever the draft holds."
    ),
]


async def resolve_commit(
    info: Info, session_id: SessionId, expected_version: CommitExpectedVersion = None
) -> CommitPayload:
    note_session(str(session_id))
    principal = await authenticate(info)
    operation_id = info.context.operation_id
    try:
        outcome = await info.context.commits.commit(
            principal, str(session_id), operation_id, expected_version=expected_version
        )
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
