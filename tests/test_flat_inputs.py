"""schema.internals.flat_input builds the same input objects as Strawberry's own conversion."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLInputObjectType, coerce_input_value
from strawberry.types import get_object_definition

from api import schema
from schema.internals import convert_argument, graphql_core_schema
from schema.product import ProductInput
from schema.target import AudienceTargetInput
from tests.graphql_documents import product_input

CASES = [
    (ProductInput, product_input()),
    (ProductInput, product_input(startDate="2026-03-01", endDate="2026-03-02", taxes=14.97)),
    (ProductInput, {"productName": None}),
    (ProductInput, {}),
    (AudienceTargetInput, {"province": ["ONTARIO", "QUEBEC"], "gender": []}),
    (AudienceTargetInput, {"province": None}),
    (AudienceTargetInput, {}),
]


def _convert(cls: type, value: dict[str, Any]) -> Any:
    input_type = graphql_core_schema(schema).get_type(cls.__name__)
    assert isinstance(input_type, GraphQLInputObjectType)
    coerced = coerce_input_value(value, input_type)
    return coerced, convert_argument(
        coerced, cls, schema.schema_converter.scalar_registry, schema.config
    )


@pytest.mark.parametrize(
    ("cls", "value"), CASES, ids=[f"{c.__name__}-{i}" for i, (c, _) in enumerate(CASES)]
)
def test_flat_input_builds_what_strawberry_builds(cls: type, value: dict[str, Any]) -> None:
    # given
    definition = get_object_definition(cls, strict=True)
    assert definition.from_input is not None
    _, fast = _convert(cls, value)
    hook, definition.from_input = definition.from_input, None
    try:
        _, expected = _convert(cls, value)
    finally:
        definition.from_input = hook

    # then
    assert type(fast) is type(expected)
    assert vars(fast) == vars(expected)


def test_flat_input_copies_lists() -> None:
    coerced, target = _convert(AudienceTargetInput, {"province": ["ONTARIO"]})

    assert target.province == coerced["province"]
    assert target.province is not coerced["province"]
