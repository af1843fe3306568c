"""Logs: one format chosen by LOG_FORMAT, every request line with its fields, no secrets."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from emulator.testing import EmulatorControl
from telemetry.context import note_session, note_user, request_scope
from telemetry.logs import CHATTY_LOGGERS, configure_logging, scrub, stop_logging
from tests.dataverse_emulator import ThreadedEmulator
from tests.graphql_documents import ADD_PRODUCT, CONFIGURE_TARGET, CREATE_SESSION, product_input
from tests.helpers import SECRET, GraphQLClient, RedisServer, serve, token
from tests.test_commit import COMMIT

ROOT = Path(__file__).parent.parent
LOG_DB = 13


@pytest.fixture
def process_logging() -> Iterator[None]:
    """Let a test configure the process's logging, and put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    yield
    stop_logging()
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, previous in levels.items():
        logging.getLogger(name).setLevel(previous)
    logging.getLogger("uvicorn.access").disabled = False


def test_scrub_removes_tokens_and_query_strings() -> None:
    jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl"
    text = (
        f"Authorization: Bearer {jwt_like}; also {jwt_like} and "
        "GET https://org.crm.dynamics.com/api/data/v9.2/osot_table_products?"
        "$filter=osot_product_code%20eq%20'SECRET-CODE'&$top=1 done"
    )

    clean = scrub(text)

    assert "eyJ" not in clean and "SECRET-CODE" not in clean and "$filter" not in clean
    assert "Bearer [redacted]" in clean
    assert "/api/data/v9.2/osot_table_products?[query redacted] done" in clean


def test_json_lines_carry_the_request_fields(process_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    log = logging.getLogger("orchestrator.test")

    with request_scope("op-123"):
        note_user("user-9")
        note_session("sid-1")
        log.info("changed %s", "it", extra={"attempt": 2})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    log.info("outside")
    stop_logging()

    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "changed it" and first["level"] == "info"
    assert (first["operation_id"], first["user_id"], first["session_id"]) == (
        "op-123",
        "user-9",
        "sid-1",
    )
    assert first["attempt"] == 2 and first["logger"] == "orchestrator.test"
    assert second["level"] == "error" and "ValueError: boom" in second["exception"]
    assert "operation_id" not in third


def test_console_lines_put_the_fields_after_the_message(process_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("INFO", "console", stream=stream)

    with request_scope("op-9"):
        note_user("user-9")
        logging.getLogger("orchestrator.test").warning("slow")
    stop_logging()

    line = stream.getvalue().strip()
    assert "WARNING orchestrator.test: slow" in line
    assert line.endswith("[operation_id=op-9 user_id=user-9]")


@pytest.mark.parametrize(("level", "chatty"), [("INFO", "WARNING"), ("DEBUG", "DEBUG")])
def test_http_client_libraries_log_below_warning_only_at_debug(
    process_logging: None, level: str, chatty: str
) -> None:
    configure_logging(level, "json", stream=io.StringIO())

    assert logging.getLevelName(logging.getLogger("httpx").level) == chatty
    assert logging.getLevelName(logging.getLogger("httpcore").level) == chatty


@pytest.mark.anyio
async def test_the_app_configures_no_log_handlers(settings: Any, redis: Any) -> None:
    root = logging.getLogger()
    before = root.handlers[:]

    async with serve(settings) as url, httpx.AsyncClient(base_url=url) as http:
        await GraphQLClient(http, token()).data(CREATE_SESSION)
        during = root.handlers[:]

    assert during == before
    assert logging.getLogger("litestar").handlers == []


def test_serve_logs_json_lines_with_each_requests_fields_and_no_secrets(
    redis_server: RedisServer, dataverse_emulator: ThreadedEmulator
) -> None:
    # given `orchestrator serve` with the default format
    from cli import free_port

    port = free_port()
    bearer = token("log-user")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "REDIS_", "LOG_"))},
        "REDIS_URL": redis_server.url(LOG_DB),
        "JWT_SECRET": SECRET,
        "DATAVERSE_URL": dataverse_emulator.base_url,
        "DATAVERSE_TOKEN": dataverse_emulator.token,
    }
    process = subprocess.Popen(
        [sys.executable, "-c", "import cli; cli.main()", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(base, process)
        _reset_emulator(dataverse_emulator)

        # when a draft is walked through the four steps
        with httpx.Client(base_url=base, headers={"authorization": f"Bearer {bearer}"}) as http:

            def call(query: str, **variables: object) -> dict[str, Any]:
                body = http.post("/graphql", json={"query": query, "variables": variables}).json()
                assert "errors" not in body, body
                return body["data"]

            sid = call(CREATE_SESSION)["createSession"]["session"]["sessionId"]
            call(ADD_PRODUCT, sessionId=sid, input=product_input(productCode="LOG-1"))
            call(CONFIGURE_TARGET, sessionId=sid, input={"province": ["ONTARIO"]})
            committed = call(COMMIT, sessionId=sid)["commit"]
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        redis.Redis.from_url(redis_server.url(LOG_DB)).flushdb()

    # then every line is one JSON object
    lines = [json.loads(line) for line in stderr.splitlines()]
    assert committed["success"] is True
    requests = [line for line in lines if line["logger"] == "orchestrator.http"]
    assert [r.get("operation") for r in requests] == [
        None,  # createSession's document has no operation name
        "AddProduct",
        "ConfigureTarget",
        "Commit",
    ]
    assert all(r["user_id"] == "log-user" and r["session_id"] == sid for r in requests)
    assert all(r["http_status"] == 200 and r["duration_ms"] > 0 for r in requests)
    # the commit's own line carries the same fields, and the id the client was given
    [done] = [line for line in lines if line["logger"] == "orchestrator.commit"]
    assert "committed" in done["message"]
    assert done["operation_id"] == committed["operationId"] == requests[-1]["operation_id"]
    assert (done["operation"], done["session_id"], done["user_id"]) == ("Commit", sid, "log-user")
    # and nothing secret: no token, no secret, no Dataverse query, no httpx request lines
    assert bearer not in stderr and SECRET not in stderr and dataverse_emulator.token not in stderr
    assert "$filter" not in stderr and "LOG-1'" not in stderr
    assert not [line for line in lines if line["logger"].startswith(("httpx", "httpcore"))]


def _reset_emulator(emulator: ThreadedEmulator) -> None:
    import asyncio

    asyncio.run(EmulatorControl(emulator.base_url, token=emulator.token).reset())


def _wait_until_up(base: str, process: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("orchestrator serve did not start")
        time.sleep(0.1)
