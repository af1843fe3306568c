"""Authentication and authorization over HTTP: tokens old and new, privileges, JWKS."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from services.auth import encrypt_organization_id
from tests.graphql_documents import CREATE_SESSION, MY_SESSIONS, SESSION_PROGRESS
from tests.helpers import ORG_A, SECRET, GraphQLClient, create_session, make_settings, serve, token
from tests.helpers import claims as token_claims

pytestmark = pytest.mark.anyio

ORG_KEY = "0123456789abcdef0123456789abcdef"


async def _error(client: GraphQLClient, bearer: str | None) -> tuple[int, dict[str, Any]]:
    # In application/graphql-response+json a refused caller is a request error (no data)
    # with 401/403; in application/json it is 200 (tests/test_http_answers.py).
    headers = {"accept": "application/graphql-response+json"}
    if bearer is not None:
        headers["authorization"] = bearer
    response = await client.http.post("/graphql", json={"query": MY_SESSIONS}, headers=headers)
    body = response.json()
    assert "data" not in body
    return response.status_code, body["errors"][0]


@pytest.mark.parametrize(
    ("bearer", "message"),
    [
        (None, "Authentication required"),
        ("Basic dXNlcjpwYXNz", "Malformed Authorization header"),
        ("Bearer not-a-jwt", "Invalid token"),
        (f"Bearer {jwt.encode(token_claims(exp=int(time.time()) - 120), SECRET)}", "Token expired"),
        (
            f"Bearer {jwt.encode(token_claims(), 'another-secret-that-is-32-bytes-long')}",
            "Invalid token",
        ),
        (f"Bearer {jwt.encode(token_claims(exp=None), SECRET)}", "exp"),
        (f"Bearer {jwt.encode(token_claims(sub=None), SECRET)}", "sub"),
    ],
    ids=["missing", "not-bearer", "malformed", "expired", "wrong-signature", "no-exp", "no-sub"],
)
async def test_bad_tokens_are_unauthenticated(
    client: GraphQLClient, bearer: str | None, message: str
) -> None:
    status, error = await _error(client, bearer)

    assert status == 401
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert message in error["message"]


async def test_tampered_token_is_unauthenticated(client: GraphQLClient) -> None:
    header, payload, signature = token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["privilege"] = 3
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()

    status, error = await _error(client, f"Bearer {header}.{forged}.{signature}")

    assert status == 401
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_alg_none_token_is_unauthenticated(client: GraphQLClient) -> None:
    unsigned = jwt.encode(token_claims(), key="", algorithm="none")

    status, error = await _error(client, f"Bearer {unsigned}")

    assert status == 401
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("privilege", [1, "owner", "OWNER", None, 4, True], ids=str)
async def test_owner_or_unknown_privilege_is_forbidden(
    client: GraphQLClient, privilege: Any
) -> None:
    status, error = await _error(
        client, f"Bearer {jwt.encode(token_claims(privilege=privilege), SECRET)}"
    )

    assert status == 403
    assert error["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize("privilege", [2, 3, "admin", "main", "Main"], ids=str)
async def test_admin_and_main_may_use_the_orchestrator(
    client: GraphQLClient, privilege: Any
) -> None:
    bearer = jwt.encode(token_claims(privilege=privilege), SECRET)

    session = await create_session(client, token=bearer)

    assert session["state"] == "INITIATED"


async def test_privilege_is_checked_on_every_operation(client: GraphQLClient) -> None:
    # given a draft opened by an admin
    sid = (await create_session(client))["sessionId"]
    demoted = jwt.encode(token_claims(privilege="owner"), SECRET)

    # when the same user comes back with an owner token
    body = await client.execute(SESSION_PROGRESS, {"sessionId": sid}, token=demoted)

    # then
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_old_backend_token_with_encrypted_organization_works(
    redis_server: Any, redis: Any
) -> None:
    # given a token as the existing backend issues it: numeric privilege, encrypted org
    encrypted = encrypt_organization_id(ORG_A, ORG_KEY, os.urandom(16))
    claims = token_claims(
        organizationGuid=None,
        organizationId=encrypted,
        privilege=3,
        role="main",
        userType="account",
        email="a@example.org",
    )
    bearer = jwt.encode(claims, SECRET)
    settings = make_settings(redis_server, org_encryption_key=ORG_KEY)

    # when
    async with serve(settings) as url, httpx.AsyncClient(base_url=url) as http:
        session = await create_session(GraphQLClient(http, bearer))

    # then the draft belongs to the decrypted organization
    assert session["organizationGuid"] == ORG_A


async def test_encrypted_organization_without_key_is_rejected_clearly(
    client: GraphQLClient,
) -> None:
    encrypted = encrypt_organization_id(ORG_A, ORG_KEY, os.urandom(16))

    status, error = await _error(
        client,
        "Bearer "
        + jwt.encode(token_claims(organizationGuid=None, organizationId=encrypted), SECRET),
    )

    assert status == 401
    assert "ORG_ENCRYPTION_KEY" in error["message"]


async def test_token_without_organization_is_forbidden(client: GraphQLClient) -> None:
    status, error = await _error(
        client, f"Bearer {jwt.encode(token_claims(organizationGuid=None), SECRET)}"
    )

    assert status == 403
    assert "organization" in error["message"]


async def test_issuer_and_audience_are_checked_when_configured(
    redis_server: Any, redis: Any
) -> None:
    settings = make_settings(
        redis_server, jwt_issuer="https://id.example.org", jwt_audience="orchestrator"
    )
    good = jwt.encode(token_claims(iss="https://id.example.org", aud="orchestrator"), SECRET)
    wrong_aud = jwt.encode(token_claims(iss="https://id.example.org", aud="billing"), SECRET)
    no_iss = jwt.encode(token_claims(aud="orchestrator"), SECRET)

    async with serve(settings) as url, httpx.AsyncClient(base_url=url) as http:
        gql = GraphQLClient(http, None)
        accepted = await gql.execute(CREATE_SESSION, token=good)
        rejected = [await gql.execute(MY_SESSIONS, token=t) for t in (wrong_aud, no_iss)]

    assert accepted["data"]["createSession"]["session"]["state"] == "INITIATED"
    assert [r["errors"][0]["extensions"]["code"] for r in rejected] == ["UNAUTHENTICATED"] * 2


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, Any]]:
    """Serve a JWKS with one RSA key over real HTTP, as an identity provider does."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/jwks.json", key
    server.shutdown()
    server.server_close()


async def test_rs256_tokens_are_verified_with_the_providers_jwks(
    redis_server: Any, redis: Any, jwks_server: tuple[str, Any]
) -> None:
    url, key = jwks_server
    settings = make_settings(
        redis_server, jwt_secret=None, jwt_algorithms="RS256", jwt_jwks_url=url
    )
    signed = jwt.encode(token_claims(), key, algorithm="RS256", headers={"kid": "k1"})
    hs256 = jwt.encode(token_claims(), SECRET)

    async with serve(settings) as base, httpx.AsyncClient(base_url=base) as http:
        gql = GraphQLClient(http, None)
        accepted = await gql.execute(CREATE_SESSION, token=signed)
        rejected = await gql.execute(MY_SESSIONS, token=hs256)

    assert accepted["data"]["createSession"]["session"]["state"] == "INITIATED"
    assert rejected["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
