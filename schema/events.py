"""What sessionStateChanged pushes: one SessionEvent per change of a session."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from schema.enums import SessionState
from schema.session import SessionProgress
from services.session_stream import SessionChange


@strawberry.enum(description="What happened to the session.")
class SessionEventType(Enum):
    SNAPSHOT = strawberry.enum_value(
        "SNAPSHOT",
        description="The session as it is now: always the first message, and again whenever "
        "changes may have been missed (the service reconnected to Redis, or the client fell "
        "behind). Replace your copy with it.",
    )
    PRODUCT_ADDED = strawberry.enum_value(
        "PRODUCT_ADDED", description="addProduct stored the first product."
    )
    PRODUCT_UPDATED = strawberry.enum_value(
        "PRODUCT_UPDATED", description="addProduct replaced the product."
    )
    TARGET_CONFIGURED = strawberry.enum_value(
        "TARGET_CONFIGURED", description="configureTarget stored (or replaced) the audience target."
    )
    COMMIT_STARTED = strawberry.enum_value(
        "COMMIT_STARTED",
        description="A commit to Dataverse began; recovering tells whether it takes over one "
        "whose instance died.",
    )
    COMMIT_RETRYING = strawberry.enum_value(
        "COMMIT_RETRYING",
        description="A commit attempt failed and will be retried: see attempt, cause and retryAt.",
    )
    COMMITTED = strawberry.enum_value(
        "COMMITTED",
        description="Product and target exist in Dataverse: see productGuid, targetGuid and "
        "productCode. The stream completes.",
    )
    FAILED = strawberry.enum_value(
        "FAILED",
        description="The commit failed: see errors. The session stays editable and committable.",
    )
    CANCELLED = strawberry.enum_value(
        "CANCELLED", description="cancelSession deleted the session. The stream completes."
    )
    EXPIRING_SOON = strawberry.enum_value(
        "EXPIRING_SOON", description="15 minutes or less remain before the session expires."
    )
    EXPIRED = strawberry.enum_value(
        "EXPIRED", description="The session reached expiresAt and is gone. The stream completes."
    )


@strawberry.type(description="One change of a session, as sessionStateChanged pushes it.")
class SessionEvent:
    type: SessionEventType = strawberry.field(description="What happened.")
    session_id: strawberry.ID = strawberry.field(description="The session.")
    state: SessionState = strawberry.field(
        description="The workflow state after the change (for CANCELLED and EXPIRED, the last one)."
    )
    version: int = strawberry.field(
        description="The draft version after the change; grows with every change. Events of "
        "one session arrive in version order, each once."
    )
    progress: SessionProgress = strawberry.field(description="Progress after the change.")
    occurred_at: datetime = strawberry.field(
        description="When it happened (UTC); for SNAPSHOT, when the session last changed."
    )
    attempt: int | None = strawberry.field(
        description="COMMIT_RETRYING: the number of the attempt about to start (2 for the "
        "first retry)."
    )
    cause: str | None = strawberry.field(description="COMMIT_RETRYING: why the attempt failed.")
    retry_at: datetime | None = strawberry.field(
        description="COMMIT_RETRYING: when the next attempt starts (UTC)."
    )
    recovering: bool | None = strawberry.field(
        description="COMMIT_STARTED: true when this commit takes over one that was interrupted."
    )
    product_guid: str | None = strawberry.field(
        description="COMMITTED (or a snapshot of a committed session): the Dataverse product id."
    )
    target_guid: str | None = strawberry.field(
        description="COMMITTED (or a snapshot of a committed session): the Dataverse target id."
    )
    product_code: str | None = strawberry.field(
        description="The product code, once a product is set."
    )
    errors: list[str] = strawberry.field(
        description="FAILED (or a snapshot of a failed session): why the commit failed, in "
        "plain words; empty otherwise."
    )

    @classmethod
    def from_change(cls, change: SessionChange) -> SessionEvent:
        """Map the stream's record of a change to the GraphQL type."""
        return cls(
            type=SessionEventType[change.type.name],
            session_id=strawberry.ID(change.session_id),
            state=change.state,
            version=change.version,
            progress=SessionProgress.from_progress(change.progress),
            occurred_at=change.occurred_at,
            attempt=change.attempt,
            cause=change.cause,
            retry_at=change.retry_at,
            recovering=change.recovering,
            product_guid=change.product_guid,
            target_guid=change.target_guid,
            product_code=change.product_code,
            errors=list(change.errors),
        )
