"""Bearer tokens: static for the emulator, msal client credentials with one refresh on 401."""

from __future__ import annotations

from typing import Any

import httpx
import msal
import pytest

from services.dataverse import (
    DataverseAuthError,
    DataverseClient,
    DataverseRejectedError,
    MsalClientCredentialsAuth,
    StaticTokenAuth,
    build_http_client,
)
from tests.dataverse.fakes import ORG_URL, Router

pytestmark = pytest.mark.anyio

PRODUCTS = "/api/data/v9.2/osot_table_products"
SCOPE = f"{ORG_URL}/.default"
ACCESS_TOKEN = msal.TokenCache.CredentialType.ACCESS_TOKEN
EMPTY = httpx.Response(200, json={"value": []})


class FakeConfidentialApp:
    """Answers like msal.acquire_token_for_client: from its real TokenCache while it has a token."""

    def __init__(self, *issued: Any) -> None:
        self.token_cache = msal.TokenCache()
        self.issued = list(issued)
        self.network_calls = 0

    def acquire_token_for_client(self, scopes: list[str]) -> dict[str, Any]:
        assert scopes == [SCOPE]
        cached = list(self.token_cache.search(ACCESS_TOKEN, target=scopes))
        if cached:
            return {"access_token": cached[0]["secret"], "token_source": "cache"}
        self.network_calls += 1
        issued = self.issued.pop(0)
        if isinstance(issued, BaseException):
            raise issued
        if isinstance(issued, dict):
            return issued
        self.token_cache.add(
            {
                "client_id": "client",
                "scope": scopes,
                "token_endpoint": "https://login.microsoftonline.com/tenant/oauth2/v2.0/token",
                "environment": "login.microsoftonline.com",
                "response": {"access_token": issued, "expires_in": 3600, "token_type": "Bearer"},
            }
        )
        return {"access_token": issued, "token_source": "identity_provider"}


def _client(app: FakeConfidentialApp, router: Router) -> DataverseClient:
    auth = MsalClientCredentialsAuth("tenant", "client", "secret", ORG_URL + "/", application=app)
    return DataverseClient(build_http_client(ORG_URL, auth, transport=router.transport))


def _bearer(request: httpx.Request) -> str:
    return request.headers["Authorization"].removeprefix("Bearer ")


async def test_static_token_auth_sets_bearer():
    router = Router({("GET", PRODUCTS): EMPTY})
    http = build_http_client(ORG_URL, StaticTokenAuth("emulator-token"), transport=router.transport)
    async with DataverseClient(http) as client:
        await client.find_product_by_code("X")
    assert router.requests[0].headers["Authorization"] == "Bearer emulator-token"


async def test_msal_auth_reuses_cached_token():
    app = FakeConfidentialApp("token-1")
    router = Router({("GET", PRODUCTS): EMPTY})
    async with _client(app, router) as client:
        await client.find_product_by_code("A")
        await client.find_product_by_code("B")
    assert [_bearer(r) for r in router.requests] == ["token-1", "token-1"]
    assert app.network_calls == 1


async def test_msal_auth_refreshes_once_on_401_and_resends():
    # given: Dataverse no longer accepts the cached token
    app = FakeConfidentialApp("revoked", "fresh")
    sent: list[str] = []

    def products(request: httpx.Request) -> httpx.Response:
        sent.append(_bearer(request))  # the flow resends the same Request object
        return EMPTY if sent[-1] == "fresh" else httpx.Response(401)

    router = Router({("GET", PRODUCTS): products})

    # when
    async with _client(app, router) as client:
        found = await client.find_product_by_code("A")

    # then
    assert found is None
    assert sent == ["revoked", "fresh"]
    assert app.network_calls == 2
    assert [at["secret"] for at in app.token_cache.search(ACCESS_TOKEN, target=[SCOPE])] == [
        "fresh"
    ]


async def test_msal_auth_second_401_raises_auth_error():
    app = FakeConfidentialApp("one", "two", "three")
    sent: list[str] = []

    def products(request: httpx.Request) -> httpx.Response:
        sent.append(_bearer(request))
        return httpx.Response(401)

    router = Router({("GET", PRODUCTS): products})
    async with _client(app, router) as client:
        with pytest.raises(DataverseAuthError, match="even after fetching a new one"):
            await client.find_product_by_code("A")
    assert sent == ["one", "two"]


async def test_msal_auth_refresh_resends_batch_body():
    app = FakeConfidentialApp("revoked", "fresh")
    bodies: list[bytes] = []

    def batch(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        return (
            httpx.Response(401) if _bearer(request) == "revoked" else httpx.Response(400, json={})
        )

    router = Router({("POST", "/api/data/v9.2/$batch"): batch})
    async with _client(app, router) as client:
        with pytest.raises(DataverseRejectedError, match="HTTP 400"):
            await client.create_product_with_target(
                product_columns={"a": 1}, target_columns={"b": 2}
            )
    assert len(bodies) == 2 and bodies[0] == bodies[1] and b'"a":1' in bodies[0]


@pytest.mark.parametrize(
    ("issued", "message"),
    [
        (
            {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret.\nTrace ID: 1",
            },
            "invalid_client - AADSTS7000215: Invalid client secret.",
        ),
        (
            ConnectionError("login.microsoftonline.com unreachable"),
            "login.microsoftonline.com unreachable",
        ),
    ],
    ids=["refused", "network"],
)
async def test_msal_auth_token_failure_raises_auth_error(issued, message):
    app = FakeConfidentialApp(issued)
    router = Router({("GET", PRODUCTS): EMPTY})
    async with _client(app, router) as client:
        with pytest.raises(DataverseAuthError) as caught:
            await client.find_product_by_code("A")
    assert message in caught.value.message
    assert router.requests == []
