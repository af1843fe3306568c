"""Tokens are input too: strict claims, one answer for every undecryptable organization, and
one expiry leeway (JWT_LEEWAY_SECONDS) applied alike over HTTP and websockets."""

from __future__ import annotations

import os
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from redis.asyncio import Redis

from services.auth import encrypt_organization_id
from tests.graphql_documents import MY_SESSIONS
from tests.helpers import (
    ORG_A,
    SECRET,
    GraphQLClient,
    RedisServer,
    create_session,
    make_settings,
    serve,
)
from tests.test_subscriptions import SESSION_EVENTS
from tests.ws_client import LEGACY_WS, TRANSPORT_WS, open_ws, subscription

pytestmark = pytest.mark.anyio

ORG_KEY = "0123456789abcdef0123456789abcdef"


def _bearer(**overrides: Any) -> str:
    now = int(time.time())
    claims = {"sub": "user-1", "privilege": 2, "organizationGuid": ORG_A, "exp": now + 600}
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, SECRET)


async def _refusal(http: httpx.AsyncClient, bearer: str) -> tuple[int, dict[str, Any]]:
    # application/graphql-response+json: a refused caller is 401/403 without data.
    headers = {"authorization": f"Bearer {bearer}", "accept": "application/graphql-response+json"}
    response = await http.post("/graphql", json={"query": MY_SESSIONS}, headers=headers)
    body = response.json()
    assert "data" not in body, body
    return response.status_code, body["errors"][0]


@pytest.mark.parametrize(
    ("claims", "status", "code"),
    [
        ({"privilege": [2]}, 403, "FORBIDDEN"),
        ({"privilege": {"level": 2}}, 403, "FORBIDDEN"),
        ({"privilege": 2.0}, 403, "FORBIDDEN"),
        ({"exp": 253_402_300_800_000}, 401, "UNAUTHENTICATED"),  # milliseconds, past 9999
        ({"exp": "9999999999"}, 401, "UNAUTHENTICATED"),
        ({"sub": "user\x00one"}, 401, "UNAUTHENTICATED"),
        ({"sub": ["user-1"]}, 401, "UNAUTHENTICATED"),
        ({"organizationGuid": ORG_A + "\n"}, 403, "FORBIDDEN"),
        ({"organizationGuid": "{" + ORG_A + "}"}, 403, "FORBIDDEN"),
        ({"organizationGuid": 42}, 403, "FORBIDDEN"),
    ],
    ids=[
        "privilege-list",
        "privilege-object",
        "privilege-float",
        "exp-milliseconds",
        "exp-string",
        "sub-control-character",
        "sub-list",
        "guid-trailing-newline",
        "guid-braces",
        "guid-number",
    ],
)
async def test_malformed_claims_are_refused_not_internal_errors(
    client: GraphQLClient, claims: dict[str, Any], status: int, code: str
) -> None:
    answer_status, error = await _refusal(client.http, _bearer(**claims))

    assert (answer_status, error["extensions"]["code"]) == (status, code), error


def _encrypt_raw(plaintext: bytes, iv: bytes) -> str:
    """Encrypt without PKCS#7 padding, to make undecryptable-but-well-formed values."""
    encryptor = Cipher(algorithms.AES(ORG_KEY.encode()), modes.CBC(iv)).encryptor()
    return f"{iv.hex()}:{(encryptor.update(plaintext) + encryptor.finalize()).hex()}"


IV = bytes(range(16))
UNDECRYPTABLE = {
    "no-colon": "00112233445566778899aabbccddeeff",
    "not-hex": "zz112233445566778899aabbccddeeff:00112233445566778899aabbccddeeff",
    "short-iv": "0011:00112233445566778899aabbccddeeff",
    "partial-block": f"{IV.hex()}:0011",
    "empty-cipher": f"{IV.hex()}:",
    "bad-padding": _encrypt_raw(b"A" * 15 + b"\x00", IV),
    "padding-too-long": _encrypt_raw(b"A" * 15 + b"\x11", IV),
    "not-text": _encrypt_raw(b"\xff" * 15 + b"\x01", IV),
    "not-a-guid": encrypt_organization_id("not-a-guid", ORG_KEY, IV),
    "guid-and-newline": encrypt_organization_id(ORG_A + "\n", ORG_KEY, IV),
    "wrong-key": encrypt_organization_id(ORG_A, "f" * 32, IV),
    "a-number": 12345,
}


async def test_every_undecryptable_organization_id_gets_the_same_answer(
    redis_server: RedisServer, redis: Redis
) -> None:
    # given the old backend's encrypted organizationId, broken in every way we know
    settings = make_settings(redis_server, org_encryption_key=ORG_KEY)
    good = encrypt_organization_id(ORG_A, ORG_KEY, os.urandom(16))

    # when
    async with serve(settings) as url, httpx.AsyncClient(base_url=url) as http:
        answers = {
            name: await _refusal(http, _bearer(organizationGuid=None, organizationId=value))
            for name, value in UNDECRYPTABLE.items()
        }
        accepted = await create_session(
            GraphQLClient(http, _bearer(organizationGuid=None, organizationId=good))
        )

    # then one status, code and message for all, so no failure tells a forger anything
    distinct = {(status, e["extensions"]["code"], e["message"]) for status, e in answers.values()}
    assert distinct == {(401, "UNAUTHENTICATED", "The token's organizationId cannot be decrypted.")}
    assert accepted["organizationGuid"] == ORG_A


async def test_a_token_within_the_leeway_is_accepted_over_http_and_websocket(
    client: GraphQLClient, base_url: str
) -> None:
    # given a token that expired 10 s ago, within the default 30 s leeway
    late = _bearer(exp=int(time.time()) - 10)
    sid = (await create_session(client, token=late))["sessionId"]

    # when it opens a subscription, then the socket serves it (it used to accept the
    # connection and then refuse every operation)
    async with subscription(base_url, late, SESSION_EVENTS, {"sessionId": sid}) as ws:
        snapshot = await ws.event()

    assert snapshot["type"] == "SNAPSHOT"


async def test_jwt_leeway_seconds_applies_to_http_and_websocket_alike(
    redis_server: RedisServer, redis: Redis
) -> None:
    # given no leeway, and a token that expired 10 s ago
    settings = make_settings(redis_server, jwt_leeway_seconds=0)
    late = _bearer(exp=int(time.time()) - 10)

    async with serve(settings) as url, httpx.AsyncClient(base_url=url) as http:
        # when it is used over HTTP and to open a websocket
        status, error = await _refusal(http, late)
        async with open_ws(url, protocol=TRANSPORT_WS) as ws:
            await ws.send(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {late}"}}
            )
            closed = await ws.closed()

    # then both refuse it
    assert (status, error["extensions"]["code"]) == (401, "UNAUTHENTICATED")
    assert closed == (4403, "Forbidden")


@pytest.mark.parametrize(
    "payload",
    [None, {}, {"Authorization": "Bearer not-a-jwt"}],
    ids=["no-payload", "no-token", "bad-token"],
)
async def test_legacy_graphql_ws_without_a_valid_token_is_closed_4403(
    base_url: str, payload: dict[str, str] | None
) -> None:
    async with open_ws(base_url, protocol=LEGACY_WS) as ws:
        await ws.send(
            {"type": "connection_init", **({} if payload is None else {"payload": payload})}
        )
        refused = await ws.receive()
        closed = await ws.closed()

    assert refused["type"] == "connection_error"
    assert refused["payload"]["code"] == "UNAUTHENTICATED"
    assert closed == (4403, "Forbidden")
