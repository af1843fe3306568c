"""Table metadata (entity sets, columns, lookups) and Dataverse's checks of written values."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any

from services.catalog import FieldKind, choice_sets, product_fields, target_fields

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

MONEY_LIMIT = Decimal("922337203685477")  # Dataverse currency range, +/-
DECIMAL_LIMIT = Decimal("100000000000")  # Dataverse decimal column range, +/-
INT32_MAX = 2_147_483_647
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


def _system_columns(primary_key: str, autonumber: str | None) -> list[Column]:
    columns = [Column(primary_key, ColumnType.GUID)]
    if autonumber:
        columns.append(Column(autonumber, ColumnType.STRING, max_length=100))
    columns += [
        Column("createdon", ColumnType.DATETIME, writable=False),
        Column("modifiedon", ColumnType.DATETIME, writable=False),
    ]
    return columns


def _product_column(
    column: str, kind: FieldKind, choices: str | None, max_length: int | None
) -> Column:
    if kind in (FieldKind.TEXT, FieldKind.URL):
        return Column(column, ColumnType.STRING, max_length=max_length or 4000)
    if kind is FieldKind.CHOICE:
        assert choices is not None
        options = frozenset(choice.value for choice in choice_sets()[choices])
        return Column(column, ColumnType.PICKLIST, options=options)
    if kind is FieldKind.MONEY:
        return Column(column, ColumnType.MONEY, minimum=-MONEY_LIMIT, maximum=MONEY_LIMIT)
    if kind is FieldKind.PERCENT:
        return Column(column, ColumnType.DECIMAL, minimum=-DECIMAL_LIMIT, maximum=DECIMAL_LIMIT)
    if kind is FieldKind.INTEGER:
        return Column(column, ColumnType.INTEGER, minimum=0, maximum=INT32_MAX)
    if kind is FieldKind.DATE:
        return Column(column, ColumnType.DATEONLY)
    return Column(column, ColumnType.BOOLEAN)


def _table(
    entity_set: str,
    logical_name: str,
    columns: list[Column],
    lookups: tuple[Lookup, ...] = (),
    autonumber: str | None = None,
    prefix: str = "",
) -> Table:
    primary_key = f"{logical_name}id"
    every = _system_columns(primary_key, autonumber) + columns
    return Table(
        entity_set=entity_set,
        logical_name=logical_name,
        primary_key=primary_key,
        columns={column.name: column for column in every},
        lookups=lookups,
        autonumber=autonumber,
        autonumber_prefix=prefix,
    )


def build_tables() -> dict[str, Table]:
    """The three tables the service uses, keyed by entity set name."""
    organizations = _table(
        "osot_table_organizations",
        "osot_table_organization",
        [Column("osot_organization_name", ColumnType.STRING, max_length=100)],
    )
    products = _table(
        "osot_table_products",
        "osot_table_product",
        [_product_column(f.column, f.kind, f.choices, f.max_length) for f in product_fields()],
        lookups=(
            Lookup(
                "osot_Table_Organization",
                "_osot_table_organization_value",
                organizations.entity_set,
            ),
        ),
        autonumber="osot_productid",
        prefix="osot-prod-",
    )
    targets = _table(
        "osot_table_audience_targets",
        "osot_table_audience_target",
        [
            Column(
                f.column,
                ColumnType.MULTISELECT,
                options=frozenset(choice.value for choice in choice_sets()[f.choices]),
            )
            for f in target_fields()
        ],
        lookups=(Lookup("osot_Table_Product", "_osot_table_product_value", products.entity_set),),
        autonumber="osot_target",
        prefix="osot-tgt-",
    )
    return {table.entity_set: table for table in (organizations, products, targets)}
