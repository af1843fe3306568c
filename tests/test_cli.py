"""The orchestrator command as a person runs it: tokens, configuration errors, the dev stack."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import psutil
import pytest

from tests.graphql_documents import ADD_PRODUCT, CONFIGURE_TARGET, CREATE_SESSION, product_input
from tests.helpers import ORG_A, SECRET
from tests.test_commit import COMMIT

ORCHESTRATOR = [sys.executable, "-c", "import cli; cli.main()"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "REDIS_", "DATAVERSE_"))
    }
    return subprocess.run(
        [*ORCHESTRATOR, *args],
        env=base | (env or {}),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
    )


def test_token_mints_the_claims_the_service_reads() -> None:
    result = run(
        "token",
        "--sub",
        "u-42",
        "--privilege",
        "main",
        "--org",
        ORG_A,
        "--ttl",
        "120",
        env={"JWT_SECRET": SECRET},
    )

    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])
    assert result.returncode == 0
    assert claims["sub"] == "u-42"
    assert claims["privilege"] == "main"
    assert claims["organizationGuid"] == ORG_A
    assert claims["exp"] - claims["iat"] == 120


@pytest.mark.parametrize(
    ("args", "env", "variable"),
    [
        (["token", "--sub", "u", "--privilege", "admin", "--org", ORG_A], {}, "JWT_SECRET"),
        (
            ["serve"],
            {"JWT_SECRET": SECRET, "DATAVERSE_URL": "http://dv.local", "DATAVERSE_TOKEN": "t"},
            "REDIS_URL",
        ),
        (["serve"], {"REDIS_URL": "redis://localhost:1/0"}, "JWT_SECRET"),
        (["serve"], {"REDIS_URL": "redis://localhost:1/0", "JWT_SECRET": SECRET}, "DATAVERSE_URL"),
        (
            ["serve"],
            {
                "REDIS_URL": "redis://localhost:1/0",
                "JWT_SECRET": SECRET,
                "DATAVERSE_URL": "https://org.crm.dynamics.com",
            },
            "DATAVERSE_TENANT_ID",
        ),
        (["serve"], {"REDIS_URL": "not-a-url", "JWT_SECRET": SECRET}, "REDIS_URL"),
        (
            ["serve"],
            {"SESSION_TTL_SECONDS": "two hours", "JWT_SECRET": SECRET},
            "SESSION_TTL_SECONDS",
        ),
        (["serve"], {"JWT_ALGORITHMS": "HS256,RS256", "JWT_SECRET": SECRET}, "JWT_ALGORITHMS"),
        (["serve"], {"ORG_ENCRYPTION_KEY": "short", "JWT_SECRET": SECRET}, "ORG_ENCRYPTION_KEY"),
    ],
    ids=[
        "token-secret",
        "redis-missing",
        "secret-missing",
        "dataverse-missing",
        "dataverse-credentials",
        "redis-invalid",
        "ttl-invalid",
        "mixed-algorithms",
        "org-key",
    ],
)
def test_bad_configuration_fails_with_one_line_naming_the_variable(
    args: list[str], env: dict[str, str], variable: str
) -> None:
    result = run(*args, env=env)

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("orchestrator: configuration error:")
    assert variable in lines[0]
    assert "Traceback" not in result.stderr


def test_dev_starts_everything_serves_graphql_and_stops_cleanly(tmp_path: Path) -> None:
    # given `orchestrator dev` on a free port, from a directory of its own
    port = _free_port()
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "REDIS_", "DATAVERSE_"))
    }
    process = subprocess.Popen(
        [*ORCHESTRATOR, "dev", "--port", str(port), "--db", str(tmp_path / "dv.sqlite3")],
        cwd=tmp_path,
        env=base | {"PYTHONPATH": str(Path(__file__).parent.parent)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = _read_until(process, "Ctrl-C")
        token = re.search(r"Bearer ([\w.-]+)", banner).group(1)  # type: ignore[union-attr]
        children = psutil.Process(process.pid).children(recursive=True)

        # when a person walks a draft through steps 1 to 4 with the printed header
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"authorization": f"Bearer {token}"}
        ) as http:
            ide = http.get("/graphql", headers={"accept": "text/html"})
            console = http.get("/")

            def call(query: str, **variables: object) -> dict[str, Any]:
                body = http.post("/graphql", json={"query": query, "variables": variables}).json()
                assert "errors" not in body, body
                return body["data"]

            sid = call(CREATE_SESSION)["createSession"]["session"]["sessionId"]
            call(ADD_PRODUCT, sessionId=sid, input=product_input())
            call(CONFIGURE_TARGET, sessionId=sid, input={"province": ["ONTARIO"]})
            committed = call(COMMIT, sessionId=sid)["commit"]

        # then GraphiQL answers and the product and its target are in the emulator
        assert "GraphiQL" in banner and "Dataverse" in banner
        assert ide.status_code == 200 and "graphiql" in ide.text.lower()
        # and the printed console link signs in with the same token
        assert f"http://localhost:{port}/#token={token}" in banner
        assert console.status_code == 200 and "console/console.js" in console.text
        assert committed["success"] is True, committed
        assert committed["productCode"] == "OSOT-WORKSHOP-2026"
        assert any("redis-server" in " ".join(c.cmdline()) for c in children)
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
        assert process.stdout is not None
        process.stdout.close()

    # and Ctrl-C stopped everything it started
    assert code == 0
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


def _free_port() -> int:
    from cli import free_port

    return free_port()


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float = 60) -> str:
    assert process.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        line = process.stdout.readline()
        if (not line and process.poll() is not None) or time.monotonic() > deadline:
            raise AssertionError(f"no {marker!r} in output:\n{seen}")
        seen += line
    return seen
