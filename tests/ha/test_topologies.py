"""The service on a Redis Cluster (3 masters, 3 replicas) and on Sentinel, two instances each.

Each test runs once per deployment: the workflow, code reservation, commit and the
subscription, with changes made through one instance and read or watched through the other.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import anyio
import pytest
from redis.asyncio import RedisCluster

from app import create_app
from emulator.testing import EmulatorControl
from tests.graphql_documents import (
    ADD_PRODUCT,
    CANCEL_SESSION,
    CONFIGURE_TARGET,
    MY_SESSIONS,
    SESSION,
    SESSION_PROGRESS,
    product_input,
)
from tests.ha.conftest import Deployment, Instances, start_instances
from tests.helpers import ORG_A, create_session, serve_app, token
from tests.test_commit import COMMIT, commit, ready_draft
from tests.test_subscriptions import SESSION_EVENTS
from tests.ws_client import subscription

pytestmark = pytest.mark.anyio


async def test_the_service_finds_the_deployment_by_itself(
    empty: Deployment, dataverse: EmulatorControl
) -> None:
    # given only REDIS_URL (any node of the cluster) or REDIS_SENTINELS
    app = create_app(empty.settings())

    # when it starts
    async with serve_app(app):
        store = app.state.redis_store
        mode = store.mode
        is_cluster_client = isinstance(store.client, RedisCluster)
        channel = app.state.sessions.events_channel
        with empty.master().client() as master:
            # its one event subscription is on the master of the keys' slot: a shard channel
            # where Redis has them (7+), a classic one before
            subscribers = dict(master.pubsub_numsub(channel))[channel]
            if int(master.info("server")["redis_version"].split(".")[0]) >= 7:
                subscribers += dict(master.pubsub_shardnumsub(channel))[channel]

    # then it talks to the deployment the way it must
    assert mode == empty.name
    assert is_cluster_client is (empty.name == "cluster")
    assert subscribers == 1


async def test_workflow_across_two_instances(instances: Instances) -> None:
    a, b = instances.a, instances.b

    # given a draft opened on A
    sid = (await create_session(a))["sessionId"]

    # when its steps are done alternately through B and A
    added = await b.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input()})
    targeted = await a.data(
        CONFIGURE_TARGET, {"sessionId": sid, "input": {"province": ["ONTARIO", "QUEBEC"]}}
    )
    edited = await b.data(
        ADD_PRODUCT,
        {
            "sessionId": sid,
            "input": product_input(productName="Renamed"),
            "expectedVersion": targeted["configureTarget"]["session"]["version"],
        },
    )
    stale = await a.data(
        ADD_PRODUCT, {"sessionId": sid, "input": product_input(), "expectedVersion": 1}
    )

    # then each instance sees every change made through the other
    assert added["addProduct"]["userErrors"] == []
    assert targeted["configureTarget"]["userErrors"] == []
    assert edited["addProduct"]["userErrors"] == []
    assert [e["code"] for e in stale["addProduct"]["userErrors"]] == ["STALE_VERSION"]
    on_a = (await a.data(SESSION, {"sessionId": sid}))["session"]
    on_b = (await b.data(SESSION_PROGRESS, {"sessionId": sid}))["sessionProgress"]
    assert on_a["product"]["productName"] == "Renamed"
    assert on_a["audienceTarget"]["province"] == ["ONTARIO", "QUEBEC"]
    assert on_a["organizationGuid"] == ORG_A
    assert (on_b["state"], on_b["version"], on_b["canCommit"]) == ("TARGET_CONFIGURED", 4, True)
    assert (await b.data(MY_SESSIONS))["mySessions"] == [
        {"sessionId": sid, "state": "TARGET_CONFIGURED"}
    ]

    # and cancelling through B removes it for A
    await b.data(CANCEL_SESSION, {"sessionId": sid})
    gone = await a.execute(SESSION, {"sessionId": sid})
    assert gone["errors"][0]["extensions"]["code"] == "SESSION_NOT_FOUND"


async def test_code_reservation_across_instances(instances: Instances) -> None:
    a, b = instances.a, instances.b
    other = token("user-2")
    first = (await create_session(a))["sessionId"]
    second = (await create_session(b, token=other))["sessionId"]

    # given a code reserved through A
    held = await a.data(
        ADD_PRODUCT, {"sessionId": first, "input": product_input(productCode="HA-1")}
    )

    # when another user asks for it through B
    taken = await b.data(
        ADD_PRODUCT,
        {"sessionId": second, "input": product_input(productCode="ha-1")},
        token=other,
    )

    # then it is refused until A's draft lets it go
    assert held["addProduct"]["userErrors"] == []
    assert [e["code"] for e in taken["addProduct"]["userErrors"]] == ["PRODUCT_CODE_TAKEN"]
    await a.data(CANCEL_SESSION, {"sessionId": first})
    again = await b.data(
        ADD_PRODUCT,
        {"sessionId": second, "input": product_input(productCode="HA-1")},
        token=other,
    )
    assert again["addProduct"]["userErrors"] == []


async def test_commit_exactly_once_across_instances(
    instances: Instances, dataverse: EmulatorControl
) -> None:
    a, b = instances.a, instances.b
    sid = await ready_draft(a, target={"province": ["ONTARIO"]}, productCode="HA-COMMIT")

    # when it is committed through B, and again through A
    first = await commit(b, sid)
    again = await commit(a, sid)

    # then Dataverse has one product and its target, and both answers agree
    assert first["success"] is True, first
    assert again["success"] is True, again
    assert (again["productGuid"], again["targetGuid"]) == (
        first["productGuid"],
        first["targetGuid"],
    )
    [product] = await dataverse.products()
    [target] = await dataverse.targets()
    assert product["osot_table_productid"] == first["productGuid"]
    assert target["_osot_table_product_value"] == first["productGuid"]
    progress = (await a.data(SESSION_PROGRESS, {"sessionId": sid}))["sessionProgress"]
    assert progress["state"] == "COMMITTED"


async def test_subscriber_on_one_instance_follows_changes_made_on_the_other(
    instances: Instances, dataverse: EmulatorControl
) -> None:
    a = instances.a
    sid = (await create_session(a))["sessionId"]

    # given a subscriber on B
    async with subscription(instances.urls[1], token(), SESSION_EVENTS, {"sessionId": sid}) as ws:
        snapshot = await ws.event()

        # when the draft is changed and committed through A
        await a.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input(productCode="HA-SUB")})
        await a.data(CONFIGURE_TARGET, {"sessionId": sid, "input": {"province": ["ONTARIO"]}})
        committed = await a.data(COMMIT, {"sessionId": sid})
        events = [await ws.event(within=10) for _ in range(4)]
        await ws.completed(within=10)

    # then B delivered every change, in order, once, and completed after COMMITTED
    assert snapshot["type"] == "SNAPSHOT"
    assert [e["type"] for e in events] == [
        "PRODUCT_ADDED",
        "TARGET_CONFIGURED",
        "COMMIT_STARTED",
        "COMMITTED",
    ]
    assert [e["version"] for e in events] == list(
        range(snapshot["version"] + 1, snapshot["version"] + 5)
    )
    assert events[-1]["productGuid"] == committed["commit"]["productGuid"]


def _wait_calls(deployment: Deployment) -> int:
    with deployment.master().client() as master:
        return int(master.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))


async def test_a_commit_waits_for_a_replica_before_writing_dataverse(
    instances: Instances, empty: Deployment, dataverse: EmulatorControl
) -> None:
    sid = await ready_draft(instances.a, target={"province": ["ONTARIO"]}, productCode="HA-WAIT")
    before = _wait_calls(empty)

    result = await commit(instances.b, sid)

    # the master was asked to WAIT for the replica (right after the fence, before $batch)
    assert result["success"] is True, result
    assert _wait_calls(empty) > before


async def test_a_stalled_replica_holds_the_write_back_until_it_confirms(
    empty: Deployment, dataverse: EmulatorControl
) -> None:
    # A short lease and quick recovery, so the held-back commit is finished within the test.
    settings = empty.settings(commit_lease_seconds=3, commit_recovery_interval_seconds=0.2)
    async with AsyncExitStack() as stack:
        instances = await start_instances(stack, settings)
        sid = await ready_draft(
            instances.a, target={"province": ["ONTARIO"]}, productCode="HA-STALL"
        )
        replica = empty.replica()

        # when the replica stops answering (its connection stays up) during a commit
        replica.pause()
        try:
            answer = await instances.a.execute(COMMIT, {"sessionId": sid})
            rows_while_stalled = await dataverse.products()
        finally:
            replica.resume()

        # then Dataverse was not written while no replica could confirm the fence, and
        # once it can, the commit is finished (by a recoverer), once
        with anyio.fail_after(30):
            while True:
                progress = await instances.b.data(SESSION_PROGRESS, {"sessionId": sid})
                if progress["sessionProgress"]["state"] == "COMMITTED":
                    break
                await anyio.sleep(0.2)
        [product] = await dataverse.products()

    assert answer["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE", answer
    assert rows_while_stalled == []
    assert product["osot_product_code"] == "HA-STALL"
