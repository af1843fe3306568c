"""Schema extensions: caches, limits built once, and the error policy."""

from __future__ import annotations

import logging
from collections.abc import Callable

from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)

from schema.internals import validation_rules
from services.errors import INTERNAL_ERROR, ServiceError

logger = logging.getLogger("orchestrator.graphql")

# Built once: a rule class created per request would change the validation cache key
# on every request and defeat the cache (strawberry issue #4635).
VALIDATION_RULES = validation_rules(max_depth=10, max_aliases=15)


class ErrorPolicy(MaskErrors):
    """Give expected failures their code; mask and log everything else with the operation id.

    A ServiceError that names no code of its own (the base code INTERNAL_ERROR) was not
    meant for the caller either: it is masked like any other unexpected error.
    """

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda _: True)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if original is None or isinstance(original, GraphQLError):
            return error  # parse/validation errors and errors raised on purpose
        if isinstance(original, ServiceError) and original.code != INTERNAL_ERROR:
            return GraphQLError(
                original.message,
                nodes=error.nodes,
                path=error.path,
                extensions={"code": original.code},
            )
        operation_id = getattr(self.execution_context.context, "operation_id", "unknown")
        logger.error(
            "unexpected error in operation %s at %s",
            operation_id,
            ".".join(map(str, error.path or [])),
            exc_info=original,
        )
        return GraphQLError(
            f"Internal error. Quote operation {operation_id} when reporting it.",
            nodes=error.nodes,
            path=error.path,
            extensions={"code": "INTERNAL_SERVER_ERROR", "operationId": operation_id},
        )


EXTENSIONS: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
    lambda: MaxTokensLimiter(max_token_count=4000),
    lambda: AddValidationRules(VALIDATION_RULES),
    lambda: ParserCache(maxsize=256),
    lambda: ValidationCache(maxsize=256),
    ErrorPolicy,
]
