"""Turn a validated product and audience target into Dataverse column bodies."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from services.catalog import FieldKind, product_fields, target_fields

PRODUCTS = "osot_table_products"
TARGETS = "osot_table_audience_targets"
ORGANIZATIONS = "osot_table_organizations"
PRODUCT_KEY = "osot_table_productid"
TARGET_KEY = "osot_table_audience_targetid"
ORGANIZATION_BIND = "osot_Table_Organization@odata.bind"
PRODUCT_BIND = "osot_Table_Product@odata.bind"
# Inside a change set, "$1" is the product created by the part with Content-ID 1.
CHANGESET_PRODUCT_REF = "$1"


def canonical_guid(value: str) -> str:
    """Return *value* as a lower-case hyphenated GUID; raise ValueError if it is not one."""
    return str(uuid.UUID(str(value)))


def product_ref(product_guid: str) -> str:
    """Return the bind path of an existing product: ``/osot_table_products(<guid>)``."""
    return f"/{PRODUCTS}({canonical_guid(product_guid)})"


def organization_ref(organization_guid: str) -> str:
    """Return the bind path of an organization: ``/osot_table_organizations(<guid>)``."""
    return f"/{ORGANIZATIONS}({canonical_guid(organization_guid)})"


def json_number(value: Decimal | int) -> int | float:
    """Return an amount as a JSON-ready number that says exactly the same amount."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"expected a Decimal or int, got {type(value).__name__}")
    if isinstance(value, int):
        return value
    if not value.is_finite():
        raise ValueError(f"{value} is not a number Dataverse accepts")
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    if Decimal(repr(as_float)) != value:  # more digits than a double holds: refuse, never round
        raise ValueError(f"{value} cannot be sent as an exact JSON number")
    return as_float


def _values(data: BaseModel | Mapping[str, Any], known: set[str]) -> Mapping[str, Any]:
    values = data.model_dump() if isinstance(data, BaseModel) else data
    unknown = set(values) - known
    if unknown:
        # Never drop fields silently (D16, docs/design/old-service-defects.md): a caller bug.
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
    return values


def _column_value(kind: FieldKind, api: str, value: Any) -> Any:
    if kind in (FieldKind.TEXT, FieldKind.URL) and isinstance(value, str):
        return value
    if kind in (FieldKind.CHOICE, FieldKind.INTEGER) and type(value) is int:
        return value
    if kind in (FieldKind.MONEY, FieldKind.PERCENT):
        return json_number(value)
    if kind is FieldKind.DATE and isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()  # Date-only columns take "YYYY-MM-DD"
    if kind is FieldKind.BOOLEAN and isinstance(value, bool):
        return value
    raise TypeError(f"{api}: {type(value).__name__} is not a valid {kind.value} value")


def product_columns(
    product: BaseModel | Mapping[str, Any], organization_guid: str, product_guid: str
) -> dict[str, Any]:
    """Return the create body of a product: its client GUID, set fields and organization bind.

    Fields left unset (None) are not sent, so Dataverse applies its own defaults.
    """
    fields = product_fields()
    values = _values(product, {f.api for f in fields})
    body: dict[str, Any] = {PRODUCT_KEY: canonical_guid(product_guid)}
    for field in fields:
        value = values.get(field.api)
        if value is not None:
            body[field.column] = _column_value(field.kind, field.api, value)
    body[ORGANIZATION_BIND] = organization_ref(organization_guid)
    return body


def multi_select(values: list[int]) -> str | None:
    """Return a multi-select value as Dataverse writes it: "1,11", in the order given.

    See https://learn.microsoft.com/power-apps/developer/data-platform/multi-select-picklist
    """
    if any(type(v) is not int for v in values):
        raise TypeError(f"multi-select options must be ints, got {values!r}")
    return ",".join(str(v) for v in values) or None


def target_columns(
    target: BaseModel | Mapping[str, Any], target_guid: str, product_ref: str
) -> dict[str, Any]:
    """Return the create body of an audience target bound to *product_ref*.

    *product_ref* is ``"$1"`` inside the commit's change set, or ``product_ref(guid)``.
    An empty list clears the criterion (null); an unset one (None) is not sent.
    """
    if product_ref != CHANGESET_PRODUCT_REF and not product_ref.startswith(f"/{PRODUCTS}("):
        raise ValueError(f"product_ref must be '$1' or '/{PRODUCTS}(<guid>)', got {product_ref!r}")
    fields = target_fields()
    values = _values(target, {f.api for f in fields})
    body: dict[str, Any] = {TARGET_KEY: canonical_guid(target_guid)}
    for field in fields:
        value = values.get(field.api)
        if value is not None:
            body[field.column] = multi_select(list(value))
    # Set last, from our own argument, so no input can redirect the bind (D17, see docs/design).
    body[PRODUCT_BIND] = product_ref
    return body
