"""What sessionStateChanged pushes: one SessionEvent per change of a session."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import strawberry

from schema.enums import SessionState
from schema.session import SessionProgress
from services.models import Draft
from services.progress import progress_of


@strawberry.enum(description="What happened to the session.")
class SessionEventType(Enum):
    SNAPSHOT = strawberry.enum_value(
        "SNAPSHOT",
        description="The session as it is now: always the first message, and again whenever "
        "changes may have been missed (the service reconnected to Redis, or the client fell "
        "behind). Replace your copy with it.",
    )
    PRODUCT_ADDED = strawberry.enum_value("PRODUCT_ADDED", description="addProduct stored the first product.")
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


TERMINAL = frozenset({SessionEventType.COMMITTED, SessionEventType.CANCELLED, SessionEventType.EXPIRED})
_FINISHED = frozenset({SessionEventType.CANCELLED, SessionEventType.EXPIRED})


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
        description="COMMIT_RETRYING: the number of the attempt that failed."
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
    def of(
        cls,
        kind: SessionEventType,
        draft: Draft,
        *,
        occurred_at_ms: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> SessionEvent:
        """Build the event *kind* for *draft* after the change; *detail* as draft.lua sent it."""
        detail = detail or {}
        now = datetime.now(tz=UTC)
        progress = progress_of(draft, now=max(now, draft.expires_at) if kind is SessionEventType.EXPIRED else now)
        if kind in _FINISHED:
            progress = dataclasses.replace(progress, can_commit=False)
        occurred_ms = draft.updated_at_ms if occurred_at_ms is None else occurred_at_ms
        retry_at_ms = detail.get("retryAtMs")
        recovering = detail.get("recovering")
        result = draft.result
        return cls(
            type=kind,
            session_id=strawberry.ID(draft.session_id),
            state=draft.state,
            version=draft.version,
            progress=SessionProgress.from_progress(progress),
            occurred_at=datetime.fromtimestamp(occurred_ms / 1000, tz=UTC),
            attempt=detail.get("attempt") if kind is SessionEventType.COMMIT_RETRYING else None,
            cause=detail.get("cause") if kind is SessionEventType.COMMIT_RETRYING else None,
            retry_at=(
                datetime.fromtimestamp(retry_at_ms / 1000, tz=UTC)
                if kind is SessionEventType.COMMIT_RETRYING and isinstance(retry_at_ms, int | float)
                else None
            ),
            recovering=bool(recovering) if kind is SessionEventType.COMMIT_STARTED else None,
            product_guid=result.product_guid if result else None,
            target_guid=result.target_guid if result else None,
            product_code=result.product_code if result else draft.product_code,
            errors=list(draft.errors),
        )
