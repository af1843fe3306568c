"""Apollo Client 4 out of the box (InMemoryCache + HttpLink) through the workflow (tests/js)."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.helpers import token

pytestmark = pytest.mark.anyio

JS = Path(__file__).parent / "js"


@pytest.fixture
async def apollo(base_url: str) -> AsyncIterator[dict[str, dict[str, Any]]]:
    """Run tests/js/apollo.mjs against the app; yield its observations by step."""
    node = shutil.which("node")
    assert node, "Node.js is needed for this test"
    assert (JS / "node_modules" / "@apollo" / "client").is_dir(), "run `make test` first"
    process = await asyncio.create_subprocess_exec(
        node,
        str(JS / "apollo.mjs"),
        base_url,
        token(),
        token(ttl=-120),  # expired, beyond the leeway
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        with anyio.fail_after(60):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    yield {line["step"]: line for line in lines}


async def test_the_cached_draft_follows_each_mutation(
    apollo: dict[str, dict[str, Any]],
) -> None:
    # every mutation payload updated the normalized Session, and one fetch per mutation
    for step, state, percentage in [
        ("addProduct", "PRODUCT_ADDED", 50),
        ("configureTarget", "TARGET_CONFIGURED", 75),
        ("commit", "COMMITTED", 100),
    ]:
        observed = apollo[step]
        assert observed["userErrors"] == [], observed
        assert observed["cached"] == observed["payload"], observed
        assert observed["cached"].startswith(f"{state}@"), observed
        assert (observed["progress"], observed["fetches"]) == (percentage, 1), observed

    # and the watched session query saw each state, with no refetch
    seen = apollo["watched"]["seen"]
    assert [s.split("@")[0] for s in dict.fromkeys(seen)] == [
        "INITIATED",
        "PRODUCT_ADDED",
        "TARGET_CONFIGURED",
        "COMMITTED",
    ]


async def test_an_expired_token_reaches_apollo_as_unauthenticated(
    apollo: dict[str, dict[str, Any]],
) -> None:
    expired = apollo["expired"]

    # a GraphQL error Apollo parsed (not a bare ServerError), with its code and operation id
    assert expired["kind"] == "CombinedGraphQLErrors", expired
    [error] = expired["errors"]
    assert error["code"] == "UNAUTHENTICATED"
    assert error["operationId"]


async def test_a_bad_price_and_a_bad_enum_reach_apollo_as_two_bad_user_inputs(
    apollo: dict[str, dict[str, Any]],
) -> None:
    bad = apollo["badInput"]

    assert bad["kind"] == "CombinedGraphQLErrors", bad
    assert sorted((e["code"], tuple(e["field"])) for e in bad["errors"]) == [
        ("BAD_USER_INPUT", ("input", "generalPrice")),
        ("BAD_USER_INPUT", ("input", "productCategory")),
    ]
