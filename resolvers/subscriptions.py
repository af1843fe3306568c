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
    SessionNotFoundError,
    SessionStoreUnavailableError,
)
from services.events import DraftEvent, EventHub, ServerShuttingDownError, Signal, Subscriber
from services.models import Draft, Principal, SessionState
from services.sessions import SessionService

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
    principal = await authenticate(info)
    context = info.context
    if context.events is None:
        raise ServerShuttingDownError
    # Checked before the stream exists, so a foreign or unknown session gets one `error`
    # message and no data. The stream reads the draft again once it is registered.
    await context.sessions.get(principal, str(session_id))
    return session_events(context.events, context.sessions, principal, str(session_id))


async def session_events(
    hub: EventHub, sessions: SessionService, principal: Principal, session_id: str
) -> AsyncGenerator[SessionEvent, None]:
    """Yield a SNAPSHOT, then each change of the session, until a terminal event."""
    with hub.subscribe(session_id) as subscriber:
        # Registered before reading: a change made meanwhile is in this read or in the queue.
        draft = await sessions.get(principal, session_id)
        yield SessionEvent.of(SessionEventType.SNAPSHOT, draft)
        if draft.state is SessionState.COMMITTED:
            return
        check_expiry_at = draft.expires_at + EXPIRY_GRACE
        while True:
            item = await _next(subscriber, principal, check_expiry_at)
            if item is Signal.CLOSED:
                raise ServerShuttingDownError
            if item is None or item is Signal.RESYNC:
                fresh = await _reload(sessions, principal, session_id)
                if fresh is None:
                    if draft.expires_at > datetime.now(tz=UTC):
                        raise SessionNotFoundError
                    yield SessionEvent.of(SessionEventType.EXPIRED, draft)
                    return
                check_expiry_at = max(fresh.expires_at, datetime.now(tz=UTC)) + EXPIRY_GRACE
                if item is None and fresh.version == draft.version:
                    continue  # only checking for a lost EXPIRED: nothing changed
                draft = fresh
                yield SessionEvent.of(SessionEventType.SNAPSHOT, draft)
                if draft.state is SessionState.COMMITTED:
                    return
                continue
            for event, draft in _apply(item, draft):
                yield event
                if event.type in TERMINAL:
                    return


def _apply(item: DraftEvent, draft: Draft) -> list[tuple[SessionEvent, Draft]]:
    """Return what to deliver for *item*, given the last *draft* delivered (maybe nothing)."""
    if item.version is not None and item.version <= draft.version:
        return []  # already in the snapshot, or delivered before
    try:
        kind = SessionEventType(item.type)
    except ValueError:
        return []  # an event type this version does not know
    if kind is SessionEventType.EXPIRED and draft.state is SessionState.COMMITTING:
        return []  # a running commit keeps the draft alive past expiresAt
    after = item.draft or draft
    out = [(SessionEvent.of(kind, after, occurred_at_ms=item.occurred_at_ms, detail=item.detail), after)]
    if kind is SessionEventType.FAILED and after.expires_at_ms <= item.occurred_at_ms:
        # The commit failed after expiresAt: draft.lua deleted the draft with it.
        out.append((SessionEvent.of(SessionEventType.EXPIRED, after, occurred_at_ms=item.occurred_at_ms), after))
    return out


async def _next(subscriber: Subscriber, principal: Principal, check_expiry_at: datetime) -> DraftEvent | Signal | None:
    """Return the next queued item, or None when it is time to look for a lost EXPIRED.

    Raise AuthenticationError as soon as the token expires, even if nothing is queued: a
    websocket keeps the principal it authenticated with for the whole connection.
    """
    now = datetime.now(tz=UTC)
    if principal.token_expires_at <= now:
        raise AuthenticationError("Token expired: sign in again.")
    deadline = min(principal.token_expires_at, check_expiry_at)
    try:
        async with asyncio.timeout((deadline - now).total_seconds()):
            return await subscriber.get()
    except TimeoutError:
        if principal.token_expires_at <= datetime.now(tz=UTC):
            raise AuthenticationError("Token expired: sign in again.") from None
        return None


async def _reload(sessions: SessionService, principal: Principal, session_id: str) -> Draft | None:
    """Re-read the draft after a possible gap; None when it no longer exists."""
    for attempt in range(1, _RELOAD_ATTEMPTS + 1):
        try:
            return await sessions.get(principal, session_id)
        except SessionNotFoundError:
            return None
        except SessionStoreUnavailableError:
            if attempt == _RELOAD_ATTEMPTS:
                raise
            await asyncio.sleep(0.5 * attempt)
    return None  # pragma: no cover - the loop always returns or raises
