"""GraphQL enums of the workflow; the choice sets' are generated (schema/choices.py)."""

from __future__ import annotations

from enum import Enum

import strawberry

from schema.choices import CHOICE_ENUMS
from services.models import SessionState

__all__ = ["CHOICE_ENUMS", "ErrorCode", "SessionState"]

# Registered in place: the workflow's own enum is the GraphQL one.
strawberry.enum(SessionState, description="Where a session stands in the workflow.")


@strawberry.enum(description="Why a mutation did not do what was asked.")
class ErrorCode(Enum):
    VALIDATION_FAILED = strawberry.enum_value(
        "VALIDATION_FAILED", description="The input breaks a rule; see field and message."
    )
    SESSION_NOT_FOUND = strawberry.enum_value(
        "SESSION_NOT_FOUND",
        description="No such session: it never existed, has expired, or is not yours.",
    )
    INVALID_STATE = strawberry.enum_value(
        "INVALID_STATE", description="The session's state does not allow this step now."
    )
    STALE_VERSION = strawberry.enum_value(
        "STALE_VERSION",
        description="The session changed since the version you sent; reload it and retry.",
    )
    PRODUCT_CODE_TAKEN = strawberry.enum_value(
        "PRODUCT_CODE_TAKEN",
        description="Another draft or an existing Dataverse product uses this product code.",
    )
    COMMIT_IN_PROGRESS = strawberry.enum_value(
        "COMMIT_IN_PROGRESS", description="A commit of this session is already running."
    )
    COMMIT_UNCONFIRMED = strawberry.enum_value(
        "COMMIT_UNCONFIRMED",
        description="A previous commit of this session may already be in Dataverse, and "
        "until a commit confirms or rules it out the draft cannot be changed or cancelled: "
        "commit again (it never creates a duplicate).",
    )
    COMMIT_FAILED = strawberry.enum_value(
        "COMMIT_FAILED",
        description="Dataverse rejected the product or target; nothing was written. Fix the "
        "draft and commit again.",
    )
    TOO_MANY_DRAFTS = strawberry.enum_value(
        "TOO_MANY_DRAFTS",
        description="You hold as many open drafts as allowed (MAX_OPEN_DRAFTS): commit or "
        "cancel one first.",
    )
    DATAVERSE_UNAVAILABLE = strawberry.enum_value(
        "DATAVERSE_UNAVAILABLE",
        description="Dataverse stayed busy or unreachable through every retry; the message "
        "says when to try again. Committing again never creates a duplicate.",
    )
