"""How many draft state changes per second one Redis shard sustains (the README's figure).

All of the orchestrator's keys share the hash tag ``{orchestrator}``: on a Redis Cluster
they live in one slot, so one shard (a master and its replica) carries every change of
every draft. This measures that shard as production runs it: a master with AOF
(``appendfsync everysec``), one replica, and subscribers on the events channel (one per
app instance, SSUBSCRIBE through redis-cli).

Each state change is what ``addProduct`` sends: one EVALSHA of services/lua/draft.lua,
captured from ``SessionService.add_product`` itself (so the benchmark follows the script),
which reads the draft, checks it, writes it back, holds its product code and publishes the
event. redis-benchmark (C) replays it from many connections, so the client is not the
limit; a Python run through ``SessionService`` shows what one process's client reaches.
Afterwards the draft's version must have grown by exactly the number of calls: every
call was a real change, not an error reply.

    .venv/bin/python bench/shard_capacity.py [--requests 200000] [--subscribers 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cli import free_port, redis_cli_binary, redis_server_command
from services.models import Principal, Privilege
from services.sessions import SessionService
from services.validation import validate_product

OWNER = Principal(
    user_id="bench-user",
    privilege=Privilege.ADMIN,
    organization_guid="6f1e3c9a-1111-4a4a-9c9c-000000000001",
    token_expires_at=datetime.now(tz=UTC) + timedelta(days=1),
)
PRODUCT = {
    "productName": "Bench product",
    "productDescription": "A product for the shard benchmark",
    "productCategory": 0,
    "productStatus": 1,
    "productGlCode": 1,
    "userType": 1,
    "taxes": 13,
    "productYear": "2026",
    "generalPrice": 10,
}


@contextmanager
def redis_process(*extra: str) -> Iterator[int]:
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-shard-")
    process = subprocess.Popen(
        [*redis_server_command(port, workdir), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=port, socket_connect_timeout=0.2).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def shard(stack: ExitStack) -> tuple[int, int]:
    """Start a master with AOF everysec and a replica in sync; return their ports."""
    durable = ("--appendonly", "yes", "--appendfsync", "everysec")
    master = stack.enter_context(redis_process(*durable))
    replica = stack.enter_context(redis_process(*durable, "--replicaof", "127.0.0.1", str(master)))
    deadline = time.monotonic() + 30
    with redis.Redis(port=replica, decode_responses=True) as r:
        while r.info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                raise RuntimeError("the replica did not sync")
            time.sleep(0.1)
    return master, replica


async def captured_change(port: int) -> tuple[SessionService, str, list[str]]:
    """Return the EVALSHA arguments of one addProduct on a fresh draft, as the service sends."""
    client = Redis(port=port, decode_responses=True)
    sessions = SessionService(client)
    draft = await sessions.create(OWNER, operation_id="bench")
    calls: list[tuple[list[str], list[str]]] = []
    script = sessions._script  # the benchmark watches the one call it replays

    async def watch(*, keys: list[str], args: list[str]) -> Any:
        calls.append((list(keys), list(args)))
        return await script(keys=keys, args=args)

    sessions._script = watch  # type: ignore[assignment]
    await sessions.add_product(
        OWNER, draft.session_id, validate_product({**PRODUCT, "productCode": "BENCH-SHARD"})
    )
    sessions._script = script
    keys, args = calls[-1]
    return sessions, draft.session_id, ["EVALSHA", script.sha, str(len(keys)), *keys, *args]


def version_of(port: int, session_id: str) -> int:
    with redis.Redis(port=port, decode_responses=True) as r:
        raw = r.get(f"{{orchestrator}}:draft:{session_id}")
    return int(json.loads(raw or "{}")["version"])


def redis_benchmark(port: int, command: list[str], *, requests: int, clients: int) -> float:
    out = subprocess.run(
        [
            shutil.which("redis-benchmark") or "redis-benchmark",
            *("-p", str(port), "-n", str(requests), "-c", str(clients), "--csv"),
            *command,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    row = [line for line in out.splitlines() if line and not line.startswith('"test"')][-1]
    # "test","rps","avg",...,"max": the test's name (the command) may hold commas and quotes,
    # the last seven fields are the figures.
    return float(row.strip().strip('"').split('","')[-7])


async def python_client(port: int, *, concurrency: int, seconds: float) -> float:
    """State changes per second one process reaches through SessionService (distinct drafts)."""
    client = Redis(port=port, decode_responses=True, max_connections=concurrency + 4)
    sessions = SessionService(client)
    drafts = [(await sessions.create(OWNER, operation_id="bench")).session_id for _ in range(64)]
    run = uuid.uuid4().hex[:8].upper()
    done = 0
    stop = time.monotonic() + seconds

    async def worker(index: int) -> None:
        nonlocal done
        sid = drafts[index % len(drafts)]
        product = validate_product({**PRODUCT, "productCode": f"BENCH-{run}-{index}"})
        while time.monotonic() < stop:
            await sessions.add_product(OWNER, sid, product)
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    rate = done / (time.monotonic() - started)
    await client.aclose()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--subscribers", type=int, default=4)
    parser.add_argument("--python-seconds", type=float, default=5.0)
    options = parser.parse_args()
    if not shutil.which("redis-benchmark"):
        raise SystemExit("needs redis-benchmark (Debian: apt-get install redis-tools)")

    with ExitStack() as stack:
        master, _ = shard(stack)
        for _ in range(options.subscribers):
            stack.enter_context(_subscriber(master))
        _, session_id, command = asyncio.run(captured_change(master))
        print(
            f"one shard: master (AOF everysec) + replica, {options.subscribers} "
            f"subscribers on the events channel; {options.requests:,} addProduct changes each"
        )
        print("| client | connections | state changes/s |")
        print("|---|---|---|")
        for clients in (1, 16, 64):
            requests = options.requests if clients > 1 else options.requests // 10
            before = version_of(master, session_id)
            rate = redis_benchmark(master, command, requests=requests, clients=clients)
            changed = version_of(master, session_id) - before
            if changed != requests:
                raise SystemExit(f"only {changed} of {requests} calls changed the draft")
            print(f"| redis-benchmark (C) | {clients} | {rate:,.0f} |")
        for concurrency in (1, 32):
            rate = asyncio.run(
                python_client(master, concurrency=concurrency, seconds=options.python_seconds)
            )
            print(f"| SessionService, one Python process | {concurrency} | {rate:,.0f} |")


@contextmanager
def _subscriber(port: int) -> Iterator[None]:
    process = subprocess.Popen(
        [redis_cli_binary(), "-p", str(port), "SSUBSCRIBE", "{orchestrator}:events"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
