"""The retry policy for idempotent Dataverse calls: honour Retry-After, back off, bound the wait."""

from __future__ import annotations

from typing import NoReturn

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from services.dataverse.errors import (
    DataverseError,
    DataverseRetriesExhaustedError,
    DataverseThrottledError,
    DataverseUnavailableError,
)

TRANSIENT_ERRORS = (DataverseThrottledError, DataverseUnavailableError)


def _last_error(retry_state: RetryCallState) -> BaseException | None:
    outcome = retry_state.outcome
    return outcome.exception() if outcome is not None and outcome.failed else None


class wait_retry_after(wait_base):  # noqa: N801 - named like tenacity's own strategies
    """Wait what a 429 asks for, exactly; otherwise wait what *fallback* says."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        error = _last_error(retry_state)
        if isinstance(error, DataverseThrottledError):
            # Dataverse extends the throttle window for callers that come back early.
            # https://learn.microsoft.com/power-apps/developer/data-platform/api-limits
            return error.retry_after
        return float(self.fallback(retry_state))


class stop_before_total_wait(stop_base):  # noqa: N801 - named like tenacity's own strategies
    """Stop when the next wait would take the total time spent waiting past *max_wait*."""

    def __init__(self, max_wait: float) -> None:
        self.max_wait = max_wait

    def __call__(self, retry_state: RetryCallState) -> bool:
        return retry_state.idle_for + retry_state.upcoming_sleep > self.max_wait


def raise_retries_exhausted(retry_state: RetryCallState) -> NoReturn:
    """Raise DataverseRetriesExhaustedError for the last error, saying when to retry."""
    error = _last_error(retry_state)
    if not isinstance(error, DataverseError):  # pragma: no cover - only transient errors retry
        raise RuntimeError("retry budget exhausted without a Dataverse error") from error
    hint = retry_state.upcoming_sleep
    if isinstance(error, DataverseThrottledError):
        hint = max(hint, error.retry_after)
    raise DataverseRetriesExhaustedError(
        error, hint, attempts=retry_state.attempt_number
    ) from error


def retry_policy(
    max_attempts: int = 3, max_total_wait: float = 30, base: float = 0.5
) -> AsyncRetrying:
    """Return the retry policy for idempotent calls; ``.copy()`` it for every call.

    Throttled and unavailable errors are retried; every other error propagates at once.
    When attempts or the wait budget run out, DataverseRetriesExhaustedError is raised.
    """
    return AsyncRetrying(
        stop=stop_after_attempt(max_attempts) | stop_before_total_wait(max_total_wait),
        wait=wait_retry_after(wait_exponential_jitter(multiplier=base, jitter=base, max=8)),
        retry=retry_if_exception_type(TRANSIENT_ERRORS),
        retry_error_callback=raise_retries_exhausted,
        reraise=True,
    )
