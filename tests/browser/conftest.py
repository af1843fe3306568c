"""Browser fixtures: Debian's Chromium driven by Playwright, one page per test, strict about errors.

Every page fails its test if it logs a console error, throws, or requests anything from
another origin: the console must work offline and cleanly.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest
from playwright.async_api import Browser, Page, Playwright, async_playwright, expect
from redis.asyncio import Redis

from settings import Settings
from tests.helpers import RedisServer, make_settings, serve

# Debian's package (apt-get install chromium), launched through Playwright's
# executable_path: Playwright cannot download a browser here.
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Screenshots go to docs/ only when asked (`make screenshots`): a test run leaves the tree clean.
SCREENSHOTS = os.environ.get("CONSOLE_SCREENSHOTS")

expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as p:
        yield p


@pytest.fixture(scope="session")
async def browser(playwright: Playwright) -> AsyncIterator[Browser]:
    assert os.access(CHROMIUM, os.X_OK), (
        "Chromium is needed: apt-get install chromium (.ci/run does)"
    )
    browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    yield browser
    await browser.close()


@asynccontextmanager
async def console_server(redis_server: RedisServer, **overrides: Any) -> AsyncIterator[str]:
    """Serve the app (console on) with these settings; yield its base URL."""
    settings: Settings = make_settings(redis_server, **overrides)
    async with serve(settings) as url:
        yield url


@pytest.fixture
async def app_url(redis_server: RedisServer, redis: Redis, dataverse: Any) -> AsyncIterator[str]:
    async with console_server(redis_server) as url:
        yield url


class PageWatch:
    """What a page did that it should not: console errors, uncaught errors, foreign requests."""

    def __init__(self, origin: str, allow: tuple[str, ...]) -> None:
        self.problems: list[str] = []
        self.origin = origin
        self.allow = allow

    def attach(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("request", lambda request: self._url(request.url))
        page.on("websocket", lambda ws: self._url(ws.url))

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning") and not any(a in message.text for a in self.allow):
            self.problems.append(f"console {message.type}: {message.text}")

    def _url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme == "data":
            return
        if f"{parts.hostname}:{parts.port}" != self.origin:
            self.problems.append(f"request to another origin: {url}")


@pytest.fixture
async def context_factory(browser: Browser) -> AsyncIterator[Any]:
    """Open pages on *url* (new browser context each: own sessionStorage), checked at teardown."""
    opened: list[tuple[Any, PageWatch]] = []

    async def open_page(
        url: str, *, width: int = 1280, height: int = 900, allow: tuple[str, ...] = ()
    ) -> Page:
        """*allow*: console messages the test expects (the browser logs every 4xx itself)."""
        context = await browser.new_context(viewport={"width": width, "height": height})
        page = await context.new_page()
        parts = urlsplit(url)
        watch = PageWatch(f"{parts.hostname}:{parts.port}", allow)
        watch.attach(page)
        opened.append((context, watch))
        return page

    yield open_page
    problems = [p for _, watch in opened for p in watch.problems]
    for context, _ in opened:
        await context.close()
    assert problems == [], "the console misbehaved:\n" + "\n".join(problems)


AXE = Path(__file__).parents[2] / "console" / "web" / "node_modules" / "axe-core" / "axe.min.js"


async def assert_accessible(page: Page) -> None:
    """Run axe-core (installed with the console's toolchain) on the page: no violations."""
    assert await anyio.Path(AXE).exists(), "run `npm ci --prefix console/web` first"
    # evaluate() runs outside the page's CSP, which would refuse an injected script.
    await page.evaluate(await anyio.Path(AXE).read_text())
    result = await page.evaluate("axe.run(document, { resultTypes: ['violations'] })")
    violations = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
    ]
    assert violations == [], "\n".join(violations)


async def screenshot(page: Page, name: str, tmp_path: Path, *, full_page: bool = False) -> Path:
    """Save a screenshot as docs/console-<name>.png when asked, else under tmp_path."""
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"console-{name}.png"
    await page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return path
