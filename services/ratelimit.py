"""Per-user rate limit on mutations, held in Redis so that it holds across instances."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisError

from services.errors import RateLimitedError, SessionStoreUnavailableError
from services.models import Principal
from telemetry import metrics

_SCRIPT = resources.files("services.lua").joinpath("rate_limit.lua").read_text("utf-8")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """How many mutations a user may run: *per_second* sustained, *burst* at once."""

    per_second: float = 20
    burst: int = 40


class MutationRateLimiter:
    """Count each user's mutations in Redis (one round trip each, GCRA)."""

    def __init__(
        self, redis: Redis | RedisCluster, limit: RateLimit, *, key_prefix: str = "{orchestrator}"
    ):
        self._limit = limit
        self._interval_us = max(1, round(1_000_000 / limit.per_second))
        self._prefix = f"{key_prefix}:rate:"
        self._script = redis.register_script(_SCRIPT)

    async def acquire(self, principal: Principal) -> None:
        """Count one mutation for *principal*, or raise RateLimitedError saying when to retry."""
        key = f"{self._prefix}{principal.organization_guid}:{principal.user_id}"
        try:
            allowed, retry_us = await self._script(
                keys=[key], args=[self._interval_us, self._limit.burst]
            )
        except RedisError as exc:
            metrics.REDIS_ERRORS.inc()
            raise SessionStoreUnavailableError from exc
        if not allowed:
            metrics.RATE_LIMITED.inc()
            raise RateLimitedError(int(retry_us) / 1_000_000)
