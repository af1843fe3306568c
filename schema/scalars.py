"""Exact decimal scalars: money and percentages travel as JSON numbers, stored as decimals."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, NewType

import strawberry
from graphql import FloatValueNode, IntValueNode, StringValueNode, ValueNode


def _to_decimal(value: Any) -> Decimal:
    # str() first: Decimal(199.99) would carry the binary float's error into storage.
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"expected a number such as 199.99, got {value!r}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"expected a number such as 199.99, got {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


def _literal(node: ValueNode, _variables: Any = None) -> Decimal:
    # The literal's own text is exact; no float ever sees it.
    if isinstance(node, IntValueNode | FloatValueNode | StringValueNode):
        return _to_decimal(node.value)
    raise ValueError("expected a number such as 199.99")


def _serialize(value: Decimal) -> float:
    # Amounts are bounded to 12 significant digits, so the shortest float repr is the
    # exact decimal text: 199.99 goes out as 199.99.
    return float(value)


Money = NewType("Money", Decimal)
Percent = NewType("Percent", Decimal)

MONEY = strawberry.scalar(
    name="Money",
    description=(
        "An amount in dollars, exact to the cent. Send a JSON number (199.99) or a string "
        "('199.99'); at most 2 decimal places. Returned as a JSON number."
    ),
    serialize=_serialize,
    parse_value=_to_decimal,
    parse_literal=_literal,
)

PERCENT = strawberry.scalar(
    name="Percent",
    description="A percentage from 0 to 100 with at most 2 decimal places, e.g. 13 or 14.97.",
    serialize=_serialize,
    parse_value=_to_decimal,
    parse_literal=_literal,
)

# Registered on the schema through StrawberryConfig(scalar_map=...).
SCALAR_MAP: dict[object, Any] = {Money: MONEY, Percent: PERCENT}
