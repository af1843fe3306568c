"""The audience target: 34 optional multi-select criteria, each a list of enum values."""

from __future__ import annotations

from typing import Any

import strawberry

from schema.dynamic import make_class
from schema.enums import CHOICE_ENUMS
from schema.internals import flat_input
from services.catalog import target_fields


def _fields(description: str) -> list[tuple[str, Any, Any]]:
    return [
        (
            f.api,
            list[CHOICE_ENUMS[f.choices]] | None,  # type: ignore[index]
            strawberry.field(
                default=None,
                description=description.format(column=f.column, max=f.max_items),
            ),
        )
        for f in target_fields()
    ]


AudienceTargetInput = strawberry.input(
    make_class(
        "AudienceTargetInput",
        _fields(
            "Matches users with any of these values (Dataverse {column}); at most {max}, each once."
        ),
    ),
    description=(
        "Who may see the product. A user qualifies when any set criterion matches. "
        "Leave every criterion out (an empty target) to open the product to everyone. "
        "Calling configureTarget again replaces the whole target."
    ),
)
# Strawberry's per-field argument conversion cost ~0.5 ms a request (schema/internals.py).
flat_input(AudienceTargetInput)

AudienceTarget = strawberry.type(
    make_class(
        "AudienceTarget", _fields("Values selected for Dataverse {column}; null when not set.")
    ),
    description="The audience target held in a session.",
)


def target_from_values(values: dict[str, list[int] | None]) -> Any:
    """Build the output type from stored option values."""
    return AudienceTarget(
        **{
            f.api: None
            if values.get(f.api) is None
            else [CHOICE_ENUMS[f.choices](v) for v in values[f.api] or []]
            for f in target_fields()
        }
    )
