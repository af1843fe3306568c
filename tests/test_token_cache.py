"""TokenVerifier remembers verified tokens: same answers as a fresh check, never past exp."""

from __future__ import annotations

import time

import anyio
import jwt
import pytest

from services.auth import AuthConfig, TokenVerifier
from services.errors import AuthenticationError, PermissionDeniedError
from tests.conftest import ORG_A, SECRET

pytestmark = pytest.mark.anyio


def _bearer(**claims: object) -> str:
    now = int(time.time())
    payload = {
        "sub": "user-1",
        "privilege": 2,
        "organizationGuid": ORG_A,
        "iat": now,
        "exp": now + 600,
    }
    payload.update(claims)
    return "Bearer " + jwt.encode(payload, SECRET)


def _verifier(leeway: int = 30, cache_size: int = 1024) -> TokenVerifier:
    config = AuthConfig(("HS256",), secret=SECRET, leeway_seconds=leeway)
    return TokenVerifier(config, cache_size=cache_size)


async def test_token_cache_returns_the_same_principal() -> None:
    # given
    verifier, bearer = _verifier(), _bearer()
    # when
    first = await verifier.authenticate(bearer)
    second = await verifier.authenticate(bearer)
    # then
    assert second == first
    assert first.user_id == "user-1"


async def test_token_cache_refuses_a_remembered_token_once_it_expires() -> None:
    # given: no leeway, a token valid for one more second, verified once
    verifier, bearer = _verifier(leeway=0), _bearer(exp=int(time.time()) + 1)
    await verifier.authenticate(bearer)
    # when
    await anyio.sleep(1.1)
    # then
    with pytest.raises(AuthenticationError, match="Token expired"):
        await verifier.authenticate(bearer)


async def test_token_cache_never_remembers_a_refusal() -> None:
    # given
    verifier = _verifier()
    owner = _bearer(privilege="owner")
    # when / then: refused every time, with the same error
    for _ in range(2):
        with pytest.raises(PermissionDeniedError):
            await verifier.authenticate(owner)


async def test_token_cache_is_bounded() -> None:
    # given
    verifier = _verifier(cache_size=2)
    bearers = [_bearer(sub=f"user-{i}") for i in range(3)]
    # when
    for bearer in bearers:
        await verifier.authenticate(bearer)
    # then: the oldest was dropped; all three still authenticate
    assert len(verifier._verified) == 2
    assert [(await verifier.authenticate(b)).user_id for b in bearers] == [
        "user-0",
        "user-1",
        "user-2",
    ]
