"""GET /metrics: each figure, read back over HTTP after doing what it counts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from emulator.testing import EmulatorControl, drop, throttle, unavailable
from settings import Settings
from telemetry.metrics import OperationLabels
from tests.graphql_documents import CANCEL_SESSION, CREATE_SESSION
from tests.ha.test_shutdown import orchestrator_serve
from tests.helpers import (
    GraphQLClient,
    RedisServer,
    create_session,
    eventually,
    make_settings,
    serve,
    token,
)
from tests.test_commit import _create_product_elsewhere, commit, ready_draft
from tests.test_subscriptions import SESSION_EVENTS
from tests.ws_client import subscription

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parent.parent

DATAVERSE = "orchestrator_dataverse_requests_total"
WORKERS_DB = 11
CHANGE_SET = "create_product_with_target"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


def figure(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


class Delta:
    """The change of each figure between two scrapes (counters are per process, not per test)."""

    def __init__(self, before: Samples, after: Samples) -> None:
        self.before, self.after = before, after

    def __call__(self, name: str, **labels: str) -> float:
        return figure(self.after, name, **labels) - figure(self.before, name, **labels)


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        yield http


async def test_a_commit_shows_in_the_metrics(
    client: GraphQLClient, http: httpx.AsyncClient, dataverse: EmulatorControl
) -> None:
    # given
    before = await scrape(http)

    # when a draft is walked through the four steps
    sid = await ready_draft(client, target={"province": ["ONTARIO"]})
    assert (await commit(client, sid))["success"] is True

    # then
    delta = Delta(before, await scrape(http))
    assert delta("orchestrator_drafts_created_total") == 1
    assert delta("orchestrator_commits_total", outcome="committed") == 1
    assert delta("orchestrator_commit_duration_seconds_count") == 1
    assert delta("orchestrator_commit_duration_seconds_sum") > 0
    causes = ("throttled", "unavailable", "dropped", "unreachable", "other")
    assert sum(delta("orchestrator_commit_retries_total", cause=c) for c in causes) == 0
    # one code check at addProduct, one at commit, then the change set
    assert delta(DATAVERSE, operation="find_product_by_code", status="200") == 2
    assert delta(DATAVERSE, operation=CHANGE_SET, status="200") == 1
    duration = "orchestrator_dataverse_request_duration_seconds_count"
    assert delta(duration, operation=CHANGE_SET) == 1
    # HTTP requests by GraphQL operation name (the documents are named operations)
    assert delta("orchestrator_http_requests_total", operation="AddProduct", status="200") == 1
    assert delta("orchestrator_http_requests_total", operation="Commit", status="200") == 1
    assert delta("orchestrator_http_request_duration_seconds_count", operation="Commit") == 1


async def test_throttling_and_cancelling_show_in_the_metrics(
    client: GraphQLClient, http: httpx.AsyncClient, dataverse: EmulatorControl
) -> None:
    # given
    before = await scrape(http)
    sid = await ready_draft(client)
    cancelled = (await create_session(client))["sessionId"]
    await dataverse.set_faults(queue=[throttle("batch", retry_after=1)])

    # when the change set is throttled once, and the other draft is cancelled
    assert (await commit(client, sid))["success"] is True
    await client.data(CANCEL_SESSION, {"sessionId": cancelled})

    # then the throttled answer is counted under its status, the retry under 200
    delta = Delta(before, await scrape(http))
    assert delta(DATAVERSE, operation=CHANGE_SET, status="429") == 1
    assert delta(DATAVERSE, operation=CHANGE_SET, status="200") == 1
    assert delta("orchestrator_commit_retries_total", cause="throttled") == 1
    assert delta("orchestrator_commits_total", outcome="committed") == 1
    assert delta("orchestrator_drafts_created_total") == 2
    assert delta("orchestrator_drafts_cancelled_total") == 1


async def test_failed_and_conflicting_commits_are_counted_with_their_retries(
    client: GraphQLClient, http: httpx.AsyncClient, dataverse: EmulatorControl
) -> None:
    # given a draft whose commit meets a 503 and two dropped connections (3 attempts)
    failing = await ready_draft(client, productCode="FAILS-1")
    conflicting = await ready_draft(client, productCode="TAKEN-1")
    before = await scrape(http)
    await dataverse.set_faults(
        queue=[unavailable("batch"), drop("batch"), drop("batch"), drop("any"), drop("any")]
    )

    # when it gives up, and another draft's code is created elsewhere before its commit
    assert (await commit(client, failing))["success"] is False
    await dataverse.clear_faults()
    await _create_product_elsewhere(dataverse, "taken-1")
    taken = await commit(client, conflicting)

    # then
    assert taken["userErrors"][0]["code"] == "PRODUCT_CODE_TAKEN"
    delta = Delta(before, await scrape(http))
    assert delta("orchestrator_commits_total", outcome="failed") == 1
    assert delta("orchestrator_commits_total", outcome="conflict") == 1
    assert delta("orchestrator_commits_total", outcome="committed") == 0
    assert delta("orchestrator_commit_duration_seconds_count") == 2
    assert delta("orchestrator_commit_retries_total", cause="unavailable") == 1
    assert delta("orchestrator_commit_retries_total", cause="dropped") == 1
    assert delta(DATAVERSE, operation=CHANGE_SET, status="503") == 1
    assert delta(DATAVERSE, operation=CHANGE_SET, status="connection_error") == 2


async def test_subscriptions_and_their_events_are_counted(
    client: GraphQLClient, http: httpx.AsyncClient, base_url: str
) -> None:
    # given
    sid = (await create_session(client))["sessionId"]
    before = await scrape(http)

    # when a subscriber gets its snapshot and then the cancellation
    async with subscription(base_url, token(), SESSION_EVENTS, {"sessionId": sid}) as ws:
        assert (await ws.event())["type"] == "SNAPSHOT"
        during = await scrape(http)
        await client.data(CANCEL_SESSION, {"sessionId": sid})
        assert (await ws.event())["type"] == "CANCELLED"
        await ws.completed()

    # then the stream was counted while open, and each event by type
    assert Delta(before, during)("orchestrator_subscriptions_active") == 1

    async def closed_again() -> float:
        return Delta(before, await scrape(http))("orchestrator_subscriptions_active")

    await eventually(closed_again, 0)
    delta = Delta(before, await scrape(http))
    assert delta("orchestrator_subscription_events_total", type="SNAPSHOT") == 1
    assert delta("orchestrator_subscription_events_total", type="CANCELLED") == 1


async def test_an_expired_draft_is_counted(redis_server: RedisServer, redis: Redis) -> None:
    settings = make_settings(redis_server, session_ttl_seconds=1)
    async with serve(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        before = await scrape(http)
        await create_session(GraphQLClient(http, token()))

        async def expired() -> float:
            return Delta(before, await scrape(http))("orchestrator_drafts_expired_total")

        # the sweeper fires the notice once the draft's second has passed
        await eventually(expired, 1, within=10)


async def test_a_redis_failure_is_counted(settings: Settings) -> None:
    # given an app whose Redis is gone (a port nobody listens on)
    down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    async with serve(down) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        before = await scrape(http)

        # when
        body = (await GraphQLClient(http, token()).post(CREATE_SESSION)).json()

        # then
        assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        delta = Delta(before, await scrape(http))
        assert delta("orchestrator_redis_errors_total") >= 1


async def test_refused_operations_share_one_label(
    client: GraphQLClient, http: httpx.AsyncClient
) -> None:
    before = await scrape(http)

    # an operation that never runs (it does not validate) is not labelled by its name
    await client.post("query NoSuchThing { nothingHere }")

    delta = Delta(before, await scrape(http))
    assert delta("orchestrator_http_requests_total", operation="NoSuchThing", status="200") == 0
    assert (
        sum(
            value - figure(before, name, **dict(labels))
            for (name, labels), value in delta.after.items()
            if name == "orchestrator_http_requests_total" and ("operation", "_refused") in labels
        )
        == 1
    )


def test_operation_names_are_bounded() -> None:
    operation_label = OperationLabels(limit=200)
    names = [f"Op{i}" for i in range(250)]

    labels = {operation_label(name) for name in names}

    assert len(labels) == 201
    assert "_other" in labels and operation_label("Op3") == "Op3"
    assert operation_label(None) == "_anonymous"
    assert operation_label("Op1", known=False) == "_refused"
    assert OperationLabels()("x" * 500) == "_other"


async def test_metrics_add_up_over_the_workers_of_serve(
    tmp_path: Path, redis_server: RedisServer, dataverse_emulator: Any, dataverse: EmulatorControl
) -> None:
    import redis as sync_redis

    url = redis_server.url(WORKERS_DB)
    sync_redis.Redis.from_url(url).flushdb()
    async with orchestrator_serve(tmp_path, dataverse_emulator, url, "--workers", "2") as served:
        # when 20 users each open a draft, every request on a connection of its own (the
        # kernel hands each connection to either worker)
        for i in range(20):
            async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
                await create_session(GraphQLClient(http, token(f"worker-user-{i}")))
        # then every scrape, whichever worker answers it, counts all of them
        scrapes = []
        for _ in range(6):
            async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
                scrapes.append(figure(await scrape(http), "orchestrator_drafts_created_total"))
        served.process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(served.process.wait, 30)
    sync_redis.Redis.from_url(url).flushdb()

    assert scrapes == [20.0] * 6


def test_metrics_add_up_across_worker_processes(tmp_path: Path) -> None:
    # Two "workers" count into one directory; the first stops as the app's lifespan does.
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    worker = (
        "from telemetry import metrics; metrics.DRAFTS_CREATED.inc({n}); "
        "metrics.SUBSCRIPTIONS_ACTIVE.inc({n}); {stop}"
    )
    for n, stop in ((2, "metrics.process_exited()"), (3, "")):
        code = worker.format(n=n, stop=stop)
        subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True)

    # when a third process renders what /metrics serves
    rendered = subprocess.run(
        [sys.executable, "-c", "from telemetry import metrics; print(metrics.render().decode())"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout

    # then counters add up over every process; open streams only over running ones
    samples = parse(rendered)
    assert figure(samples, "orchestrator_drafts_created_total") == 5
    assert figure(samples, "orchestrator_subscriptions_active") == 3
