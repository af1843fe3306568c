"""In Chromium: a page on another origin calls the API through CORS, and GraphiQL renders with
the network cut off (Debian's Chromium through Playwright; fixtures in tests/browser)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from litestar import Litestar, MediaType, get
from playwright.async_api import Browser, Route, expect
from redis.asyncio import Redis

from tests.browser.conftest import CHROMIUM, browser, playwright  # noqa: F401 - shared fixtures
from tests.helpers import make_settings, serve, serve_app, token
from tests.redis_server import RedisServer

pytestmark = pytest.mark.anyio

# What a frontend does first: a preflighted POST (JSON, with a bearer token), then the socket.
PAGE = """<!doctype html><meta charset="utf-8"><title>another origin</title>
<pre id="out">running</pre>
<script>
const api = new URLSearchParams(location.search).get("api");
const token = new URLSearchParams(location.search).get("token");
const out = document.getElementById("out");
(async () => {
  const result = {};
  try {
    const response = await fetch(api + "/graphql", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/graphql-response+json, application/json",
        "Authorization": "Bearer " + token,
      },
      body: JSON.stringify({
        query: "mutation CreateSession { createSession { session { id state } } }",
      }),
    });
    result.status = response.status;
    result.contentType = response.headers.get("content-type");
    result.body = await response.json();
  } catch (error) {
    result.fetchError = String(error);
  }
  result.socket = await new Promise((resolve) => {
    const socket = new WebSocket(api.replace("http", "ws") + "/graphql", "graphql-transport-ws");
    socket.onopen = () => socket.send(JSON.stringify({
      type: "connection_init", payload: { Authorization: "Bearer " + token },
    }));
    socket.onmessage = (event) => { resolve(JSON.parse(event.data).type); socket.close(); };
    socket.onerror = () => resolve("refused");
  });
  out.textContent = JSON.stringify(result);
})();
</script>"""


@get("/", media_type=MediaType.HTML, sync_to_thread=False)
def page() -> str:
    return PAGE


@pytest.fixture
async def frontend() -> AsyncIterator[str]:
    """A page served by a dev server of its own, on another port: another origin."""
    async with serve_app(Litestar(route_handlers=[page])) as (url, _):
        yield url


async def _run_page(browser: Browser, frontend: str, api: str) -> dict[str, Any]:  # noqa: F811
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(f"{frontend}/?api={api}&token={token()}")
        out = page.locator("#out")
        await expect(out).not_to_have_text("running", timeout=15_000)
        return json.loads(await out.text_content() or "{}")
    finally:
        await context.close()


async def test_a_page_on_an_allowed_origin_calls_the_api_through_cors(
    browser: Browser,  # noqa: F811
    frontend: str,
    redis_server: RedisServer,
    redis: Redis,
    dataverse: Any,
) -> None:
    # given an API that allows the frontend's origin, as orchestrator dev allows localhost
    settings = make_settings(redis_server, allowed_origins="http://127.0.0.1:*")

    # when the page calls it from the browser
    async with serve(settings) as api:
        result = await _run_page(browser, frontend, api)

    # then the preflighted POST and the websocket both went through
    assert result.get("fetchError") is None, result
    assert result["status"] == 200
    assert result["contentType"].startswith("application/graphql-response+json")
    assert result["body"]["data"]["createSession"]["session"]["state"] == "INITIATED"
    assert result["socket"] == "connection_ack"


async def test_a_page_on_another_origin_is_blocked_by_the_browser(
    browser: Browser,  # noqa: F811
    frontend: str,
    redis_server: RedisServer,
    redis: Redis,
    dataverse: Any,
) -> None:
    settings = make_settings(redis_server, allowed_origins="https://app.example.com")

    async with serve(settings) as api:
        result = await _run_page(browser, frontend, api)

    assert "Failed to fetch" in result["fetchError"]  # the browser's "blocked by CORS policy"
    assert result["socket"] == "refused"


async def test_graphiql_renders_and_runs_with_the_network_cut_off(
    tmp_path: Path,
    playwright: Any,  # noqa: F811
    redis_server: RedisServer,
    redis: Redis,
    dataverse: Any,
) -> None:
    # given a browser that resolves no host but this machine, and refuses other origins
    offline = await playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
    )
    settings = make_settings(redis_server, graphiql=True)
    elsewhere: list[str] = []
    problems: list[str] = []
    try:
        async with serve(settings) as api:
            context = await offline.new_context()
            origin = urlsplit(api).netloc

            async def only_this_origin(route: Route) -> None:
                if urlsplit(route.request.url).netloc in (origin, ""):
                    await route.continue_()
                else:
                    elsewhere.append(route.request.url)
                    await route.abort("internetdisconnected")

            await context.route("**/*", only_this_origin)
            ide = await context.new_page()
            ide.on("pageerror", lambda error: problems.append(str(error)))
            ide.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

            # when GraphiQL is opened, and its default operation run without a token
            await ide.goto(f"{api}/graphql")
            editor = ide.locator(".graphiql-query-editor .CodeMirror")
            await expect(editor).to_be_visible(timeout=20_000)
            await expect(ide.locator(".graphiql-query-editor")).to_contain_text("CreateSession")
            await ide.locator(".graphiql-execute-button").click()
            result = ide.locator(".result-window")
            await expect(result).to_contain_text("UNAUTHENTICATED", timeout=15_000)
            await ide.screenshot(path=str(tmp_path / "graphiql-offline.png"))
            await context.close()
    finally:
        await offline.close()

    # then nothing came from elsewhere, and the page's strict CSP refused nothing it needs
    assert elsewhere == []
    assert problems == []
