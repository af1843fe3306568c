"""Unexpected failures are masked and logged; abusive queries are refused before they run."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from graphql import GraphQLError
from redis.asyncio import Redis

from schema.extensions import ErrorPolicy
from services.errors import (
    INTERNAL_ERROR,
    AuthError,
    ServerShuttingDownError,
    ServiceError,
    SessionNotFoundError,
)
from settings import Settings
from tests.graphql_documents import SESSION_PROGRESS
from tests.helpers import GraphQLClient, create_session

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parent.parent


async def test_an_unexpected_error_is_masked_and_logged_with_its_operation_id(
    client: GraphQLClient, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    # given a draft whose stored document got corrupted
    sid = (await create_session(client))["sessionId"]
    await redis.set(f"{{orchestrator}}:draft:{sid}", '{"sessionId": "broken"}', keepttl=True)

    # when
    with caplog.at_level(logging.ERROR, logger="orchestrator.graphql"):
        body = await client.execute(SESSION_PROGRESS, {"sessionId": sid})

    # then the client sees no internals, only an id to quote
    error = body["errors"][0]
    operation_id = error["extensions"]["operationId"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert error["message"] == f"Internal error. Quote operation {operation_id} when reporting it."
    assert "validation" not in error["message"].lower()
    [record] = [r for r in caplog.records if operation_id in r.getMessage()]
    assert record.exc_info is not None


async def test_an_oversized_query_is_refused_while_parsing(client: GraphQLClient) -> None:
    huge = "query { " + " ".join(["mySessions { sessionId }"] * 1000) + " }"

    body = await client.execute(huge)

    assert body.get("data") is None
    assert "token" in body["errors"][0]["message"].lower()


async def test_too_many_aliases_are_refused(client: GraphQLClient) -> None:
    aliases = " ".join(f"a{i}: mySessions {{ sessionId }}" for i in range(20))

    body = await client.execute(f"query {{ {aliases} }}")

    assert body.get("data") is None
    assert "aliases" in body["errors"][0]["message"]


def test_env_example_and_readme_document_every_setting() -> None:
    env_example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    documented_env = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", env_example, re.MULTILINE))
    documented_readme = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", readme))

    settings = {name.upper() for name in Settings.model_fields}

    assert settings - documented_env == set()
    assert settings - documented_readme == set()


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ServiceError("a bare service error"), "INTERNAL_SERVER_ERROR"),
        (AuthError("an auth error without a code of its own"), "INTERNAL_SERVER_ERROR"),
        (SessionNotFoundError(), "SESSION_NOT_FOUND"),
        (ServerShuttingDownError(), "SERVICE_UNAVAILABLE"),
    ],
    ids=["base", "auth-base", "session-not-found", "shutting-down"],
)
def test_the_error_policy_never_sends_the_base_code(error: Exception, code: str) -> None:
    # given the policy of one operation
    policy = ErrorPolicy()
    policy.execution_context = SimpleNamespace(context=SimpleNamespace(operation_id="op-1"))  # type: ignore[assignment]

    # when
    sent = policy.anonymise_error(GraphQLError(str(error), original_error=error))

    # then
    assert sent.extensions == (
        {"code": code, "operationId": "op-1"} if code == "INTERNAL_SERVER_ERROR" else {"code": code}
    )
    assert INTERNAL_ERROR not in str(sent.formatted)
