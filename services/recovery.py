"""The commit recoverer: finishes commits that no process runs any more, once across instances.

A commit is due for recovery when its lease ran out (the process that held it died or lost
Redis), or when it failed unconfirmed (a write may be in Dataverse) and its draft reached
expiresAt with nobody left to commit it again. Every instance runs a recoverer; draft.lua's
``take_over`` claims each due commit for one of them. Queries never recover anything.
"""

from __future__ import annotations

import asyncio
import logging

from services.commit import CommitService
from services.periodic import Periodic
from services.sessions import SessionService

logger = logging.getLogger("orchestrator.recovery")


class CommitRecoverer:
    """Every interval, take over the commits that are due and run them to their end."""

    def __init__(
        self,
        sessions: SessionService,
        commits: CommitService,
        *,
        interval: float = 1.0,
        batch: int = 20,
    ) -> None:
        self._sessions = sessions
        self._commits = commits
        self._batch = batch
        self._periodic = Periodic("commit recovery", self._step, interval=interval, logger=logger)
        self.recovered = 0

    def start(self) -> None:
        """Start recovering in the background."""
        self._periodic.start()

    async def stop(self) -> None:
        """Stop and wait for the task (and any recovery it runs) to end."""
        await self._periodic.stop()

    async def recover_once(self) -> int:
        """Recover what is due now; return how many commits this instance finished."""
        before = self.recovered
        await self._periodic.run_once()
        return self.recovered - before

    async def _step(self) -> bool:
        due = await self._sessions.due_recoveries(limit=self._batch)
        outcomes = await asyncio.gather(
            *(self._commits.recover(session_id) for session_id in due), return_exceptions=True
        )
        for session_id, outcome in zip(due, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                logger.warning("recovering session %s failed: %r", session_id, outcome)
            elif outcome is not None:
                self.recovered += 1
        return len(due) >= self._batch
