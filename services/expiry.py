"""The expiry sweeper: fires due EXPIRING_SOON/EXPIRED notices, once across instances."""

from __future__ import annotations

import logging

from services.periodic import Periodic
from services.sessions import SessionService
from telemetry import metrics

logger = logging.getLogger("orchestrator.expiry")


class ExpirySweeper:
    """Call ``SessionService.sweep`` every interval, in a task that survives Redis errors.

    Every instance runs one; draft.lua claims each notice with ZREM, so it fires once across
    instances. This replaces keyspace notifications, which managed Redis often disables and
    which fire late (https://redis.io/docs/latest/develop/use/keyspace-notifications/).
    """

    def __init__(
        self, sessions: SessionService, *, interval: float = 1.0, batch: int = 100
    ) -> None:
        self._sessions = sessions
        self._batch = batch
        self._fired: list[str] = []
        self._periodic = Periodic("expiry sweep", self._step, interval=interval, logger=logger)
        self.fired = 0

    def start(self) -> None:
        """Start sweeping in the background."""
        self._periodic.start()

    async def stop(self) -> None:
        """Stop sweeping and wait for the task to end."""
        await self._periodic.stop()

    async def sweep_once(self) -> list[str]:
        """Fire what is due now; return the notices fired (empty when Redis is unavailable)."""
        self._fired = []
        await self._periodic.run_once()
        return self._fired

    async def _step(self) -> bool:
        self._fired = await self._sessions.sweep(limit=self._batch)
        self.fired += len(self._fired)
        # Each notice fires once across instances, so every instance may count what it fired.
        metrics.DRAFTS_EXPIRED.inc(sum(1 for n in self._fired if n.startswith("expired:")))
        return len(self._fired) >= self._batch  # a full batch: more may be due, go on at once
