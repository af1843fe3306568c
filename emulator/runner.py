"""Start and stop an emulator: in the running event loop, or blocking until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

from .batch import BatchRunner
from .config import EmulatorConfig
from .control import ControlApi
from .dispatch import Dispatcher
from .faults import FaultState, RequestLog
from .server import HttpServer
from .store import Store
from .tables import build_tables
from .webapi import SERVICE_PATH, WebApi

logger = logging.getLogger("emulator")


class Emulator:
    """One running emulator. ``base_url`` is the organization URI (append /api/data/v9.2/)."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.token = config.token
        self.store = Store(config.db_path, build_tables(), config.organizations)
        self.faults = FaultState()
        self.requests = RequestLog()
        api = WebApi(self.store)
        dispatcher = Dispatcher(
            api,
            BatchRunner(api, self.store),
            ControlApi(api, self.store, self.faults, self.requests),
            self.faults,
            self.requests,
            config.token,
        )
        self._server = HttpServer(dispatcher.handle)

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def base_url(self) -> str:
        host = self.config.host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def web_api_url(self) -> str:
        return self.base_url + SERVICE_PATH

    async def start(self) -> None:
        await self._server.start(self.config.host, self.config.port)

    async def stop(self) -> None:
        await self._server.stop()
        self.store.close()


@contextlib.asynccontextmanager
async def start_emulator(config: EmulatorConfig | None = None) -> AsyncIterator[Emulator]:
    """Run an emulator in the current event loop for the duration of the ``async with``."""
    emulator = Emulator(config or EmulatorConfig())
    try:
        await emulator.start()
    except BaseException:
        emulator.store.close()
        raise
    try:
        yield emulator
    finally:
        await emulator.stop()


def run_emulator(config: EmulatorConfig | None = None) -> None:
    """Serve until SIGINT/SIGTERM (for ``orchestrator dataverse-emulator``)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_serve_forever(config or EmulatorConfig()))


async def _serve_forever(config: EmulatorConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(signum, stop.set)
    async with start_emulator(config) as emulator:
        logger.info(
            "Dataverse emulator listening: Web API %s (bearer token %r, database %s). "
            "Control API: %s/_emulator/. Ctrl+C to stop.",
            emulator.web_api_url,
            emulator.token,
            config.db_path,
            emulator.base_url,
        )
        await stop.wait()
    logger.info("Dataverse emulator stopped.")
