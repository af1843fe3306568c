"""The product: its input and output types (generated, schema/catalog_types.py) and mapping."""

from __future__ import annotations

from typing import Any

from schema.catalog_types import Product, ProductInput
from schema.choices import CHOICE_ENUMS
from schema.internals import flat_input
from services.catalog import FieldKind, product_fields

__all__ = ["Product", "ProductInput", "product_from_values"]

# Strawberry's per-field argument conversion cost ~0.5 ms a request (schema/internals.py).
flat_input(ProductInput)


def product_from_values(values: dict[str, Any]) -> Product:
    """Build the output type from stored values, turning option values into enum members."""
    converted = {}
    for field in product_fields():
        value = values.get(field.api)
        if value is not None and field.kind is FieldKind.CHOICE:
            value = CHOICE_ENUMS[field.choices or ""](value)
        converted[field.api] = value
    return Product(**converted)
