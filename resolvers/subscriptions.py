"""The sessionStateChanged subscription, and authenticating the websocket that carries it."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from strawberry.exceptions import ConnectionRejectionError

from resolvers.common import authenticate
from resolvers.sessions import SessionId
from schema.context import Context, Info
from schema.events import SessionEvent
from services.errors import AuthError, ServerShuttingDownError
from services.session_stream import SessionChange
from telemetry.context import note_session
from telemetry.metrics import counted_stream


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
    streams = info.context.streams
    if streams is None:
        raise ServerShuttingDownError
    # Checked before the stream exists, so a foreign or unknown session gets one `error`
    # message and no data. The stream reads the draft again once it is registered.
    await streams.check(principal, str(session_id))
    events = _as_events(streams.changes(principal, str(session_id)))
    return counted_stream(events, lambda event: event.type.name)


async def _as_events(
    changes: AsyncGenerator[SessionChange, None],
) -> AsyncGenerator[SessionEvent, None]:
    try:
        async for change in changes:
            yield SessionEvent.from_change(change)
    finally:
        await changes.aclose()  # unregister from the hub now, not when collected
