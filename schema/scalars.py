"""Custom scalars, parsed strictly: money and percentages as exact decimals, dates as YYYY-MM-DD.

A value of the wrong type is refused here, before any resolver runs, with a message that
says what was expected in a person's words; the HTTP layer reports it as a BAD_USER_INPUT
error naming the field. Range and decimal places are rules, checked with the others in
services/validation.py, so that every rule problem of a form is reported at once.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NewType

import strawberry
from graphql import FloatValueNode, GraphQLError, IntValueNode, StringValueNode, ValueNode

MONEY_EXPECTED = "an amount in dollars and cents, such as 199.99"
PERCENT_EXPECTED = "a percentage such as 13 or 14.97"
DATE_EXPECTED = "a date written YYYY-MM-DD, such as 2026-03-31"

# A decimal as a person writes it: ASCII digits, an optional minus and fraction. Decimal()
# alone would also take "1_000", " 12 ", "١٢" (Arabic-Indic digits), "NaN" and "1e27".
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class InvalidValueError(GraphQLError):
    """A value of the wrong type for a scalar; a GraphQLError, so never masked as internal."""

    def __init__(self, expected: str) -> None:
        super().__init__(f"Expected {expected}.", extensions={"code": "BAD_USER_INPUT"})


def _decimal(value: Any, expected: str) -> Decimal:
    if isinstance(value, bool):
        raise InvalidValueError(expected)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # str() first: Decimal(199.99) would carry the binary float's error into storage.
        number = Decimal(str(value))
    elif isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value):
        number = Decimal(value)
    else:
        raise InvalidValueError(expected)
    if not number.is_finite():
        raise InvalidValueError(expected)
    return number


def _money(value: Any) -> Decimal:
    return _decimal(value, MONEY_EXPECTED)


def _percent(value: Any) -> Decimal:
    return _decimal(value, PERCENT_EXPECTED)


def _literal(parse: Callable[[Any], Decimal]) -> Callable[..., Decimal]:
    def parse_literal(node: ValueNode, _variables: Any = None) -> Decimal:
        # The literal's own text is exact; no float ever sees it.
        if isinstance(node, IntValueNode | FloatValueNode):
            return Decimal(node.value)  # GraphQL's number grammar: always a finite decimal
        if isinstance(node, StringValueNode):
            return parse(node.value)
        return parse(None)

    return parse_literal


def _serialize(value: Decimal) -> float:
    # Amounts are bounded to 12 significant digits, so the shortest float repr is the
    # exact decimal text: 199.99 goes out as 199.99.
    return float(value)


def _date(value: Any) -> datetime.date:
    # fromisoformat() alone also takes "20260331" and "2026-W13-2".
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            pass  # e.g. 2026-02-30
    raise InvalidValueError(DATE_EXPECTED)


def _date_literal(node: ValueNode, _variables: Any = None) -> datetime.date:
    return _date(node.value if isinstance(node, StringValueNode) else None)


Money = NewType("Money", Decimal)
Percent = NewType("Percent", Decimal)

MONEY = strawberry.scalar(
    name="Money",
    description=(
        "An amount in dollars, exact to the cent. Send a JSON number (199.99) or a string "
        "('199.99'); at most 2 decimal places. Returned as a JSON number."
    ),
    serialize=_serialize,
    parse_value=_money,
    parse_literal=_literal(_money),
)

PERCENT = strawberry.scalar(
    name="Percent",
    description="A percentage from 0 to 100 with at most 2 decimal places, e.g. 13 or 14.97.",
    serialize=_serialize,
    parse_value=_percent,
    parse_literal=_literal(_percent),
)

DATE = strawberry.scalar(
    name="Date",
    description="A calendar date, written YYYY-MM-DD (ISO 8601), e.g. 2026-03-31.",
    serialize=datetime.date.isoformat,
    parse_value=_date,
    parse_literal=_date_literal,
)

# Registered on the schema through StrawberryConfig(scalar_map=...); DATE replaces
# Strawberry's own Date, which accepts every form fromisoformat() knows.
SCALAR_MAP: dict[object, Any] = {Money: MONEY, Percent: PERCENT, datetime.date: DATE}
