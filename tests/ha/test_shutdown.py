"""`orchestrator serve` as a deployment runs it: SIGTERM during a slow commit, and --workers.

On SIGTERM an instance stops accepting connections, lets the in-flight commit finish (its
subscriber sees COMMITTED), then closes websockets with 1001 and exits; no draft is left
in COMMITTING.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import psutil
import pytest
import redis

from cli import free_port
from emulator.testing import EmulatorControl, delay
from tests.dataverse_emulator import ThreadedEmulator
from tests.graphql_documents import CREATE_SESSION
from tests.helpers import SECRET, GraphQLClient, make_settings, serve, token
from tests.redis_server import RedisServer
from tests.test_commit import COMMIT, ready_draft
from tests.test_subscriptions import SESSION_EVENTS
from tests.ws_client import subscription

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

ROOT = Path(__file__).parent.parent.parent
PROGRESS = """
query Progress($sessionId: ID!) {
  sessionProgress(sessionId: $sessionId) { state errors commitUnconfirmed }
}
"""
SHUTDOWN_DB = 12


@pytest.fixture
def shutdown_redis(redis_server: RedisServer) -> Iterator[str]:
    url = redis_server.url(SHUTDOWN_DB)
    with redis.Redis.from_url(url) as r:
        r.flushdb()
    yield url
    with redis.Redis.from_url(url) as r:
        r.flushdb()


class Served:
    """A running ``orchestrator serve`` process."""

    def __init__(self, process: subprocess.Popen[str], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@asynccontextmanager
async def orchestrator_serve(
    tmp_path: Path, emulator: ThreadedEmulator, redis_url: str, *args: str, **env: str
) -> AsyncIterator[Served]:
    port = free_port()
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "REDIS_", "DATAVERSE_"))
    }
    log = tmp_path / f"serve-{port}.log"
    command = [sys.executable, "-c", "import cli; cli.main()", "serve", "--port", str(port)]
    environment = base | {
        "REDIS_URL": redis_url,
        "JWT_SECRET": SECRET,
        "DATAVERSE_URL": emulator.base_url,
        "DATAVERSE_TOKEN": emulator.token,
        "LOG_FORMAT": "console",
        **env,
    }
    process = _spawn([*command, *args], environment, log)
    served = Served(process, f"http://127.0.0.1:{port}", log)
    try:
        await _wait_until_up(served)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with log.open("w") as out:
        return subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=ROOT
        )


def _stopped_gracefully(exit_code: int) -> bool:
    """uvicorn re-raises SIGTERM once it has shut down gracefully: the usual 143 status."""
    return exit_code in (0, -signal.SIGTERM)


async def _wait_until_up(served: Served, within: float = 60) -> None:
    with anyio.fail_after(within):
        async with httpx.AsyncClient(base_url=served.url, timeout=2) as http:
            while True:
                if served.process.poll() is not None:
                    raise AssertionError(f"serve exited:\n{served.output()}")
                try:
                    if (await http.get("/ready")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await anyio.sleep(0.1)


async def _refuses_connections(url: str) -> bool:
    try:
        async with httpx.AsyncClient(base_url=url, timeout=1) as http:
            await http.get("/health")
    except httpx.ConnectError:
        return True
    except httpx.TransportError:
        return False
    return False


async def test_sigterm_lets_the_commit_finish_tells_the_subscriber_and_closes_with_1001(
    tmp_path: Path,
    dataverse_emulator: ThreadedEmulator,
    dataverse: EmulatorControl,
    shutdown_redis: str,
) -> None:
    async with (
        orchestrator_serve(tmp_path, dataverse_emulator, shutdown_redis) as served,
        httpx.AsyncClient(base_url=served.url, timeout=60) as http,
    ):
        client = GraphQLClient(http, token())
        sid = await ready_draft(client, target={"province": ["ONTARIO"]}, productCode="BYE-1")
        async with subscription(served.url, token(), SESSION_EVENTS, {"sessionId": sid}) as ws:
            await ws.event()  # SNAPSHOT
            # given a slow commit in flight (each Dataverse call takes 1.5 s)
            await dataverse.set_faults(latency_ms=1500)
            committing = asyncio.create_task(client.execute(COMMIT, {"sessionId": sid}))
            started = await ws.event(within=10)

            # when the instance is asked to stop
            served.process.send_signal(signal.SIGTERM)
            with anyio.fail_after(5):
                while not await _refuses_connections(served.url):  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            refused_while_committing = not committing.done()

            # then the commit completes, the subscriber is told, then goes elsewhere
            answer = await committing
            committed = await ws.event(within=20)
            await ws.completed(within=5)
            code, _ = await ws.closed(within=10)
        exit_code = await asyncio.to_thread(served.process.wait, 30)

    assert started["type"] == "COMMIT_STARTED"
    assert refused_while_committing  # it stopped accepting at once, not after the commit
    assert answer["data"]["commit"]["success"] is True, answer
    assert committed["type"] == "COMMITTED"
    assert committed["productGuid"] == answer["data"]["commit"]["productGuid"]
    assert code == 1001
    assert _stopped_gracefully(exit_code), served.output()
    [product] = await dataverse.products()
    assert product["osot_table_productid"] == committed["productGuid"]
    assert _committing(shutdown_redis) == []


async def test_sigterm_closes_idle_websockets_with_1001_at_once(
    tmp_path: Path, dataverse_emulator: ThreadedEmulator, shutdown_redis: str
) -> None:
    async with orchestrator_serve(tmp_path, dataverse_emulator, shutdown_redis) as served:
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as http:
            created = await GraphQLClient(http, token()).data(CREATE_SESSION)
        sid = created["createSession"]["session"]["sessionId"]
        async with subscription(served.url, token(), SESSION_EVENTS, {"sessionId": sid}) as ws:
            await ws.event()

            served.process.send_signal(signal.SIGTERM)
            code, reason = await ws.closed(within=10)
        exit_code = await asyncio.to_thread(served.process.wait, 30)

    assert (code, reason) == (1001, "server shutting down")
    assert _stopped_gracefully(exit_code), served.output()


async def test_serve_workers_runs_whole_instances_that_share_only_redis(
    tmp_path: Path,
    dataverse_emulator: ThreadedEmulator,
    dataverse: EmulatorControl,
    shutdown_redis: str,
) -> None:
    async with orchestrator_serve(
        tmp_path, dataverse_emulator, shutdown_redis, "--workers", "2"
    ) as served:
        workers = [
            child
            for child in psutil.Process(served.process.pid).children()
            if "spawn_main" in " ".join(child.cmdline())
        ]
        with redis.Redis.from_url(shutdown_redis, decode_responses=True) as r:
            # each worker holds its own event subscription, like a separate machine would
            await asyncio.to_thread(_wait, lambda: _event_subscribers(r) == 2)
        async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
            client = GraphQLClient(http, token())
            sid = await ready_draft(client, target={"province": ["ONTARIO"]}, productCode="WRK-1")
            async with subscription(served.url, token(), SESSION_EVENTS, {"sessionId": sid}) as ws:
                await ws.event()
                answer = await client.execute(COMMIT, {"sessionId": sid})
                events = [await ws.event(within=10) for _ in range(2)]

        # when the supervisor is stopped, it stops its workers
        served.process.send_signal(signal.SIGTERM)
        exit_code = await asyncio.to_thread(served.process.wait, 30)
        await asyncio.to_thread(psutil.wait_procs, workers, 10)
        survivors = [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]

    assert len(workers) == 2
    assert answer["data"]["commit"]["success"] is True, answer
    assert [e["type"] for e in events] == ["COMMIT_STARTED", "COMMITTED"]
    assert _stopped_gracefully(exit_code), served.output()
    assert survivors == []


def _event_subscribers(r: redis.Redis) -> int:
    channel = "{orchestrator}:events"
    return int(dict(r.pubsub_shardnumsub(channel))[channel]) + int(
        dict(r.pubsub_numsub(channel))[channel]
    )


def _wait(check: Any, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def _committing(url: str) -> list[Any]:
    """Drafts left in COMMITTING (none must be, after a graceful shutdown)."""
    with redis.Redis.from_url(url, decode_responses=True) as r:
        keys = list(r.scan_iter("{orchestrator}:draft:*"))
        return [k for k in keys if '"COMMITTING"' in (r.get(k) or "")]


async def test_a_commit_past_the_shutdown_timeout_is_handed_over_not_left_committing(
    tmp_path: Path,
    dataverse_emulator: ThreadedEmulator,
    dataverse: EmulatorControl,
    redis_server: RedisServer,
    shutdown_redis: str,
) -> None:
    async with (
        orchestrator_serve(
            tmp_path, dataverse_emulator, shutdown_redis, SHUTDOWN_TIMEOUT_SECONDS="2"
        ) as served,
        httpx.AsyncClient(base_url=served.url, timeout=60) as http,
    ):
        client = GraphQLClient(http, token())
        sid = await ready_draft(client, target={"province": ["ONTARIO"]}, productCode="LATE-1")
        async with subscription(served.url, token(), SESSION_EVENTS, {"sessionId": sid}) as ws:
            await ws.event()
            # given a commit whose $batch Dataverse applies only 6 s later
            await dataverse.set_faults(queue=[delay(6000, match="batch")])
            committing = asyncio.create_task(client.post(COMMIT, {"sessionId": sid}))
            await asyncio.to_thread(_wait, lambda: _fenced(shutdown_redis, sid))

            # when the instance is stopped, with only 2 s for in-flight requests
            served.process.send_signal(signal.SIGTERM)
            code, _ = await ws.closed(within=10)
            exit_code = await asyncio.to_thread(served.process.wait, 30)
        with contextlib.suppress(httpx.TransportError):
            await committing  # its connection went with the process
    waiting = _committing_under_a_live_lease(shutdown_redis)

    # then another instance takes the commit over at once (no lease to wait out) and
    # finishes it by itself: one product, whether the late write landed first or not
    settings = make_settings(
        redis_server, redis_url=shutdown_redis, commit_recovery_interval_seconds=0.2
    )
    async with serve(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        client = GraphQLClient(http, token())
        with anyio.fail_after(30):
            while True:
                progress = await client.data(PROGRESS, {"sessionId": sid})
                if progress["sessionProgress"]["state"] == "COMMITTED":
                    break
                await anyio.sleep(0.2)
    with anyio.fail_after(30):  # until the late $batch has run too: it must not add a row
        while len([r for r in await dataverse.requests() if "$batch" in r["path"]]) < 2:  # noqa: ASYNC110
            await anyio.sleep(0.2)
    products = await dataverse.products()

    assert code == 1001
    assert _stopped_gracefully(exit_code)
    assert waiting == []  # handed over: no commit left waiting for its lease to run out
    assert [p["osot_product_code"] for p in products] == ["LATE-1"]


def _committing_under_a_live_lease(url: str) -> list[str]:
    with redis.Redis.from_url(url, decode_responses=True) as r:
        seconds, micros = r.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        keys = list(r.scan_iter("{orchestrator}:draft:*"))
        drafts = [json.loads(r.get(k) or "{}") for k in keys]
    return [
        d["sessionId"]
        for d in drafts
        if d.get("state") == "COMMITTING" and d["commit"]["leaseUntilMs"] > now_ms
    ]


def _fenced(url: str, session_id: str) -> bool:
    """True once the commit passed its fence: the $batch is on its way to Dataverse."""
    with redis.Redis.from_url(url, decode_responses=True) as r:
        raw = r.get(f"{{orchestrator}}:draft:{session_id}")
    return raw is not None and '"lastWriteAtMs":' in raw and '"lastWriteAtMs":0' not in raw
