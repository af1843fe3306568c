"""The audience target: 34 optional multi-select criteria (generated, schema/catalog_types.py)."""

from __future__ import annotations

from typing import Any

from schema.catalog_types import AudienceTarget, AudienceTargetInput
from schema.choices import CHOICE_ENUMS
from schema.internals import flat_input
from services.catalog import target_fields

__all__ = ["AudienceTarget", "AudienceTargetInput", "target_from_values"]

# Strawberry's per-field argument conversion cost ~0.5 ms a request (schema/internals.py).
flat_input(AudienceTargetInput)


def target_from_values(values: dict[str, list[int] | None]) -> AudienceTarget:
    """Build the output type from stored option values."""
    converted: dict[str, Any] = {
        f.api: None
        if (chosen := values.get(f.api)) is None
        else [CHOICE_ENUMS[f.choices](v) for v in chosen]
        for f in target_fields()
    }
    return AudienceTarget(**converted)
