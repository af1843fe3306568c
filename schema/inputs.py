"""Build wide input objects from their GraphQL values without Strawberry's per-field work.

For every field of an input, on every request, Strawberry computes the GraphQL name,
resolves the type and walks it to find that a scalar or an enum needs no conversion:
~350 µs for the 37 fields of ProductInput, ten times what graphql-core spends coercing
the value. ``flat_input`` installs a ``from_input`` hook (the hook Strawberry offers to
integrations, ``StrawberryObjectDefinition.from_input``) that works this out once per
schema and then only copies values. It builds exactly what Strawberry would: leaves as
they are, lists of leaves copied, any other field converted by Strawberry itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING
from typing import Any

from strawberry.types.arguments import InputContext, _is_leaf_type, _is_optional_leaf_type
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryOptional,
    has_object_definition,
)
from strawberry.types.unset import UNSET

_LEAF, _LEAF_LIST, _CONVERT = 0, 1, 2
Plan = list[tuple[str, str, int, Any]]


def _mode(field_type: Any, context: InputContext) -> int:
    if isinstance(field_type, StrawberryMaybe):
        # Strawberry skips its Maybe null check for types with a from_input hook.
        raise TypeError("flat_input does not support Maybe fields")
    registry = context.scalar_registry
    inner = field_type.of_type if isinstance(field_type, StrawberryOptional) else field_type
    if _is_leaf_type(inner, registry):
        return _LEAF
    if isinstance(inner, StrawberryList) and (
        _is_leaf_type(inner.of_type, registry) or _is_optional_leaf_type(inner.of_type, registry)
    ):
        return _LEAF_LIST
    return _CONVERT


def flat_input(cls: type) -> type:
    """Give the Strawberry input *cls* the fast ``from_input`` described above; return it."""
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    assert has_object_definition(cls) and definition.is_input
    plans: dict[tuple[int, int], Plan] = {}

    def plan_for(context: InputContext) -> Plan:
        key = (id(context.config), id(context.scalar_registry))
        plan = plans.get(key)
        if plan is None:
            plan = []
            for field in definition.fields:
                field_type = field.resolve_type(type_definition=definition)
                graphql_name = context.config.name_converter.from_field(field)
                plan.append(
                    (graphql_name, field.python_name, _mode(field_type, context), field_type)
                )
            plans[key] = plan
        return plan

    # As Strawberry does: fields without a default start as None.
    required = {
        field.python_name: None
        for field in definition.fields
        if field.default_value is MISSING and field.default_factory is MISSING
    }

    def from_input(type_: type, value: Mapping[str, Any], context: InputContext) -> Any:
        kwargs: dict[str, Any] = dict(required)
        for graphql_name, python_name, mode, field_type in plan_for(context):
            if graphql_name not in value:
                continue
            item = value[graphql_name]
            if mode == _LEAF_LIST and item is not None and item is not UNSET:
                item = list(item)  # graphql-core may hand every request the same default list
            elif mode == _CONVERT:
                item = context.convert(item, field_type, graphql_name)
            kwargs[python_name] = item
        return type_(**kwargs)

    definition.from_input = from_input
    return cls
