"""The service's catalogue agrees with the emulator's own copy of the Dataverse metadata.

The emulator does not import the catalogue: its tables come from emulator/metadata.json,
written as Dataverse describes its tables (EntityDefinitions with Attributes and
ManyToOneRelationships). A column, a length, a range or an option the catalogue gets wrong
shows up here, and in the commit tests as Dataverse's refusal.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from emulator.tables import load_metadata
from services.catalog import FieldKind, choice_sets, product_fields, target_fields

_TYPES = {
    FieldKind.TEXT: ("String", None),
    FieldKind.URL: ("String", None),
    FieldKind.CHOICE: ("Picklist", None),
    FieldKind.MONEY: ("Money", None),
    FieldKind.PERCENT: ("Decimal", None),
    FieldKind.INTEGER: ("Integer", None),
    FieldKind.DATE: ("DateTime", "DateOnly"),
    FieldKind.BOOLEAN: ("Boolean", None),
}
SYSTEM = {"createdon", "modifiedon"}


def _attributes(logical_name: str) -> dict[str, dict[str, Any]]:
    [table] = [t for t in load_metadata() if t["LogicalName"] == logical_name]
    return {a["LogicalName"]: a for a in table["Attributes"]}


def _options(attribute: dict[str, Any]) -> list[tuple[int, str]]:
    return [
        (o["Value"], o["Label"]["UserLocalizedLabel"]["Label"])
        for o in attribute["OptionSet"]["Options"]
    ]


PRODUCT = _attributes("osot_table_product")
TARGET = _attributes("osot_table_audience_target")


@pytest.mark.parametrize("field", product_fields(), ids=lambda f: f.api)
def test_each_product_field_is_a_dataverse_column_of_its_type(field: Any) -> None:
    attribute = PRODUCT.get(field.column)
    assert attribute is not None, f"{field.column} is not a column of osot_table_product"
    assert (attribute["AttributeType"], attribute.get("Format")) == _TYPES[field.kind]
    if field.kind in (FieldKind.TEXT, FieldKind.URL):
        # The service checks what Dataverse checks, so a too-long value never reaches it.
        assert field.max_length == attribute["MaxLength"]
    if field.min_value is not None:
        # Everything the service accepts, Dataverse accepts.
        assert Decimal(str(attribute["MinValue"])) <= field.min_value
        assert field.max_value is not None
        assert field.max_value <= Decimal(str(attribute["MaxValue"]))
    if field.kind is FieldKind.CHOICE:
        assert field.choices is not None
        assert _options(attribute) == [(c.value, c.label) for c in choice_sets()[field.choices]]


@pytest.mark.parametrize("field", target_fields(), ids=lambda f: f.api)
def test_each_target_field_is_a_multi_select_column_with_the_same_options(field: Any) -> None:
    attribute = TARGET.get(field.column)
    assert attribute is not None, f"{field.column} is not a column of osot_table_audience_target"
    assert attribute["AttributeTypeName"]["Value"] == "MultiSelectPicklistType"
    assert _options(attribute) == [(c.value, c.label) for c in choice_sets()[field.choices]]


@pytest.mark.parametrize(
    ("attributes", "fields"),
    [(PRODUCT, product_fields()), (TARGET, target_fields())],
    ids=["product", "target"],
)
def test_every_custom_column_is_in_the_catalogue(
    attributes: dict[str, dict[str, Any]], fields: Any
) -> None:
    custom = {
        name
        for name, attribute in attributes.items()
        if name not in SYSTEM
        and not attribute.get("IsPrimaryId")
        and "AutoNumberFormat" not in attribute
        and attribute["AttributeType"] != "Lookup"
    }

    assert custom == {f.column for f in fields}
