"""GraphiQL is served offline: the page and all its files come from the service, pinned.

That it renders in a browser with the network cut off is tests/test_browser.py's job.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from tests.helpers import RedisServer, make_settings, serve
from web.graphiql import graphiql_version

pytestmark = pytest.mark.anyio

IDE = Path(__file__).parent.parent / "web" / "ide"


@pytest.fixture
async def ide(redis_server: RedisServer, redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(redis_server, graphiql=True)
    async with serve(settings) as url, httpx.AsyncClient(base_url=url) as http:
        yield http


def _sources(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


async def test_the_page_loads_nothing_from_another_origin(ide: httpx.AsyncClient) -> None:
    page = await ide.get("/graphql", headers={"accept": "text/html"})

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    sources = _sources(page.text)
    assert len(sources) == 7  # four scripts, two style sheets, the (inline) icon
    assert [s for s in sources if s.startswith(("http:", "https:", "//"))] == []
    assert "<script>" not in page.text  # no inline script: a strict CSP can stay strict
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "default-src 'none'" in policy


async def test_every_file_the_page_names_is_served(ide: httpx.AsyncClient) -> None:
    page = await ide.get("/graphql", headers={"accept": "text/html"})

    for source in _sources(page.text):
        if source.startswith("data:"):
            continue
        response = await ide.get(source)
        assert response.status_code == 200, source
        kind = "text/javascript" if source.endswith(".js") else "text/css"
        assert response.headers["content-type"].startswith(kind)
        assert "immutable" in response.headers["cache-control"]
        assert len(response.content) > 100


async def test_only_the_pinned_files_are_served(ide: httpx.AsyncClient) -> None:
    version = graphiql_version()

    for path in [
        f"/graphiql/{version}/package.json",
        f"/graphiql/{version}/..%2Fpackage.json",
        "/graphiql/0.0.1/graphiql.min.js",
    ]:
        assert (await ide.get(path)).status_code == 404, path


def test_the_installed_graphiql_is_the_pinned_one() -> None:
    pins = json.loads((IDE / "package.json").read_text())["dependencies"]
    lock = json.loads((IDE / "package-lock.json").read_text())["packages"]

    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in pins.values()), pins
    assert graphiql_version() == pins["graphiql"] == lock["node_modules/graphiql"]["version"]


async def test_without_graphiql_there_is_no_page_and_no_files(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        page = await http.get("/graphql", headers={"accept": "text/html"})
        asset = await http.get(f"/graphiql/{graphiql_version()}/graphiql.min.js")

    assert page.status_code == 404
    assert page.headers["content-type"].startswith("application/json")  # no HTML page
    assert asset.status_code == 404
