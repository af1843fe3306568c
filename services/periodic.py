"""A background task that runs one step every interval and survives every error of a step."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable


class Periodic:
    """Run ``step`` every ``interval`` seconds in a task, until stopped.

    ``step`` returns True when it had a full batch (more may be due): then the next step
    runs at once. A failing step (Redis down, a bug) is logged once per outage and retried
    at the next tick; the task never dies of it.
    """

    def __init__(
        self,
        name: str,
        step: Callable[[], Awaitable[bool]],
        *,
        interval: float,
        logger: logging.Logger,
    ) -> None:
        self._name = name
        self._step = step
        self._interval = interval
        self._logger = logger
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def start(self) -> None:
        """Start running in the background."""
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """Stop and wait for the task to end."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self) -> bool:
        """Run one step now; return whether it had a full batch (False when it failed)."""
        try:
            full = await self._step()
        except Exception:
            if not self._failing:
                self._logger.warning(
                    "%s failed; retrying every %ss", self._name, self._interval, exc_info=True
                )
            self._failing = True
            return False
        if self._failing:
            self._logger.info("%s recovered", self._name)
            self._failing = False
        return full

    async def _run(self) -> None:
        while True:
            if not await self.run_once():
                await asyncio.sleep(self._interval)
