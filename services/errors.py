"""The service error hierarchy: what the services raise, each with a stable code.

ServiceError
├── UserInputError                 the caller can fix it; reported as payload userErrors
│   ├── ValidationFailedError      VALIDATION_FAILED (carries one FieldError per problem)
│   ├── SessionNotFoundError       SESSION_NOT_FOUND (missing, expired or not the caller's)
│   ├── InvalidStateError          INVALID_STATE
│   ├── StaleVersionError          STALE_VERSION
│   ├── ProductCodeTakenError      PRODUCT_CODE_TAKEN
│   ├── CommitInProgressError      COMMIT_IN_PROGRESS
│   ├── TooManyDraftsError         TOO_MANY_DRAFTS (the open-draft cap, MAX_OPEN_DRAFTS)
│   ├── CommitUnconfirmedError     COMMIT_UNCONFIRMED (an earlier write may be in Dataverse)
│   └── CodeCheckUnavailableError  DATAVERSE_UNAVAILABLE (the code could not be checked)
├── CommitBookkeepingError         internal to the commit service, never reaches a resolver
│   ├── LeaseLostError             another process took the commit over
│   └── AlreadyCommittedError      the draft was committed already
├── AuthError                      top-level GraphQL errors
│   ├── AuthenticationError        UNAUTHENTICATED
│   └── PermissionDeniedError      FORBIDDEN
├── RateLimitedError               RATE_LIMITED (mutations too fast; carries retry_after)
├── SessionStoreUnavailableError   SERVICE_UNAVAILABLE (Redis down)
├── ServerShuttingDownError        SERVICE_UNAVAILABLE (this process stops serving)
└── DataverseError                 commit failures, see services/dataverse/errors.py

A ServiceError that names no code of its own keeps the base code INTERNAL_ERROR, which
never reaches a caller: the GraphQL error policy masks it like any unexpected error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from services.models import Draft


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one input field: its path, a readable message and a code."""

    field: tuple[str, ...]
    message: str
    code: str = "VALIDATION_FAILED"


INTERNAL_ERROR = "INTERNAL_ERROR"


class ServiceError(Exception):
    """Base of every error the services raise on purpose."""

    code: ClassVar[str] = INTERNAL_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UserInputError(ServiceError):
    """A failure the caller caused and can correct; it becomes a payload userError."""

    field: tuple[str, ...] | None = None

    @property
    def field_errors(self) -> list[FieldError]:
        """Return this error as field errors (one, unless a subclass carries several)."""
        return [FieldError(self.field or (), self.message, self.code)]


class ValidationFailedError(UserInputError):
    """The input broke one or more rules; every problem is listed."""

    code: ClassVar[str] = "VALIDATION_FAILED"

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors

    @property
    def field_errors(self) -> list[FieldError]:
        return list(self.errors)


SESSION_NOT_FOUND_MESSAGE = "Session not found: it does not exist, has expired, or is not yours."


class SessionNotFoundError(UserInputError):
    """The draft is missing, expired, or belongs to someone else (never says which)."""

    code: ClassVar[str] = "SESSION_NOT_FOUND"

    def __init__(self) -> None:
        super().__init__(SESSION_NOT_FOUND_MESSAGE)
        self.field = ("sessionId",)


class InvalidStateError(UserInputError):
    """The operation is not allowed in the draft's current state."""

    code: ClassVar[str] = "INVALID_STATE"


class StaleVersionError(UserInputError):
    """The client edited an older version of the draft than the one stored."""

    code: ClassVar[str] = "STALE_VERSION"

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(
            f"The session changed since you loaded it (you sent version {expected}, "
            f"it is now at version {actual}); reload it and apply your change again."
        )
        self.field = ("expectedVersion",)
        self.actual = actual


class ProductCodeTakenError(UserInputError):
    """Another draft or an existing Dataverse product already uses the code."""

    code: ClassVar[str] = "PRODUCT_CODE_TAKEN"

    def __init__(self, product_code: str, *, where: str = "another draft") -> None:
        super().__init__(f"Product code {product_code} is already used by {where}.")
        self.field = ("input", "productCode")
        self.product_code = product_code


class CommitInProgressError(UserInputError):
    """Another commit of the same draft is running."""

    code: ClassVar[str] = "COMMIT_IN_PROGRESS"


class TooManyDraftsError(UserInputError):
    """The caller already holds as many open drafts as allowed."""

    code: ClassVar[str] = "TOO_MANY_DRAFTS"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"You already have {limit} open drafts, the most allowed: commit or cancel one "
            "(mySessions lists them), or wait for one to expire."
        )
        self.limit = limit


class RateLimitedError(ServiceError):
    """The caller sent mutations faster than the limit allows; retry after ``retry_after``."""

    code: ClassVar[str] = "RATE_LIMITED"

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            f"Too many changes in a short time: try again in {retry_after:.2f} s. "
            "Nothing was changed."
        )
        self.retry_after = retry_after


class CommitUnconfirmedError(UserInputError):
    """An earlier commit's write may already be in Dataverse; only a commit can settle it."""

    code: ClassVar[str] = "COMMIT_UNCONFIRMED"


class CodeCheckUnavailableError(UserInputError):
    """Dataverse could not be asked whether the product code is free; nothing was saved."""

    code: ClassVar[str] = "DATAVERSE_UNAVAILABLE"


class CommitBookkeepingError(ServiceError):
    """A commit's compare-and-set lost to another process; the commit service handles it."""

    def __init__(self, message: str, draft: Draft | None) -> None:
        super().__init__(message)
        self.draft = draft


class LeaseLostError(CommitBookkeepingError):
    """This process no longer holds the draft's commit lease; another one took over."""

    def __init__(self, draft: Draft | None) -> None:
        super().__init__("commit lease lost", draft)


class AlreadyCommittedError(CommitBookkeepingError):
    """The draft was committed already; its outcome is in ``draft.result``."""

    draft: Draft

    def __init__(self, draft: Draft) -> None:
        super().__init__("already committed", draft)


class AuthError(ServiceError):
    """The caller could not be authenticated or may not use the orchestrator."""


class AuthenticationError(AuthError):
    """Missing, malformed, expired or wrongly signed token."""

    code: ClassVar[str] = "UNAUTHENTICATED"


class PermissionDeniedError(AuthError):
    """A valid user who may not use the orchestrator."""

    code: ClassVar[str] = "FORBIDDEN"


class SessionStoreUnavailableError(ServiceError):
    """Redis could not be reached; nothing was changed."""

    code: ClassVar[str] = "SERVICE_UNAVAILABLE"

    def __init__(self) -> None:
        super().__init__(
            "The session store is temporarily unavailable; nothing was changed. "
            "Try again in a few seconds."
        )


class ServerShuttingDownError(ServiceError):
    """The process stops serving; the client should reconnect (to another instance)."""

    code: ClassVar[str] = "SERVICE_UNAVAILABLE"

    def __init__(self) -> None:
        super().__init__("The server is shutting down; subscribe again to continue.")
