"""The project's Dataverse emulator on its own thread, so every test's event loop can reach it."""

from __future__ import annotations

import asyncio
import threading

from emulator import EmulatorConfig, start_emulator


class ThreadedEmulator:
    """Runs one emulator on a private event loop until ``stop()``."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self._config = config or EmulatorConfig()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.base_url = ""
        self.token = self._config.token
        self._thread = threading.Thread(target=self._run, name="dataverse-emulator", daemon=True)

    def start(self) -> ThreadedEmulator:
        self._thread.start()
        if not self._ready.wait(timeout=10) or self._error:
            raise RuntimeError("the Dataverse emulator did not start") from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with start_emulator(self._config) as emulator:
                self.base_url = emulator.base_url
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            raise
