"""Conformance with a browser-style client: the graphql-ws npm package (see tests/js)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.graphql_documents import ADD_PRODUCT, product_input
from tests.helpers import GraphQLClient, create_session, token

pytestmark = pytest.mark.anyio

# CI installs the client first: npm ci --prefix tests/js
JS = Path(__file__).parent / "js"


async def test_graphql_ws_client_gets_ack_snapshot_events_and_4403(
    client: GraphQLClient, base_url: str
) -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed for this test"
    assert (JS / "node_modules" / "graphql-ws").is_dir(), "run `npm ci --prefix tests/js` first"
    sid = (await create_session(client))["sessionId"]

    process = await asyncio.create_subprocess_exec(
        node,
        str(JS / "conformance.mjs"),
        base_url,
        token(),
        sid,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    lines: list[dict[str, Any]] = []
    try:
        with anyio.fail_after(20):
            while len(lines) < 4:
                raw = await process.stdout.readline()
                assert raw, (await process.stderr.read()).decode()
                lines.append(json.loads(raw))
                if len(lines) == 3:  # the snapshot arrived: make a change
                    await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input()})
            exit_code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    rejected, connected, snapshot, added = lines
    assert (rejected["step"], rejected["code"], rejected["reason"]) == (
        "rejected",
        4403,
        "Forbidden",
    )
    assert connected == {"step": "connected", "payload": None}
    assert snapshot["result"]["data"]["sessionStateChanged"]["type"] == "SNAPSHOT"
    assert added["result"]["data"]["sessionStateChanged"] == {
        "type": "PRODUCT_ADDED",
        "sessionId": sid,
        "state": "PRODUCT_ADDED",
        "version": 2,
        "progress": {"percentage": 50},
    }
    assert exit_code == 0
