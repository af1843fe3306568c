"""Where a draft stands: steps done, percentage, whether it can be committed, time left."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.models import Draft, SessionState

EXPIRING_SOON = timedelta(minutes=15)
_COMMITTABLE = {SessionState.PRODUCT_ADDED, SessionState.TARGET_CONFIGURED, SessionState.FAILED}


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot of a draft's progress, computed at ``now``."""

    session_id: str
    state: SessionState
    version: int
    product_added: bool
    target_configured: bool
    committed: bool
    percentage: int
    can_commit: bool
    commit_unconfirmed: bool
    errors: tuple[str, ...]
    expires_at: datetime
    seconds_remaining: int
    expiring_soon: bool


def progress_of(draft: Draft, now: datetime | None = None) -> Progress:
    """Compute the progress of *draft*: 25 % created, 50 % product, 75 % target, 100 % committed."""
    now = now or datetime.now(tz=UTC)
    committed = draft.state is SessionState.COMMITTED
    product_added = committed or draft.product is not None
    target_configured = committed or draft.audience_target is not None
    percentage = 100 if committed else 25 + 25 * product_added + 25 * target_configured
    remaining = 0 if committed else max(0, int((draft.expires_at - now).total_seconds()))
    # A write of an earlier commit may be in Dataverse: only a commit can settle it, so it
    # stays possible past expiresAt, and nothing else is.
    unconfirmed = (
        draft.state is SessionState.FAILED and draft.commit is not None and draft.commit.uncertain
    )
    return Progress(
        session_id=draft.session_id,
        state=draft.state,
        version=draft.version,
        product_added=product_added,
        target_configured=target_configured,
        committed=committed,
        percentage=percentage,
        can_commit=draft.state in _COMMITTABLE and product_added and (remaining > 0 or unconfirmed),
        commit_unconfirmed=unconfirmed,
        errors=tuple(draft.errors),
        expires_at=draft.expires_at,
        seconds_remaining=remaining,
        expiring_soon=not committed and remaining <= EXPIRING_SOON.total_seconds(),
    )
