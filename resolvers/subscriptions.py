"""The sessionStateChanged subscription, and authenticating the websocket that carries it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta

from strawberry.exceptions import ConnectionRejectionError

from resolvers.common import authenticate
from resolvers.sessions import SessionId
from schema.context import Context, Info
from schema.events import TERMINAL, SessionEvent, SessionEventType
from services.errors import (
    AuthenticationError,
    AuthError,
    ServerShuttingDownError,
    SessionNotFoundError,
    SessionStoreUnavailableError,
)
from services.events import DraftEvent, EventHub, Signal
from services.models import Draft, Principal, SessionState
from services.sessions import SessionService
from telemetry.context import note_session
from telemetry.metrics import counted_stream

# EXPIRED comes from the sweeper; if that notice is lost (pub/sub is at-most-once), look
# for ourselves this long after expiresAt.
EXPIRY_GRACE = timedelta(seconds=5)
_RELOAD_ATTEMPTS = 3


async def accept_connection(context: Context) -> None:
    """Authenticate a websocket at connection_init; refuse it (close 4403) without a valid token."""
    try:
        context.principal = await context.verifier.authenticate(context.credentials())
    except AuthError as exc:
        raise ConnectionRejectionError({"message": exc.message, "code": exc.code}) from None


async def resolve_session_state_changed(
    info: Info, session_id: SessionId
) -> AsyncGenerator[SessionEvent, None]:
    note_session(str(session_id))
    principal = await authenticate(info)
    context = info.context
    if context.events is None:
        raise ServerShuttingDownError
    # Checked before the stream exists, so a foreign or unknown session gets one `error`
    # message and no data. The stream reads the draft again once it is registered.
    async with context.events.read_slots:
        await context.sessions.get(principal, str(session_id))
    stream = session_events(context.events, context.sessions, principal, str(session_id))
    return counted_stream(stream, lambda event: event.type.name)


async def session_events(
    hub: EventHub, sessions: SessionService, principal: Principal, session_id: str
) -> AsyncGenerator[SessionEvent, None]:
    """Yield a SNAPSHOT, then each change of the session, until a terminal event."""
    with hub.subscribe(session_id) as subscriber:
        # Registered before reading: a change made meanwhile is in this read or in the queue.
        async with hub.read_slots:
            draft = await sessions.get(principal, session_id)
        # Only the last event delivered is kept (not the draft): thousands of streams wait.
        last = SessionEvent.of(SessionEventType.SNAPSHOT, draft)
        del draft
        yield last
        if last.state is SessionState.COMMITTED:
            return
        check_expiry_at = last.progress.expires_at + EXPIRY_GRACE
        while True:
            item = await subscriber.get(_deadline(principal, check_expiry_at))
            if item is None and principal.token_expires_at <= datetime.now(tz=UTC):
                raise AuthenticationError("Token expired: sign in again.")
            if item is Signal.CLOSED:
                raise ServerShuttingDownError
            if item is None or item is Signal.RESYNC:
                fresh = await _reload(hub, sessions, principal, session_id)
                now = datetime.now(tz=UTC)
                if fresh is None:
                    if last.progress.expires_at > now:
                        raise SessionNotFoundError
                    yield last.follow_up(SessionEventType.EXPIRED)
                    return
                check_expiry_at = max(fresh.expires_at, now) + EXPIRY_GRACE
                if item is None and fresh.version == last.version:
                    continue  # only checking for a lost EXPIRED: nothing changed
                last = SessionEvent.of(SessionEventType.SNAPSHOT, fresh)
                del fresh
                yield last
                if last.state is SessionState.COMMITTED:
                    return
                continue
            events = _apply(item, last)
            del item  # it holds the raw and parsed draft: don't keep them while waiting
            for event in events:
                last = event
                yield event
                if event.type in TERMINAL:
                    return


def _apply(item: DraftEvent, last: SessionEvent) -> list[SessionEvent]:
    """Return what to deliver for *item* after *last* (maybe nothing): each version once."""
    if item.version is not None and item.version <= last.version:
        return []  # already in the snapshot, or delivered before
    try:
        kind = SessionEventType(item.type)
    except ValueError:
        return []  # an event type this version does not know
    if kind is SessionEventType.EXPIRED and last.state is SessionState.COMMITTING:
        return []  # a running commit keeps the draft alive past expiresAt
    at = item.occurred_at_ms
    draft = item.draft
    if draft is None:  # EXPIRING_SOON and EXPIRED come from the sweeper, without a draft
        return [last.follow_up(kind, at)]
    event = SessionEvent.of(kind, draft, occurred_at_ms=at, detail=item.detail)
    if kind is SessionEventType.FAILED and draft.expires_at_ms <= at:
        # The commit failed after expiresAt: draft.lua deleted the draft with it.
        return [event, event.follow_up(SessionEventType.EXPIRED, at)]
    return [event]


def _deadline(principal: Principal, check_expiry_at: datetime) -> float:
    """Return when (loop time) to stop waiting: the token's expiry, or a lost-EXPIRED check.

    Raise AuthenticationError if the token has expired: a websocket keeps the principal it
    authenticated with for the whole connection, so the stream must notice by itself.
    """
    now = datetime.now(tz=UTC)
    if principal.token_expires_at <= now:
        raise AuthenticationError("Token expired: sign in again.")
    wait = (min(principal.token_expires_at, check_expiry_at) - now).total_seconds()
    return asyncio.get_running_loop().time() + wait


async def _reload(
    hub: EventHub, sessions: SessionService, principal: Principal, session_id: str
) -> Draft | None:
    """Re-read the draft after a possible gap; None when it no longer exists."""
    for attempt in range(1, _RELOAD_ATTEMPTS + 1):
        try:
            async with hub.read_slots:
                return await sessions.get(principal, session_id)
        except SessionNotFoundError:
            return None
        except SessionStoreUnavailableError:
            if attempt == _RELOAD_ATTEMPTS:
                raise
            await asyncio.sleep(0.5 * attempt)
    return None  # pragma: no cover - the loop always returns or raises
