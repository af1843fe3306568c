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
from services.progress import EXPIRING_SOON, progress_of


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


TERMINAL = frozenset(
    {SessionEventType.COMMITTED, SessionEventType.CANCELLED, SessionEventType.EXPIRED}
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
        progress = progress_of(draft)
        if kind is SessionEventType.CANCELLED:
            progress = dataclasses.replace(progress, can_commit=False)
        occurred_ms = draft.updated_at_ms if occurred_at_ms is None else occurred_at_ms
        retrying = kind is SessionEventType.COMMIT_RETRYING
        retry_at_ms = detail.get("retryAtMs")
        result = draft.result
        return cls(
            type=kind,
            session_id=strawberry.ID(draft.session_id),
            state=draft.state,
            version=draft.version,
            progress=SessionProgress.from_progress(progress),
            occurred_at=_utc(occurred_ms),
            attempt=detail.get("attempt") if retrying else None,
            cause=detail.get("cause") if retrying else None,
            retry_at=_utc(retry_at_ms)
            if retrying and isinstance(retry_at_ms, int | float)
            else None,
            recovering=(
                bool(detail.get("recovering")) if kind is SessionEventType.COMMIT_STARTED else None
            ),
            product_guid=result.product_guid if result else None,
            target_guid=result.target_guid if result else None,
            product_code=result.product_code if result else draft.product_code,
            errors=list(draft.errors),
        )

    def follow_up(self, kind: SessionEventType, occurred_at_ms: int | None = None) -> SessionEvent:
        """Return EXPIRING_SOON or EXPIRED for this event's session: those carry no draft."""
        now = datetime.now(tz=UTC)
        old = self.progress
        remaining = 0
        if kind is not SessionEventType.EXPIRED and not old.steps.committed:
            remaining = max(0, int((old.expires_at - now).total_seconds()))
        progress = dataclasses.replace(
            old,
            seconds_remaining=remaining,
            expiring_soon=not old.steps.committed and remaining <= EXPIRING_SOON.total_seconds(),
            can_commit=old.can_commit and remaining > 0,
        )
        return dataclasses.replace(
            self,
            type=kind,
            occurred_at=now if occurred_at_ms is None else _utc(occurred_at_ms),
            progress=progress,
            attempt=None,
            cause=None,
            retry_at=None,
            recovering=None,
        )


def _utc(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
