"""Memory, measured: floods from outside leave the serving process where it was, and the
document cache's byte estimate covers what its documents really take."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from graphql import parse

from schema.documents import DocumentCache
from tests.dataverse_emulator import ThreadedEmulator
from tests.helpers import SECRET, RedisServer, token
from tests.test_logs import _wait_until_up

ROOT = Path(__file__).parent.parent
MEMORY_DB = 12
MB = 1024 * 1024


@pytest.fixture
def served(
    redis_server: RedisServer, dataverse_emulator: ThreadedEmulator
) -> Iterator[tuple[str, int]]:
    """`orchestrator serve` in a process of its own, whose memory the test reads."""
    from cli import free_port

    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "REDIS_", "LOG_"))},
        "REDIS_URL": redis_server.url(MEMORY_DB),
        "JWT_SECRET": SECRET,
        "DATAVERSE_URL": dataverse_emulator.base_url,
        "DATAVERSE_TOKEN": dataverse_emulator.token,
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", "import cli; cli.main()", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(base, process)  # type: ignore[arg-type]
        yield base, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def _rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


async def _send(http: httpx.AsyncClient, **request: object) -> int | None:
    """Send one request; return its status, or None if the server closed mid-request."""
    try:
        return (await http.post("/graphql", **request)).status_code  # type: ignore[arg-type]
    except httpx.TransportError:
        return None


def test_floods_from_outside_leave_the_process_within_a_few_mb(served: tuple[str, int]) -> None:
    base, pid = served
    bearer = {"authorization": f"Bearer {token()}"}

    async def flood() -> dict[str, list[int | None]]:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            # warm up: every code path once, so that what follows measures only the floods
            for _ in range(3):
                await _send(http, json={"query": "query { mySessions { state } }"}, headers=bearer)
                await _send(http, json={"query": "query { nope }"}, headers=bearer)
                await _send(http, json={"query": "#" + "x" * 600_000})
            gc.collect()
            await asyncio.sleep(0.5)
            before = _rss(pid)
            statuses: dict[str, list[int | None]] = {"anonymous": [], "invalid": [], "headers": []}
            # a hundred distinct 512 KB queries without a token
            for i in range(100):
                query = f"query Q{i} {{ mySessions {{ state }} }} #" + "x" * (512 * 1024)
                statuses["anonymous"].append(await _send(http, json={"query": query}))
            # a hundred distinct documents with a token, each just under the size limit,
            # that parse but do not validate (the caches used to keep every one)
            for i in range(100):
                fields = " ".join(f"f{i}x{j}" for j in range(2500))
                query = f"{{ mySessions {{ {fields} }} }}"
                statuses["invalid"].append(await _send(http, json={"query": query}, headers=bearer))
            # four 32 MB Authorization headers at once
            huge = {"authorization": "Bearer " + "x" * (32 * MB)}
            at_once = (
                _send(http, json={"query": "{ __typename }"}, headers=huge) for _ in range(4)
            )
            statuses["headers"] = list(await asyncio.gather(*at_once))
            await asyncio.sleep(0.5)
            statuses["growth"] = [_rss(pid) - before]
            return statuses

    result = asyncio.run(flood())

    assert set(result["anonymous"]) <= {413, None} and 413 in result["anonymous"]
    assert set(result["invalid"]) == {200}  # GraphQL errors, in a 200 answer
    assert set(result["headers"]) <= {400, None}
    growth = int(result["growth"][0] or 0)
    assert growth < 8 * MB, f"grew by {growth / MB:.1f} MB"


def test_the_cache_estimate_covers_what_its_documents_take() -> None:
    # given large distinct documents (~3,600 tokens each)
    fields = " ".join(f"a{j}: mySessions {{ state }}" for j in range(700))
    texts = [f"query Q{i} {{ {fields} }}" for i in range(10)]
    cache = DocumentCache(max_bytes=256 * MB)
    gc.collect()
    tracemalloc.start()
    try:
        for text in texts:
            cache.put(text, parse(text), introspects=False)
        gc.collect()
        taken, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # then the estimate the cache bounds is at least what the documents really take
    assert len(cache) == len(texts)
    assert cache.bytes >= taken, (cache.bytes, taken)
    assert cache.bytes < 3 * taken  # and not so cautious that the cache holds nothing


def test_a_small_cache_stays_small() -> None:
    fields = " ".join(f"a{j}: mySessions {{ state }}" for j in range(700))
    cache = DocumentCache(max_bytes=5 * MB)
    gc.collect()
    tracemalloc.start()
    try:
        for i in range(12):  # ~2 MB each when parsed: 25 MB without the bound
            text = f"query Q{i} {{ {fields} }}"
            cache.put(text, parse(text), introspects=False)
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert cache.bytes <= 5 * MB
    assert held < 6 * MB, f"{held / MB:.1f} MB held"
