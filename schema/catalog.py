"""The form catalogue as clients read it: every input field with its label, help and limits."""

from __future__ import annotations

from decimal import Decimal
from enum import Enum
from functools import cache

import strawberry

from services.catalog import FieldKind, FormField, FormRule, form_catalog


@strawberry.enum(description="How a field is typed, and so which control suits it.")
class CatalogFieldType(Enum):
    TEXT = strawberry.enum_value("TEXT", description="Free text (String).")
    URL = strawberry.enum_value("URL", description="An http or https URL (String).")
    CHOICE = strawberry.enum_value(
        "CHOICE", description="One member of an enum (several when multiple is true)."
    )
    MONEY = strawberry.enum_value(
        "MONEY", description="An amount in dollars and cents (Money), such as 199.99."
    )
    PERCENT = strawberry.enum_value(
        "PERCENT", description="A percentage (Percent) with at most 2 decimals, such as 13."
    )
    INTEGER = strawberry.enum_value("INTEGER", description="A whole number (Int).")
    DATE = strawberry.enum_value("DATE", description="A calendar day (Date), YYYY-MM-DD.")
    BOOLEAN = strawberry.enum_value("BOOLEAN", description="Yes or no (Boolean).")


# The GraphQL type of each kind of field, as schema/product.py declares it.
_SCALAR_NAMES = {
    FieldKind.TEXT: "String",
    FieldKind.URL: "String",
    FieldKind.MONEY: "Money",
    FieldKind.PERCENT: "Percent",
    FieldKind.INTEGER: "Int",
    FieldKind.DATE: "Date",
    FieldKind.BOOLEAN: "Boolean",
}


@strawberry.type(description="One member of a choice field's enum.")
class CatalogChoice:
    name: str = strawberry.field(description="The enum value name to send, e.g. ONTARIO.")
    label: str = strawberry.field(description="What a person reads, e.g. Ontario.")
    value: int = strawberry.field(description="The Dataverse option value it is stored as.")


@strawberry.type(description="One field of an input object, described for a form.")
class CatalogField:
    name: str = strawberry.field(description="The GraphQL input field name, e.g. productCode.")
    label: str = strawberry.field(description="The field's name in a person's words.")
    help: str = strawberry.field(description="What the field means and the rules it follows.")
    required: bool = strawberry.field(
        description="True when the field must be set (a missing one is a VALIDATION_FAILED "
        "userError). The rules may require more, e.g. insuranceType for insurance products."
    )
    type: CatalogFieldType = strawberry.field(description="What kind of value the field takes.")
    graphql_type: str = strawberry.field(
        description="The field's GraphQL input type, e.g. Money, ProductCategory or [Province!]."
    )
    multiple: bool = strawberry.field(
        description="True for a list of choices (every audience-target criterion)."
    )
    min_length: int | None = strawberry.field(
        description="Text: fewest characters once trimmed (as Dataverse counts them, in "
        "UTF-16 code units like HTML's minlength); null when there is no minimum."
    )
    max_length: int | None = strawberry.field(
        description="Text: most characters (UTF-16 code units, like HTML's maxlength); null "
        "when there is no maximum."
    )
    min_value: float | None = strawberry.field(
        description="Numbers: the smallest value allowed; null for other types."
    )
    max_value: float | None = strawberry.field(
        description="Numbers: the largest value allowed; null for other types."
    )
    decimals: int | None = strawberry.field(
        description="Numbers: most decimal places allowed (0 for whole numbers)."
    )
    pattern: str | None = strawberry.field(
        description="Text: a regular expression the normalized value must match in full "
        "(productCode is upper-cased first)."
    )
    pattern_message: str | None = strawberry.field(
        description="What to tell a person whose value does not match pattern."
    )
    max_selections: int | None = strawberry.field(
        description="Multiple choices: most members that may be selected, each once."
    )
    choice_set: str | None = strawberry.field(
        description="Choice fields: the enum's name (several fields may share one)."
    )
    choices: list[CatalogChoice] = strawberry.field(
        description="Choice fields: the enum's members in Dataverse order; empty otherwise."
    )


@strawberry.type(description="A rule that spans fields, which no single field's limits express.")
class CatalogRule:
    fields: list[str] = strawberry.field(description="The input fields the rule concerns.")
    description: str = strawberry.field(description="The rule, in a person's words.")


@strawberry.type(description="An input object described field by field, in its declared order.")
class CatalogInput:
    input_type: str = strawberry.field(description="The GraphQL input type, e.g. ProductInput.")
    fields: list[CatalogField] = strawberry.field(description="Every field of the input.")
    rules: list[CatalogRule] = strawberry.field(
        description="Rules across fields, checked by the mutation with the field limits."
    )


@strawberry.type(
    description="Everything a form needs to edit a product and its audience target, from the "
    "rules the service applies: build forms from it instead of copying rules."
)
class Catalog:
    product: CatalogInput = strawberry.field(description="ProductInput, as addProduct takes it.")
    audience_target: CatalogInput = strawberry.field(
        description="AudienceTargetInput, as configureTarget takes it."
    )


def _number(value: Decimal | int | None) -> float | None:
    return None if value is None else float(value)


def _field(field: FormField) -> CatalogField:
    base = field.choice_set if field.kind is FieldKind.CHOICE else _SCALAR_NAMES[field.kind]
    return CatalogField(
        name=field.name,
        label=field.label,
        help=field.help,
        required=field.required,
        type=CatalogFieldType[field.kind.name],
        graphql_type=f"[{base}!]" if field.multiple else str(base),
        multiple=field.multiple,
        min_length=field.min_length,
        max_length=field.max_length,
        min_value=_number(field.min_value),
        max_value=_number(field.max_value),
        decimals=field.decimals,
        pattern=field.pattern,
        pattern_message=field.pattern_message,
        max_selections=field.max_selections,
        choice_set=field.choice_set,
        choices=[CatalogChoice(name=c.name, label=c.label, value=c.value) for c in field.choices],
    )


def _rules(rules: tuple[FormRule, ...]) -> list[CatalogRule]:
    return [CatalogRule(fields=list(r.fields), description=r.description) for r in rules]


@cache
def current_catalog() -> Catalog:
    """Return the catalogue, built once: it never changes while the service runs."""
    catalog = form_catalog()
    return Catalog(
        product=CatalogInput(
            input_type="ProductInput",
            fields=[_field(f) for f in catalog.product],
            rules=_rules(catalog.product_rules),
        ),
        audience_target=CatalogInput(
            input_type="AudienceTargetInput",
            fields=[_field(f) for f in catalog.target],
            rules=_rules(catalog.target_rules),
        ),
    )
