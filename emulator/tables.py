"""Table metadata (entity sets, columns, lookups) and Dataverse's checks of written values."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from importlib import resources
from typing import Any

from . import errors


class ColumnType(Enum):
    """A Dataverse column type; ``edm`` is the type the Web API exposes it as."""

    GUID = "uniqueidentifier"
    STRING = "string"
    PICKLIST = "picklist"
    MULTISELECT = "multiselectpicklist"  # written and read as "1,2,3" (multi-select-picklist docs)
    MONEY = "money"
    DECIMAL = "decimal"
    INTEGER = "integer"
    DATEONLY = "dateonly"
    BOOLEAN = "boolean"
    DATETIME = "datetime"

    @property
    def edm(self) -> str:
        return _EDM[self]


_EDM = {
    ColumnType.GUID: "Edm.Guid",
    ColumnType.STRING: "Edm.String",
    ColumnType.PICKLIST: "Edm.Int32",
    ColumnType.MULTISELECT: "Edm.String",
    ColumnType.MONEY: "Edm.Decimal",
    ColumnType.DECIMAL: "Edm.Decimal",
    ColumnType.INTEGER: "Edm.Int32",
    ColumnType.DATEONLY: "Edm.Date",
    ColumnType.BOOLEAN: "Edm.Boolean",
    ColumnType.DATETIME: "Edm.DateTimeOffset",
}

_TEXT_TYPES = frozenset(
    {ColumnType.STRING, ColumnType.MULTISELECT, ColumnType.DATEONLY, ColumnType.GUID}
)
# Stored as SQLite INTEGER; everything else is TEXT (money and decimals as exact decimal text).
INTEGER_STORAGE = frozenset({ColumnType.PICKLIST, ColumnType.INTEGER, ColumnType.BOOLEAN})

MAX_MULTISELECT_OPTIONS = (
    150  # https://learn.microsoft.com/power-apps/developer/data-platform/multi-select-picklist
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def parse_guid(text: str) -> str | None:
    """Return the canonical (lower-case) GUID, or None if ``text`` is not one."""
    return text.lower() if _GUID.fullmatch(text) else None


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: ColumnType
    max_length: int | None = None
    options: frozenset[int] = frozenset()
    minimum: Decimal | int | None = None
    maximum: Decimal | int | None = None
    writable: bool = True  # False for system columns (createdon/modifiedon), which writes ignore


@dataclass(frozen=True, slots=True)
class Lookup:
    """A single-valued navigation property: written with ``<navigation>@odata.bind``,
    read back as the ``_<attribute>_value`` column."""

    navigation: str
    column: str
    target: str  # entity set of the related table


@dataclass(frozen=True)
class Table:
    entity_set: str
    logical_name: str
    primary_key: str
    columns: Mapping[str, Column]
    lookups: tuple[Lookup, ...] = ()
    autonumber: str | None = None
    autonumber_prefix: str = ""
    _navigations: dict[str, Lookup] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_navigations", {lk.navigation: lk for lk in self.lookups})

    @property
    def entity_type(self) -> str:
        return f"Microsoft.Dynamics.CRM.{self.logical_name}"

    def readable(self) -> tuple[str, ...]:
        """Every property a read returns (and $select/$filter may name)."""
        return (*self.columns, *(lk.column for lk in self.lookups))

    def lookup(self, navigation: str) -> Lookup | None:
        return self._navigations.get(navigation)

    def lookup_column(self, name: str) -> Lookup | None:
        return next((lk for lk in self.lookups if lk.column == name), None)

    def column_type(self, name: str) -> ColumnType | None:
        if name in self.columns:
            return self.columns[name].type
        return ColumnType.GUID if self.lookup_column(name) else None

    # -- writing ---------------------------------------------------------------------------

    def coerce(self, column: Column, value: Any) -> Any:
        """Check ``value`` as Dataverse checks this column; return what the store keeps."""
        if value is None:
            return None  # Web API writes do not enforce "business required"
        kind = column.type
        if kind in _TEXT_TYPES and not isinstance(value, str):
            raise self._conversion(value, kind)
        if kind is ColumnType.STRING:
            return self._string(column, value)
        if kind is ColumnType.GUID:
            guid = parse_guid(value)
            if guid is None:
                raise self._conversion(value, kind)
            return guid
        if kind is ColumnType.MULTISELECT:
            return self._multiselect(column, value)
        if kind is ColumnType.DATEONLY:
            return self._date(value)
        if kind is ColumnType.BOOLEAN:
            if not isinstance(value, bool):
                raise self._conversion(value, kind)
            return int(value)
        if kind in (ColumnType.PICKLIST, ColumnType.INTEGER):
            if isinstance(value, bool) or not isinstance(value, int):
                raise self._conversion(value, kind)
            if kind is ColumnType.PICKLIST:
                if value not in column.options:
                    raise self._option_out_of_range(column, value)
                return value
            return self._in_range(column, value)
        if kind in (ColumnType.MONEY, ColumnType.DECIMAL):
            if isinstance(value, bool) or not isinstance(value, int | Decimal):
                raise self._conversion(value, kind)
            return str(self._in_range(column, Decimal(value)))
        raise errors.DataverseError(400, errors.PAYLOAD_ERROR, f"'{column.name}' is read-only.")

    def _string(self, column: Column, value: str) -> str:
        # .NET counts string length in UTF-16 code units.
        length = len(value.encode("utf-16-le")) // 2
        if column.max_length is not None and length > column.max_length:
            # Message as in the $batch error example of execute-batch-operations-using-web-api.
            raise errors.DataverseError(
                400,
                errors.MAX_LENGTH_EXCEEDED,
                f"A validation error occurred.  The length of the '{column.name}' attribute of the "
                f"'{self.logical_name}' entity exceeded the maximum allowed length of "
                f"'{column.max_length}'.",
            )
        return value

    def _multiselect(self, column: Column, value: str) -> str:
        tokens = [token.strip() for token in value.split(",")]
        if not all(re.fullmatch(r"-?\d+", token) for token in tokens):
            raise self._option_out_of_range(column, value)
        chosen = list(dict.fromkeys(int(token) for token in tokens))
        for option in chosen:
            if option not in column.options:
                raise self._option_out_of_range(column, option)
        if len(chosen) > MAX_MULTISELECT_OPTIONS:
            raise self._option_out_of_range(column, value)
        return ",".join(str(option) for option in chosen)

    def _date(self, value: str) -> str:
        if not _DATE.fullmatch(value):
            raise self._conversion(value, ColumnType.DATEONLY)
        try:
            dt.date.fromisoformat(value)
        except ValueError as exc:
            raise self._conversion(value, ColumnType.DATEONLY) from exc
        return value

    def _in_range(self, column: Column, value: Any) -> Any:
        too_low = column.minimum is not None and value < column.minimum
        too_high = column.maximum is not None and value > column.maximum
        if too_low or too_high:
            raise errors.DataverseError(
                400,
                errors.VALUE_OUT_OF_RANGE,
                f"A validation error occurred. The value {value} of '{column.name}' on record of "
                f"type '{self.logical_name}' is outside the valid range. Accepted values are "
                f"{column.minimum} to {column.maximum}.",
            )
        return value

    def _option_out_of_range(self, column: Column, value: Any) -> errors.DataverseError:
        return errors.DataverseError(
            400,
            errors.OPTION_OUT_OF_RANGE,
            f"A validation error occurred. The value {value} of '{column.name}' on record of type "
            f"'{self.logical_name}' is outside the valid range.",
        )

    def _conversion(self, value: Any, kind: ColumnType) -> errors.DataverseError:
        shown = (
            "null" if value is None else str(value).lower() if isinstance(value, bool) else value
        )
        return errors.payload_error(
            self.entity_set,
            f"Cannot convert the literal '{shown}' to the expected type '{kind.edm}'.",
        )

    # -- reading ---------------------------------------------------------------------------

    def to_json(self, name: str, stored: Any) -> Any:
        """Turn a stored value into its JSON value (money/decimals as exact numbers)."""
        if stored is None:
            return None
        kind = self.column_type(name)
        if kind in (ColumnType.MONEY, ColumnType.DECIMAL):
            return Decimal(stored)
        if kind is ColumnType.BOOLEAN:
            return bool(stored)
        return stored


# What EntityDefinitions(...)?$expand=Attributes,ManyToOneRelationships would answer for the
# three tables: the emulator's own copy, so that the service's catalogue is checked against
# it rather than against itself (tests/emulator/test_metadata.py compares the two).
METADATA = "metadata.json"

_ATTRIBUTE_TYPES = {
    "Uniqueidentifier": ColumnType.GUID,
    "String": ColumnType.STRING,
    "Picklist": ColumnType.PICKLIST,
    "MultiSelectPicklistType": ColumnType.MULTISELECT,
    "Money": ColumnType.MONEY,
    "Decimal": ColumnType.DECIMAL,
    "Integer": ColumnType.INTEGER,
    "DateOnly": ColumnType.DATEONLY,
    "Boolean": ColumnType.BOOLEAN,
    "DateAndTime": ColumnType.DATETIME,
}


def load_metadata() -> list[dict[str, Any]]:
    """Return the tables' metadata as the Web API describes entity definitions."""
    text = resources.files("emulator").joinpath(METADATA).read_text(encoding="utf-8")
    return list(json.loads(text)["value"])


def _column_type(attribute: Mapping[str, Any]) -> ColumnType:
    kind = attribute["AttributeType"]
    if kind == "Virtual":
        kind = attribute["AttributeTypeName"]["Value"]
    elif kind == "DateTime":
        kind = attribute["Format"]
    return _ATTRIBUTE_TYPES[kind]


def _column(attribute: Mapping[str, Any]) -> Column:
    kind = _column_type(attribute)
    exact = kind in (ColumnType.MONEY, ColumnType.DECIMAL)
    bounds = {
        name: (Decimal(str(attribute[key])) if exact else attribute[key])
        for name, key in (("minimum", "MinValue"), ("maximum", "MaxValue"))
        if key in attribute
    }
    options = attribute.get("OptionSet", {}).get("Options", ())
    return Column(
        attribute["LogicalName"],
        kind,
        max_length=attribute.get("MaxLength"),
        options=frozenset(option["Value"] for option in options),
        writable=attribute.get("IsValidForCreate", True),
        **bounds,
    )


def _table(definition: Mapping[str, Any], entity_sets: Mapping[str, str]) -> Table:
    attributes = [a for a in definition["Attributes"] if a["AttributeType"] != "Lookup"]
    autonumbered = next((a for a in attributes if "AutoNumberFormat" in a), None)
    return Table(
        entity_set=definition["EntitySetName"],
        logical_name=definition["LogicalName"],
        primary_key=definition["PrimaryIdAttribute"],
        columns={a["LogicalName"]: _column(a) for a in attributes},
        lookups=tuple(
            Lookup(
                relationship["ReferencingEntityNavigationPropertyName"],
                f"_{relationship['ReferencingAttribute']}_value",
                entity_sets[relationship["ReferencedEntity"]],
            )
            for relationship in definition["ManyToOneRelationships"]
        ),
        autonumber=autonumbered["LogicalName"] if autonumbered else None,
        autonumber_prefix=(
            autonumbered["AutoNumberFormat"].partition("{")[0] if autonumbered else ""
        ),
    )


def build_tables() -> dict[str, Table]:
    """The three tables the service uses, keyed by entity set name."""
    definitions = load_metadata()
    entity_sets = {d["LogicalName"]: d["EntitySetName"] for d in definitions}
    tables = [_table(definition, entity_sets) for definition in definitions]
    return {table.entity_set: table for table in tables}
