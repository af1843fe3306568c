"""TokenVerifier remembers verified tokens: same answers as a fresh check, never past exp."""

from __future__ import annotations

import jwt
import pytest

from services.auth import AuthConfig, TokenVerifier
from services.errors import PermissionDeniedError
from tests.helpers import SECRET, claims

pytestmark = pytest.mark.anyio


class Clock:
    """The verifier's clock, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _bearer(**overrides: object) -> str:
    return "Bearer " + jwt.encode(claims(**overrides), SECRET)


def _verifier(clock: Clock, *, leeway: int = 30, cache_size: int = 1024) -> TokenVerifier:
    config = AuthConfig(("HS256",), secret=SECRET, leeway_seconds=leeway)
    return TokenVerifier(config, cache_size=cache_size, clock=clock)


async def test_token_cache_answers_a_second_time_from_memory() -> None:
    # given a token verified once
    bearer = _bearer()
    verifier = _verifier(Clock(claims()["iat"]))
    first = await verifier.authenticate(bearer)

    # when it comes again
    second = await verifier.authenticate(bearer)

    # then the remembered principal answers (a fresh check would build another one)
    assert second is first
    assert first.user_id == "user-1"


async def test_token_cache_forgets_a_token_at_its_expiry() -> None:
    # given a remembered token, no leeway
    bearer = _bearer()
    exp = claims()["exp"]
    clock = Clock(exp - 10)
    verifier = _verifier(clock, leeway=0)
    first = await verifier.authenticate(bearer)
    assert await verifier.authenticate(bearer) is first

    # when the verifier's clock reaches the token's exp
    clock.now = exp

    # then it is checked afresh, not answered from memory
    again = await verifier.authenticate(bearer)
    assert again is not first
    assert again == first


async def test_token_cache_never_remembers_a_refusal() -> None:
    # given
    verifier = _verifier(Clock(claims()["iat"]))
    owner = _bearer(privilege="owner")
    # when / then: refused every time, with the same error
    for _ in range(2):
        with pytest.raises(PermissionDeniedError):
            await verifier.authenticate(owner)


async def test_token_cache_is_bounded_and_drops_the_oldest() -> None:
    # given a cache for two, and three tokens verified in turn
    verifier = _verifier(Clock(claims()["iat"]), cache_size=2)
    bearers = [_bearer(sub=f"user-{i}") for i in range(3)]
    firsts = [await verifier.authenticate(b) for b in bearers]

    # when they come again, newest first
    again = [await verifier.authenticate(b) for b in reversed(bearers)]

    # then the two newest answer from memory, the oldest is checked afresh
    assert again[0] is firsts[2] and again[1] is firsts[1]
    assert again[2] is not firsts[0] and again[2] == firsts[0]
