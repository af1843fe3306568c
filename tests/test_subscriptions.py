"""sessionStateChanged over real websockets: events, auth, instances, restarts, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import anyio
import httpx
import pytest
from redis.asyncio import Redis
from websockets.exceptions import InvalidStatus

from app import create_app
from emulator.testing import error, unavailable
from services.auth import AuthConfig, TokenVerifier
from services.models import Principal
from services.progress import EXPIRING_SOON
from services.sessions import SessionService
from settings import Settings
from tests.graphql_documents import (
    ADD_PRODUCT,
    CANCEL_SESSION,
    CONFIGURE_TARGET,
    product_input,
)
from tests.helpers import (
    SECRET,
    GraphQLClient,
    RedisServer,
    create_session,
    eventually,
    make_settings,
    serve,
    serve_app,
    token,
)
from tests.ws_client import LEGACY_WS, open_ws, subscription

pytestmark = pytest.mark.anyio

SESSION_EVENTS = """
subscription Events($sessionId: ID!) {
  sessionStateChanged(sessionId: $sessionId) {
    type sessionId state version occurredAt
    progress { state version percentage canCommit secondsRemaining expiringSoon }
    attempt cause retryAt recovering productGuid targetGuid productCode errors
  }
}
"""

COMMIT = """
mutation Commit($sessionId: ID!) {
  commit(sessionId: $sessionId) { success productGuid targetGuid errors }
}
"""


async def principal_of(bearer: str) -> Principal:
    return await TokenVerifier(AuthConfig(("HS256",), secret=SECRET)).authenticate(
        f"Bearer {bearer}"
    )


# -- events -------------------------------------------------------------------------------


async def test_snapshot_then_one_event_per_change_until_cancelled(
    client: GraphQLClient, base_url: str
) -> None:
    # given
    sid = (await create_session(client))["sessionId"]

    async with subscription(base_url, token(), SESSION_EVENTS, {"sessionId": sid}) as ws:
        snapshot = await ws.event()

        # when
        await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input()})
        added = await ws.event()
        await client.data(
            ADD_PRODUCT, {"sessionId": sid, "input": product_input(productName="Renamed")}
        )
        updated = await ws.event()
        await client.data(CONFIGURE_TARGET, {"sessionId": sid, "input": {"province": ["ONTARIO"]}})
        targeted = await ws.event()
        await client.data(CANCEL_SESSION, {"sessionId": sid})
        cancelled = await ws.event()

        # then
        await ws.completed()
    assert snapshot["type"] == "SNAPSHOT"
    assert (snapshot["sessionId"], snapshot["state"], snapshot["version"]) == (sid, "INITIATED", 1)
    assert snapshot["progress"]["percentage"] == 25
    assert [e["type"] for e in (added, updated, targeted, cancelled)] == [
        "PRODUCT_ADDED",
        "PRODUCT_UPDATED",
        "TARGET_CONFIGURED",
        "CANCELLED",
    ]
    assert [e["version"] for e in (added, updated, targeted, cancelled)] == [2, 3, 4, 5]
    assert [e["progress"]["percentage"] for e in (added, targeted)] == [50, 75]
    assert added["productCode"] == "OSOT-WORKSHOP-2026"
    assert targeted["state"] == "TARGET_CONFIGURED" and targeted["progress"]["canCommit"] is True
    assert cancelled["progress"]["canCommit"] is False
    assert snapshot["occurredAt"] <= added["occurredAt"] <= cancelled["occurredAt"]
    assert all(e["errors"] == [] and e["attempt"] is None for e in (added, updated, cancelled))


async def test_commit_events_failed_then_retried_then_committed(
    client: GraphQLClient, base_url: str, dataverse: Any
) -> None:
    # given a draft with a product, watched
    sid = (await create_session(client))["sessionId"]
    await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input()})

    async with subscription(base_url, token(), SESSION_EVENTS, {"sessionId": sid}) as ws:
        assert (await ws.event())["state"] == "PRODUCT_ADDED"

        # when Dataverse rejects the first commit, and the second needs a retry
        await dataverse.set_faults(
            queue=[error(400, "0x80044331", "Field too long.", match="write")]
        )
        failed = (await client.data(COMMIT, {"sessionId": sid}))["commit"]
        await dataverse.set_faults(queue=[unavailable(match="write")])
        committed = (await client.data(COMMIT, {"sessionId": sid}))["commit"]

        events = [await ws.event() for _ in range(5)]
        await ws.completed()

    # then
    assert failed["success"] is False and committed["success"] is True
    assert [e["type"] for e in events] == [
        "COMMIT_STARTED",
        "FAILED",
        "COMMIT_STARTED",
        "COMMIT_RETRYING",
        "COMMITTED",
    ]
    first_start, fail, _, retrying, done = events
    assert first_start["state"] == "COMMITTING" and first_start["recovering"] is False
    assert fail["state"] == "FAILED" and fail["errors"] == failed["errors"] and fail["errors"]
    assert fail["progress"]["canCommit"] is True
    assert (
        retrying["attempt"] == 2
        and retrying["cause"]
        and retrying["retryAt"] > retrying["occurredAt"]
    )
    assert (done["productGuid"], done["targetGuid"]) == (
        committed["productGuid"],
        committed["targetGuid"],
    )
    assert done["productCode"] == "OSOT-WORKSHOP-2026"
    assert done["progress"]["percentage"] == 100
    assert [e["version"] for e in events] == sorted({e["version"] for e in events})


async def test_expiry_notices_come_from_the_sweeper(base_url: str, redis: Redis) -> None:
    # given two drafts: one 15 minutes + 2 s from expiry, one 2 s from it (its warning is
    # due at once, so the sweeper may fire it before we subscribe)
    owner = await principal_of(token())
    warned = await SessionService(redis, ttl=EXPIRING_SOON + timedelta(seconds=2)).create(
        owner, operation_id="test"
    )
    expiring = await SessionService(redis, ttl=timedelta(seconds=2)).create(
        owner, operation_id="test"
    )

    async with (
        subscription(
            base_url, token(), SESSION_EVENTS, {"sessionId": warned.session_id}
        ) as soon_ws,
        subscription(base_url, token(), SESSION_EVENTS, {"sessionId": expiring.session_id}) as ws,
    ):
        assert (await soon_ws.event())["progress"]["expiringSoon"] is False
        assert (await ws.event())["type"] == "SNAPSHOT"

        # when time passes (the app's own sweeper runs every second)
        warning = await soon_ws.event(within=5)
        events = [await ws.event(within=5)]
        if events[0]["type"] == "EXPIRING_SOON":
            events.append(await ws.event(within=5))

        # then
        await ws.completed()
    assert warning["type"] == "EXPIRING_SOON"
    assert warning["progress"]["expiringSoon"] is True
    assert 890 <= warning["progress"]["secondsRemaining"] <= 900
    assert events[-1]["type"] == "EXPIRED"
    assert events[-1]["progress"]["secondsRemaining"] == 0
    assert events[-1]["progress"]["canCommit"] is False
    assert events[-1]["version"] == 1


async def test_subscriber_on_one_instance_sees_changes_made_on_another(
    settings: Settings, redis: Redis
) -> None:
    async with (
        serve(settings) as url_a,
        serve(settings) as url_b,
        httpx.AsyncClient(base_url=url_b, timeout=30) as http,
    ):
        on_b = GraphQLClient(http, token())
        sid = (await create_session(on_b))["sessionId"]
        async with (
            subscription(url_a, token(), SESSION_EVENTS, {"sessionId": sid}) as ws_a,
            subscription(url_b, token(), SESSION_EVENTS, {"sessionId": sid}) as ws_b,
        ):
            await ws_a.event()
            await ws_b.event()

            # when instance B serves a change
            await on_b.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input()})

            # then subscribers on both instances get it, once
            assert (await ws_a.event())["type"] == "PRODUCT_ADDED"
            assert (await ws_b.event())["type"] == "PRODUCT_ADDED"
            await on_b.data(CANCEL_SESSION, {"sessionId": sid})
            assert (await ws_a.event())["type"] == "CANCELLED"
            await ws_a.completed()


# -- auth ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "init_payload",
    [
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": f"Bearer {token(secret='another-secret-that-is-32-bytes!!')}"},
        {"Authorization": f"Bearer {token(ttl=-120)}"},
        {"Authorization": f"Bearer {token(privilege='owner')}"},
        {"Authorization": token()},
    ],
    ids=["no-token", "garbage", "wrong-signature", "expired", "owner-privilege", "no-bearer"],
)
async def test_connection_without_a_valid_token_is_closed_4403(
    base_url: str, init_payload: dict[str, str]
) -> None:
    async with open_ws(base_url) as ws:
        await ws.send({"type": "connection_init", "payload": init_payload})
        code, reason = await ws.closed()

    assert (code, reason) == (4403, "Forbidden")


@pytest.mark.parametrize(
    ("headers", "init_payload"),
    [
        ({"Authorization": f"Bearer {token()}"}, {}),
        ({}, {"authorization": f"Bearer {token()}"}),
        ({}, {"AUTHORIZATION": f"Bearer {token()}"}),
    ],
    ids=["handshake-header", "lower-case-key", "upper-case-key"],
)
async def test_token_from_handshake_header_or_init_payload_in_any_case(
    client: GraphQLClient, base_url: str, headers: dict[str, str], init_payload: dict[str, str]
) -> None:
    sid = (await create_session(client))["sessionId"]
    async with open_ws(base_url, headers=headers) as ws:
        ack = await ws.init(init_payload)
        await ws.subscribe(SESSION_EVENTS, {"sessionId": sid})
        event = await ws.event()

    assert ack == {"type": "connection_ack"}
    assert event["type"] == "SNAPSHOT"


@pytest.mark.parametrize(
    "subscriber",
    [token("user-2"), token(org="6f1e3c9a-2222-4b4b-9c9c-000000000002")],
    ids=["other-user", "other-organization"],
)
async def test_someone_elses_session_is_an_error_without_data(
    client: GraphQLClient, base_url: str, subscriber: str
) -> None:
    sid = (await create_session(client))["sessionId"]

    async with open_ws(base_url) as ws:
        await ws.init({"Authorization": f"Bearer {subscriber}"})
        await ws.subscribe(SESSION_EVENTS, {"sessionId": sid})
        foreign = await ws.receive()
        await ws.subscribe(SESSION_EVENTS, {"sessionId": "no-such-session"}, op_id="2")
        unknown = await ws.receive()

    for message, op_id in ((foreign, "1"), (unknown, "2")):
        assert message["type"] == "error" and message["id"] == op_id, message
        assert [e["extensions"]["code"] for e in message["payload"]] == ["SESSION_NOT_FOUND"]
        assert "data" not in message["payload"]
    assert foreign["payload"][0]["message"] == unknown["payload"][0]["message"]


async def test_stream_ends_unauthenticated_when_the_token_expires(
    client: GraphQLClient, base_url: str
) -> None:
    # given a token accepted for 1-2 s more (exp is whole seconds): it expired 28 s ago,
    # within the 30 s JWT_LEEWAY_SECONDS, which the websocket applies as HTTP does
    sid = (await create_session(client))["sessionId"]
    async with subscription(base_url, token(ttl=-28), SESSION_EVENTS, {"sessionId": sid}) as ws:
        await ws.event()

        # when nothing happens to the session, then the stream still ends at the expiry
        ended = await ws.result(within=3.5)
        await ws.completed()

    assert ended["data"] is None
    assert [e["extensions"]["code"] for e in ended["errors"]] == ["UNAUTHENTICATED"]


@pytest.mark.parametrize(
    ("allowed", "origin", "accepted"),
    [
        ((), "https://evil.example", False),
        (("https://app.example",), "https://evil.example", False),
        (("https://app.example",), "https://app.example", True),
        (("*",), "https://anything.example", True),
        ((), None, True),
    ],
    ids=["none-allowed", "not-listed", "listed", "wildcard", "no-origin-header"],
)
async def test_cross_origin_handshake_needs_allowed_origins(
    redis_server: RedisServer,
    redis: Redis,
    allowed: tuple[str, ...],
    origin: str | None,
    accepted: bool,
) -> None:
    settings = make_settings(redis_server, allowed_origins=",".join(allowed))
    async with serve(settings) as url:
        if accepted:
            async with open_ws(url, origin=origin) as ws:
                assert (await ws.init({"Authorization": f"Bearer {token()}"}))[
                    "type"
                ] == "connection_ack"
        else:
            with pytest.raises(InvalidStatus) as refused:
                async with open_ws(url, origin=origin):
                    pass
            assert refused.value.response.status_code == 403


async def test_same_origin_page_is_always_allowed(base_url: str) -> None:
    async with open_ws(base_url, origin=base_url) as ws:
        assert (await ws.init({"Authorization": f"Bearer {token()}"}))["type"] == "connection_ack"


async def test_subscription_over_plain_http_is_refused(client: GraphQLClient) -> None:
    sid = (await create_session(client))["sessionId"]

    response = await client.post(SESSION_EVENTS, {"sessionId": sid})

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "websocket" in error["message"]


# -- legacy protocol ----------------------------------------------------------------------


async def test_legacy_graphql_ws_protocol(client: GraphQLClient, base_url: str) -> None:
    sid = (await create_session(client))["sessionId"]
    async with subscription(
        base_url, token(), SESSION_EVENTS, {"sessionId": sid}, protocol=LEGACY_WS
    ) as ws:
        snapshot = await ws.event()
        await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input()})
        added = await ws.event()
        await ws.stop()
        await ws.completed()

    async with open_ws(base_url, protocol=LEGACY_WS) as ws:
        refused = await ws.init({"Authorization": "Bearer not-a-jwt"})
        code, _ = await ws.closed()

    assert (snapshot["type"], added["type"]) == ("SNAPSHOT", "PRODUCT_ADDED")
    assert refused["type"] == "connection_error"
    assert refused["payload"]["code"] == "UNAUTHENTICATED"
    assert code == 4403


# -- robustness ---------------------------------------------------------------------------


async def pubsub_connections(redis: Redis, channel: str) -> tuple[int, int]:
    """Return (subscribers of *channel*, pub/sub client connections) as Redis sees them."""
    # A shard channel (SSUBSCRIBE, Redis 7) where the server has them, else a classic one.
    numsub = dict(await redis.pubsub_numsub(channel))[channel]
    numsub += dict(await redis.pubsub_shardnumsub(channel))[channel]
    clients = [c for c in await redis.client_list() if "P" in c["flags"]]
    return numsub, len(clients)


async def test_disconnects_free_queues_tasks_and_hold_one_redis_subscription(
    settings: Settings, redis: Redis
) -> None:
    # given one instance with 20 live subscriptions over 20 sockets
    app = create_app(settings)
    async with serve_app(app) as (url, _), httpx.AsyncClient(base_url=url) as http:
        sids = [(await create_session(GraphQLClient(http, token())))["sessionId"] for _ in range(4)]
        hub = app.state.events
        channel = app.state.sessions.events_channel
        await anyio.sleep(0.1)
        idle_tasks = asyncio.all_tasks()
        sockets = []
        for i in range(20):
            cm = subscription(url, token(), SESSION_EVENTS, {"sessionId": sids[i % 4]})
            ws = await cm.__aenter__()
            await ws.event()
            sockets.append((cm, ws))
        assert hub.subscriber_count == 20
        assert await pubsub_connections(redis, channel) == (1, 1)

        # when half complete their operation and close, and half drop the connection
        for i, (cm, ws) in enumerate(sockets):
            if i % 2:
                await ws.stop()
                await cm.__aexit__(None, None, None)
            else:
                ws.ws.transport.abort()
                with contextlib.suppress(Exception):  # whatever the aborted socket raises
                    await cm.__aexit__(None, None, None)

        # then nothing of theirs is left on the server
        await eventually(lambda: hub.subscriber_count == 0)
        await eventually(lambda: asyncio.all_tasks() <= idle_tasks | {asyncio.current_task()})
        assert await pubsub_connections(redis, channel) == (1, 1)
    await eventually(lambda: pubsub_connections(redis, channel), (0, 0))


@pytest.mark.integration  # it runs its own redis-server
async def test_redis_restart_gives_a_fresh_snapshot_then_later_events(dataverse: Any) -> None:
    # given a watched draft on an instance whose Redis will restart (keeping its data)
    own = RedisServer()
    own.start()
    try:
        settings = make_settings(own)
        app = create_app(settings)
        async with serve_app(app) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as http:
            client = GraphQLClient(http, token())
            sid = (await create_session(client))["sessionId"]
            async with subscription(url, token(), SESSION_EVENTS, {"sessionId": sid}) as ws:
                first = await ws.event()

                # when Redis restarts under the instance
                probe = Redis.from_url(own.url(), decode_responses=True)
                await probe.save()
                await probe.aclose()
                own.stop()
                await anyio.sleep(0.5)
                own.start()

                # then the subscriber is told the state again, and follows later changes
                again = await ws.event(within=10)
                await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input()})
                later = await ws.event(within=10)
            assert app.state.events.resubscriptions == 1
    finally:
        own.cleanup()

    assert (first["type"], again["type"], later["type"]) == (
        "SNAPSHOT",
        "SNAPSHOT",
        "PRODUCT_ADDED",
    )
    assert again["version"] == first["version"]
    assert later["version"] == first["version"] + 1


async def test_graceful_shutdown_closes_idle_sockets_1001_promptly(
    settings: Settings, redis: Redis
) -> None:
    # given a server that would wait an hour for open connections to finish by themselves
    app = create_app(settings)
    async with serve_app(app, graceful_shutdown=3600) as (url, server):
        async with httpx.AsyncClient(base_url=url) as http:
            sid = (await create_session(GraphQLClient(http, token())))["sessionId"]
        async with subscription(url, token(), SESSION_EVENTS, {"sessionId": sid}) as ws:
            await ws.event()

            # when the server is asked to stop
            server.should_exit = True
            code, _ = await ws.closed(within=30)
        await eventually(lambda: app.state.events.closed, within=30)
    # (leaving serve_app waited for the server to stop: only closing the socket ends it)

    # then clients are told to go elsewhere (1001 Going Away), and nothing hung
    assert code == 1001
    assert app.state.events.subscriber_count == 0
