"""`rediss://`: the service talks to Redis over TLS, verifying the server against a private CA."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from app import create_app
from cli import redis_server_command
from emulator.testing import EmulatorControl
from tests.graphql_documents import ADD_PRODUCT, product_input
from tests.helpers import GraphQLClient, create_session, make_settings, serve_app, token
from tests.redis_server import RedisServer
from tests.test_subscriptions import SESSION_EVENTS
from tests.ws_client import subscription

pytestmark = pytest.mark.anyio


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(directory: Path) -> Path:
    """A private CA and a server certificate for 127.0.0.1 signed by it; return the CA file."""
    _openssl(
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
        *("-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=orchestrator test CA"),
        cwd=directory,
    )
    _openssl(
        *("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key"),
        *("-out", "server.csr", "-subj", "/CN=127.0.0.1"),
        cwd=directory,
    )
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl(
        *("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key"),
        *("-CAcreateserial", "-days", "2", "-out", "server.pem", "-extfile", "san.ext"),
        cwd=directory,
    )
    return directory / "ca.pem"


class TlsRedisServer(RedisServer):
    """A redis-server that only speaks TLS, on its port."""

    def __init__(self, certificates: Path) -> None:
        super().__init__()
        self.certificates = certificates

    def start(self) -> None:
        command = redis_server_command(self.port, str(self.directory))
        command[command.index("--port") + 1] = "0"  # no plain-text port at all
        command += [
            *("--tls-port", str(self.port)),
            *("--tls-cert-file", str(self.certificates / "server.pem")),
            *("--tls-key-file", str(self.certificates / "server.key")),
            *("--tls-ca-cert-file", str(self.certificates / "ca.pem")),
            *("--tls-auth-clients", "no"),
        ]
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(
            host="127.0.0.1",
            port=self.port,
            ssl=True,
            ssl_ca_certs=str(self.certificates / "ca.pem"),
            socket_connect_timeout=0.2,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                client.close()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError("redis-server (TLS) did not start") from None
                time.sleep(0.05)


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[RedisServer, Path]]:
    ca = make_certificates(tmp_path)
    server = TlsRedisServer(tmp_path)
    server.start()
    yield server, ca
    server.cleanup()


async def test_the_service_works_over_tls_with_a_private_ca(
    tls_redis: tuple[RedisServer, Path], dataverse: EmulatorControl
) -> None:
    server, ca = tls_redis
    url = f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={ca}"
    app = create_app(make_settings(server, redis_url=url))

    async with serve_app(app) as (base, _), httpx.AsyncClient(base_url=base) as http:
        client = GraphQLClient(http, token())
        sid = (await create_session(client))["sessionId"]
        async with subscription(base, token(), SESSION_EVENTS, {"sessionId": sid}) as ws:
            await ws.event()
            await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input()})
            event = await ws.event(within=10)
        ready = await http.get("/ready")

    assert event["type"] == "PRODUCT_ADDED"
    assert ready.status_code == 200


async def test_a_server_the_ca_does_not_vouch_for_is_refused(
    tls_redis: tuple[RedisServer, Path], tmp_path: Path, dataverse: EmulatorControl
) -> None:
    server, _ = tls_redis
    other = tmp_path / "other"
    other.mkdir()
    stranger_ca = make_certificates(other)
    url = f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={stranger_ca}"
    app = create_app(make_settings(server, redis_url=url))

    async with serve_app(app) as (base, _), httpx.AsyncClient(base_url=base) as http:
        ready = await http.get("/ready")

    assert ready.status_code == 503
