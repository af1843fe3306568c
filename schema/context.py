"""The per-request GraphQL context: the services, the operation id and the caller's credentials."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.litestar import BaseContext

from services.auth import TokenVerifier
from services.commit import CommitService
from services.models import Principal
from services.ratelimit import MutationRateLimiter
from services.session_stream import SessionStream
from services.sessions import SessionService


class Context(BaseContext, kw_only=True):
    """What resolvers may use. Built by app.provide_context for each request or socket."""

    sessions: SessionService
    commits: CommitService
    verifier: TokenVerifier
    operation_id: str
    authorization: str | None = None
    # Over websockets the token comes in the connection_init payload (Strawberry sets this).
    connection_params: dict[str, Any] | None = None
    principal: Principal | None = None
    # Sessions followed live for subscriptions (services/session_stream.py); one per process.
    streams: SessionStream | None = None
    # Counts each user's mutations (services/ratelimit.py); None: no limit.
    rate_limiter: MutationRateLimiter | None = None
    # INTROSPECTION: whether admins may read the schema (schema/documents.may_introspect).
    introspection: bool = False

    def credentials(self) -> str | None:
        """Return the Authorization value: the header, else the connection_init payload's."""
        if self.authorization:
            return self.authorization
        for key, value in (self.connection_params or {}).items():
            if key.lower() == "authorization" and isinstance(value, str):
                return value
        return None


Info = strawberry.Info[Context, None]
