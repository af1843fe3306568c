"""Validate a product and an audience target, reporting every problem with its field path.

The rules are the domain study's with the old service's defects fixed (numbers as in
docs/design/old-service-defects.md; the limits in docs/design/domain-catalogue.md):
generalPrice counts as a price (D21), insurance products need a type and a limit (D22),
one price ceiling (D23), the Dataverse column length bounds the product code (D24), target
items are unique and only real target fields exist (D16, enforced by the GraphQL input).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
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


def _path(api: str) -> tuple[str, ...]:
    return (INPUT, api)


def _amount(value: Decimal | int) -> str:
    return f"{value:,}"


def _normalize_text(field: ProductField, value: str) -> str | None:
    text = value.strip()
    if field.api == "productCode":
        text = text.upper()
    return text or None


def _check_text(field: ProductField, text: str) -> str | None:
    if field.min_length and not field.min_length <= len(text) <= (field.max_length or len(text)):
        return (
            f"{field.label} must be {field.min_length} to {field.max_length} characters "
            f"long (it has {len(text)})."
        )
    if field.max_length and len(text) > field.max_length:
        return (
            f"{field.label} must be at most {field.max_length} characters long "
            f"(it has {len(text)})."
        )
    if field.pattern and not re.fullmatch(field.pattern, text):
        return field.pattern_message
    if field.kind is FieldKind.URL:
        parts = urlsplit(text)
        host = parts.hostname or ""
        if parts.scheme not in {"http", "https"} or "." not in host or " " in text:
            return f"{field.label} must be an http or https URL, e.g. https://example.org/a.png."
    return None


def _check_number(field: ProductField, value: Any) -> tuple[Any, str | None]:
    if field.kind is FieldKind.INTEGER:
        number: Any = value
    else:
        try:
            number = value if isinstance(value, Decimal) else Decimal(str(value))
        except InvalidOperation:
            return None, f"{field.label} must be a number."
        if not number.is_finite():
            return None, f"{field.label} must be a finite number."
        if number != number.quantize(_CENT):
            return None, f"{field.label} must have at most 2 decimal places."
        number = number.quantize(_CENT)
    assert field.min_value is not None and field.max_value is not None
    if not field.min_value <= number <= field.max_value:
        unit = "%" if field.kind is FieldKind.PERCENT else ""
        return None, (
            f"{field.label} must be between {_amount(field.min_value)}{unit} and "
            f"{_amount(field.max_value)}{unit}."
        )
    return number, None


def _check_field(field: ProductField, value: Any) -> tuple[Any, str | None]:
    """Return the field's normalized value, or None and why it is wrong."""
    if field.kind in {FieldKind.TEXT, FieldKind.URL}:
        text = _normalize_text(field, value)
        if text is None:
            return None, None
        return text, _check_text(field, text)
    if field.kind in {FieldKind.MONEY, FieldKind.PERCENT, FieldKind.INTEGER}:
        return _check_number(field, value)
    if field.kind is FieldKind.CHOICE:
        allowed = {c.value for c in choice_sets()[field.choices or ""]}
        value = int(value)
        if value not in allowed:
            return None, f"{field.label} has no option {value}."
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
            errors.append(FieldError(_path(field.api), f"{field.api} has no option {unknown[0]}."))
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
