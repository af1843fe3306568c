"""The schema's graphql-core executor: Strawberry's, without a per-event subscription leak."""

from __future__ import annotations

from typing import Any

# Strawberry's default executor class; it is not re-exported anywhere public.
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class ExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Give each subscription event its own subfield cache."""

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        # graphql-core 3.3.2 copies the executor for every event but shares its subfield
        # cache, keyed by the id of field lists built anew for each event: the cache grew
        # ~4 KB per event for the life of every subscription, and full-GC pauses with it.
        executor._relevant_sub_fields = {}
        return executor
