"""What every log line, span and metric of one request knows about it.

The HTTP layer opens a scope per request (``request_scope``); resolvers fill in the caller and
the session as they learn them. It lives in a context variable, so tasks the request starts
inherit it and nothing has to be passed down through the services.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(slots=True)
class RequestScope:
    """One request: its operation id, GraphQL operation, caller and session."""

    operation_id: str
    operation_name: str | None = None
    operation_type: str | None = None
    session_id: str | None = None
    user_id: str | None = None


_SCOPE: ContextVar[RequestScope | None] = ContextVar("orchestrator_request_scope", default=None)


def current_scope() -> RequestScope | None:
    """Return the scope of the request being served, if any."""
    return _SCOPE.get()


def current_operation_id() -> str:
    """Return the current request's operation id, or a fresh one outside a request."""
    scope = _SCOPE.get()
    return scope.operation_id if scope is not None else uuid.uuid4().hex


@contextmanager
def request_scope(operation_id: str | None = None) -> Iterator[RequestScope]:
    """Open the scope of one request for the duration of the block."""
    scope = RequestScope(operation_id or uuid.uuid4().hex)
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


def note_operation(name: str | None, operation_type: str | None) -> None:
    """Record the GraphQL operation being run (the first one noted wins)."""
    scope = _SCOPE.get()
    if scope is not None and scope.operation_type is None:
        scope.operation_name = name
        scope.operation_type = operation_type


def note_user(user_id: str) -> None:
    """Record the authenticated caller."""
    scope = _SCOPE.get()
    if scope is not None:
        scope.user_id = user_id


def note_session(session_id: str) -> None:
    """Record the session the request acts on."""
    scope = _SCOPE.get()
    if scope is not None:
        scope.session_id = session_id
