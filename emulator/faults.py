"""Injected faults (latency, throttling, outages, dropped connections) and the request log."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from . import errors

KINDS = frozenset(
    {"throttle", "unavailable", "drop", "write_then_drop", "error", "delay", "malformed", "pass"}
)
# "delay": run the request after delay_ms, whatever became of the client meanwhile (a
# Dataverse that applies a write late); "malformed": answer 200 with a body missing the
# columns asked for (a read only); "pass": let one request through untouched (to aim the
# faults after it at later requests of the same kind).
# "batch" = POST $batch; "read" = any other GET; "write" = any other request that may change
# data, $batch included (so a "write" fault hits a commit whatever form it takes); "any" = all.
MATCHES = frozenset({"batch", "read", "write", "any"})


class FaultConfigError(ValueError):
    """The fault configuration sent to the control API is not valid."""


def request_class(method: str, is_batch: bool) -> str:
    if is_batch:
        return "batch"
    return "read" if method in ("GET", "HEAD") else "write"


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    match: str = "any"
    retry_after: int | str | None = None  # a string is sent verbatim ("inf", "1e12")
    status: int | None = None
    code: str | None = None
    message: str | None = None
    delay_ms: int | None = None

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        if not isinstance(data, dict):
            raise FaultConfigError("Each fault must be a JSON object.")
        unknown = set(data) - {
            "kind",
            "match",
            "retry_after",
            "status",
            "code",
            "message",
            "delay_ms",
        }
        if unknown:
            raise FaultConfigError(f"Unknown fault fields: {sorted(unknown)}.")
        kind = data.get("kind")
        if kind not in KINDS:
            raise FaultConfigError(f"Fault kind must be one of {sorted(KINDS)}, not {kind!r}.")
        match = data.get("match", "any")
        if match not in MATCHES:
            raise FaultConfigError(f"Fault match must be one of {sorted(MATCHES)}, not {match!r}.")
        retry_after = data.get("retry_after")
        if retry_after is not None and not (
            isinstance(retry_after, str) or (isinstance(retry_after, int) and retry_after >= 0)
        ):
            raise FaultConfigError(
                "retry_after must be a non-negative integer (seconds) or a header value string."
            )
        delay_ms = data.get("delay_ms")
        if kind == "delay" and (
            isinstance(delay_ms, bool) or not isinstance(delay_ms, int) or delay_ms < 0
        ):
            raise FaultConfigError("A delay fault needs delay_ms, a non-negative integer.")
        status = data.get("status")
        if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
            raise FaultConfigError("status must be an HTTP error status (400-599).")
        for name in ("code", "message"):
            if data.get(name) is not None and not isinstance(data[name], str):
                raise FaultConfigError(f"{name} must be a string.")
        return cls(
            kind, match, retry_after, status, data.get("code"), data.get("message"), delay_ms
        )

    def to_json(self) -> dict[str, Any]:
        data = {
            "kind": self.kind,
            "match": self.match,
            "retry_after": self.retry_after,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "delay_ms": self.delay_ms,
        }
        return {key: value for key, value in data.items() if value is not None}

    def matches(self, klass: str) -> bool:
        return (
            self.match == "any"
            or self.match == klass
            or (self.match == "write" and klass == "batch")
        )

    def error(self) -> errors.DataverseError:
        """The error a throttle/unavailable/error fault answers with (the request is not run)."""
        headers: tuple[tuple[str, str], ...] = ()
        if self.kind == "throttle":
            # https://learn.microsoft.com/power-apps/developer/data-platform/api-limits
            headers = (
                ("Retry-After", str(self.retry_after if self.retry_after is not None else 1)),
            )
            return errors.DataverseError(
                self.status or 429,
                self.code or errors.THROTTLED,
                self.message
                or "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
                headers,
            )
        if self.retry_after is not None:
            headers = (("Retry-After", str(self.retry_after)),)
        if self.kind == "unavailable":
            return errors.DataverseError(
                self.status or 503,
                self.code or errors.UNEXPECTED,
                self.message
                or "Service Unavailable: the service is temporarily unable to handle the request.",
                headers,
            )
        return errors.DataverseError(
            self.status or 500,
            self.code or errors.UNEXPECTED,
            self.message or "An unexpected error occurred.",
            headers,
        )


class FaultState:
    """The current fault configuration: a latency for every response and a one-shot queue."""

    def __init__(self) -> None:
        self.latency_ms = 0
        self.queue: deque[Fault] = deque()

    def configure(self, data: Any) -> None:
        if not isinstance(data, dict):
            raise FaultConfigError("The fault configuration must be a JSON object.")
        unknown = set(data) - {"latency_ms", "queue"}
        if unknown:
            raise FaultConfigError(f"Unknown fault configuration fields: {sorted(unknown)}.")
        latency = data.get("latency_ms", 0)
        if isinstance(latency, bool) or not isinstance(latency, int) or latency < 0:
            raise FaultConfigError("latency_ms must be a non-negative integer.")
        queue = data.get("queue", [])
        if not isinstance(queue, list):
            raise FaultConfigError("queue must be a list of faults.")
        faults = [Fault.from_json(item) for item in queue]
        self.latency_ms = latency
        self.queue = deque(faults)

    def clear(self) -> None:
        self.latency_ms = 0
        self.queue.clear()

    def take(self, klass: str) -> Fault | None:
        """Remove and return the first queued fault that matches this kind of request."""
        for fault in self.queue:
            if fault.matches(klass):
                self.queue.remove(fault)
                return fault
        return None

    def to_json(self) -> dict[str, Any]:
        return {"latency_ms": self.latency_ms, "queue": [fault.to_json() for fault in self.queue]}


class RequestLog:
    """Every Web API request received (faulted ones included), for tests that count requests."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def add(
        self,
        method: str,
        path: str,
        status: int | None,
        *,
        fault: str | None = None,
        operations: list[dict[str, Any]] | None = None,
    ) -> None:
        entry: dict[str, Any] = {
            "time": time.time(),
            "method": method,
            "path": path,
            "status": status,
        }
        entry["fault"] = fault
        if operations is not None:
            entry["operations"] = operations
        self.entries.append(entry)

    def clear(self) -> None:
        self.entries.clear()
