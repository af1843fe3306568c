"""A session (the draft) and its progress, as clients read them."""

from __future__ import annotations

from datetime import datetime

import strawberry

from schema.enums import SessionState
from schema.product import Product, product_from_values
from schema.target import AudienceTarget, target_from_values
from services.models import Draft
from services.progress import Progress, progress_of


@strawberry.type(description="Which workflow steps are done.")
class SessionSteps:
    product_added: bool = strawberry.field(description="addProduct has stored a valid product.")
    target_configured: bool = strawberry.field(
        description="configureTarget has stored a target (an empty one counts)."
    )
    committed: bool = strawberry.field(description="Product and target exist in Dataverse.")


def global_id(type_name: str, session_id: str) -> strawberry.ID:
    """Return the cache key of a type identified by its session: unique across all types."""
    return strawberry.ID(f"{type_name}:{session_id}")


@strawberry.type(description="Where a session stands, for progress bars and commit buttons.")
class SessionProgress:
    session_id: strawberry.ID = strawberry.field(description="The session.")

    @strawberry.field(
        description="Globally unique, opaque id of this session's progress, so that normalized "
        "caches (Apollo Client, urql) update it from every payload and event. Pass sessionId, "
        "not this, to operations."
    )
    def id(self) -> strawberry.ID:
        return global_id("SessionProgress", self.session_id)

    state: SessionState = strawberry.field(description="Current workflow state.")
    version: int = strawberry.field(description="Draft version; grows by one with every change.")
    percentage: int = strawberry.field(
        description="25 created, 50 product added, 75 target configured, 100 committed."
    )
    steps: SessionSteps = strawberry.field(description="Which steps are done.")
    can_commit: bool = strawberry.field(
        description="True when commit may be called now: a product is set, the session is "
        "not committing or committed, and it has not expired (or its last commit is "
        "unconfirmed, which only a commit can settle)."
    )
    commit_unconfirmed: bool = strawberry.field(
        description="True when the last commit failed in a way that may have written it to "
        "Dataverse: until a commit confirms it (or rules it out), the draft cannot be "
        "changed or cancelled (COMMIT_UNCONFIRMED), and it outlives expiresAt."
    )
    errors: list[str] = strawberry.field(
        description="Why the last commit failed, in plain words; empty otherwise."
    )
    expires_at: datetime = strawberry.field(description="When the draft expires (UTC).")
    seconds_remaining: int = strawberry.field(description="Seconds until expiresAt (0 when past).")
    expiring_soon: bool = strawberry.field(description="15 minutes or less remain.")

    @classmethod
    def from_progress(cls, p: Progress) -> SessionProgress:
        return cls(
            session_id=strawberry.ID(p.session_id),
            state=p.state,
            version=p.version,
            percentage=p.percentage,
            steps=SessionSteps(
                product_added=p.product_added,
                target_configured=p.target_configured,
                committed=p.committed,
            ),
            can_commit=p.can_commit,
            commit_unconfirmed=p.commit_unconfirmed,
            errors=list(p.errors),
            expires_at=p.expires_at,
            seconds_remaining=p.seconds_remaining,
            expiring_soon=p.expiring_soon,
        )


@strawberry.type(description="A draft product with its audience target, owned by its creator.")
class Session:
    draft: strawberry.Private[Draft]
    session_id: strawberry.ID = strawberry.field(
        description="The session's id: pass it to addProduct, configureTarget, commit, "
        "cancelSession, session, sessionProgress and sessionStateChanged."
    )

    @strawberry.field(
        description="Globally unique, opaque id of the session, so that normalized caches "
        "(Apollo Client, urql) update the draft from every payload without configuration. "
        "Pass sessionId, not this, to operations."
    )
    def id(self) -> strawberry.ID:
        return global_id("Session", self.session_id)

    version: int = strawberry.field(
        description="Grows by one with every change; send it as expectedVersion so that a "
        "stale browser tab cannot overwrite a newer edit."
    )
    state: SessionState = strawberry.field(description="Current workflow state.")
    user_id: str = strawberry.field(description="The creator (the token's sub).")
    organization_guid: str = strawberry.field(description="The creator's organization.")
    created_at: datetime = strawberry.field(description="When the session was opened (UTC).")
    updated_at: datetime = strawberry.field(description="When it last changed (UTC).")
    expires_at: datetime = strawberry.field(
        description="When the draft expires (UTC): creation plus the session lifetime. "
        "Saving does not extend it."
    )
    errors: list[str] = strawberry.field(
        description="Why the last commit failed, in plain words; empty otherwise."
    )
    product_guid: strawberry.ID | None = strawberry.field(
        description="The Dataverse product created by commit; null until committed."
    )
    target_guid: strawberry.ID | None = strawberry.field(
        description="The Dataverse audience target created by commit; null until committed."
    )
    committed_at: datetime | None = strawberry.field(
        description="When the commit succeeded (UTC); null until committed."
    )

    @strawberry.field(description="The product, once addProduct succeeded.")
    def product(self) -> Product | None:
        data = self.draft.product
        return None if data is None else product_from_values(dict(data))

    @strawberry.field(description="The audience target, once configureTarget succeeded.")
    def audience_target(self) -> AudienceTarget | None:
        data = self.draft.audience_target
        return None if data is None else target_from_values(dict(data))

    @strawberry.field(description="Progress through the workflow.")
    def progress(self) -> SessionProgress:
        return SessionProgress.from_progress(progress_of(self.draft))

    @classmethod
    def from_draft(cls, draft: Draft) -> Session:
        return cls(
            draft=draft,
            session_id=strawberry.ID(draft.session_id),
            version=draft.version,
            state=draft.state,
            user_id=draft.user_id,
            organization_guid=draft.organization_guid,
            created_at=draft.created_at,
            updated_at=draft.updated_at,
            expires_at=draft.expires_at,
            errors=list(draft.errors),
            product_guid=strawberry.ID(draft.result.product_guid) if draft.result else None,
            target_guid=strawberry.ID(draft.result.target_guid) if draft.result else None,
            committed_at=draft.committed_at,
        )
