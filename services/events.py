"""Draft events across instances: one Redis subscription per process, fanned out locally."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from services.errors import ServerShuttingDownError
from services.models import Draft
from services.redis_client import RedisStore

_CLOSE_SECONDS = 2.0  # the longest a listener's connection may take to close
logger = logging.getLogger("orchestrator.events")


class Signal(Enum):
    """What a subscriber may find in its queue besides an event."""

    RESYNC = "RESYNC"  # events may have been missed: re-read the draft
    CLOSED = "CLOSED"  # the process is shutting down


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
    """One local listener of one session: a bounded buffer the hub fills and the stream drains.

    A list, and a future only while waiting, rather than an asyncio.Queue and a timer per
    wait: thousands of these live at once (a Queue with its deques and Event is ~2 KB).
    """

    __slots__ = ("_items", "_size", "_waiter", "deadline", "overflows", "session_id")

    def __init__(self, session_id: str, size: int) -> None:
        self.session_id = session_id
        self._size = size
        self._items: list[Item] = []
        self._waiter: asyncio.Future[None] | None = None
        self.deadline: float | None = None
        self.overflows = 0

    def offer(self, item: Item) -> None:
        """Buffer *item*; when full, drop the backlog and ask for a re-read instead of growing."""
        if len(self._items) < self._size:
            self._items.append(item)
        else:
            # The dropped events (and this one) are all covered by the re-read.
            self.overflows += 1
            self._items[:] = [Signal.RESYNC]
        self.wake()

    def close(self) -> None:
        """Wake the stream with CLOSED, ahead of anything still buffered."""
        self._items[:] = [Signal.CLOSED]
        self.wake()

    async def get(self, deadline: float | None = None) -> Item | None:
        """Return the next item, or None once the loop's clock passes *deadline*.

        The hub's clock checks deadlines a few times a second, so None comes that late.
        """
        if not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            self.deadline = deadline
            try:
                await self._waiter
            finally:
                self._waiter = None
                self.deadline = None
            if not self._items:
                return None
        return self._items.pop(0)

    def pending(self) -> int:
        """Return how many items wait in the buffer."""
        return len(self._items)

    def wake(self) -> None:
        """Let a waiting ``get`` return."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class EventHub:
    """The process's single subscription to the draft events channel.

    services/lua/draft.lua publishes every change on one channel. Each process holds one
    PubSub connection (not one per websocket) and copies each message into the bounded
    queue of every local subscriber of that session. Pub/sub is at-most-once
    (docs/design/pubsub-fanout.md), so wherever a gap is possible (a queue overflowed, the
    PubSub reconnected) the subscriber gets a RESYNC and re-reads the draft instead.

    The channel is a shard channel where Redis has them (SSUBSCRIBE, Redis 7): on a cluster
    it lives on its slot's master. When that connection breaks (a failover) or the slot
    moves (Redis says sunsubscribe), the hub asks the store where the channel lives now and
    subscribes there; the new subscription's confirmation sends every subscriber a RESYNC.
    """

    def __init__(
        self,
        redis: RedisStore | Redis,
        channel: str,
        *,
        queue_size: int = 32,
        poll_interval: float = 1.0,
        max_backoff: float = 2.0,
        max_concurrent_reads: int = 32,
        tick: float = 0.25,
    ) -> None:
        self._store = redis if isinstance(redis, RedisStore) else RedisStore.wrap(redis)
        self._channel = channel
        self._queue_size = queue_size
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._tick = tick
        self._clock: asyncio.Task[None] | None = None
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._closed = False
        self.resubscriptions = 0
        self.received = 0
        # Snapshot reads go through here: after a reconnect every subscriber re-reads at
        # once, and redis-py's pool raises "Too many connections" past its size.
        self.read_slots = asyncio.Semaphore(max_concurrent_reads)

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
        self._clock = asyncio.create_task(self._wake_due(), name="event-hub-clock")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), ready_timeout)

    async def close(self) -> None:
        """Stop listening, release the connection and end every local stream."""
        self._closed = True
        for task in (self._task, self._clock):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._clock = None
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
        failures = 0
        while True:
            pubsub: PubSub | None = None
            try:
                # After a failure, re-read where the channel lives: it may have a new master.
                pubsub, sharded = await self._store.pubsub_for(self._channel, refresh=failures > 0)
                if sharded:
                    await pubsub.ssubscribe(self._channel)
                else:
                    await pubsub.subscribe(self._channel)
                while True:
                    message = await pubsub.get_message(timeout=self._poll_interval)
                    if message is None:
                        continue
                    if not self._handle(message):
                        raise ConnectionError("the events channel moved to another node")
                    failures = 0
            except Exception as exc:
                # Redis down or failing over (or a bug): never let the one listener die.
                failures += 1
                if failures == 1:
                    logger.warning("event subscription failing (%r); retrying", exc)
                await asyncio.sleep(min(self._max_backoff, 0.05 * 2 ** min(failures, 8)))
            finally:
                if pubsub is not None:
                    # Bounded: a connection cut mid-read must not hold shutdown up forever.
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(asyncio.shield(pubsub.aclose()), _CLOSE_SECONDS)

    async def _wake_due(self) -> None:
        # One clock for all subscribers instead of a timer per wait: it saves ~0.5 KB per
        # subscriber and a timer handle created and cancelled for every event.
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._tick)
            now = loop.time()
            for subscribers in self._subscribers.values():
                for subscriber in subscribers:
                    if subscriber.deadline is not None and subscriber.deadline <= now:
                        subscriber.wake()

    def _handle(self, message: dict[str, Any]) -> bool:
        """Act on one PubSub message; return False when the subscription is gone."""
        kind = message["type"]
        if kind in ("message", "smessage"):
            self.received += 1
            self._dispatch(message["data"])
        elif kind in ("subscribe", "ssubscribe"):
            # redis-py re-subscribes by itself after a reconnect, and the hub subscribes
            # anew after a failover: either way we see a confirmation, and whatever was
            # published in between is lost (E3, E5).
            if self._subscribed.is_set():
                self.resubscriptions += 1
                logger.info(
                    "event subscription restored; re-reading %d drafts", len(self._subscribers)
                )
            self._subscribed.set()
            for subscribers in self._subscribers.values():
                for subscriber in subscribers:
                    subscriber.offer(Signal.RESYNC)
        elif kind in ("sunsubscribe", "unsubscribe"):
            # Not asked for: Redis dropped it (the slot moved to another node).
            return False
        return True

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
