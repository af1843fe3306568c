"""Build GraphQL types from the domain catalogue, so field lists are written down once."""

from __future__ import annotations

from typing import Any


def make_class(name: str, fields: list[tuple[str, Any, Any]]) -> type:
    """Return a plain class with annotated attributes, ready for strawberry.type/input."""
    namespace: dict[str, Any] = {"__annotations__": {}, "__module__": __name__}
    for attr, annotation, default in fields:
        namespace["__annotations__"][attr] = annotation
        namespace[attr] = default
    return type(name, (), namespace)
