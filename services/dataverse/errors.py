"""Dataverse failures, classified once at the client edge, each naming its cause.

ServiceError (services/errors.py)
└── DataverseError                      DATAVERSE_ERROR
    ├── DataverseRejectedError          DATAVERSE_REJECTED      permanent: 400, 403, 404, 413
    ├── DataverseDuplicateError         DATAVERSE_DUPLICATE     412 0x80040237: the record exists
    ├── DataverseAuthError              DATAVERSE_AUTH_FAILED   401 after a token refresh; no token
    ├── DataverseThrottledError         DATAVERSE_THROTTLED     429, carries ``retry_after``
    ├── DataverseUnavailableError       DATAVERSE_UNAVAILABLE   5xx, transient SQL code, network,
    │                                                           timeout; ``ambiguous`` if it may
    │                                                           have been applied
    └── DataverseRetriesExhaustedError  DATAVERSE_RETRIES_EXHAUSTED  retries ran out; ``retry_at``

Throttled and unavailable are transient (retry an idempotent request); the others are not.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, ClassVar

from services.errors import ServiceError

# DuplicateRecord, HTTP 412: a row with this primary key exists (a client GUID sent again).
# https://learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors
DUPLICATE_RECORD = "0x80040237"
OBJECT_DOES_NOT_EXIST = "0x80040217"  # HTTP 404 on a single-record read

# Codes that mean "try again" whatever the HTTP status, from
# https://learn.microsoft.com/troubleshoot/power-platform/power-apps/dataverse/bulk-operation-errors
TRANSIENT_CODES: Mapping[str, str] = {
    "0x80044150": "generic SQL error (e.g. a deadlock)",
    "0x80044151": "SQL timeout",
    "0x80040255": "the transaction was already rolled back or committed",  # -2147220907
    "0x80040216": "unexpected error",
}
TRANSIENT_STATUSES = frozenset({408, 502, 503, 504})
DEFAULT_RETRY_AFTER = 5.0  # seconds, when a 429 carries no usable Retry-After
MAX_RETRY_AFTER = 3600.0  # seconds; a longer (or infinite) Retry-After is read as this
_MAX_DETAIL = 500


class DataverseError(ServiceError):
    """A Dataverse call failed; ``status`` and ``dataverse_code`` say how, when known."""

    code: ClassVar[str] = "DATAVERSE_ERROR"

    def __init__(
        self, message: str, *, status: int | None = None, dataverse_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.dataverse_code = dataverse_code


class DataverseRejectedError(DataverseError):
    """Dataverse refused the request for good; sending it again will fail the same way."""

    code: ClassVar[str] = "DATAVERSE_REJECTED"

    def __init__(self, status: int, code: str | None, message: str) -> None:
        super().__init__(message, status=status, dataverse_code=code)


class DataverseDuplicateError(DataverseError):
    """A record with the same primary key exists: an earlier attempt already committed."""

    code: ClassVar[str] = "DATAVERSE_DUPLICATE"

    def __init__(self, message: str, *, content_id: str | None = None) -> None:
        super().__init__(message, status=412, dataverse_code=DUPLICATE_RECORD)
        self.content_id = content_id


class DataverseAuthError(DataverseError):
    """No access token could be obtained, or Dataverse refused a freshly fetched one."""

    code: ClassVar[str] = "DATAVERSE_AUTH_FAILED"


class DataverseThrottledError(DataverseError):
    """Dataverse's service protection limits hit; wait ``retry_after`` seconds."""

    code: ClassVar[str] = "DATAVERSE_THROTTLED"

    def __init__(
        self, message: str, *, retry_after: float, dataverse_code: str | None = None
    ) -> None:
        super().__init__(message, status=429, dataverse_code=dataverse_code)
        self.retry_after = retry_after


class DataverseUnavailableError(DataverseError):
    """A transient failure; ``ambiguous`` is True when the request may have been applied."""

    code: ClassVar[str] = "DATAVERSE_UNAVAILABLE"

    def __init__(
        self,
        message: str,
        *,
        ambiguous: bool,
        status: int | None = None,
        dataverse_code: str | None = None,
    ) -> None:
        super().__init__(message, status=status, dataverse_code=dataverse_code)
        self.ambiguous = ambiguous


class DataverseRetriesExhaustedError(DataverseError):
    """Transient failures outlasted the retry budget; ``retry_at`` says when to try again."""

    code: ClassVar[str] = "DATAVERSE_RETRIES_EXHAUSTED"

    def __init__(
        self, last_error: DataverseError, retry_after_hint: float, *, attempts: int = 1
    ) -> None:
        seconds = max(1, math.ceil(retry_after_hint))
        self.retry_at = datetime.now(UTC) + timedelta(seconds=seconds)
        super().__init__(
            f"Dataverse is busy or unavailable; gave up after {attempts} attempt"
            f"{'s' if attempts != 1 else ''}. Last error: {last_error.message} "
            f"Try again in {seconds} s (after {self.retry_at:%H:%M:%S} UTC).",
            status=last_error.status,
            dataverse_code=last_error.dataverse_code,
        )
        self.last_error = last_error
        self.retry_after_hint = float(seconds)
        self.attempts = attempts

    @property
    def ambiguous(self) -> bool:
        """Return whether the last attempt may have been applied."""
        return bool(getattr(self.last_error, "ambiguous", False))


def parse_error_body(body: bytes | str | None) -> tuple[str | None, str | None]:
    """Return the Dataverse ``(code, message)`` of an error body; tolerate any body."""
    if not body:
        return None, None
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        payload: Any = json.loads(text)
    except ValueError:
        return None, _shorten(text)
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        code, message = error.get("code"), error.get("message")
        return (str(code) if code else None), (str(message) if message else None)
    if isinstance(payload, dict) and isinstance(payload.get("Message"), str):
        return None, payload["Message"]  # ASP.NET-style gateway errors
    return None, _shorten(text)


def _shorten(text: str) -> str | None:
    text = " ".join(text.split())
    if not text:
        return None
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def parse_retry_after(value: str | None, *, default: float = DEFAULT_RETRY_AFTER) -> float:
    """Return the wait a Retry-After header asks for, in seconds (delta or HTTP date)."""
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if math.isnan(seconds):
            return default
        # "inf" or 1e12 must not overflow a timer or freeze a commit: cap it.
        return min(max(0.0, seconds), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - datetime.now(UTC)).total_seconds()), MAX_RETRY_AFTER)


def _describe(status: int, code: str | None, message: str | None) -> str:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown status"
    where = f"HTTP {status} {reason}" + (f", code {code}" if code else "")
    return f"{message} ({where})" if message else where


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes | str | None,
    *,
    action: str,
    content_id: str | None = None,
) -> DataverseError:
    """Classify a failed Dataverse response; ``action`` completes "could not …"."""
    code, message = parse_error_body(body)
    normalized = code.lower() if code else None
    detail = _describe(status, code, message)
    if status == 429:
        retry_after = parse_retry_after(_header(headers, "retry-after"))
        return DataverseThrottledError(
            f"Dataverse is throttling this service and could not {action}: {detail}. "
            f"It asks for a pause of {retry_after:g} s.",
            retry_after=retry_after,
            dataverse_code=code,
        )
    if status == 412 and normalized == DUPLICATE_RECORD:
        return DataverseDuplicateError(
            f"Could not {action}: a record with the same id already exists in Dataverse: {detail}.",
            content_id=content_id,
        )
    if status == 401:
        return DataverseAuthError(
            f"Dataverse refused this service's access token, even after fetching a new one, "
            f"so it could not {action}: {detail}.",
            status=status,
            dataverse_code=code,
        )
    if (
        normalized in TRANSIENT_CODES
        or status in TRANSIENT_STATUSES
        or (
            status >= 500 and status != 501  # 501 Not Implemented will not start working
        )
    ):
        cause = TRANSIENT_CODES.get(normalized or "", "")
        return DataverseUnavailableError(
            f"Dataverse could not {action}: {detail}"
            + (f" [{cause}]" if cause else "")
            + ". The request may or may not have been applied.",
            ambiguous=True,
            status=status,
            dataverse_code=code,
        )
    return DataverseRejectedError(
        status, code, f"Dataverse rejected the request to {action}: {detail}."
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
