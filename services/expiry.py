"""The expiry sweeper: fires due EXPIRING_SOON/EXPIRED notices, once across instances."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.sessions import SessionService
from telemetry import metrics

logger = logging.getLogger("orchestrator.expiry")


class ExpirySweeper:
    """Call ``SessionService.sweep`` every interval, in a task that survives Redis errors.

    Every instance runs one; draft.lua claims each notice with ZREM, so it fires once across
    instances. This replaces keyspace notifications, which managed Redis often disables and
    which fire late (tech-notes E3).
    """

    def __init__(
        self, sessions: SessionService, *, interval: float = 1.0, batch: int = 100
    ) -> None:
        self._sessions = sessions
        self._interval = interval
        self._batch = batch
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self.fired = 0

    def start(self) -> None:
        """Start sweeping in the background."""
        self._task = asyncio.create_task(self._run(), name="expiry-sweeper")

    async def stop(self) -> None:
        """Stop sweeping and wait for the task to end."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def sweep_once(self) -> list[str]:
        """Fire what is due now; return the notices fired (empty when Redis is unavailable)."""
        try:
            fired = await self._sessions.sweep(limit=self._batch)
        except Exception:
            # Redis down, or anything unexpected: log it once and try again next tick, never die.
            if not self._failing:
                logger.warning(
                    "expiry sweep failed; retrying every %ss", self._interval, exc_info=True
                )
            self._failing = True
            return []
        if self._failing:
            logger.info("expiry sweep recovered")
            self._failing = False
        self.fired += len(fired)
        # Each notice fires once across instances, so every instance may count what it fired.
        metrics.DRAFTS_EXPIRED.inc(sum(1 for notice in fired if notice.startswith("expired:")))
        return fired

    async def _run(self) -> None:
        while True:
            fired = await self.sweep_once()
            if len(fired) < self._batch:  # a full batch means more may be due: go on at once
                await asyncio.sleep(self._interval)
