"""One subscriber's view of a session: a SNAPSHOT, then every change once, in order.

The state machine behind ``sessionStateChanged``, free of GraphQL: it registers with the
process's ``EventHub`` before reading the draft (so no change falls between the two),
drops what the snapshot already covers, re-reads the draft whenever a gap is possible
(the hub reconnected to Redis, the subscriber's buffer overflowed), looks for a lost
EXPIRED notice by itself, and ends the stream when the caller's token expires. It yields
``SessionChange`` records; the resolver maps them to GraphQL types.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from services.errors import (
    AuthenticationError,
    ServerShuttingDownError,
    SessionNotFoundError,
    SessionStoreUnavailableError,
)
from services.events import DraftEvent, EventHub, Signal
from services.models import Draft, Principal, SessionState
from services.progress import EXPIRING_SOON, Progress, progress_of
from services.sessions import SessionService


class ChangeType(StrEnum):
    """What happened to the session (the GraphQL SessionEventType, by name)."""

    SNAPSHOT = "SNAPSHOT"
    PRODUCT_ADDED = "PRODUCT_ADDED"
    PRODUCT_UPDATED = "PRODUCT_UPDATED"
    TARGET_CONFIGURED = "TARGET_CONFIGURED"
    COMMIT_STARTED = "COMMIT_STARTED"
    COMMIT_RETRYING = "COMMIT_RETRYING"
    COMMITTED = "COMMITTED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    EXPIRING_SOON = "EXPIRING_SOON"
    EXPIRED = "EXPIRED"


TERMINAL = frozenset({ChangeType.COMMITTED, ChangeType.CANCELLED, ChangeType.EXPIRED})


def _utc(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def utc_now() -> datetime:
    """Return the current time in UTC (the stream's default clock)."""
    return datetime.now(tz=UTC)


@dataclass(frozen=True, slots=True)
class SessionChange:
    """One change of a session after it happened: what the subscriber is told."""

    type: ChangeType
    session_id: str
    state: SessionState
    version: int
    progress: Progress
    occurred_at: datetime
    errors: tuple[str, ...] = ()
    attempt: int | None = None
    cause: str | None = None
    retry_at: datetime | None = None
    recovering: bool | None = None
    product_guid: str | None = None
    target_guid: str | None = None
    product_code: str | None = None

    @classmethod
    def of(
        cls,
        kind: ChangeType,
        draft: Draft,
        *,
        now: datetime,
        occurred_at_ms: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> SessionChange:
        """Describe *kind* for *draft* after the change; *detail* as draft.lua sent it."""
        detail = detail or {}
        progress = progress_of(draft, now)
        if kind is ChangeType.CANCELLED:
            progress = dataclasses.replace(progress, can_commit=False)
        occurred_ms = draft.updated_at_ms if occurred_at_ms is None else occurred_at_ms
        retrying = kind is ChangeType.COMMIT_RETRYING
        retry_at_ms = detail.get("retryAtMs")
        result = draft.result
        return cls(
            type=kind,
            session_id=draft.session_id,
            state=draft.state,
            version=draft.version,
            progress=progress,
            occurred_at=_utc(occurred_ms),
            errors=tuple(draft.errors),
            attempt=detail.get("attempt") if retrying else None,
            cause=detail.get("cause") if retrying else None,
            retry_at=(
                _utc(retry_at_ms) if retrying and isinstance(retry_at_ms, int | float) else None
            ),
            recovering=(
                bool(detail.get("recovering")) if kind is ChangeType.COMMIT_STARTED else None
            ),
            product_guid=result.product_guid if result else None,
            target_guid=result.target_guid if result else None,
            product_code=result.product_code if result else draft.product_code,
        )

    def follow_up(
        self, kind: ChangeType, *, now: datetime, occurred_at_ms: int | None = None
    ) -> SessionChange:
        """Return EXPIRING_SOON or EXPIRED for this session: those notices carry no draft."""
        old = self.progress
        remaining = 0
        if kind is not ChangeType.EXPIRED and not old.committed:
            remaining = max(0, int((old.expires_at - now).total_seconds()))
        progress = dataclasses.replace(
            old,
            seconds_remaining=remaining,
            expiring_soon=not old.committed and remaining <= EXPIRING_SOON.total_seconds(),
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


class SessionStream:
    """Follow sessions for subscribers of this process, through its one ``EventHub``.

    Args:
        hub: the process's event hub.
        sessions: where drafts are read.
        expiry_grace: EXPIRED comes from the sweeper; if that notice is lost (pub/sub is
            at-most-once), the stream looks for itself this long after expiresAt.
        reload_attempts: re-reads of the draft after a gap before Redis counts as down.
        reload_backoff: seconds to wait after a failed re-read, times the attempt.
        clock: the current time (UTC); progress and deadlines are computed with it.
    """

    def __init__(
        self,
        hub: EventHub,
        sessions: SessionService,
        *,
        expiry_grace: timedelta = timedelta(seconds=5),
        reload_attempts: int = 3,
        reload_backoff: float = 0.5,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.hub = hub
        self._sessions = sessions
        self._expiry_grace = expiry_grace
        self._reload_attempts = reload_attempts
        self._reload_backoff = reload_backoff
        self._clock = clock

    async def check(self, principal: Principal, session_id: str) -> None:
        """Raise SessionNotFoundError unless *principal* may follow *session_id* now."""
        async with self.hub.read_slots:
            await self._sessions.get(principal, session_id)

    async def changes(
        self, principal: Principal, session_id: str
    ) -> AsyncGenerator[SessionChange, None]:
        """Yield a SNAPSHOT, then each change of the session, until a terminal one."""
        with self.hub.subscribe(session_id) as subscriber:
            # Registered before reading: a change made meanwhile is in this read or queued.
            async with self.hub.read_slots:
                draft = await self._sessions.get(principal, session_id)
            # Only the last change delivered is kept (not the draft): thousands of streams wait.
            last = SessionChange.of(ChangeType.SNAPSHOT, draft, now=self._clock())
            del draft
            yield last
            if last.state is SessionState.COMMITTED:
                return
            check_expiry_at = last.progress.expires_at + self._expiry_grace
            while True:
                item = await subscriber.get(self._deadline(principal, check_expiry_at))
                if item is None and principal.token_expires_at <= self._clock():
                    raise AuthenticationError("Token expired: sign in again.")
                if item is Signal.CLOSED:
                    raise ServerShuttingDownError
                if item is None or item is Signal.RESYNC:
                    fresh = await self._reload(principal, session_id)
                    now = self._clock()
                    if fresh is None:
                        if last.progress.expires_at > now:
                            raise SessionNotFoundError
                        yield last.follow_up(ChangeType.EXPIRED, now=now)
                        return
                    check_expiry_at = max(fresh.expires_at, now) + self._expiry_grace
                    if item is None and fresh.version == last.version:
                        continue  # only checking for a lost EXPIRED: nothing changed
                    last = SessionChange.of(ChangeType.SNAPSHOT, fresh, now=now)
                    del fresh
                    yield last
                    if last.state is SessionState.COMMITTED:
                        return
                    continue
                changes = self._apply(item, last)
                del item  # it holds the raw and parsed draft: don't keep them while waiting
                for change in changes:
                    last = change
                    yield change
                    if change.type in TERMINAL:
                        return

    def _apply(self, item: DraftEvent, last: SessionChange) -> list[SessionChange]:
        """Return what to deliver for *item* after *last* (maybe nothing): each version once."""
        if item.version is not None and item.version <= last.version:
            return []  # already in the snapshot, or delivered before
        try:
            kind = ChangeType(item.type)
        except ValueError:
            return []  # an event type this version does not know
        if kind is ChangeType.EXPIRED and last.state is SessionState.COMMITTING:
            return []  # a running commit keeps the draft alive past expiresAt
        at = item.occurred_at_ms
        now = self._clock()
        draft = item.draft
        if draft is None:  # EXPIRING_SOON and EXPIRED come from the sweeper, without a draft
            return [last.follow_up(kind, now=now, occurred_at_ms=at)]
        change = SessionChange.of(kind, draft, now=now, occurred_at_ms=at, detail=item.detail)
        unconfirmed = draft.commit is not None and draft.commit.uncertain
        if kind is ChangeType.FAILED and draft.expires_at_ms <= at and not unconfirmed:
            # The commit failed after expiresAt: draft.lua deleted the draft with it (an
            # unconfirmed one is kept until a commit settles it).
            return [change, change.follow_up(ChangeType.EXPIRED, now=now, occurred_at_ms=at)]
        return [change]

    def _deadline(self, principal: Principal, check_expiry_at: datetime) -> float:
        """Return when (loop time) to stop waiting: the token's expiry, or a lost-EXPIRED check.

        Raise AuthenticationError if the token has expired: a websocket keeps the principal
        it authenticated with for the whole connection, so the stream must notice by itself.
        """
        now = self._clock()
        if principal.token_expires_at <= now:
            raise AuthenticationError("Token expired: sign in again.")
        wait = (min(principal.token_expires_at, check_expiry_at) - now).total_seconds()
        return asyncio.get_running_loop().time() + wait

    async def _reload(self, principal: Principal, session_id: str) -> Draft | None:
        """Re-read the draft after a possible gap; None when it no longer exists."""
        for attempt in range(1, self._reload_attempts + 1):
            try:
                async with self.hub.read_slots:
                    return await self._sessions.get(principal, session_id)
            except SessionNotFoundError:
                return None
            except SessionStoreUnavailableError:
                if attempt == self._reload_attempts:
                    raise
                await asyncio.sleep(self._reload_backoff * attempt)
        return None  # pragma: no cover - the loop always returns or raises
