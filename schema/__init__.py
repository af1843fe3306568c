"""The GraphQL schema of the product orchestrator."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.schema.config import StrawberryConfig

from resolvers.sessions import (
    resolve_add_product,
    resolve_cancel_session,
    resolve_configure_target,
    resolve_create_session,
    resolve_my_sessions,
    resolve_session,
    resolve_session_progress,
)
from schema.extensions import EXTENSIONS
from schema.payloads import (
    AddProductPayload,
    CancelSessionPayload,
    ConfigureTargetPayload,
    CreateSessionPayload,
)
from schema.scalars import SCALAR_MAP
from schema.session import Session, SessionProgress


@strawberry.type(description="Read sessions.")
class Query:
    session: Session | None = strawberry.field(
        resolver=resolve_session,
        description="The whole draft, so a reloaded page can resume editing. Null with a "
        "SESSION_NOT_FOUND error when it does not exist, has expired or is not yours.",
    )
    session_progress: SessionProgress | None = strawberry.field(
        resolver=resolve_session_progress,
        description="Where a session stands. Null with a SESSION_NOT_FOUND error when it "
        "does not exist, has expired or is not yours.",
    )
    my_sessions: list[Session] = strawberry.field(
        resolver=resolve_my_sessions,
        description="Your open (uncommitted, unexpired) sessions, newest first.",
    )


@strawberry.type(description="The four-step workflow.")
class Mutation:
    create_session: CreateSessionPayload = strawberry.mutation(
        resolver=resolve_create_session,
        description="Step 1: open a draft. It lives for SESSION_TTL_SECONDS (2 hours) "
        "from now, however often it is saved.",
    )
    add_product: AddProductPayload = strawberry.mutation(
        resolver=resolve_add_product,
        description="Step 2: validate the product and store it in the draft, reserving its "
        "code. Call again to replace it, from any state before commit.",
    )
    configure_target: ConfigureTargetPayload = strawberry.mutation(
        resolver=resolve_configure_target,
        description="Step 3 (optional): validate the audience target and store it. Needs a "
        "product first. Call again to replace it; an empty target opens the product to everyone.",
    )
    cancel_session: CancelSessionPayload = strawberry.mutation(
        resolver=resolve_cancel_session,
        description="Delete a draft that is not committing or committed, releasing its code.",
    )


class OrchestratorSchema(strawberry.Schema):
    """The schema, minus Strawberry's habit of logging every error with a traceback."""

    def process_errors(self, errors: list[Any], execution_context: Any = None) -> None:
        # ErrorPolicy already logged what was unexpected; the rest are the caller's errors.
        return


schema = OrchestratorSchema(
    query=Query,
    mutation=Mutation,
    extensions=EXTENSIONS,
    config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALAR_MAP),
)

__all__ = ["schema"]
