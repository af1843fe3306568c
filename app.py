"""The Litestar application: one lifespan owning the clients; /graphql, /health, /ready."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import orjson
from litestar import Litestar, Response, get
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.status_codes import HTTP_503_SERVICE_UNAVAILABLE
from strawberry import UNSET
from strawberry.litestar import make_graphql_controller
from strawberry.litestar.controller import GraphQLController

from admission import Refused, admit, refusal_response
from api import schema
from console import console_routes
from graphql_http import with_fast_post
from resolvers.subscriptions import accept_connection
from schema.context import Context
from services.auth import AuthConfig, TokenVerifier
from services.commit import CommitPolicy, CommitService
from services.dataverse import (
    DataverseClient,
    MsalClientCredentialsAuth,
    StaticTokenAuth,
    build_http_client,
    retry_policy,
)
from services.errors import SessionStoreUnavailableError
from services.events import EventHub
from services.expiry import ExpirySweeper
from services.ratelimit import MutationRateLimiter, RateLimit
from services.recovery import CommitRecoverer
from services.redis_client import RedisStore, RedisTarget, open_redis
from services.session_stream import SessionStream
from services.sessions import SessionService
from settings import Settings, load_settings
from telemetry import metrics
from telemetry.context import current_operation_id
from telemetry.http import ProcessLogging, metrics_endpoint, observe_graphql
from telemetry.tracing import Tracing, tracing_from_settings
from web.answers import graphql_exception_handler, negotiate_graphql
from web.controller import with_browser_support
from web.cors import cors_config
from web.graphiql import graphiql_asset
from web.origins import OriginPolicy

logger = logging.getLogger("orchestrator")


def redis_target(settings: Settings) -> RedisTarget:
    """Return where the drafts live: REDIS_URL (one server or a cluster node) or Sentinel."""
    settings.require_redis()
    secret = settings.redis_password
    sentinel_secret = settings.redis_sentinel_password
    return RedisTarget(
        url=str(settings.redis_url) if settings.redis_url else None,
        sentinels=settings.redis_sentinels,
        sentinel_master=settings.redis_sentinel_master,
        username=settings.redis_username,
        password=secret.get_secret_value() if secret else None,
        sentinel_username=settings.redis_sentinel_username,
        sentinel_password=sentinel_secret.get_secret_value() if sentinel_secret else None,
    )


async def connect_redis(settings: Settings, *, dev: bool = False) -> RedisStore:
    """Open the drafts' Redis (one server, a cluster or via Sentinel) and check it.

    Raise RedisSetupError when Redis refuses the credentials or would evict drafts; log a
    warning when it persists nothing (not in ``orchestrator dev``, *dev*). A Redis that does
    not answer yet is no reason to stop: the store finds out what it is once it does.
    """
    store = await open_redis(redis_target(settings), dev=dev)
    try:
        report = await store.check_server(dev=dev)
    except BaseException:
        await store.aclose()
        raise
    for warning in report.warnings:
        logger.warning("%s", warning)
    logger.info("Redis: %s (%d master%s)", report.mode, report.nodes, "s"[: report.nodes > 1])
    return store


def build_verifier(settings: Settings) -> TokenVerifier:
    """Return the token verifier configured by *settings*."""
    return TokenVerifier(
        AuthConfig(
            algorithms=settings.jwt_algorithms,
            secret=settings.jwt_secret.get_secret_value() if settings.jwt_secret else None,
            jwks_url=str(settings.jwt_jwks_url) if settings.jwt_jwks_url else None,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway_seconds=settings.jwt_leeway_seconds,
            org_encryption_key=(
                settings.org_encryption_key.get_secret_value()
                if settings.org_encryption_key
                else None
            ),
        )
    )


def build_dataverse(settings: Settings, tracing: Tracing | None = None) -> DataverseClient:
    """Return the process's Dataverse client: a static token (emulator) or client credentials."""
    url = str(settings.dataverse_url).rstrip("/")
    auth: httpx.Auth
    if settings.dataverse_token:
        auth = StaticTokenAuth(settings.dataverse_token.get_secret_value())
    else:
        assert settings.dataverse_client_secret is not None
        auth = MsalClientCredentialsAuth(
            tenant_id=settings.dataverse_tenant_id or "",
            client_id=settings.dataverse_client_id or "",
            client_secret=settings.dataverse_client_secret.get_secret_value(),
            resource_url=url,
        )
    http = build_http_client(url, auth, settings.dataverse_timeout_seconds)
    if tracing is not None:
        tracing.instrument_http(http)
    return DataverseClient(
        http,
        retrying=retry_policy(settings.commit_max_attempts, settings.commit_max_wait_seconds),
    )


def commit_policy(settings: Settings) -> CommitPolicy:
    """Return the commit policy configured by *settings*."""
    return CommitPolicy(
        max_attempts=settings.commit_max_attempts,
        max_total_wait=settings.commit_max_wait_seconds,
        lease=timedelta(seconds=settings.commit_lease_seconds),
        settle_after=timedelta(seconds=settings.commit_settle_seconds),
    )


async def provide_context(request: ASGIConnection[Any, Any, Any, State]) -> Context:
    """Build the GraphQL context (a Litestar dependency); for websockets, once at the handshake.

    An HTTP request is admitted first (admission.py): its size, its shape and its token are
    checked before Strawberry or the short POST path parse anything.
    """
    state = request.app.state
    principal = await admit(
        request,
        state.verifier,
        max_request_bytes=state.max_request_bytes,
        max_header_bytes=state.max_header_bytes,
    )
    return Context(
        sessions=state.sessions,
        commits=state.commits,
        verifier=state.verifier,
        operation_id=current_operation_id(),
        authorization=request.headers.get("authorization"),
        streams=state.streams,
        rate_limiter=state.rate_limiter,
        principal=principal,
        introspection=state.introspection,
    )


async def _no_sub_response() -> Response[Any]:
    return Response({})


def graphql_controller(
    settings: Settings, *, path: str = "/graphql", fast_post: bool = True
) -> type[GraphQLController[Any, Any]]:
    """Return the GraphQL controller; ``fast_post=False`` is Strawberry's path alone.

    The app serves the fast one. The stock one exists for the equivalence test and the
    benchmark, which compare the two (graphql_http.py).
    """
    controller = make_graphql_controller(
        schema,
        path=path,
        graphql_ide="graphiql" if settings.graphiql else None,
        context_getter=provide_context,
    )
    # Strawberry builds the sub-response in a worker thread (sync_to_thread=True); an
    # async provider saves a thread hop on every request that takes Strawberry's path.
    controller.dependencies = {**controller.dependencies, "response": Provide(_no_sub_response)}
    controller = with_browser_support(controller, OriginPolicy.of(settings.allowed_origins))

    class OrchestratorGraphQLController(controller):  # type: ignore[valid-type,misc]
        def encode_json(self, data: object) -> bytes:
            return orjson.dumps(data)

        async def on_ws_connect(self, context: Context) -> Any:
            await accept_connection(context)  # no valid token: close 4403
            return UNSET  # an ack without a payload

    if fast_post:
        return with_fast_post(OrchestratorGraphQLController)
    return OrchestratorGraphQLController


@get("/health", sync_to_thread=False, include_in_schema=False)
def health() -> dict[str, str]:
    """Liveness: the process is up."""
    return {"status": "ok"}


@get("/ready", include_in_schema=False)
async def ready(state: State) -> Response[dict[str, str]]:
    """Readiness: Redis answers."""
    try:
        await state.sessions.ping()
    except SessionStoreUnavailableError as exc:
        return Response(
            {"status": "unavailable", "reason": exc.message},
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
        )
    return Response({"status": "ok"})


def create_app(
    settings: Settings | None = None, *, tracing: Tracing | None = None, dev: bool = False
) -> Litestar:
    """Build the application from *settings* (read from the environment when None).

    Logging and the garbage collector belong to the process, so the entry point
    (``cli.py``) sets them up, not this factory. Traces go where *tracing* sends them
    (tests), else to OTEL_EXPORTER_OTLP_ENDPOINT when it is set. *dev* (``orchestrator
    dev``) does not warn about a Redis that persists nothing.
    """
    settings = settings or load_settings()
    if tracing is None and settings.otel_exporter_otlp_endpoint is not None:
        tracing = tracing_from_settings(str(settings.otel_exporter_otlp_endpoint))

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # Each client is closed on the way out, also when a later step of start-up fails.
        async with AsyncExitStack() as stack:
            stack.callback(metrics.process_exited)
            if tracing is not None:
                stack.callback(tracing.shutdown)
            store = await connect_redis(settings, dev=dev)
            stack.push_async_callback(store.aclose)
            redis = store.client
            if tracing is not None:
                tracing.instrument_redis(redis)
            dataverse = build_dataverse(settings, tracing)
            stack.push_async_callback(dataverse.aclose)
            sessions = SessionService(
                redis,
                ttl=timedelta(seconds=settings.session_ttl_seconds),
                max_open_drafts=settings.max_open_drafts,
            )
            events = EventHub(store, sessions.events_channel)
            stack.push_async_callback(events.close)
            await events.start()
            sweeper = ExpirySweeper(sessions)
            sweeper.start()
            stack.push_async_callback(sweeper.stop)
            app.state.redis = redis
            app.state.redis_store = store
            app.state.sessions = sessions
            app.state.verifier = build_verifier(settings)
            commits = CommitService(
                sessions,
                dataverse,
                commit_policy(settings),
                replicated=store.replication_barrier(sessions.keys.draft),
            )
            recoverer = CommitRecoverer(
                sessions, commits, interval=settings.commit_recovery_interval_seconds
            )
            recoverer.start()
            stack.push_async_callback(recoverer.stop)
            app.state.commits = commits
            app.state.events = events
            app.state.streams = SessionStream(events, sessions)
            app.state.rate_limiter = MutationRateLimiter(
                redis, RateLimit(settings.mutation_rate_per_second, settings.mutation_burst)
            )
            app.state.max_request_bytes = settings.max_request_bytes
            app.state.max_header_bytes = settings.max_header_bytes
            app.state.introspection = settings.introspection
            yield

    return Litestar(
        route_handlers=[
            graphql_controller(settings),
            health,
            ready,
            metrics_endpoint,
            *(console_routes() if settings.console else []),
            *([graphiql_asset] if settings.graphiql else []),
        ],
        cors_config=cors_config(OriginPolicy.of(settings.allowed_origins)),
        # What Litestar refuses on /graphql (405 for PUT...) is a GraphQL response too.
        exception_handlers={HTTPException: graphql_exception_handler, Refused: refusal_response},
        lifespan=[lifespan],
        middleware=[DefineMiddleware(observe_graphql, tracing=tracing), negotiate_graphql],
        # Bodies past it are refused (413) before they are read (admission.py).
        request_max_body_size=settings.max_request_bytes,
        # The process's (telemetry.logs, set up by cli.py), not Litestar's default; Litestar
        # still logs the exceptions it catches.
        logging_config=ProcessLogging(quiet=(Refused,)),
        debug=False,
    )
