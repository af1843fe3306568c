"""What GraphQL costs over plain routes: createSession, addProduct, sessionProgress over HTTP.

    .venv/bin/python bench/http_overhead.py [--duration 8] [--warmup 2]

Starts its own redis-server, Dataverse emulator and app server (one uvicorn worker, with
the plain routes of bench/plain_routes.py), then drives each operation through /graphql
and through its plain route at concurrency 1 and 32, and prints throughput, p50/p99
latency and server CPU per request, and the GraphQL/plain ratios. A benchmark, not a test:
see bench/README.md for what the figures mean.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.stack import ROOT, Stack, bench_authorization, machine_busy_seconds
from tests.graphql_documents import product_input

X = "\N{MULTIPLICATION SIGN}"
SESSIONS = 256  # per-request session ids cycle through these, so no draft is contended
CREATING_USERS = 64  # createSession cycles through them (MAX_OPEN_DRAFTS is per user)

CREATE_SESSION = """
mutation CreateSession {
  createSession {
    session { sessionId version state expiresAt progress { percentage canCommit } }
    userErrors { field message code }
    operationId
  }
}
"""

ADD_PRODUCT = """
mutation AddProduct($sessionId: ID!, $input: ProductInput!) {
  addProduct(sessionId: $sessionId, input: $input) {
    session {
      sessionId version state updatedAt
      progress { percentage canCommit steps { productAdded targetConfigured committed } }
    }
    userErrors { field message code }
    operationId
  }
}
"""

SESSION_PROGRESS = """
query SessionProgress($sessionId: ID!) {
  sessionProgress(sessionId: $sessionId) {
    sessionId state version percentage canCommit errors expiresAt secondsRemaining expiringSoon
    steps { productAdded targetConfigured committed }
  }
}
"""

# Present only in a successful answer (the payload's session, or the progress).
MARKERS = {
    "createSession": '"canCommit"',
    "addProduct": '"productAdded"',
    "sessionProgress": '"secondsRemaining"',
}


def product(index: int) -> dict[str, Any]:
    """A valid 15-field product (the tests' own); each session gets its own code."""
    return product_input(productCode=f"BENCH-{index:05d}")


def graphql_body(query: str, operation: str, variables: dict[str, Any]) -> str:
    return json.dumps({"query": query, "operationName": operation, "variables": variables})


GRAPHQL_PATHS = {"graphql": "/graphql", "stock": "/graphql-stock"}


def request_lines(operation: str, variant: str, session_ids: list[str]) -> list[str]:
    """Return the METHOD<TAB>PATH<TAB>BODY[<TAB>AUTHORIZATION] lines the load generator replays."""
    path = GRAPHQL_PATHS.get(variant)
    if operation == "createSession":
        # Spread over many users: each may hold a bounded number of open drafts.
        body = graphql_body(CREATE_SESSION, "CreateSession", {}) if path else ""
        return [
            f"POST\t{path or '/plain/sessions'}\t{body}\t{bench_authorization(f'bench-{i}')}"
            for i in range(CREATING_USERS)
        ]
    lines = []
    for i, sid in enumerate(session_ids):
        if operation == "addProduct":
            if path:
                body = graphql_body(
                    ADD_PRODUCT, "AddProduct", {"sessionId": sid, "input": product(i)}
                )
                lines.append(f"POST\t{path}\t{body}")
            else:
                lines.append(f"POST\t/plain/sessions/{sid}/product\t{json.dumps(product(i))}")
        elif path:
            body = graphql_body(SESSION_PROGRESS, "SessionProgress", {"sessionId": sid})
            lines.append(f"POST\t{path}\t{body}")
        else:
            lines.append(f"GET\t/plain/sessions/{sid}/progress\t")
    return lines


def _shape(value: Any) -> Any:
    """The JSON's keys and nesting, without the values."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


def prepare(stack: Stack, authorization: str) -> list[str]:
    """Open the sessions, give each a product, and check both variants answer alike."""
    headers = {"Authorization": authorization}
    with httpx.Client(base_url=stack.app_url, headers=headers, timeout=30) as http:
        ids = []
        for i in range(SESSIONS):
            answer = http.post("/plain/sessions").json()
            ids.append(answer["data"]["createSession"]["session"]["sessionId"])
            http.post(f"/plain/sessions/{ids[-1]}/product", json=product(i)).raise_for_status()
        gql_requests = {
            "createSession": graphql_body(CREATE_SESSION, "CreateSession", {}),
            "addProduct": graphql_body(
                ADD_PRODUCT, "AddProduct", {"sessionId": ids[0], "input": product(0)}
            ),
            "sessionProgress": graphql_body(
                SESSION_PROGRESS, "SessionProgress", {"sessionId": ids[0]}
            ),
        }
        answers: dict[str, dict[str, httpx.Response]] = {}
        for operation, body in gql_requests.items():
            answers[operation] = {
                variant: http.post(path, content=body, headers={"Content-Type": "application/json"})
                for variant, path in GRAPHQL_PATHS.items()
            }
        answers["createSession"]["plain"] = http.post("/plain/sessions")
        answers["addProduct"]["plain"] = http.post(
            f"/plain/sessions/{ids[0]}/product", json=product(0)
        )
        answers["sessionProgress"]["plain"] = http.get(f"/plain/sessions/{ids[0]}/progress")
    for operation, by_variant in answers.items():
        for variant, response in by_variant.items():
            if response.status_code != 200 or MARKERS[operation] not in response.text:
                raise SystemExit(
                    f"{operation} ({variant}) failed: {response.status_code} {response.text}"
                )
            if _shape(response.json()) != _shape(by_variant["graphql"].json()):
                raise SystemExit(
                    f"{operation}: {variant}'s JSON differs from /graphql's:\n"
                    f"{by_variant['graphql'].text}\n{response.text}"
                )
    return ids


@dataclass
class Result:
    """One operation, variant and concurrency, summed over its rounds."""

    operation: str
    variant: str
    connections: int
    requests: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    gc_seconds: float = 0.0
    full_gcs: int = 0
    other_seconds: float = 0.0
    bad: int = 0
    # Each round's latency quantiles, weighted by that round's requests.
    latency_us: Counter[int] = field(default_factory=Counter)  # microseconds -> weight

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile_ms(self, q: float) -> float:
        rank, seen = q * sum(self.latency_us.values()), 0
        for us in sorted(self.latency_us):
            seen += self.latency_us[us]
            if seen >= rank:
                return us / 1000
        return 0.0

    @property
    def p50_ms(self) -> float:
        return self.percentile_ms(0.50)

    @property
    def p99_ms(self) -> float:
        return self.percentile_ms(0.99)

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / max(self.requests, 1) * 1e6

    @property
    def gc_us(self) -> float:
        return self.gc_seconds / max(self.requests, 1) * 1e6

    @property
    def other_load(self) -> float:
        return max(0.0, self.other_seconds / self.seconds) if self.seconds else 0.0


class LoadGenerator:
    """wrk with bench/replay.lua when installed, else bench/loadgen.py (both closed-loop)."""

    def __init__(self, host: str, port: int, authorization: str) -> None:
        self.wrk = shutil.which("wrk")
        self.host, self.port, self.authorization = host, port, authorization

    def describe(self) -> str:
        if self.wrk:
            version = subprocess.run(
                [self.wrk, "-v"], capture_output=True, text=True, check=False
            ).stdout.splitlines()
            return f"wrk ({version[0] if version else self.wrk}), 1 thread, bench/replay.lua"
        return "bench/loadgen.py (Python asyncio, wrk not installed: apt-get install wrk)"

    def run(
        self, requests_file: Path, marker: str, connections: int, seconds: float
    ) -> dict[str, Any]:
        if self.wrk:
            argv = [
                self.wrk,
                "-t1",
                f"-c{connections}",
                f"-d{seconds:.0f}s",
                "--timeout",
                "10s",
                "-s",
                str(ROOT / "bench" / "replay.lua"),
                f"http://{self.host}:{self.port}",
                "--",
                str(requests_file),
                marker,
                self.authorization,
            ]
        else:
            argv = [
                sys.executable,
                "-m",
                "bench.loadgen",
                self.host,
                str(self.port),
                str(requests_file),
                marker,
                self.authorization,
                f"--connections={connections}",
                f"--duration={seconds}",
            ]
        out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
        for line in out.stdout.splitlines():
            if line.startswith("RESULT "):
                return json.loads(line[len("RESULT ") :])
        raise SystemExit(f"load generator failed:\n{out.stdout}\n{out.stderr}")


def measure(
    stack: Stack, load: LoadGenerator, result: Result, requests_file: Path, seconds: float
) -> None:
    """Run the load for *seconds* and add what it did to *result*."""
    gc_before = httpx.get(f"{stack.app_url}/plain/gc").json()
    own_before, busy_before = stack.own_cpu_seconds(), machine_busy_seconds()
    cpu_before = stack.server_cpu_seconds()
    raw = load.run(requests_file, MARKERS[result.operation], result.connections, seconds)
    result.cpu_seconds += stack.server_cpu_seconds() - cpu_before
    # CPU that neither the benchmark nor its stack used: someone else is loading the machine.
    result.other_seconds += (machine_busy_seconds() - busy_before) - (
        stack.own_cpu_seconds() - own_before
    )
    gc_after = httpx.get(f"{stack.app_url}/plain/gc").json()
    result.requests += raw["requests"]
    result.seconds += raw["duration_us"] / 1e6
    result.gc_seconds += sum(gc_after["seconds"]) - sum(gc_before["seconds"])
    result.full_gcs += gc_after["collections"][2] - gc_before["collections"][2]
    result.bad += raw["bad"] + raw["socket_errors"]
    weight = raw["requests"] / max(len(raw["quantiles_us"]), 1)
    for us in raw["quantiles_us"]:
        result.latency_us[int(us)] += weight


def print_report(results: list[Result], header: list[str]) -> None:
    print()
    for line in header:
        print(line)
    print()
    print(
        f"{'operation':<16}{'conc':>5}  {'variant':<8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'CPU µs/req':>12}{'GC µs/req':>11}{'full GCs':>10}{'bad':>6}"
    )
    for r in results:
        print(
            f"{r.operation:<16}{r.connections:>5}  {r.variant:<8}{r.rps:>9.0f}{r.p50_ms:>9.2f}"
            f"{r.p99_ms:>9.2f}{r.cpu_us:>12.0f}{r.gc_us:>11.0f}{r.full_gcs:>10}{r.bad:>6}"
        )
    print()
    print("GraphQL / plain (throughput: higher is better; p99 and CPU: lower is better)")
    print(
        f"{'operation':<16}{'conc':>5}  {'variant':<8}{'throughput':>12}{'p50':>8}{'p99':>8}"
        f"{'CPU/req':>9}{'GraphQL extra CPU':>19}"
    )
    by_key = {(r.operation, r.connections, r.variant): r for r in results}
    for r in results:
        if r.variant == "plain" or (r.operation, r.connections, "plain") not in by_key:
            continue
        p = by_key[(r.operation, r.connections, "plain")]
        print(
            f"{r.operation:<16}{r.connections:>5}  {r.variant:<8}{r.rps / p.rps:>11.2f}{X}"
            f"{r.p50_ms / p.p50_ms:>7.2f}{X}{r.p99_ms / p.p99_ms:>7.2f}{X}"
            f"{r.cpu_us / p.cpu_us:>8.2f}{X}{r.cpu_us - p.cpu_us:>13.0f} µs/req"
        )
    add = {
        c: (by_key.get(("addProduct", c, "graphql")), by_key.get(("addProduct", c, "plain")))
        for c in (32,)
    }
    for c, (fast, plain) in add.items():
        if fast and plain:
            ok = fast.rps / plain.rps >= 0.6 and fast.p99_ms < 2 * plain.p99_ms
            print(
                f"\nTarget (addProduct at {c} connections: ≥ 0.6{X} throughput, p99 < 2{X}): "
                f"{'met' if ok else 'NOT met'} "
                f"({fast.rps / plain.rps:.2f}{X}, p99 {fast.p99_ms / plain.p99_ms:.2f}{X})"
            )
    busy = [r for r in results if r.other_load > 0.1]
    if busy:
        print(
            f"\nWARNING: other processes used up to {max(r.other_load for r in busy):.0%} of a "
            f"core during {len(busy)} measurement(s): figures are disturbed; run again on a "
            "quiet machine."
        )
    if any(r.bad for r in results):
        print("\nWARNING: some responses were not successful answers (column 'bad').")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=8, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per route")
    parser.add_argument("--rounds", type=int, default=4, help="alternations of the variants")
    parser.add_argument("--operations", default="createSession,addProduct,sessionProgress")
    parser.add_argument("--connections", default="1,32")
    parser.add_argument("--variants", default="graphql,stock,plain")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    args = parser.parse_args()
    operations = args.operations.split(",")
    connections = [int(c) for c in args.connections.split(",")]
    variants = args.variants.split(",")

    per_round = max(1, round(args.duration / args.rounds))  # wrk takes whole seconds
    started = time.monotonic()
    authorization = bench_authorization()
    with Stack(pin=not args.no_pin) as stack, tempfile.TemporaryDirectory() as tmp:
        print(
            f"stack up: redis {stack.redis_url}, emulator {stack.emulator_url}, "
            f"app {stack.app_url}",
            flush=True,
        )
        session_ids = prepare(stack, authorization)
        load = LoadGenerator("127.0.0.1", stack.app_port, authorization)
        results = []
        for operation in operations:
            files = {}
            for variant in variants:
                files[variant] = Path(tmp) / f"{operation}-{variant}.txt"
                files[variant].write_text(
                    "\n".join(request_lines(operation, variant, session_ids)) + "\n"
                )
                if args.warmup > 0:
                    load.run(files[variant], MARKERS[operation], 32, args.warmup)
            for c in connections:
                row = {v: Result(operation, v, c) for v in variants}
                # Short alternating rounds: a drift in the machine's speed hits both alike.
                for _ in range(args.rounds):
                    for variant in variants:
                        measure(stack, load, row[variant], files[variant], per_round)
                for result in row.values():
                    print(
                        f"  {operation:<16} c={c:<3} {result.variant:<8} {result.rps:8.0f} req/s  "
                        f"p99 {result.p99_ms:6.2f} ms  {result.cpu_us:6.0f} µs CPU/req  "
                        f"GC {result.gc_us:4.0f} µs/req  other load {result.other_load:4.0%}",
                        flush=True,
                    )
                    results.append(result)
        header = [
            f"Load generator: {load.describe()}; {per_round * args.rounds} s per measurement in "
            f"{args.rounds} rounds alternating the variants, after {args.warmup:g} s warm-up "
            "per route.",
            f"Pinning: {stack.describe_pinning()}.",
            f"Server: uvicorn, 1 worker, as `orchestrator serve` runs it; Python "
            f"{platform.python_version()}; total run {time.monotonic() - started:.0f} s.",
            "CPU µs/req = the server process's user+system CPU time over the run / requests;",
            "GC µs/req = time in the server's garbage collector / requests; full GCs = gen-2 runs.",
        ]
    print_report(results, header)


if __name__ == "__main__":
    main()
