"""The console's page and assets over HTTP: served from the package, locked down, switchable."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from tests.helpers import RedisServer, make_settings, serve

pytestmark = pytest.mark.anyio

WEB = Path(__file__).parent.parent / "console" / "web"


async def test_the_console_page_and_its_assets_are_served_from_this_origin_only(
    base_url: str,
) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        page = await http.get("/")
        script = await http.get("/console/console.js")
        style = await http.get("/console/console.css")
        again = await http.get(
            "/console/console.js", headers={"if-none-match": script.headers["etag"]}
        )
        missing = await http.get("/console/nothing.js")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["referrer-policy"] == "no-referrer"
    assert 'src="console/console.js"' in page.text and "http" not in page.text.split("<body>")[0]
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    assert "sessionStateChanged" in script.text  # the live subscription is in the bundle
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert again.status_code == 304 and again.content == b""
    assert missing.status_code == 404


async def test_console_false_turns_the_page_off(redis_server: RedisServer, redis: Redis) -> None:
    settings = make_settings(redis_server, console=False)
    async with serve(settings) as url, httpx.AsyncClient(base_url=url) as http:
        page = await http.get("/")
        script = await http.get("/console/console.js")
        health = await http.get("/health")

    assert page.status_code == 404
    assert script.status_code == 404
    assert health.status_code == 200


def test_built_assets_match_the_typescript_sources() -> None:
    # The built files are committed (the package serves them without Node.js); `make test`
    # installs console/web's toolchain, which type-checks the sources and rebuilds them.
    node = shutil.which("node")
    assert node, "Node.js is needed for this test"
    assert (WEB / "node_modules" / "esbuild").is_dir(), "run `npm ci --prefix console/web` first"
    tsc = subprocess.run(
        [node, "node_modules/typescript/bin/tsc", "--noEmit", "-p", "."],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=120,
    )
    build = subprocess.run(
        [node, "build.mjs", "--check"], cwd=WEB, capture_output=True, text=True, timeout=120
    )

    assert tsc.returncode == 0, tsc.stdout + tsc.stderr
    assert build.returncode == 0, build.stderr
