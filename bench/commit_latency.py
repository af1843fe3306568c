"""Commit latency against the Dataverse emulator with 50 ms added to every request.

    .venv/bin/python bench/commit_latency.py [--commits 50] [--latency-ms 50]

Starts its own redis-server, emulator and app server (bench/stack.py), prepares drafts
(createSession, addProduct, configureTarget over GraphQL), then times the `commit`
mutation over HTTP, one at a time and several at once, and counts the Dataverse requests
each commit made from the emulator's request log (target: one $batch change set plus one
uniqueness read). A benchmark, not a test: see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.http_overhead import ADD_PRODUCT, CREATE_SESSION, graphql_body, product
from bench.stack import EMULATOR_TOKEN, Stack, bench_authorization
from emulator.testing import EmulatorControl

CONFIGURE_TARGET = """
mutation ConfigureTarget($sessionId: ID!, $input: AudienceTargetInput!) {
  configureTarget(sessionId: $sessionId, input: $input) { userErrors { code message } }
}
"""

COMMIT = """
mutation Commit($sessionId: ID!) {
  commit(sessionId: $sessionId) {
    success productGuid targetGuid errors
    userErrors { code message }
    session { state }
  }
}
"""


def classify(entry: dict[str, Any]) -> str:
    """Name a request of the emulator's log: the change set, the code check, or other."""
    path = entry["path"]
    if entry["method"] == "POST" and path.split("?")[0].endswith("$batch"):
        return "$batch"
    if entry["method"] == "GET" and "osot_product_code" in path:
        return "code check"
    return f"{entry['method']} {path.split('?')[0].rsplit('/', 1)[-1]}"


async def _post(
    http: httpx.AsyncClient, query: str, name: str, variables: dict[str, Any]
) -> dict[str, Any]:
    response = await http.post(
        "/graphql",
        content=graphql_body(query, name, variables),
        headers={"Content-Type": "application/json"},
    )
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise SystemExit(f"{name} failed: {response.status_code} {response.text}")
    return body["data"]


async def prepare_draft(http: httpx.AsyncClient, index: int) -> str:
    """Open a draft with a product (its own code) and a target; return its id."""
    data = await _post(http, CREATE_SESSION, "CreateSession", {})
    sid = data["createSession"]["session"]["sessionId"]
    data = await _post(http, ADD_PRODUCT, "AddProduct", {"sessionId": sid, "input": product(index)})
    if data["addProduct"]["userErrors"]:
        raise SystemExit(f"addProduct failed: {data['addProduct']['userErrors']}")
    target = {"province": ["ONTARIO"], "gender": []}
    await _post(http, CONFIGURE_TARGET, "ConfigureTarget", {"sessionId": sid, "input": target})
    return sid


async def commit(http: httpx.AsyncClient, sid: str) -> tuple[float, bool]:
    started = time.perf_counter()
    data = await _post(http, COMMIT, "Commit", {"sessionId": sid})
    elapsed = time.perf_counter() - started
    return elapsed, bool(data["commit"]["success"])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(stack: Stack, args: argparse.Namespace) -> list[dict[str, Any]]:
    authorization = bench_authorization()
    control = EmulatorControl(stack.emulator_url, token=EMULATOR_TOKEN)
    await control.reset()
    rows = []
    async with httpx.AsyncClient(
        base_url=stack.app_url,
        headers={"Authorization": authorization},
        timeout=60,
        limits=httpx.Limits(max_connections=64),
    ) as http:
        total = args.commits + args.concurrent_commits
        drafts: list[str] = []
        for start in range(0, total, 16):  # prepared before the latency is added
            drafts += await asyncio.gather(
                *(prepare_draft(http, i) for i in range(start, min(total, start + 16)))
            )
        await control.set_faults(latency_ms=args.latency_ms)
        try:
            # One at a time: each commit's own requests, from a cleared log.
            latencies, kinds, successes = [], Counter[str](), 0
            for sid in drafts[: args.commits]:
                await control.clear_requests()
                elapsed, ok = await commit(http, sid)
                latencies.append(elapsed)
                successes += ok
                kinds.update(classify(e) for e in await control.requests())
            rows.append(_row("sequential", 1, latencies, successes, kinds))
            # Several at once: the requests of the whole batch, per commit.
            await control.clear_requests()
            concurrent = drafts[args.commits :]
            latencies, successes = [], 0
            for start in range(0, len(concurrent), args.concurrency):
                results = await asyncio.gather(
                    *(commit(http, sid) for sid in concurrent[start : start + args.concurrency])
                )
                latencies += [elapsed for elapsed, _ in results]
                successes += sum(ok for _, ok in results)
            kinds = Counter(classify(e) for e in await control.requests())
            rows.append(_row("concurrent", args.concurrency, latencies, successes, kinds))
        finally:
            await control.clear_faults()
    return rows


def _row(
    name: str, concurrency: int, latencies: list[float], successes: int, kinds: Counter[str]
) -> dict[str, Any]:
    n = len(latencies)
    return {
        "scenario": name,
        "concurrency": concurrency,
        "commits": n,
        "succeeded": successes,
        "p50_ms": _pct(latencies, 0.50) * 1000,
        "p99_ms": _pct(latencies, 0.99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000,
        "requests_per_commit": sum(kinds.values()) / n,
        "kinds": {k: v / n for k, v in sorted(kinds.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--commits", type=int, default=50, help="sequential commits")
    parser.add_argument("--concurrent-commits", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8, help="commits in flight at once")
    parser.add_argument(
        "--latency-ms", type=int, default=50, help="added to every Dataverse request"
    )
    args = parser.parse_args()
    with Stack() as stack:
        rows = asyncio.run(run(stack, args))
    print(
        f"\nCommit latency over HTTP, emulator with {args.latency_ms} ms added to every request "
        "(redis-server, emulator and app as bench/stack.py starts them)\n"
    )
    print(
        f"{'scenario':<12}{'in flight':>10}{'commits':>9}{'ok':>5}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'mean ms':>9}{'DV req/commit':>15}  breakdown per commit"
    )
    for r in rows:
        kinds = ", ".join(f"{k} {v:g}" for k, v in r["kinds"].items())
        print(
            f"{r['scenario']:<12}{r['concurrency']:>10}{r['commits']:>9}{r['succeeded']:>5}"
            f"{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['mean_ms']:>9.1f}"
            f"{r['requests_per_commit']:>15.2f}  {kinds}"
        )
    target_met = all(r["kinds"] == {"$batch": 1, "code check": 1} for r in rows)
    print(
        f"\nTarget (one $batch change set plus one uniqueness read per commit): "
        f"{'met' if target_met else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
