"""Schema extensions: the token limit, valid documents (cached, linear limits), the error policy."""

from __future__ import annotations

import logging
from collections.abc import Callable

from graphql import GraphQLError
from strawberry.extensions import MaskErrors, MaxTokensLimiter, SchemaExtension

from schema.documents import MAX_TOKENS, DocumentCache, ValidDocuments
from services.errors import INTERNAL_ERROR, ServiceError

logger = logging.getLogger("orchestrator.graphql")

# The process's valid documents, for both HTTP paths and websockets (schema/documents.py).
DOCUMENTS = DocumentCache()


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
    lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
    lambda: ValidDocuments(DOCUMENTS),
    ErrorPolicy,
]
