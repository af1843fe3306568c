"""Commit under compound faults: one regression test per finding of the fault study.

Each test drives the running app over HTTP against a real redis-server and the emulator,
with the faults combined as they were found, and checks what the admin sees and what
Dataverse holds. Each of them failed on the commit as it was before the redesign.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app import build_dataverse, commit_policy
from emulator.testing import (
    EmulatorControl,
    delay,
    drop,
    malformed,
    passthrough,
    throttle,
    write_then_drop,
)
from services.commit import CommitService
from services.errors import LeaseLostError
from services.models import Principal, Privilege
from services.sessions import SessionService
from settings import Settings
from tests.conftest import ORG_A, GraphQLClient, make_settings, serve, token
from tests.graphql_documents import (
    ADD_PRODUCT,
    CANCEL_SESSION,
    CONFIGURE_TARGET,
    SESSION,
    SESSION_PROGRESS,
    product_input,
)
from tests.redis_server import RedisServer
from tests.test_commit import COMMIT, _create_product_elsewhere, commit, ready_draft
from tests.waiting import eventually, eventually_state

pytestmark = pytest.mark.anyio

# Every read of the client is tried three times: this many drops defeat three reads.
LOST_READS = [drop("read")] * 9
NEW_DRAFT = "mutation NewDraft { createSession { session { sessionId } } }"
UNCONFIRMED = """
query Unconfirmed($sessionId: ID!) {
  sessionProgress(sessionId: $sessionId) { state canCommit commitUnconfirmed }
}
"""


@asynccontextmanager
async def app_client(redis_server: RedisServer, **overrides: Any) -> AsyncIterator[GraphQLClient]:
    """The app with these settings, and a client signed in as user-1."""
    async with (
        serve(make_settings(redis_server, **overrides)) as url,
        httpx.AsyncClient(base_url=url, timeout=60) as http,
    ):
        yield GraphQLClient(http, token())


def owner() -> Principal:
    return Principal("user-1", Privilege.ADMIN, ORG_A, datetime(2100, 1, 1, tzinfo=UTC))


async def unconfirmed_draft(client: GraphQLClient, dataverse: EmulatorControl) -> str:
    """A draft whose first write landed but whose answer and every later look were lost."""
    sid = await ready_draft(client, target={"province": ["ONTARIO"]})
    await dataverse.set_faults(
        queue=[passthrough("read"), write_then_drop("batch"), *LOST_READS, *LOST_READS]
    )
    failed = await commit(client, sid)
    await dataverse.clear_faults()
    assert failed["success"] is False
    assert failed["session"]["state"] == "FAILED"
    assert "commit again" in failed["errors"][0]
    return sid


async def stored_price(dataverse: EmulatorControl) -> float:
    (product,) = await dataverse.products()
    return float(product["osot_general_price"])


# -- 1. An edit after an unconfirmed failure is never silently lost ----------------------------


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        (ADD_PRODUCT, {"input": product_input(generalPrice=249)}),
        (ADD_PRODUCT, {"input": product_input(productCode="OSOT-OTHER-CODE")}),
        (CONFIGURE_TARGET, {"input": {"province": ["QUEBEC"]}}),
    ],
    ids=["price", "code", "target"],
)
async def test_an_edit_after_an_unconfirmed_write_is_refused_until_a_commit_confirms_it(
    client: GraphQLClient,
    dataverse: EmulatorControl,
    document: str,
    variables: dict[str, Any],
) -> None:
    # given a commit whose write landed in Dataverse but could not be confirmed
    sid = await unconfirmed_draft(client, dataverse)

    # when the admin edits the draft, then commits again
    edited = await client.data(document, {"sessionId": sid, **variables})
    committed = await commit(client, sid)
    session = (await client.data(SESSION, {"sessionId": sid}))["session"]

    # then the edit was refused with a clear reason, and what the API reports is what
    # Dataverse holds: one product, the draft as it was when it was first sent
    (payload,) = edited.values()
    assert [e["code"] for e in payload["userErrors"]] == ["COMMIT_UNCONFIRMED"]
    assert "may already be in Dataverse" in payload["userErrors"][0]["message"]
    assert committed["success"] is True
    assert len(await dataverse.products()) == 1 and len(await dataverse.targets()) == 1
    assert await stored_price(dataverse) == 199.99
    assert float(session["product"]["generalPrice"]) == 199.99
    assert session["product"]["productCode"] == "OSOT-WORKSHOP-2026"
    assert session["audienceTarget"]["province"] == ["ONTARIO"]


async def test_cancel_is_refused_while_a_write_is_unconfirmed(
    client: GraphQLClient, dataverse: EmulatorControl
) -> None:
    sid = await unconfirmed_draft(client, dataverse)

    progress = (await client.data(UNCONFIRMED, {"sessionId": sid}))["sessionProgress"]
    cancelled = (await client.data(CANCEL_SESSION, {"sessionId": sid}))["cancelSession"]

    assert progress == {"state": "FAILED", "canCommit": True, "commitUnconfirmed": True}
    assert cancelled["cancelled"] is False
    assert [e["code"] for e in cancelled["userErrors"]] == ["COMMIT_UNCONFIRMED"]
    assert (await commit(client, sid))["success"] is True


# -- 2. A code is never committed twice, even when a draft expires while its commit waits --------


async def test_a_commit_waiting_out_a_throttle_past_expiry_keeps_its_code(
    redis_server: RedisServer, redis: Redis, dataverse: EmulatorControl
) -> None:
    async with app_client(
        redis_server, session_ttl_seconds=3, commit_max_wait_seconds=10
    ) as client:
        # given draft A, whose commit is throttled past the draft's expiresAt
        sid = await ready_draft(client)
        await dataverse.set_faults(queue=[throttle("batch", retry_after=5)])
        running = asyncio.create_task(commit(client, sid))
        await eventually_state(client, sid, "COMMITTING")
        await eventually(
            lambda: client.data(SESSION_PROGRESS, {"sessionId": sid}),
            lambda p: p["sessionProgress"]["secondsRemaining"] == 0,
        )
        await asyncio.sleep(1.5)  # the sweeper (every second) has had its chance

        # when another admin takes the same code while A still waits
        other = GraphQLClient(client.http, token("user-2"))
        b = (await other.data(NEW_DRAFT))["createSession"]["session"]
        taken = await other.data(
            ADD_PRODUCT, {"sessionId": b["sessionId"], "input": product_input()}
        )
        a = await running

    # then B is refused, and A's retry wrote the one product with that code
    assert [e["code"] for e in taken["addProduct"]["userErrors"]] == ["PRODUCT_CODE_TAKEN"]
    assert a["success"] is True
    assert len(await dataverse.products("osot_product_code eq 'OSOT-WORKSHOP-2026'")) == 1


# -- 3. Queries never write ---------------------------------------------------------------------


async def test_session_progress_does_not_touch_a_stale_commit(
    redis_server: RedisServer, redis: Redis, dataverse: EmulatorControl
) -> None:
    async with app_client(redis_server, commit_recovery_interval_seconds=3600) as client:
        # given a commit whose process died before writing, its lease run out
        sid = await ready_draft(client)
        sessions = SessionService(redis)
        await sessions.begin_commit(
            owner(), sid, lease_owner="dead", lease=timedelta(milliseconds=1), operation_id="op"
        )
        await asyncio.sleep(0.05)
        before = await sessions.get(owner(), sid)

        # when the admin reads its progress, twice
        first = (await client.data(SESSION_PROGRESS, {"sessionId": sid}))["sessionProgress"]
        second = (await client.data(SESSION_PROGRESS, {"sessionId": sid}))["sessionProgress"]

    # then nothing changed: no new version, no recovery, no request to Dataverse
    assert first["state"] == second["state"] == "COMMITTING"
    assert first["version"] == second["version"] == before.version
    assert (await sessions.get(owner(), sid)).version == before.version
    assert [r for r in await dataverse.requests() if "$batch" in r["path"]] == []


async def test_a_failed_commit_is_never_taken_over_and_keeps_its_errors(
    client: GraphQLClient, redis: Redis, dataverse: EmulatorControl, settings: Settings
) -> None:
    # given a commit that failed for a real reason (the code exists in Dataverse)
    sid = await ready_draft(client)
    await _create_product_elsewhere(dataverse, "OSOT-WORKSHOP-2026")
    failed = await commit(client, sid)
    assert failed["userErrors"][0]["code"] == "PRODUCT_CODE_TAKEN"

    # when recoverers look for commits to finish
    async with build_dataverse(settings) as dv:
        commits = CommitService(SessionService(redis), dv)
        outcomes = [await commits.recover(sid) for _ in range(2)]
    progress = (await client.data(SESSION_PROGRESS, {"sessionId": sid}))["sessionProgress"]

    # then nothing is due: the real error stays
    assert outcomes == [None, None]
    assert progress["state"] == "FAILED"
    assert progress["errors"] == failed["errors"]


async def test_a_stale_commit_is_claimed_by_one_recoverer_only(
    client: GraphQLClient, redis: Redis, dataverse: EmulatorControl
) -> None:
    sid = await ready_draft(client)
    sessions = SessionService(redis)
    await sessions.begin_commit(
        owner(), sid, lease_owner="dead", lease=timedelta(milliseconds=1), operation_id="op"
    )
    await asyncio.sleep(0.05)
    claims = await asyncio.gather(
        *(
            sessions.take_over(
                sid, lease_owner=f"r{i}", lease=timedelta(seconds=30), operation_id="r"
            )
            for i in range(5)
        )
    )
    assert sum(claim is not None for claim in claims) == 1


# -- 4. A write on its way is never called "nothing written" -----------------------------------


async def test_a_killed_commit_whose_write_lands_late_is_finished_once(
    redis_server: RedisServer, redis: Redis, dataverse: EmulatorControl
) -> None:
    settings = make_settings(
        redis_server,
        commit_lease_seconds=1.5,
        dataverse_timeout_seconds=5,
        commit_settle_seconds=30,
    )
    async with app_client(
        redis_server, commit_lease_seconds=1.5, commit_settle_seconds=30
    ) as client:
        sid = await ready_draft(client)
        # given an instance that sent the write, which Dataverse applies 3 s later, and died
        await dataverse.set_faults(queue=[delay(3000, "batch")])
        sessions = SessionService(redis)
        async with build_dataverse(settings) as dv:
            dying = CommitService(sessions, dv, commit_policy(settings))
            task = asyncio.create_task(dying.commit(owner(), sid, "op-dying"))
            await eventually(
                lambda: sessions.get(owner(), sid),
                lambda d: d.commit is not None and d.commit.last_write_at_ms > 0,
            )
            task.cancel()  # like SIGKILL: nothing of this process runs any more

        # when the admin looks after the lease ran out and tries to give the code up
        await asyncio.sleep(1.6)
        progress = (await client.data(SESSION_PROGRESS, {"sessionId": sid}))["sessionProgress"]
        cancelled = (await client.data(CANCEL_SESSION, {"sessionId": sid}))["cancelSession"]
        final = await eventually_state(client, sid, "COMMITTED")
        await asyncio.sleep(1.5)  # the late write has landed by now (and been refused)

    # then no one said "nothing was written", the code stayed, and there is one product
    assert "nothing was written" not in " ".join(progress["errors"]).lower()
    assert cancelled["cancelled"] is False
    assert final["state"] == "COMMITTED"
    assert len(await dataverse.products()) == 1 and len(await dataverse.targets()) == 1


async def test_a_timed_out_write_keeps_the_draft_and_its_code_until_confirmed(
    redis_server: RedisServer, dataverse: EmulatorControl
) -> None:
    async with app_client(
        redis_server, dataverse_timeout_seconds=1, commit_settle_seconds=30
    ) as client:
        # given a write Dataverse applies only after the client gave up, and lost reads
        sid = await ready_draft(client)
        await dataverse.set_faults(
            queue=[passthrough("read"), delay(2500, "batch"), *LOST_READS, *LOST_READS]
        )
        failed = await commit(client, sid)
        await dataverse.clear_faults()

        # when another admin wants the code, and the first one wants to cancel
        other = GraphQLClient(client.http, token("user-2"))
        b = (await other.data(NEW_DRAFT))["createSession"]["session"]
        taken = await other.data(
            ADD_PRODUCT, {"sessionId": b["sessionId"], "input": product_input()}
        )
        cancelled = (await client.data(CANCEL_SESSION, {"sessionId": sid}))["cancelSession"]
        again = await commit(client, sid)

    assert failed["success"] is False and "commit again" in failed["errors"][0]
    assert [e["code"] for e in taken["addProduct"]["userErrors"]] == ["PRODUCT_CODE_TAKEN"]
    assert [e["code"] for e in cancelled["userErrors"]] == ["COMMIT_UNCONFIRMED"]
    assert again["success"] is True
    assert len(await dataverse.products()) == 1


# -- 5. The lease is renewed while Dataverse is slow, and writes are fenced ---------------------


async def test_a_slow_code_look_up_does_not_lose_the_lease(
    redis_server: RedisServer, dataverse: EmulatorControl
) -> None:
    async with app_client(redis_server, commit_lease_seconds=1) as client:
        sid = await ready_draft(client)
        # given a code look-up that takes three leases
        await dataverse.set_faults(queue=[delay(3000, "read")])
        first = asyncio.create_task(commit(client, sid))
        await eventually_state(client, sid, "COMMITTING")
        await asyncio.sleep(1.5)

        # when another commit of the same draft comes in after the first lease would end
        second = await commit(client, sid)
        done = await first

    # then the first commit still owns it and finishes; the second is told so
    assert [e["code"] for e in second["userErrors"]] == ["COMMIT_IN_PROGRESS"]
    assert done["success"] is True
    assert len(await dataverse.products()) == 1


async def test_a_process_that_lost_its_lease_cannot_write(
    client: GraphQLClient, redis: Redis, dataverse: EmulatorControl
) -> None:
    sid = await ready_draft(client)
    sessions = SessionService(redis)
    stale = await sessions.begin_commit(
        owner(), sid, lease_owner="slow", lease=timedelta(milliseconds=1), operation_id="op"
    )
    await asyncio.sleep(0.05)
    assert await sessions.take_over(
        sid, lease_owner="recoverer", lease=timedelta(seconds=30), operation_id="r"
    )

    with pytest.raises(LeaseLostError):
        await sessions.fence(stale, lease_owner="slow", lease=timedelta(seconds=30))


# -- 6. An unconfirmed commit that ends after expiresAt keeps its draft -------------------------


async def test_an_unconfirmed_commit_past_expiry_is_kept_and_confirmed(
    redis_server: RedisServer, dataverse: EmulatorControl
) -> None:
    async with app_client(
        redis_server, session_ttl_seconds=2, commit_recovery_interval_seconds=3600
    ) as client:
        # given a commit that wrote, lost every answer, and ended after the draft's expiresAt
        sid = await ready_draft(client)
        await dataverse.set_faults(
            latency_ms=300,
            queue=[passthrough("read"), write_then_drop("batch"), *LOST_READS, *LOST_READS],
        )
        failed = await commit(client, sid)
        await dataverse.clear_faults()
        past_expiry = (await client.data(SESSION_PROGRESS, {"sessionId": sid}))["sessionProgress"]

        # when the admin follows the advice and commits again
        again = await commit(client, sid)

    (product,) = await dataverse.products()
    assert failed["success"] is False and "commit again" in failed["errors"][0]
    assert past_expiry["state"] == "FAILED" and past_expiry["secondsRemaining"] == 0
    assert again["success"] is True
    assert again["productGuid"] == product["osot_table_productid"]


async def test_the_recoverer_confirms_an_abandoned_unconfirmed_commit(
    redis_server: RedisServer, dataverse: EmulatorControl
) -> None:
    async with app_client(redis_server, session_ttl_seconds=2, commit_lease_seconds=1) as client:
        sid = await ready_draft(client)
        await dataverse.set_faults(
            queue=[passthrough("read"), write_then_drop("batch"), *LOST_READS, *LOST_READS]
        )
        await commit(client, sid)
        await dataverse.clear_faults()

        # the admin walks away: once expiresAt passed, an instance finishes the commit
        final = await eventually_state(client, sid, "COMMITTED")

    assert final["percentage"] == 100
    assert len(await dataverse.products()) == 1


# -- 7. Odd Dataverse answers never lock a draft -----------------------------------------------


@pytest.mark.parametrize("retry_after", ["inf", "1e12"])
async def test_an_odd_retry_after_fails_cleanly_and_leaves_the_draft_committable(
    client: GraphQLClient, dataverse: EmulatorControl, retry_after: str
) -> None:
    sid = await ready_draft(client)
    await dataverse.set_faults(queue=[throttle("batch", retry_after=retry_after)] * 3)

    failed = await client.execute(COMMIT, {"sessionId": sid})
    await dataverse.clear_faults()
    again = await commit(client, sid)

    assert "errors" not in failed
    assert failed["data"]["commit"]["userErrors"][0]["code"] == "DATAVERSE_UNAVAILABLE"
    assert failed["data"]["commit"]["session"]["state"] == "FAILED"
    assert again["success"] is True


async def test_a_look_up_row_without_its_columns_is_a_dataverse_error(
    client: GraphQLClient, dataverse: EmulatorControl
) -> None:
    sid = await ready_draft(client)
    await dataverse.set_faults(queue=[malformed("read")] * 3)

    failed = await client.execute(COMMIT, {"sessionId": sid})
    await dataverse.clear_faults()
    again = await commit(client, sid)

    assert "errors" not in failed
    payload = failed["data"]["commit"]
    assert payload["userErrors"][0]["code"] == "DATAVERSE_UNAVAILABLE"
    assert "unreadable" in payload["errors"][0] and "Nothing was written" in payload["errors"][0]
    assert again["success"] is True


# -- 8. After a successful write, the answer says so even when Redis lost the draft -------------


async def test_a_write_that_outlives_the_drafts_redis_state_is_reported(
    client: GraphQLClient, redis: Redis, dataverse: EmulatorControl
) -> None:
    sid = await ready_draft(client)
    await dataverse.set_faults(queue=[delay(1000, "batch")])
    running = asyncio.create_task(commit(client, sid))
    await eventually(lambda: dataverse.faults(), lambda f: f["queue"] == [])
    await redis.flushdb()  # Redis restarted without persistence while the write ran

    answer = await running
    again = await commit(client, sid)
    stranger = await client.data(COMMIT, {"sessionId": sid}, token=token("user-2"))

    (product,) = await dataverse.products()
    assert answer["success"] is True and answer["session"] is None
    assert answer["productGuid"] == product["osot_table_productid"]
    assert "could not be updated" in answer["errors"][0]
    assert again["success"] is True and again["productGuid"] == answer["productGuid"]
    assert stranger["commit"]["userErrors"][0]["code"] == "SESSION_NOT_FOUND"


async def test_a_write_whose_outcome_redis_cannot_record_is_reported(
    dataverse: EmulatorControl,
) -> None:
    own = RedisServer()
    own.start()
    try:
        async with app_client(own, redis_url=own.url(0)) as client:
            sid = await ready_draft(client)
            await dataverse.set_faults(queue=[delay(1500, "batch")])
            running = asyncio.create_task(commit(client, sid))
            await eventually(lambda: dataverse.faults(), lambda f: f["queue"] == [])
            own.stop()  # unreachable when the outcome is saved
            answer = await running
            own.start()
    finally:
        own.cleanup()

    (product,) = await dataverse.products()
    assert answer["success"] is True
    assert answer["productGuid"] == product["osot_table_productid"]
    assert "session store is unavailable" in answer["errors"][0]


# -- An edit lost by a failover is never committed in its place -------------------------------

COMMIT_VERSION = """
mutation CommitVersion($sessionId: ID!, $expectedVersion: Int) {
  commit(sessionId: $sessionId, expectedVersion: $expectedVersion) {
    success productGuid userErrors { field code message }
  }
}
"""


async def test_commit_writes_only_the_version_the_admin_reviewed(
    client: GraphQLClient, dataverse: EmulatorControl
) -> None:
    # given a draft at version v, then an edit the admin's page has not seen (or that a
    # failover lost after the admin saw it)
    sid = await ready_draft(client)
    reviewed = (await client.data(SESSION_PROGRESS, {"sessionId": sid}))["sessionProgress"]
    await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input(generalPrice=5)})

    # when the admin commits what they reviewed, then what is there, then again (a retry)
    stale = await client.data(
        COMMIT_VERSION, {"sessionId": sid, "expectedVersion": reviewed["version"]}
    )
    current = (await client.data(SESSION_PROGRESS, {"sessionId": sid}))["sessionProgress"]
    fresh = await client.data(
        COMMIT_VERSION, {"sessionId": sid, "expectedVersion": current["version"]}
    )
    retried = await client.data(
        COMMIT_VERSION, {"sessionId": sid, "expectedVersion": current["version"]}
    )

    # then the stale commit wrote nothing; the right one wrote once; its retry answers it
    assert [e["code"] for e in stale["commit"]["userErrors"]] == ["STALE_VERSION"]
    assert fresh["commit"]["success"] is True
    assert retried["commit"]["success"] is True
    assert retried["commit"]["productGuid"] == fresh["commit"]["productGuid"]
    assert await stored_price(dataverse) == 5
