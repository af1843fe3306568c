"""What the service checks about its Redis when it starts, and starting before Redis does."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import RedisCluster

from app import connect_redis, create_app
from emulator.testing import EmulatorControl
from services.redis_client import RedisSetupError
from tests.dataverse_emulator import ThreadedEmulator
from tests.graphql_documents import CREATE_SESSION
from tests.ha.conftest import Deployment
from tests.ha.topology import ClusterTopology
from tests.helpers import SECRET, GraphQLClient, eventually, make_settings, serve_app, token
from tests.redis_server import RedisServer

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parent.parent.parent


@pytest.fixture
def evicting_redis() -> Iterator[RedisServer]:
    server = RedisServer("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def durable_redis() -> Iterator[RedisServer]:
    server = RedisServer("--appendonly", "yes")
    server.start()
    yield server
    server.cleanup()


def serve_command(
    env: dict[str, str], emulator: ThreadedEmulator, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "REDIS_", "DATAVERSE_"))
    }
    return subprocess.run(
        [sys.executable, "-c", "import cli; cli.main()", "serve", "--port", "1"],
        env=base
        | {
            "JWT_SECRET": SECRET,
            "DATAVERSE_URL": emulator.base_url,
            "DATAVERSE_TOKEN": emulator.token,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_serve_refuses_a_redis_that_would_evict_drafts(
    evicting_redis: RedisServer, dataverse_emulator: ThreadedEmulator
) -> None:
    result = serve_command({"REDIS_URL": evicting_redis.url(0)}, dataverse_emulator)

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("orchestrator: configuration error: REDIS_URL: ")
    assert "allkeys-lru" in lines[0] and "noeviction" in lines[0]


def test_serve_refuses_wrong_credentials_with_one_line(
    durable_redis: RedisServer, dataverse_emulator: ThreadedEmulator
) -> None:
    url = f"redis://nobody:wrong@127.0.0.1:{durable_redis.port}/0"
    result = serve_command({"REDIS_URL": url}, dataverse_emulator)

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "REDIS_URL" in lines[0] and "credentials" in lines[0]
    assert "wrong" not in lines[0]  # the password is not echoed


async def test_the_app_itself_refuses_an_evicting_redis(evicting_redis: RedisServer) -> None:
    # the app's lifespan opens Redis this way, so the refusal holds however it is served
    settings = make_settings(evicting_redis, redis_url=evicting_redis.url(0))

    with pytest.raises(RedisSetupError) as refused:
        await connect_redis(settings)

    assert "maxmemory-policy allkeys-lru" in str(refused.value)


async def test_a_redis_without_persistence_is_warned_about_outside_dev(
    redis_server: RedisServer,
    durable_redis: RedisServer,
    dataverse: EmulatorControl,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given the test suite's redis-server (no AOF, no RDB) and one with AOF on
    volatile = make_settings(redis_server, redis_url=redis_server.url(0))
    durable = make_settings(durable_redis, redis_url=durable_redis.url(0))

    with caplog.at_level(logging.WARNING, logger="orchestrator"):
        async with serve_app(create_app(volatile)):
            warned = [r.getMessage() for r in caplog.records if "persists nothing" in r.message]
        caplog.clear()
        async with serve_app(create_app(volatile, dev=True)):
            warned_in_dev = [r for r in caplog.records if "persists nothing" in r.message]
        async with serve_app(create_app(durable)):
            warned_durable = [r for r in caplog.records if "persists nothing" in r.message]

    assert len(warned) == 1 and "appendonly" in warned[0]
    assert warned_in_dev == [] and warned_durable == []


async def test_a_cluster_that_starts_after_the_service_is_found_then(
    dataverse_emulator: ThreadedEmulator, dataverse: EmulatorControl
) -> None:
    # given a service whose REDIS_URL names a cluster node that is not up yet
    topology = ClusterTopology()
    deployment = Deployment("cluster", topology, dataverse_emulator)
    app = create_app(deployment.settings())
    try:
        async with serve_app(app) as (url, _), httpx.AsyncClient(base_url=url) as http:
            client = GraphQLClient(http, token())
            down = await client.execute(CREATE_SESSION)
            not_ready = await http.get("/ready")

            # when the cluster comes up
            topology.start()

            # then the same process finds it is a cluster and serves through it
            await eventually(lambda: app.state.redis_store.mode == "cluster", within=30)
            created = await client.data(CREATE_SESSION)
            store = app.state.redis_store
            switched = isinstance(store.client.current, RedisCluster)
            ready = await http.get("/ready")
    finally:
        topology.cleanup()

    assert down["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert not_ready.status_code == 503
    assert created["createSession"]["session"]["state"] == "INITIATED"
    assert switched
    assert ready.status_code == 200


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"REDIS_SENTINELS": "127.0.0.1:26379"}, "REDIS_SENTINEL_MASTER"),
        ({"REDIS_SENTINEL_MASTER": "drafts"}, "REDIS_SENTINELS"),
        (
            {
                "REDIS_URL": "redis://127.0.0.1:6379/0",
                "REDIS_SENTINELS": "127.0.0.1:26379",
                "REDIS_SENTINEL_MASTER": "drafts",
            },
            "REDIS_SENTINELS",
        ),
        ({"REDIS_SENTINELS": "host:port", "REDIS_SENTINEL_MASTER": "drafts"}, "REDIS_SENTINELS"),
        ({"REDIS_URL": "redis://127.0.0.1:6379/0", "SHUTDOWN_TIMEOUT_SECONDS": "0"}, "SHUTDOWN"),
    ],
    ids=["master-missing", "sentinels-missing", "url-and-sentinels", "bad-address", "shutdown"],
)
def test_redis_configuration_errors_are_one_line_naming_the_variable(
    env: dict[str, str], variable: str, dataverse_emulator: ThreadedEmulator
) -> None:
    result = serve_command(env, dataverse_emulator)

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("orchestrator: configuration error:")
    assert variable in lines[0]
