"""Validate a product and an audience target, reporting every problem with its field path.

The rules are the domain study's with the old service's defects fixed (numbers as in
docs/design/old-service-defects.md; the limits in docs/design/domain-catalogue.md):
generalPrice counts as a price (D21), insurance products need a type and a limit (D22),
one price ceiling (D23), the Dataverse column length bounds the product code (D24), target
items are unique and only real target fields exist (D16, enforced by the GraphQL input).

Whatever a client sends ends here as a field error, never as an exception: lengths are
counted in UTF-16 code units as Dataverse counts them (an emoji is two), text that is
not Unicode (a lone surrogate, which JSON can spell but Redis and Dataverse refuse) is
refused, digits are ASCII digits, and numbers are range-checked before any rounding, so
that 1e26 is "out of range" rather than a decimal-context overflow.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from services.catalog import (
    INSURANCE_CATEGORY,
    FieldKind,
    ProductField,
    choice_sets,
    price_fields,
    product_fields,
    target_fields,
)
from services.errors import FieldError, ValidationFailedError
from services.models import AudienceTargetData, ProductData

INPUT = "input"
_CENT = Decimal("0.01")
# Dataverse date-time columns hold 1753-01-01 to 9999-12-31 (SQL Server's datetime).
EARLIEST_DATE = date(1753, 1, 1)


def _path(api: str) -> tuple[str, ...]:
    return (INPUT, api)


def _amount(value: Decimal | int) -> str:
    return f"{value:,}"


def has_lone_surrogate(text: str) -> bool:
    """Whether *text* holds half of a UTF-16 surrogate pair, which is not a character."""
    return any("\ud800" <= c <= "\udfff" for c in text)


def utf16_length(text: str) -> int:
    """Return the length Dataverse sees: UTF-16 code units (a character past U+FFFF is 2)."""
    return len(text) + sum(1 for c in text if c > "\uffff")


def _check_url(field: ProductField, text: str) -> str | None:
    problem = f"{field.label} must be an http or https URL, e.g. https://example.org/a.png."
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:  # e.g. an unclosed IPv6 bracket, "http://[::1/a.png"
        return problem
    host = parts.hostname or ""
    if parts.scheme not in {"http", "https"} or "." not in host or not text.isprintable():
        return problem
    return None


def _check_text(field: ProductField, text: str) -> str | None:
    length = utf16_length(text)
    if field.min_length and not field.min_length <= length <= (field.max_length or length):
        return (
            f"{field.label} must be {field.min_length} to {field.max_length} characters "
            f"long (it has {length})."
        )
    if field.max_length and length > field.max_length:
        return (
            f"{field.label} must be at most {field.max_length} characters long (it has {length})."
        )
    if field.pattern and not re.fullmatch(field.pattern, text, re.ASCII | re.IGNORECASE):
        return field.pattern_message
    if field.kind is FieldKind.URL:
        return _check_url(field, text)
    return None


def _text(field: ProductField, value: Any) -> tuple[str | None, str | None]:
    if not isinstance(value, str):
        return None, f"{field.label} must be text."
    if has_lone_surrogate(value):
        return None, (
            f"{field.label} contains an invalid character (half of a UTF-16 surrogate pair); "
            "send it as text."
        )
    text = value.strip()
    if not text:
        return None, None
    problem = _check_text(field, text)
    # Checked before upper-casing: "ß".upper() is "SS", and "ﬁ" would become "FI".
    return (text.upper() if field.api == "productCode" else text), problem


def _number(field: ProductField, value: Any) -> Decimal | int | None:
    """Return *value* as the field's kind of number, or None when it is not one."""
    if isinstance(value, bool):
        return None
    if field.kind is FieldKind.INTEGER:
        return value if isinstance(value, int) else None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float):
        value = str(value)  # the float's shortest text; Decimal(float) would add its error
    # No underscores ("1_000"), spaces or non-ASCII digits, which Decimal() would accept.
    if not isinstance(value, str) or not re.fullmatch(
        r"[-+]?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?|[-+]?\.[0-9]+", value
    ):
        return None
    try:
        return Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        return None


def _check_number(field: ProductField, value: Any) -> tuple[Any, str | None]:
    number = _number(field, value)
    unit = "%" if field.kind is FieldKind.PERCENT else ""
    if number is None:
        kind = {
            FieldKind.MONEY: "an amount in dollars and cents, such as 199.99",
            FieldKind.PERCENT: "a percentage such as 13 or 14.97",
        }.get(field.kind, "a whole number, such as 50")
        return None, f"{field.label} must be {kind}."
    assert field.min_value is not None and field.max_value is not None
    # Range first: quantizing 1e26 to cents overflows the decimal context. A sign counts
    # as out of range, so that -0.0 is refused like -1.
    if isinstance(number, Decimal) and (number.is_signed() or not number.is_finite()):
        in_range = False
    else:
        in_range = field.min_value <= number <= field.max_value
    if not in_range:
        return None, (
            f"{field.label} must be between {_amount(field.min_value)}{unit} and "
            f"{_amount(field.max_value)}{unit}."
        )
    if isinstance(number, Decimal):
        if number != number.quantize(_CENT):
            return None, f"{field.label} must have at most 2 decimal places."
        number = number.quantize(_CENT)
    return number, None


def _check_date(field: ProductField, value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, date) or isinstance(value, datetime):
        return None, f"{field.label} must be a date written YYYY-MM-DD, such as 2026-03-31."
    if value < EARLIEST_DATE:
        return None, f"{field.label} must be on or after {EARLIEST_DATE.isoformat()}."
    return value, None


def _check_choice(field: ProductField, value: Any) -> tuple[Any, str | None]:
    allowed = {c.value for c in choice_sets()[field.choices or ""]}
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        return None, f"{field.label} has no option {value!r}."
    return value, None


def _check_field(field: ProductField, value: Any) -> tuple[Any, str | None]:
    """Return the field's normalized value, or None and why it is wrong."""
    if field.kind in {FieldKind.TEXT, FieldKind.URL}:
        return _text(field, value)
    if field.kind in {FieldKind.MONEY, FieldKind.PERCENT, FieldKind.INTEGER}:
        return _check_number(field, value)
    if field.kind is FieldKind.CHOICE:
        return _check_choice(field, value)
    if field.kind is FieldKind.DATE:
        return _check_date(field, value)
    if not isinstance(value, bool):
        return None, f"{field.label} must be true or false."
    return value, None


def _cross_field_errors(values: Mapping[str, Any]) -> list[FieldError]:
    errors = []
    if all(values.get(f.api) is None for f in price_fields()):
        errors.append(
            FieldError(
                _path("generalPrice"),
                "Set at least one price: generalPrice or a category price (0 means free).",
            )
        )
    if values.get("productCategory") == INSURANCE_CATEGORY:
        for api, label in (
            ("insuranceType", "an insurance type"),
            ("insuranceLimit", "an insurance limit"),
        ):
            if values.get(api) is None:
                errors.append(FieldError(_path(api), f"Insurance products need {label}."))
    start, end = values.get("startDate"), values.get("endDate")
    if isinstance(start, date) and isinstance(end, date) and end < start:
        errors.append(
            FieldError(
                _path("endDate"),
                f"End date ({end.isoformat()}) must be on or after the start date "
                f"({start.isoformat()}).",
            )
        )
    return errors


def validate_product(raw: Mapping[str, Any]) -> ProductData:
    """Return the product normalized (trimmed, code upper-cased), or raise every problem."""
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    invalid: set[str] = set()
    for field in product_fields():
        value = raw.get(field.api)
        if value is not None:
            value, problem = _check_field(field, value)
            if problem:
                errors.append(FieldError(_path(field.api), problem))
                invalid.add(field.api)
                continue
        if value is None and field.required:
            errors.append(FieldError(_path(field.api), f"{field.label} is required."))
            continue
        values[field.api] = value
    errors.extend(e for e in _cross_field_errors(values) if e.field[-1] not in invalid)
    if errors:
        raise ValidationFailedError(errors)
    return ProductData(**{k: v for k, v in values.items() if v is not None})


def validate_target(raw: Mapping[str, list[int] | None]) -> AudienceTargetData:
    """Return the target, or raise every over-long or repeated selection."""
    errors: list[FieldError] = []
    values: dict[str, list[int]] = {}
    for field in target_fields():
        selected = raw.get(field.api)
        if selected is None:
            continue
        if len(selected) > field.max_items:
            # Refused before any other work on it: the list can be long (issue 11).
            errors.append(
                FieldError(
                    _path(field.api),
                    f"Choose at most {field.max_items} values for {field.api} "
                    f"(you chose {len(selected)}).",
                )
            )
            continue
        selected = [int(v) for v in selected]
        names = {c.value: c.name for c in choice_sets()[field.choices]}
        unknown = [v for v in selected if v not in names]
        seen: set[int] = set()
        repeated_values: set[int] = set()
        for value in selected:  # a set, not list.count: linear in the list's length
            (repeated_values if value in seen else seen).add(value)
        repeated = sorted(names.get(v, str(v)) for v in repeated_values)
        if unknown:
            errors.append(
                FieldError(_path(field.api), f"{field.api} has no option {unknown[0]!r}.")
            )
        if repeated:
            errors.append(
                FieldError(
                    _path(field.api),
                    f"{field.api} lists {', '.join(repeated)} more than once; "
                    "choose each value once.",
                )
            )
        values[field.api] = selected
    if errors:
        raise ValidationFailedError(errors)
    return AudienceTargetData(**values)
