"""schema.graphql is the checked-in contract: it must match the code."""

from __future__ import annotations

from pathlib import Path

from graphql import GraphQLEnumType, GraphQLInputObjectType

from api import schema
from schema.internals import graphql_core_schema
from services.catalog import choice_sets, product_fields, target_fields

SDL = Path(__file__).parent.parent / "schema.graphql"


def test_schema_file_matches_the_code() -> None:
    assert schema.as_str() + "\n" == SDL.read_text(encoding="utf-8"), (
        "schema.graphql is out of date: run `orchestrator schema -o schema.graphql`"
    )


def test_inputs_carry_every_domain_field_by_its_api_name() -> None:
    core = graphql_core_schema(schema)
    product = core.get_type("ProductInput")
    target = core.get_type("AudienceTargetInput")
    assert isinstance(product, GraphQLInputObjectType)
    assert isinstance(target, GraphQLInputObjectType)

    assert list(product.fields) == [f.api for f in product_fields()]
    assert list(target.fields) == [f.api for f in target_fields()]
    assert len(product.fields) == 37
    assert len(target.fields) == 34


def test_every_choice_set_is_an_enum_of_its_member_names_with_labels() -> None:
    graphql_schema = graphql_core_schema(schema)
    for name, choices in choice_sets().items():
        enum = graphql_schema.get_type(name)
        assert isinstance(enum, GraphQLEnumType)
        assert list(enum.values) == [c.name for c in choices]
        assert [v.description for v in enum.values.values()] == [c.label for c in choices]


def test_every_type_and_field_has_a_description() -> None:
    graphql_schema = graphql_core_schema(schema)
    missing = []
    for name, type_ in graphql_schema.type_map.items():
        if name.startswith("__") or name in {
            "String",
            "Int",
            "Boolean",
            "ID",
            "Float",
            "Date",
            "DateTime",
        }:
            continue
        if not type_.description:
            missing.append(name)
        for field_name, field in getattr(type_, "fields", {}).items():
            if not field.description:
                missing.append(f"{name}.{field_name}")
            for arg_name, arg in getattr(field, "args", {}).items():
                if not arg.description:
                    missing.append(f"{name}.{field_name}({arg_name})")
    assert missing == []
