"""Starting as the README says: a dev secret that survives restarts, .env read by every command,
and .env.example runnable as copied."""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt

from cli import DEV_SECRET_FILE, free_port
from emulator import DEFAULT_ORGANIZATIONS
from services.auth import mint_token
from settings import Settings
from tests.graphql_documents import ADD_PRODUCT, CREATE_SESSION, MY_SESSIONS, product_input
from tests.helpers import TEST_DB, RedisServer
from tests.test_cli import ORCHESTRATOR, _read_until
from tests.test_commit import COMMIT

ROOT = Path(__file__).parent.parent


def _environment(**extra: str) -> dict[str, str]:
    prefixes = tuple(f"{name.upper()}" for name in Settings.model_fields)
    base = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return base | {"PYTHONPATH": str(ROOT)} | extra


@contextmanager
def _running(args: list[str], cwd: Path, marker: str, **env: str) -> Iterator[str]:
    """Run an orchestrator command until the block ends; yield its output up to *marker*."""
    process = subprocess.Popen(
        [*ORCHESTRATOR, *args],
        cwd=cwd,
        env=_environment(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield _read_until(process, marker)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        assert process.stdout is not None
        process.stdout.close()


def _graphql(port: int, bearer: str, query: str, **variables: object) -> dict[str, Any]:
    response = httpx.post(
        f"http://127.0.0.1:{port}/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {bearer}"},
        timeout=30,
    )
    return response.json()


def _dev(tmp_path: Path, port: int, *extra: str) -> list[str]:
    return ["dev", "--port", str(port), "--db", str(tmp_path / "dv.sqlite3"), *extra]


def test_dev_keeps_its_secret_and_data_across_restarts_until_reset(tmp_path: Path) -> None:
    port = free_port()
    code = "DEV-RESTART-1"

    # given a first run that committed a product, with the token it printed
    with _running(_dev(tmp_path, port), tmp_path, "Ctrl-C") as banner:
        first = re.search(r"Bearer ([\w.-]+)", banner).group(1)  # type: ignore[union-attr]
        sid = _graphql(port, first, CREATE_SESSION)["data"]["createSession"]["session"]
        _graphql(
            port,
            first,
            ADD_PRODUCT,
            sessionId=sid["sessionId"],
            input=product_input(productCode=code),
        )
        committed = _graphql(port, first, COMMIT, sessionId=sid["sessionId"])
    secret = tmp_path / DEV_SECRET_FILE

    # when it starts again, then the saved token still works and the code is still taken
    with _running(_dev(tmp_path, port), tmp_path, "Ctrl-C"):
        again = _graphql(port, first, MY_SESSIONS)
        draft = _graphql(port, first, CREATE_SESSION)["data"]["createSession"]["session"]
        taken = _graphql(
            port,
            first,
            ADD_PRODUCT,
            sessionId=draft["sessionId"],
            input=product_input(productCode=code),
        )

    # and after --reset the emulator's data is gone but the secret stays
    with _running(_dev(tmp_path, port, "--reset"), tmp_path, "Ctrl-C"):
        draft = _graphql(port, first, CREATE_SESSION)["data"]["createSession"]["session"]
        free = _graphql(
            port,
            first,
            ADD_PRODUCT,
            sessionId=draft["sessionId"],
            input=product_input(productCode=code),
        )

    assert committed["data"]["commit"]["success"] is True, committed
    assert "errors" not in again, again
    assert [e["code"] for e in taken["data"]["addProduct"]["userErrors"]] == ["PRODUCT_CODE_TAKEN"]
    assert free["data"]["addProduct"]["userErrors"] == [], free
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert jwt.decode(first, secret.read_text().strip(), algorithms=["HS256"])["sub"] == "dev-admin"


def test_token_reads_dot_env_like_serve(tmp_path: Path) -> None:
    secret = "a-secret-from-dot-env-that-is-32-bytes-long"
    (tmp_path / ".env").write_text(f"JWT_SECRET={secret}\nJWT_ISSUER=https://id.example.org\n")

    result = subprocess.run(
        [*ORCHESTRATOR, "token", "--sub", "u-7", "--privilege", "admin", "--org", "x"],
        cwd=tmp_path,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), secret, algorithms=["HS256"])
    assert (claims["sub"], claims["iss"]) == ("u-7", "https://id.example.org")


def test_env_example_loads_as_documented_with_empty_values_unset() -> None:
    settings = Settings(_env_file=ROOT / ".env.example")

    assert settings.jwt_jwks_url is None and settings.jwt_issuer is None
    assert settings.org_encryption_key is None and settings.dataverse_client_secret is None
    assert settings.allowed_origins == ()
    assert str(settings.dataverse_url) == "http://127.0.0.1:8001/"


def test_env_example_copied_to_dot_env_starts_serve(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    # given .env.example copied as the README says; only Redis is this test's own
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    secret = re.search(r"^JWT_SECRET=(.+)$", (ROOT / ".env.example").read_text(), re.M)
    assert secret is not None
    port = free_port()
    bearer = mint_token(
        secret=secret.group(1),
        subject="u-1",
        privilege="admin",
        organization_guid=DEFAULT_ORGANIZATIONS[0][0],
    )

    # when
    with _running(
        ["serve", "--port", str(port)],
        tmp_path,
        "Uvicorn running",
        REDIS_URL=redis_server.url(TEST_DB),  # the environment wins over .env
    ):
        created = _graphql(port, bearer, CREATE_SESSION)

    # then
    assert created["data"]["createSession"]["session"]["state"] == "INITIATED", created
