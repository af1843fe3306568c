"""Mutation payloads: each carries userErrors and the operation id, Shopify/Saleor style."""

from __future__ import annotations

import strawberry

from schema.enums import ErrorCode
from schema.session import Session


@strawberry.type(description="A problem the caller can fix, pointing at the input field.")
class UserError:
    field: list[str] | None = strawberry.field(
        description='Path to the offending input, e.g. ["input", "productCode"]; '
        "null when no single field is at fault."
    )
    message: str = strawberry.field(description="What is wrong, in words a person understands.")
    code: ErrorCode = strawberry.field(description="Machine-readable reason.")


@strawberry.interface(description="What every mutation payload carries.")
class MutationPayload:
    user_errors: list[UserError] = strawberry.field(
        description="Empty on success; otherwise every problem found, nothing was changed."
    )
    operation_id: str = strawberry.field(
        description="Id of this request, for support and the service's logs."
    )


@strawberry.interface(description="A mutation payload that returns the session.")
class SessionPayload(MutationPayload):
    session: Session | None = strawberry.field(
        description="The session after the change; null when userErrors is not empty."
    )


@strawberry.type(description="Result of createSession.")
class CreateSessionPayload(SessionPayload):
    pass


@strawberry.type(description="Result of addProduct.")
class AddProductPayload(SessionPayload):
    pass


@strawberry.type(description="Result of configureTarget.")
class ConfigureTargetPayload(SessionPayload):
    pass


@strawberry.type(description="Result of cancelSession.")
class CancelSessionPayload(MutationPayload):
    session_id: strawberry.ID | None = strawberry.field(
        description="The cancelled session; null when userErrors is not empty."
    )
    cancelled: bool = strawberry.field(
        description="True when the draft was deleted and its product code released."
    )


@strawberry.type(description="Result of commit.")
class CommitPayload(SessionPayload):
    success: bool = strawberry.field(
        description="True when the product and its target exist in Dataverse."
    )
    product_guid: strawberry.ID | None = strawberry.field(
        description="The created Dataverse product; null unless success."
    )
    target_guid: strawberry.ID | None = strawberry.field(
        description="The created Dataverse audience target; null unless success."
    )
    product_code: str | None = strawberry.field(description="The committed product code.")
    errors: list[str] = strawberry.field(
        description="Why the commit failed, in plain words (the cause, and what to do); "
        "on success, empty unless something is worth knowing (for example that the session "
        "store could not record the outcome: `session` is then null)."
    )
