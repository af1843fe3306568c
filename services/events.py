"""Draft events across instances: one Redis subscription per process, fanned out to local queues.

Every change to a draft is published by services/lua/draft.lua on one channel. Each process
holds a single PubSub connection (not one per websocket, tech-notes A2/E4) and copies each
message into the bounded queue of every local subscriber of that session. Pub/sub is
at-most-once (E3), so whenever a gap is possible (the queue overflowed, or the PubSub
reconnected) the subscriber gets a ``RESYNC`` and re-reads the draft instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.errors import ServiceError
from services.models import Draft

logger = logging.getLogger("orchestrator.events")


class Signal(Enum):
    """What a subscriber may find in its queue besides an event."""

    RESYNC = "RESYNC"  # events may have been missed: re-read the draft
    CLOSED = "CLOSED"  # the process is shutting down


class ServerShuttingDownError(ServiceError):
    """The process stops serving; the client should reconnect (to another instance)."""

    code: ClassVar[str] = "SERVICE_UNAVAILABLE"

    def __init__(self) -> None:
        super().__init__("The server is shutting down; subscribe again to continue.")


@dataclass(slots=True)
class DraftEvent:
    """One message from the events channel, as draft.lua published it."""

    type: str
    session_id: str
    occurred_at_ms: int
    version: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    raw_draft: dict[str, Any] | None = None
    _draft: Draft | None = None

    @classmethod
    def parse(cls, data: str | bytes) -> DraftEvent:
        """Parse a channel message; raise ValueError/KeyError/TypeError if it is not one."""
        message = orjson.loads(data)
        detail = message.get("detail")
        return cls(
            type=str(message["type"]),
            session_id=str(message["sessionId"]),
            occurred_at_ms=int(message["occurredAtMs"]),
            version=message.get("version"),
            # Lua's cjson writes an empty table as {} even where a list was meant.
            detail=detail if isinstance(detail, dict) else {},
            raw_draft=message.get("draft"),
        )

    @property
    def draft(self) -> Draft | None:
        """The draft after the change, validated once however many subscribers read it."""
        if self._draft is None and self.raw_draft is not None:
            self._draft = Draft.model_validate(self.raw_draft)
        return self._draft


Item = DraftEvent | Signal


class Subscriber:
    """One local listener of one session: a bounded queue the hub fills and the stream drains."""

    __slots__ = ("_queue", "overflows", "session_id")

    def __init__(self, session_id: str, size: int) -> None:
        self.session_id = session_id
        self._queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=size)
        self.overflows = 0

    def offer(self, item: Item) -> None:
        """Queue *item*; when full, drop the backlog and ask for a re-read instead of growing."""
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            # The dropped events (and this one) are all covered by the re-read.
            self.overflows += 1
            self._replace_backlog(Signal.RESYNC)

    def close(self) -> None:
        """Wake the stream with CLOSED, ahead of anything still queued."""
        self._replace_backlog(Signal.CLOSED)

    def _replace_backlog(self, item: Item) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(item)

    async def get(self) -> Item:
        """Wait for the next item."""
        return await self._queue.get()

    def pending(self) -> int:
        """Return how many items wait in the queue."""
        return self._queue.qsize()


class EventHub:
    """The process's single subscription to the draft events channel."""

    def __init__(
        self,
        redis: Redis,
        channel: str,
        *,
        queue_size: int = 32,
        poll_interval: float = 1.0,
        max_backoff: float = 2.0,
    ) -> None:
        self._redis = redis
        self._channel = channel
        self._queue_size = queue_size
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._closed = False
        self.resubscriptions = 0
        self.received = 0

    @property
    def subscriber_count(self) -> int:
        """Return how many local subscribers are registered (all sessions)."""
        return sum(len(s) for s in self._subscribers.values())

    @property
    def closed(self) -> bool:
        return self._closed

    def subscribers(self, session_id: str) -> list[Subscriber]:
        """Return the local subscribers of *session_id* (for diagnostics and tests)."""
        return list(self._subscribers.get(session_id, ()))

    async def start(self, *, ready_timeout: float = 2.0) -> None:
        """Start listening; wait briefly for the subscription, but start even if Redis is down."""
        self._task = asyncio.create_task(self._run(), name="event-hub")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), ready_timeout)

    async def close(self) -> None:
        """Stop listening, release the connection and end every local stream."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for subscribers in self._subscribers.values():
            for subscriber in subscribers:
                subscriber.close()

    @contextlib.contextmanager
    def subscribe(self, session_id: str) -> Iterator[Subscriber]:
        """Register a subscriber of *session_id* for the duration of the block."""
        if self._closed:
            raise ServerShuttingDownError
        subscriber = Subscriber(session_id, self._queue_size)
        self._subscribers.setdefault(session_id, set()).add(subscriber)
        try:
            yield subscriber
        finally:
            peers = self._subscribers.get(session_id)
            if peers is not None:
                peers.discard(subscriber)
                if not peers:
                    del self._subscribers[session_id]

    async def _run(self) -> None:
        pubsub = self._redis.pubsub()
        failures = 0
        try:
            while True:
                try:
                    if not pubsub.subscribed:
                        await pubsub.subscribe(self._channel)
                    message = await pubsub.get_message(timeout=self._poll_interval)
                except (RedisError, OSError) as exc:
                    failures += 1
                    if failures == 1:
                        logger.warning("event subscription lost (%s); reconnecting", exc)
                    await asyncio.sleep(min(self._max_backoff, 0.05 * 2**failures))
                    continue
                if failures:
                    failures = 0
                if message is not None:
                    self._handle(message)
        finally:
            await pubsub.aclose()

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "message":
            self.received += 1
            self._dispatch(message["data"])
        elif kind == "subscribe":
            # redis-py re-subscribes by itself after a reconnect and we see this
            # confirmation again: whatever was published in between is lost (E3, E5).
            if self._subscribed.is_set():
                self.resubscriptions += 1
                logger.info("event subscription restored; re-reading %d drafts", len(self._subscribers))
            self._subscribed.set()
            for subscribers in self._subscribers.values():
                for subscriber in subscribers:
                    subscriber.offer(Signal.RESYNC)

    def _dispatch(self, data: str | bytes) -> None:
        if not self._subscribers:
            return  # every instance sees every event; most have no one to give it to
        try:
            event = DraftEvent.parse(data)
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring a malformed draft event: %.200r", data)
            return
        for subscriber in self._subscribers.get(event.session_id, ()):
            subscriber.offer(event)
