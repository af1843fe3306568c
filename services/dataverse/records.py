"""What the client reads back from Dataverse: just enough to find a code or confirm a commit."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProductRef:
    """An existing product found by its code."""

    guid: str
    code: str


@dataclass(frozen=True, slots=True)
class ProductRecord:
    """A product as stored: its GUID, business id (``osot-prod-…``), code and organization."""

    guid: str
    product_id: str | None
    code: str | None
    organization_guid: str | None


@dataclass(frozen=True, slots=True)
class TargetRecord:
    """An audience target as stored: its GUID, business id (``osot-tgt-…``) and product."""

    guid: str
    target_id: str | None
    product_guid: str | None
