"""What the request limits cost as documents and variables grow: it must grow linearly.

    .venv/bin/python bench/limits.py [--repeat 5]

1. Fragment fan-out: a ~1 KB query whose fragments each spread the previous one twice
   (2^n fields once expanded), prepared as /graphql prepares a query (parse, linear limits,
   refusal), next to Strawberry's own depth and alias limiters on the same document (their
   cost doubles with every level: they are not used any more).
2. Copies of one field, N times un-aliased: prepared, next to graphql-core's validation
   alone (its overlapping-fields rule compares every pair).
3. configureTarget over HTTP (its own redis-server, emulator and app server, bench/stack.py)
   with N values in every one of the 34 target criteria, from a normal target to the
   10,000 values per criterion that once took 24 s.

Medians of --repeat runs, in milliseconds. A benchmark, not a test: see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import orjson
from graphql import ASTValidationRule, GraphQLSchema, parse, specified_rules, validate
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter

from api import schema
from bench.http_overhead import ADD_PRODUCT, CREATE_SESSION, graphql_body, product
from bench.stack import JWT_SECRET, ORGANIZATION, Stack
from graphql_http import PreparedDocuments
from schema.internals import graphql_core_schema
from services.auth import mint_token
from services.catalog import choice_sets, target_fields

CONFIGURE_TARGET = """
mutation ConfigureTarget($sessionId: ID!, $input: AudienceTargetInput!) {
  configureTarget(sessionId: $sessionId, input: $input) { userErrors { field code } }
}
"""
STRAWBERRY_UP_TO = 18  # 2^18 expansions take seconds already; 2^29 took minutes


def fan_out(levels: int) -> str:
    fragments = ["fragment F0 on Session { sessionId state }"]
    fragments += [
        f"fragment F{i} on Session {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels)
    ]
    return f"query FanOut {{ mySessions {{ ...F{levels - 1} }} }} {' '.join(fragments)}"


def copies(count: int) -> str:
    return "query { " + " ".join(["mySessions { sessionId }"] * count) + " }"


def median_ms(run: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def prepared_ms(query: str, repeat: int) -> float:
    # A fresh PreparedDocuments has an empty cache, and nothing over a limit is cached
    # anyway: each run is the cost of a first sight of this text.
    return median_ms(lambda: PreparedDocuments(schema).prepare(query), repeat)


def validation_ms(
    core: GraphQLSchema, query: str, rules: Sequence[type[ASTValidationRule]]
) -> float:
    document = parse(query)
    return median_ms(lambda: validate(core, document, rules), 1)


def documents(repeat: int) -> None:
    core = graphql_core_schema(schema)
    old_rules = [
        *QueryDepthLimiter(max_depth=10).validation_rules,
        *MaxAliasesLimiter(max_alias_count=15).validation_rules,
    ]
    print("1. Fragment fan-out (each fragment spreads the previous one twice)\n")
    print("| levels | query bytes | fields expanded | /graphql prepares (ms) | ", end="")
    print("Strawberry's limiters (ms) |")
    print("|---|---|---|---|---|")
    for levels in (4, 8, 12, 14, 16, 18, 20, 25, 30, 40):
        query = fan_out(levels)
        ours = prepared_ms(query, repeat)
        theirs = "not run"
        if levels <= STRAWBERRY_UP_TO:
            theirs = f"{validation_ms(core, query, old_rules):.1f}"
        print(f"| {levels} | {len(query)} | {2**levels:,} | {ours:.2f} | {theirs} |")
    print("\n2. Copies of one field, un-aliased\n")
    print("| copies | query bytes | /graphql prepares (ms) | graphql-core validation alone (ms) |")
    print("|---|---|---|---|")
    for count in (10, 50, 100, 250, 500, 900):
        query = copies(count)
        ours = prepared_ms(query, repeat)
        theirs = "not run"
        if count <= 250:
            theirs = f"{validation_ms(core, query, specified_rules):.1f}"
        print(f"| {count} | {len(query)} | {ours:.2f} | {theirs} |")


def target_input(values_per_field: int) -> dict[str, list[str]]:
    target = {}
    for field in target_fields():
        names = [choice.name for choice in choice_sets()[field.choices]]
        target[field.api] = [names[i % len(names)] for i in range(values_per_field)]
    return target


async def targets(stack: Stack, repeat: int) -> None:
    authorization = "Bearer " + mint_token(
        secret=JWT_SECRET,
        subject="bench-limits",
        privilege="admin",
        organization_guid=ORGANIZATION,
        ttl_seconds=3600,
    )
    async with httpx.AsyncClient(
        base_url=stack.app_url, headers={"Authorization": authorization}, timeout=120
    ) as http:

        async def post(query: str, name: str, variables: dict[str, Any]) -> httpx.Response:
            return await http.post(
                "/graphql",
                content=graphql_body(query, name, variables),
                headers={"Content-Type": "application/json"},
            )

        created = (await post(CREATE_SESSION, "CreateSession", {})).json()
        sid = created["data"]["createSession"]["session"]["sessionId"]
        await post(ADD_PRODUCT, "AddProduct", {"sessionId": sid, "input": product(0)})
        print(
            f"\n3. configureTarget with N values in each of the {len(target_fields())} criteria\n"
        )
        print("| N per criterion | values | body KB | answer | median ms | ms per 1,000 values |")
        print("|---|---|---|---|---|---|")
        for per_field in (1, 10, 50, 51, 200, 201, 1000, 10000):
            variables = {"sessionId": sid, "input": target_input(per_field)}
            body = graphql_body(CONFIGURE_TARGET, "ConfigureTarget", variables)
            times, answer = [], ""
            for _ in range(repeat):
                started = time.perf_counter()
                response = await post(CONFIGURE_TARGET, "ConfigureTarget", variables)
                times.append(time.perf_counter() - started)
                answer = _describe(response)
            values = per_field * len(target_fields())
            ms = statistics.median(times) * 1000
            print(
                f"| {per_field:,} | {values:,} | {len(body) / 1024:.0f} | {answer} | {ms:.1f} "
                f"| {ms / values * 1000:.2f} |"
            )


def _describe(response: httpx.Response) -> str:
    body = orjson.loads(response.content)
    if response.status_code != 200:
        return f"{response.status_code} {body['errors'][0]['extensions']['code']}"
    errors = body["data"]["configureTarget"]["userErrors"]
    return f"200, {len(errors)} userErrors" if errors else "200, stored"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    documents(args.repeat)
    with Stack() as stack:
        print(f"\n(app server: {stack.describe_pinning()})")
        asyncio.run(targets(stack, args.repeat))


if __name__ == "__main__":
    main()
