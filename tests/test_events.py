"""The event hub, the session stream and the expiry sweeper, in process over a real Redis."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from datetime import timedelta
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from services.auth import AuthConfig, TokenVerifier
from services.errors import ServerShuttingDownError
from services.events import EventHub
from services.expiry import ExpirySweeper
from services.models import CommitResult, Principal
from services.session_stream import ChangeType, SessionChange, SessionStream
from services.sessions import SessionService
from services.validation import validate_product, validate_target
from tests.graphql_documents import product_values
from tests.helpers import SECRET, eventually, token

pytestmark = pytest.mark.anyio

PRODUCT = validate_product(product_values())
EMPTY_TARGET = validate_target({})


@pytest.fixture
async def owner() -> Principal:
    return await TokenVerifier(AuthConfig(("HS256",), secret=SECRET)).authenticate(
        f"Bearer {token()}"
    )


@pytest.fixture
async def sessions(redis: Redis) -> SessionService:
    return SessionService(redis)


@pytest.fixture
async def hub(redis: Redis, sessions: SessionService) -> AsyncIterator[EventHub]:
    events = EventHub(redis, sessions.events_channel, queue_size=4)
    await events.start()
    yield events
    await events.close()


def session_events(
    hub: EventHub, sessions: SessionService, owner: Principal, session_id: str, **options: Any
) -> AsyncGenerator[SessionChange, None]:
    return SessionStream(hub, sessions, **options).changes(owner, session_id)


async def test_slow_subscriber_gets_a_fresh_snapshot_instead_of_a_growing_queue(
    hub: EventHub, sessions: SessionService, owner: Principal
) -> None:
    # given a stream whose consumer has read the snapshot and then stops reading
    draft = await sessions.create(owner, operation_id="test")
    sid = draft.session_id
    stream = session_events(hub, sessions, owner, sid)
    assert (await anext(stream)).type is ChangeType.SNAPSHOT
    await sessions.add_product(owner, sid, PRODUCT)

    # when 30 changes happen meanwhile (the queue holds 4)
    for _ in range(29):
        await sessions.configure_target(owner, sid, EMPTY_TARGET)
    await eventually(lambda: hub.received >= 30)
    (subscriber,) = hub.subscribers(sid)
    backlog, overflows = subscriber.pending(), subscriber.overflows

    # then it holds at most 4 items, and reading resumes with the state as it is now
    resumed = await anext(stream)
    await sessions.cancel(owner, sid)
    after = await anext(stream)
    await stream.aclose()
    assert backlog <= 4 and overflows > 0
    assert (resumed.type, resumed.version) == (ChangeType.SNAPSHOT, 31)
    assert (after.type, after.version) == (ChangeType.CANCELLED, 32)
    assert hub.subscriber_count == 0


async def test_hub_fans_one_message_out_to_every_local_subscriber_of_the_session(
    hub: EventHub, sessions: SessionService, owner: Principal
) -> None:
    sid = (await sessions.create(owner, operation_id="test")).session_id
    other = (await sessions.create(owner, operation_id="test")).session_id
    streams = [session_events(hub, sessions, owner, s) for s in (sid, sid, other)]
    for stream in streams:
        await anext(stream)

    await sessions.add_product(owner, sid, PRODUCT)
    firsts = [await anext(s) for s in streams[:2]]
    for stream in streams:
        await stream.aclose()

    assert [e.type for e in firsts] == [ChangeType.PRODUCT_ADDED] * 2
    assert hub.received == 1 and hub.subscriber_count == 0


async def test_hub_ignores_malformed_messages(
    redis: Redis, hub: EventHub, sessions: SessionService, owner: Principal
) -> None:
    sid = (await sessions.create(owner, operation_id="test")).session_id
    stream = session_events(hub, sessions, owner, sid)
    await anext(stream)

    await publish_as_draft_lua(redis, sessions.events_channel, "not json")
    await publish_as_draft_lua(redis, sessions.events_channel, '{"type": "PRODUCT_ADDED"}')
    await sessions.add_product(owner, sid, PRODUCT)
    event = await anext(stream)
    await stream.aclose()

    assert event.type is ChangeType.PRODUCT_ADDED
    assert hub.received == 3  # the two malformed ones did arrive, and were skipped


async def publish_as_draft_lua(redis: Redis, channel: str, message: str) -> None:
    """Publish as draft.lua does: on a shard channel where Redis has them (7+)."""
    try:
        await redis.spublish(channel, message)
    except ResponseError:
        await redis.publish(channel, message)


async def test_closing_the_hub_ends_streams_with_service_unavailable(
    hub: EventHub, sessions: SessionService, owner: Principal
) -> None:
    sid = (await sessions.create(owner, operation_id="test")).session_id
    stream = session_events(hub, sessions, owner, sid)
    await anext(stream)

    await hub.close()

    with pytest.raises(ServerShuttingDownError) as ended:
        await anext(stream)
    assert ended.value.code == "SERVICE_UNAVAILABLE"
    assert hub.subscriber_count == 0


async def test_stream_notices_a_lost_expired_notice_by_itself(
    hub: EventHub, redis: Redis, owner: Principal
) -> None:
    # given a draft that expires with no sweeper running anywhere
    short = SessionService(redis, ttl=timedelta(seconds=1))
    draft = await short.create(owner, operation_id="test")
    stream = session_events(
        hub, short, owner, draft.session_id, expiry_grace=timedelta(seconds=0.2)
    )
    await anext(stream)

    with anyio.fail_after(3):
        event = await anext(stream)

    assert event.type is ChangeType.EXPIRED
    assert event.progress.seconds_remaining == 0
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_expired_while_committing_waits_for_the_commit_outcome(
    hub: EventHub, redis: Redis, sessions: SessionService, owner: Principal
) -> None:
    # given a draft whose commit is running when its EXPIRED notice fires
    sid = (await sessions.create(owner, operation_id="test")).session_id
    await sessions.add_product(owner, sid, PRODUCT)
    draft = await sessions.begin_commit(
        owner, sid, lease_owner="me", lease=timedelta(seconds=30), operation_id="test"
    )
    stream = session_events(hub, sessions, owner, sid)
    await anext(stream)
    await redis.zadd(sessions.keys.schedule, {f"expired:{sid}": 0}, xx=True)
    assert f"expired:{sid}" not in await sessions.sweep()  # claimed, but not announced
    assert await redis.zscore(sessions.keys.schedule, f"expired:{sid}") is None

    # when the commit then succeeds
    assert draft.commit is not None
    result = CommitResult(
        product_guid=draft.commit.product_guid,
        target_guid=draft.commit.target_guid,
        product_code="WID-1",
    )
    await sessions.commit_succeeded(
        draft,
        lease_owner="me",
        result=result,
        cleanup=timedelta(seconds=5),
        receipt_ttl=timedelta(hours=1),
    )

    # then the subscriber sees the outcome, not the expiry
    event = await anext(stream)
    assert (event.type, event.product_guid) == (ChangeType.COMMITTED, result.product_guid)
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_each_expiry_notice_fires_once_across_instances(
    redis: Redis, owner: Principal
) -> None:
    # given a draft whose warning and expiry are both due, and three instances' sweepers
    sessions = SessionService(redis)
    sid = (await sessions.create(owner, operation_id="test")).session_id
    due = {f"soon:{sid}": 0, f"expired:{sid}": 0}
    assert await redis.zadd(sessions.keys.schedule, due, xx=True, ch=True) == 2  # due now
    sweepers = [ExpirySweeper(SessionService(redis)) for _ in range(3)]

    fired: list[str] = []

    async def sweep(sweeper: ExpirySweeper) -> None:
        fired.extend(await sweeper.sweep_once())

    async with anyio.create_task_group() as tg:
        for sweeper in sweepers:
            tg.start_soon(sweep, sweeper)

    assert sorted(fired) == [f"expired:{sid}", f"soon:{sid}"]


async def test_sweeper_survives_redis_errors(owner: Principal) -> None:
    class Failing:
        calls = 0

        async def sweep(self, *, limit: int) -> list[str]:
            self.calls += 1
            raise ConnectionError("redis is down")

    failing: Any = Failing()
    sweeper = ExpirySweeper(failing, interval=0.01)
    sweeper.start()
    await eventually(lambda: failing.calls > 3)
    await sweeper.stop()

    assert failing.calls > 3
