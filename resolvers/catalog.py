"""The form catalogue query."""

from __future__ import annotations

from resolvers.common import authenticate
from schema.catalog import Catalog, current_catalog
from schema.context import Info


async def resolve_catalog(info: Info) -> Catalog:
    await authenticate(info)  # the catalogue is for the service's users, like the rest
    return current_catalog()
