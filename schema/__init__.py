"""The GraphQL schema of the product orchestrator: ``from schema import schema``.

The root types live in ``schema.root``. They are loaded on first access (PEP 562) so that
resolvers may import the types in this package without an import cycle.
"""

from __future__ import annotations

from typing import Any

__all__ = ["schema"]


def __getattr__(name: str) -> Any:
    if name == "schema":
        from schema.root import schema

        return schema
    raise AttributeError(f"module 'schema' has no attribute {name!r}")
