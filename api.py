"""The GraphQL schema: root types with each field wired to its resolver; ``api.schema``.

Imports flow one way: this module -> resolvers/ -> schema/ (types) -> services/. The types
never import a resolver, so there is no cycle to hide.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from typing import Any

import strawberry
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from resolvers.catalog import resolve_catalog
from resolvers.commit import resolve_commit
from resolvers.sessions import (
    resolve_add_product,
    resolve_cancel_session,
    resolve_configure_target,
    resolve_create_session,
    resolve_my_sessions,
    resolve_session,
    resolve_session_progress,
)
from resolvers.subscriptions import resolve_session_state_changed
from schema.catalog import Catalog
from schema.events import SessionEvent
from schema.extensions import EXTENSIONS
from schema.internals import ExecutionContext
from schema.payloads import (
    AddProductPayload,
    CancelSessionPayload,
    CommitPayload,
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
        description="Your open (uncommitted, unexpired) sessions, newest first, one page "
        "at a time: `limit` of them (at most 50) after skipping `offset`.",
    )
    catalog: Catalog = strawberry.field(
        resolver=resolve_catalog,
        description="Every field of ProductInput and AudienceTargetInput with its label, help, "
        "limits and choices, and the rules across fields: build forms from it.",
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
    commit: CommitPayload = strawberry.mutation(
        resolver=resolve_commit,
        description="Step 4: write the product and its target to Dataverse in one "
        "transaction, exactly once, retrying transient failures. Safe to call again: a "
        "committed session answers with the same GUIDs for 24 hours, and a failed one can be "
        "edited and committed again.",
    )
    cancel_session: CancelSessionPayload = strawberry.mutation(
        resolver=resolve_cancel_session,
        description="Delete a draft that is not committing or committed, releasing its code.",
    )


@strawberry.type(description="Live updates, over a websocket at /graphql.")
class Subscription:
    session_state_changed: AsyncGenerator[SessionEvent, None] = strawberry.subscription(
        resolver=resolve_session_state_changed,
        description="A SNAPSHOT of the session, then one event per change as it happens, "
        "whichever instance served it; completes after COMMITTED, CANCELLED or EXPIRED. "
        'Send the token in the connection_init payload ({"Authorization": "Bearer …"}). '
        "An error with SESSION_NOT_FOUND when the session does not exist, has expired or is "
        "not yours; the stream ends with UNAUTHENTICATED when the token expires.",
    )


class OrchestratorSchema(strawberry.Schema):
    """The schema, minus Strawberry's habit of logging every error with a traceback."""

    def process_errors(self, errors: list[Any], execution_context: Any = None) -> None:
        # ErrorPolicy already logged what was unexpected; the rest are the caller's errors.
        return

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        # Plain HTTP lands here: Strawberry would run a subscription as a query and fail on
        # its null. Refuse it (HTTP 400): subscriptions are served over the websocket.
        allowed = set(allowed_operation_types or OperationType) - {OperationType.SUBSCRIPTION}
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed,
            operation_extensions,
        )


schema = OrchestratorSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=EXTENSIONS,
    config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALAR_MAP),
    execution_context_class=ExecutionContext,
)
