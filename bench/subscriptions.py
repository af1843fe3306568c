"""Hold N sessionStateChanged subscribers on one app process and measure event delivery.

    .venv/bin/python bench/subscriptions.py [--subscribers 1000 5000] [--rate 500] [--duration 20]

For each N: starts its own redis-server, Dataverse emulator and one app server (bench/stack.py:
uvicorn without websocket compression, pinned to core 0), opens N graphql-transport-ws sockets
from this process (uvloop, on the other core), each subscribed to its own draft, then changes the
drafts at --rate per second through SessionService (the Lua script every mutation runs) and
prints delivery latency p50/p99 (change requested -> event received), delivered events/s, lost
and duplicated events, and the server's memory per connection (RSS delta / N). A benchmark,
not a test; every socket is on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
import uvloop
from redis.asyncio import BlockingConnectionPool, Redis
from websockets.asyncio.client import ClientConnection, connect

from bench.stack import JWT_SECRET, Stack, bench_authorization
from services.auth import AuthConfig, TokenVerifier
from services.models import Principal
from services.sessions import SessionService
from services.validation import validate_product, validate_target
from tests.graphql_documents import product_values

SUBSCRIPTION = """
subscription Events($sessionId: ID!) {
  sessionStateChanged(sessionId: $sessionId) {
    type sessionId state version occurredAt
    progress { percentage canCommit secondsRemaining expiringSoon }
  }
}
"""
PRODUCT = product_values(productName="Bench product")
# Targets the changes alternate between, so every change really changes the draft.
TARGETS = [
    validate_target({}),
    validate_target({"province": [1]}),
    validate_target({"gender": [1]}),
]


@dataclass
class Tally:
    """What the subscribers received: (session, version) -> arrival time, and duplicates."""

    arrivals: dict[tuple[str, int], float] = field(default_factory=dict)
    duplicates: int = 0
    errors: int = 0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def open_subscriber(url: str, token: str, session_id: str) -> ClientConnection:
    ws = await connect(
        url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        compression=None,
        proxy=None,
        open_timeout=60,
        ping_interval=None,
        max_queue=None,
    )
    await ws.send(
        orjson.dumps(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        ).decode()
    )
    ack = orjson.loads(await ws.recv())
    assert ack["type"] == "connection_ack", ack
    payload = {"query": SUBSCRIPTION, "variables": {"sessionId": session_id}}
    await ws.send(orjson.dumps({"type": "subscribe", "id": "1", "payload": payload}).decode())
    snapshot = orjson.loads(await ws.recv())
    assert snapshot["type"] == "next", snapshot
    assert snapshot["payload"]["data"]["sessionStateChanged"]["type"] == "SNAPSHOT", snapshot
    return ws


async def listen(ws: ClientConnection, tally: Tally) -> None:
    async for raw in ws:
        now = time.perf_counter()
        message = orjson.loads(raw)
        event = (message.get("payload", {}).get("data") or {}).get("sessionStateChanged")
        if message.get("type") != "next" or event is None:
            tally.errors += 1
            continue
        key = (event["sessionId"], event["version"])
        if key in tally.arrivals:
            tally.duplicates += 1
        else:
            tally.arrivals[key] = now


async def publish(
    sessions: SessionService, owner: Principal, drafts: list[str], rate: float, duration: float
) -> dict[tuple[str, int], float]:
    """Change the drafts round robin at *rate* per second (open loop); return send times."""
    sent: dict[tuple[str, int], float] = {}
    failures: list[str] = []
    targets = itertools.cycle(TARGETS)
    order = itertools.cycle(drafts)
    tasks: set[asyncio.Task[None]] = set()

    async def change(session_id: str) -> None:
        started = time.perf_counter()
        try:
            draft = await sessions.configure_target(owner, session_id, next(targets))
        except Exception as exc:  # counted and reported, not fatal
            failures.append(f"{exc!r} caused by {exc.__cause__!r}")
            return
        sent[(session_id, draft.version)] = started

    begin = time.perf_counter()
    for i in range(int(rate * duration)):
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(change(next(order)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    if failures:
        print(f"  {len(failures)} changes failed, e.g. {failures[0]}")
    return sent


async def run(subscribers: int, rate: float, duration: float) -> None:
    with Stack() as stack:
        assert stack.server is not None
        pid = stack.server.pid
        authorization = bench_authorization()
        token = authorization.removeprefix("Bearer ")
        owner = await TokenVerifier(AuthConfig(("HS256",), secret=JWT_SECRET)).authenticate(
            authorization
        )
        # A blocking pool waits for a connection instead of failing the change.
        pool = BlockingConnectionPool.from_url(
            stack.redis_url, max_connections=64, timeout=10, decode_responses=True
        )
        redis = Redis(connection_pool=pool)
        sessions = SessionService(redis)
        drafts = []
        for i in range(subscribers):
            draft = await sessions.create(owner, operation_id="bench")
            product = validate_product({**PRODUCT, "productCode": f"BENCH-{i}"})
            await sessions.add_product(owner, draft.session_id, product)
            drafts.append(draft.session_id)

        url = stack.app_url.replace("http://", "ws://") + "/graphql"
        warm = await open_subscriber(url, token, drafts[0])  # warm the server's caches
        await warm.close()
        await asyncio.sleep(0.5)
        rss_before = rss_kib(pid)

        started = time.perf_counter()
        gate = asyncio.Semaphore(100)  # stay well inside the server's listen backlog
        tally = Tally()
        listeners: list[asyncio.Task[None]] = []

        async def opened(session_id: str) -> ClientConnection:
            async with gate:
                ws = await open_subscriber(url, token, session_id)
            listeners.append(asyncio.create_task(listen(ws, tally)))
            return ws

        sockets = await asyncio.gather(*(opened(d) for d in drafts))
        connect_seconds = time.perf_counter() - started
        # Keep this process's own GC pauses (thousands of sockets) out of the figures.
        gc.collect()
        gc.freeze()
        await asyncio.sleep(1)
        rss_held = rss_kib(pid)

        cpu_before = stack.server_cpu_seconds()
        sent = await publish(sessions, owner, drafts, rate, duration)
        await asyncio.sleep(2)  # let the last events arrive
        cpu_used = stack.server_cpu_seconds() - cpu_before
        rss_after = rss_kib(pid)

        latencies = sorted(
            (tally.arrivals[key] - t) * 1000 for key, t in sent.items() if key in tally.arrivals
        )
        lost = len(sent) - len(latencies)
        for ws in sockets:
            await ws.close()
        for listener in listeners:
            listener.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        await redis.aclose()

    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    print(f"\n== {subscribers} subscribers, {rate:.0f} changes/s for {duration:.0f} s")
    print(f"  {stack.describe_pinning()}")
    print(f"  connected + subscribed in {connect_seconds:.1f} s")
    print(
        f"  changes sent {len(sent)}, events delivered {len(latencies)}, lost {lost}, "
        f"duplicated {tally.duplicates}, error messages {tally.errors}"
    )
    print(f"  delivered events/s {len(latencies) / duration:.0f}")
    print(
        f"  latency ms: p50 {quantiles[49]:.2f}  p90 {quantiles[89]:.2f}  p99 {quantiles[98]:.2f}  "
        f"max {latencies[-1] if latencies else 0:.2f}"
    )
    print(
        f"  server RSS MiB: before {rss_before / 1024:.0f}, holding {rss_held / 1024:.0f}, "
        f"after traffic {rss_after / 1024:.0f}"
    )
    print(
        f"  memory per connection KiB: {(rss_held - rss_before) / subscribers:.1f} held, "
        f"{(rss_after - rss_before) / subscribers:.1f} after traffic"
    )
    print(f"  server CPU during traffic: {100 * cpu_used / (duration + 2):.0f}% of one core")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument(
        "--rate", type=float, default=500, help="changes per second, over all drafts"
    )
    parser.add_argument("--duration", type=float, default=20, help="seconds of traffic")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = max(args.subscribers) + 1000
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))
    cpus = os.sched_getaffinity(0)
    for n in args.subscribers:
        # uvloop, like the server: the load generator shares a core with redis-server.
        uvloop.run(run(n, args.rate, args.duration))
        os.sched_setaffinity(0, cpus)  # the Stack moved this process off the server's core


if __name__ == "__main__":
    main()
