"""Typed models the services exchange: the caller, the draft, its product and target."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.catalog_models import AudienceTargetData, ProductData

__all__ = [
    "AudienceTargetData",
    "CommitRecord",
    "CommitResult",
    "Draft",
    "Principal",
    "Privilege",
    "ProductData",
    "SessionState",
]


class SessionState(StrEnum):
    """Where a draft stands in the workflow."""

    INITIATED = "INITIATED"
    PRODUCT_ADDED = "PRODUCT_ADDED"
    TARGET_CONFIGURED = "TARGET_CONFIGURED"
    COMMITTING = "COMMITTING"
    COMMITTED = "COMMITTED"
    FAILED = "FAILED"


class Privilege(IntEnum):
    """User privilege, numbered as the existing backend issues it in tokens."""

    OWNER = 1
    ADMIN = 2
    MAIN = 3


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    user_id: str
    privilege: Privilege
    organization_guid: str
    # When the token stops being accepted: its exp plus JWT_LEEWAY_SECONDS, the moment the
    # verifier would refuse it, so that a websocket or a cached principal agrees with it.
    token_expires_at: datetime


def _empty_object_is_empty_list(value: Any) -> Any:
    # Redis' Lua cjson cannot tell [] from {} and writes empty arrays back as {}.
    return [] if value == {} else value


class _Camel(BaseModel):
    model_config = ConfigDict(
        alias_generator=lambda name: "".join(
            part if i == 0 else part.capitalize() for i, part in enumerate(name.split("_"))
        ),
        populate_by_name=True,
        extra="ignore",
    )


class CommitResult(_Camel):
    """What a successful commit created in Dataverse."""

    product_guid: str
    target_guid: str
    product_code: str
    product_id: str | None = None
    target_id: str | None = None


class CommitRecord(_Camel):
    """The commit's bookkeeping: the GUIDs chosen once, and who holds the lease."""

    product_guid: str
    target_guid: str
    lease_owner: str | None = None
    lease_until_ms: int = 0
    attempt: int = 0
    started_at_ms: int = 0
    operation_id: str | None = None
    recovering: bool = False
    uncertain: bool = False  # a write may be in Dataverse: the content is frozen until settled
    last_write_at_ms: int = 0  # when the last write was sent (fenced), in Redis time


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class Draft(_Camel):
    """A product-orchestrator session as stored in Redis."""

    session_id: str
    version: int
    state: SessionState
    user_id: str
    organization_guid: str
    privilege: int
    created_at_ms: int
    updated_at_ms: int
    expires_at_ms: int
    operation_id: str | None = None
    product: ProductData | None = None
    product_code: str | None = None
    audience_target: AudienceTargetData | None = None
    errors: list[str] = Field(default_factory=list)
    commit: CommitRecord | None = None
    result: CommitResult | None = None
    committed_at_ms: int | None = None

    _normalize_errors = field_validator("errors", mode="before")(
        classmethod(lambda cls, v: _empty_object_is_empty_list(v))
    )

    @property
    def created_at(self) -> datetime:
        return _utc(self.created_at_ms)

    @property
    def updated_at(self) -> datetime:
        return _utc(self.updated_at_ms)

    @property
    def expires_at(self) -> datetime:
        return _utc(self.expires_at_ms)

    @property
    def committed_at(self) -> datetime | None:
        return None if self.committed_at_ms is None else _utc(self.committed_at_ms)
