"""Graceful shutdown of a serving process: websockets go away after in-flight requests.

On SIGTERM (or Ctrl-C) uvicorn stops accepting connections, closes idle keep-alive
connections, waits for in-flight requests (a commit is one) up to SHUTDOWN_TIMEOUT_SECONDS,
then cancels what is left and runs the lifespan's shutdown. Websockets are the exception
made here: uvicorn would close them at once with 1012; ``GoingAwayWebSocketProtocol`` keeps
them open while in-flight requests finish, so a subscriber sees the outcome of a commit
that was running, then closes them with 1001 (Going Away) so clients reconnect elsewhere.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

GOING_AWAY = 1001
# Websockets close this long before uvicorn's deadline, so the close handshake fits in it.
_CLOSE_MARGIN_SECONDS = 1.0


class GoingAwayWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websocket protocol, closing with 1001 once in-flight requests are done."""

    _going_away: asyncio.Task[None] | None = None

    def shutdown(self) -> None:
        if self.close_sent or not self.handshake_complete or self._going_away is not None:
            super().shutdown()
            return
        self.stop_keepalive()
        started = self.loop.time()
        self._going_away = self.loop.create_task(self._go_away_when_idle(started))

    async def _go_away_when_idle(self, started: float) -> None:
        timeout = self.config.timeout_graceful_shutdown
        deadline = None if timeout is None else started + max(0.0, timeout - _CLOSE_MARGIN_SECONDS)
        # uvicorn has no event for "the last request finished": poll its connections.
        while self._requests_in_flight() and (deadline is None or self.loop.time() < deadline):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        if self.close_sent or self.transport.is_closing():
            return  # the client or the app closed it meanwhile
        self.queue.put_nowait({"type": "websocket.disconnect", "code": GOING_AWAY})
        self.conn.send_close(GOING_AWAY, "server shutting down")
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.transport.close()

    def _requests_in_flight(self) -> bool:
        # After uvicorn's shutdown() only HTTP connections with a request still running
        # remain open (idle keep-alive ones were closed at once).
        return any(not isinstance(c, WebSocketsSansIOProtocol) for c in self.connections)
