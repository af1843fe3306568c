"""The product: its input (37 fields, named as in the domain) and its output type."""

from __future__ import annotations

import datetime
from typing import Any

import strawberry

from schema.dynamic import make_class
from schema.enums import CHOICE_ENUMS
from schema.internals import flat_input
from schema.scalars import Money, Percent
from services.catalog import FieldKind, ProductField, product_fields

_GRAPHQL_TYPES: dict[FieldKind, Any] = {
    FieldKind.TEXT: str,
    FieldKind.URL: str,
    FieldKind.MONEY: Money,
    FieldKind.PERCENT: Percent,
    FieldKind.INTEGER: int,
    FieldKind.DATE: datetime.date,
    FieldKind.BOOLEAN: bool,
}


def _graphql_type(field: ProductField) -> Any:
    if field.kind is FieldKind.CHOICE:
        return CHOICE_ENUMS[field.choices or ""]
    return _GRAPHQL_TYPES[field.kind]


def _fields() -> list[tuple[str, Any, Any]]:
    # Optional in GraphQL even when required by the domain: a missing required field is
    # reported with the others as a userError, so a form can show every problem at once.
    return [
        (f.api, _graphql_type(f) | None, strawberry.field(default=None, description=f.description))
        for f in product_fields()
    ]


ProductInput = strawberry.input(
    make_class("ProductInput", _fields()),
    description=(
        "A product for addProduct. Fields marked Required must be set; all problems are "
        "reported together in userErrors. Calling addProduct again replaces the product."
    ),
)
# Strawberry's per-field argument conversion cost ~0.5 ms a request (schema/internals.py).
flat_input(ProductInput)

Product = strawberry.type(
    make_class("Product", _fields()),
    description="The product held in a session, as validated and normalized.",
)


def product_from_values(values: dict[str, Any]) -> Any:
    """Build the output type from stored values, turning option values into enum members."""
    converted = {}
    for field in product_fields():
        value = values.get(field.api)
        if value is not None and field.kind is FieldKind.CHOICE:
            value = CHOICE_ENUMS[field.choices or ""](value)
        converted[field.api] = value
    return Product(**converted)
