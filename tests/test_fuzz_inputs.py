"""Property: whatever a client sends in an input, the answer is success or field-level errors.

Hypothesis generates values for every field of ProductInput and AudienceTargetInput from
the catalogue (tests/strategies.py) and sends them through the running app over HTTP, as
JSON escaped to ASCII so that lone surrogates travel too. An accepted draft is committed
to the Dataverse emulator, which checks lengths and options as Dataverse does: what
addProduct accepts, Dataverse must accept. Never an internal error, never "the store is
unavailable". Failures Hypothesis found and shrank are kept below as @example cases.

CI runs a fixed set of examples (derandomized, profile "ci"); locally each run explores
(FUZZ_EXAMPLES sets how many).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from services.catalog import product_fields, target_fields
from tests.graphql_documents import ADD_PRODUCT, CONFIGURE_TARGET, product_input
from tests.helpers import GraphQLClient, create_session, make_settings, serve, token
from tests.redis_server import RedisServer
from tests.strategies import product_value, target_value
from tests.test_commit import COMMIT

pytestmark = pytest.mark.anyio

# FUZZ_EXAMPLES=2000 explores further locally.
_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, print_blob=True, max_examples=_EXAMPLES
)
settings.register_profile("dev", deadline=None, print_blob=True, max_examples=_EXAMPLES)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# Many fields at once, or one or two (so that valid products and commits come up often).
_PRODUCT_VALUES = {f.api: product_value(f) for f in product_fields()}
PRODUCT_OVERRIDES = st.one_of(
    st.fixed_dictionaries({}, optional=_PRODUCT_VALUES),
    st.sampled_from(sorted(_PRODUCT_VALUES)).flatmap(
        lambda name: st.fixed_dictionaries({name: _PRODUCT_VALUES[name]})
    ),
)
TARGETS = st.fixed_dictionaries({}, optional={f.api: target_value(f) for f in target_fields()})
_codes = itertools.count()
MASKED = {"INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE"}


def _unknown_field(error: dict[str, Any]) -> str | None:
    # A field the input does not have is placed at its own name.
    return error["extensions"]["field"][-1] if "has no field" in error["message"] else None


async def _post(client: GraphQLClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = await client.http.post(
        "/graphql",
        content=json.dumps({"query": query, "variables": variables}),  # ASCII: \ud800 travels
        headers={
            "authorization": f"Bearer {client.default_token}",
            "content-type": "application/json",
        },
    )
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.json()


def _assert_field_level(body: dict[str, Any], mutation: str, field_names: set[str]) -> bool:
    """Assert *body* is success or field-level errors; return whether it succeeded."""
    for error in body.get("errors", []):
        extensions = error.get("extensions", {})
        assert extensions.get("code") not in MASKED, error
        # A value of the wrong type is refused before execution, at its field.
        assert "data" not in body, body
        assert extensions["code"] == "BAD_USER_INPUT", error
        assert extensions["field"][0] == "input", error
        assert len(extensions["field"]) == 1 or extensions["field"][1] in field_names | {
            _unknown_field(error)
        }, error
    if body.get("errors"):
        return False
    payload = body["data"][mutation]
    for user_error in payload["userErrors"]:
        assert user_error["code"] in {"VALIDATION_FAILED", "PRODUCT_CODE_TAKEN"}, user_error
        assert user_error["field"][0] == "input" and user_error["field"][1] in field_names
    assert (payload["session"] is None) == bool(payload["userErrors"]), payload
    return payload["session"] is not None


@pytest.fixture
async def client(redis_server: RedisServer, redis: Redis) -> AsyncIterator[GraphQLClient]:
    """The app with room for every generated draft: no rate limit or drafts cap in the way."""
    settings = make_settings(
        redis_server,
        max_open_drafts=10_000,
        mutation_rate_per_second=10_000,
        mutation_burst=100_000,
    )
    async with serve(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        yield GraphQLClient(http, token())


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(overrides=PRODUCT_OVERRIDES, target=TARGETS)
@example(overrides={"generalPrice": 1e26}, target={})
@example(overrides={"taxes": "1e27", "insuranceLimit": "1e28"}, target={})
@example(overrides={"productPicture": "http://[::1/a.b"}, target={})
@example(overrides={"productName": "\ud800"}, target={})
@example(overrides={"productCategory": "\ud800"}, target={})  # shrunk: was an HTTP 500
@example(overrides={"productName": "\U0001f600" * 50}, target={"province": ["ONTARIO"]})
@example(overrides={"productYear": "\u0662\u0660\u0662\u0666", "generalPrice": "1_000"}, target={})
async def test_any_input_gets_success_or_field_errors_never_an_internal_error(
    client: GraphQLClient, overrides: dict[str, Any], target: dict[str, Any]
) -> None:
    # given a draft, and a valid product with generated values put over some fields
    sid = (await create_session(client))["sessionId"]
    product = product_input(productCode=f"FUZZ-{next(_codes)}") | overrides

    # when
    added = await _post(client, ADD_PRODUCT, {"sessionId": sid, "input": product})

    # then
    if not _assert_field_level(added, "addProduct", {f.api for f in product_fields()}):
        event("product refused at its fields")
        return
    configured = await _post(client, CONFIGURE_TARGET, {"sessionId": sid, "input": target})
    if not _assert_field_level(configured, "configureTarget", {f.api for f in target_fields()}):
        event("target refused at its fields")
        return
    event("committed")
    committed = (await _post(client, COMMIT, {"sessionId": sid}))["data"]["commit"]
    # what the service accepted, Dataverse (its emulator) accepts
    assert committed["success"] is True, (product, target, committed)
