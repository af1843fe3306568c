"""POST /graphql on a short path: no per-request dependency resolution, documents prepared once.

Strawberry's Litestar controller resolves five Litestar dependencies for every request
(custom_context, context, root_value and response, three of them concurrently in an anyio
task group), runs its generic view, and runs every schema extension's hooks around
parsing, validation and execution, even when the caches answer. ``with_fast_post``
replaces only the controller's POST handler:

- the context getter is the same Litestar dependency Strawberry's handlers use, and it is
  the only one resolved; the body is decoded with orjson;
- each query text is parsed and validated once, with the token limit, the linear document
  limits and the validation rules of the schema's own extensions (``PreparedDocuments``,
  sharing ``schema.documents``' cache of valid documents with Strawberry's path), and a
  valid one is executed directly by graphql-core with the schema's executor;
- a result with errors goes through the extensions' ``on_operation`` hooks as Strawberry
  would run them, so the error policy masks and logs exactly as before.

Everything else takes Strawberry's own path unchanged, so its status codes and messages
stay the same: another content type, a body that is not one JSON request object, a query
that does not parse or validate (Strawberry reports the errors), a subscription, no
operation to run, or introspection by a caller who may not introspect (the extension refuses
it there). GET (GraphiQL) and websockets stay Strawberry's controller as they are.
If the schema gains an extension this module does not know, every request takes
Strawberry's path (``PreparedDocuments.enabled`` is False). Queries and mutations on the
prepared path do not go through ``Schema.execute``: put per-operation behaviour in a schema
extension (and teach it here), not in an override of ``execute``.

Strawberry's internals that this needs are behind ``schema.internals``, pinned to exact
versions; ``tests/test_graphql_http.py`` sends every operation of the schema through both
paths and compares the answers byte for byte.
"""

from __future__ import annotations

from typing import Any

import orjson
from cross_web import HTTPException
from graphql import (
    DocumentNode,
    GraphQLError,
    get_operation_ast,
    parse,
    specified_rules,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import OperationType as GraphQLOperationType
from litestar import Request, Response, post
from litestar.status_codes import HTTP_200_OK
from strawberry import Schema
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxTokensLimiter,
    SchemaExtension,
)
from strawberry.litestar.controller import GraphQLController
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from schema import internals
from schema.documents import DocumentCache, Limits, Prepared, ValidDocuments, check, may_introspect
from schema.internals import GraphQLRequestData

# What the prepared path reproduces: limits and rules before execution (taken from the
# instances), caching (its own), and MaskErrors' masking of a result's errors.
_KNOWN_EXTENSIONS = (MaxTokensLimiter, AddValidationRules, ValidDocuments, MaskErrors)
_HOOKS = ("on_operation", "on_parse", "on_validate", "on_execute", "resolve", "get_results")
_FAST_OPERATIONS = {
    GraphQLOperationType.QUERY: OperationType.QUERY,
    GraphQLOperationType.MUTATION: OperationType.MUTATION,
}


def _is_known(extension: SchemaExtension) -> bool:
    """Whether the prepared path reproduces *extension*: a known class, its hooks unchanged."""
    known = next((k for k in _KNOWN_EXTENSIONS if isinstance(extension, k)), None)
    return known is not None and all(
        getattr(type(extension), hook) is getattr(known, hook) for hook in _HOOKS
    )


class PreparedDocuments:
    """Each query text parsed and validated once, as the schema's extensions would do it."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        extensions = [e if isinstance(e, SchemaExtension) else e() for e in schema.extensions]
        self.enabled = (
            all(_is_known(extension) for extension in extensions)
            and not schema.directives
            and not schema.config.enable_experimental_incremental_execution
        )
        self._parse_options: dict[str, Any] = {}
        self._cache, self._limits = DocumentCache(), Limits()
        rules: list[Any] = list(specified_rules)
        for extension in extensions:
            if isinstance(extension, MaxTokensLimiter):
                self._parse_options["max_tokens"] = extension.max_token_count
            elif isinstance(extension, AddValidationRules):
                rules.extend(extension.validation_rules)
            elif isinstance(extension, ValidDocuments):
                self._cache, self._limits = extension.cache, extension.limits
        self._rules = tuple(rules)

    def prepare(self, query: str) -> Prepared | None:
        """Return the valid document of *query*, or None to let Strawberry report why not."""
        entry = self._cache.get(query)
        if entry is not None:
            return entry
        try:
            document = parse(query, **self._parse_options)
        except GraphQLError:
            return None
        entry, _ = check(
            query,
            document,
            self._cache,
            lambda parsed: internals.validate(self.schema, parsed, self._rules),
            self._limits,
        )
        return entry

    def document(self, query: str) -> DocumentNode | None:
        """Return the valid document of *query*, or None."""
        entry = self.prepare(query)
        return entry.document if entry is not None else None

    async def execute(
        self,
        document: DocumentNode,
        request: GraphQLRequestData,
        operation: OperationType,
        context: Any,
    ) -> ExecutionResult:
        """Run a prepared document; errors go through the extensions' operation hooks."""
        try:
            result = internals.execute_prepared(self.schema, document, request, context)
            if internals.is_awaitable(result):
                result = await result
        except Exception as exc:
            result = GraphQLExecutionResult(
                data=None, errors=[GraphQLError(str(exc), original_error=exc)]
            )
        assert isinstance(result, GraphQLExecutionResult)
        if not result.errors:
            # The known extensions add nothing to a result without errors.
            return ExecutionResult(data=result.data, errors=None)
        return await self._with_errors(result, document, request, operation, context)

    async def _with_errors(
        self,
        result: GraphQLExecutionResult,
        document: DocumentNode,
        request: GraphQLRequestData,
        operation: OperationType,
        context: Any,
    ) -> ExecutionResult:
        # As Schema.execute: process_errors sees the originals, then MaskErrors (our
        # ErrorPolicy) replaces them when the operation hooks close.
        schema = self.schema
        execution_context = ExecutionContext(
            query=request.query,
            schema=schema,
            allowed_operations={operation},
            context=context,
            variables=request.variables,
            provided_operation_name=request.operation_name,
            operation_extensions=request.extensions,
        )
        execution_context.graphql_document = document
        extensions = schema.get_extensions()
        for extension in extensions:
            extension.execution_context = execution_context
        runner = schema.create_extensions_runner(execution_context, extensions)
        errors = result.errors or []
        async with runner.operation():
            execution_context.result = result
            execution_context.pre_execution_errors = errors
            internals.process_errors(schema, errors, execution_context)
        final = ExecutionResult(data=result.data, errors=result.errors)
        final.extensions = await runner.get_extensions_results(execution_context)
        return final


def _request_data(body: bytes) -> GraphQLRequestData | None:
    """Return the body if it is one GraphQL-over-HTTP request object, else None."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict:
        return None
    query, variables, extensions = data.get("query"), data.get("variables"), data.get("extensions")
    if (
        type(query) is not str
        or not (variables is None or type(variables) is dict)
        or not (extensions is None or type(extensions) is dict)
    ):
        return None
    return GraphQLRequestData(
        query=query,
        variables=variables,
        operation_name=data.get("operationName"),
        extensions=extensions,
        protocol="http",
    )


def _is_json(request: Request[Any, Any, Any]) -> bool:
    # Cheaper than request.content_type, which parses parameters with the email package;
    # any other spelling takes Strawberry's path.
    value = request.headers.get("content-type", "")
    return value.partition(";")[0].strip() == "application/json"


def with_fast_post(
    controller: type[GraphQLController[Any, Any]],
) -> type[GraphQLController[Any, Any]]:
    """Return *controller* with the short POST path described in the module docstring.

    The context comes from the ``context_getter`` given to ``make_graphql_controller``,
    resolved by Litestar as the dependency Strawberry declares for it, so it may ask for
    other dependencies as Strawberry documents. It must return a ``strawberry.litestar``
    ``BaseContext``: the short path sets its ``request`` and ``response``.
    """
    documents = PreparedDocuments(controller.schema)  # type: ignore[arg-type]
    streams = internals.streams_over_http(controller)

    class FastPostController(controller):  # type: ignore[valid-type,misc]
        async def answer_post(self, request: Request[Any, Any, Any], context: Any) -> Response[Any]:
            sub_response: Response[Any] = Response({})
            context.request = request
            context.response = sub_response
            request_data = None
            if _is_json(request) and not streams:
                request_data = _request_data(await request.body())
            if request_data is None:
                # Strawberry's own path: its status codes and messages for everything else.
                return await internals.run_strawberry_post(self, request, context, sub_response)
            try:
                result = await self._execute(request, request_data, context, sub_response)
            except HTTPException:
                # Strawberry refused to run it (no such operationName, a subscription):
                # nothing ran, and its path answers refusals as it answers everything else.
                return await internals.run_strawberry_post(self, request, context, sub_response)
            response_data = await self.process_result(request=request, result=result)
            if result.errors:
                internals.handle_errors(self, result.errors, response_data)
            response: Response[Any] = self.create_response(
                response_data=response_data, sub_response=sub_response
            )
            return response

        handle_http_post = post(status_code=HTTP_200_OK)(internals.receiving_context(answer_post))

        async def _execute(
            self,
            request: Request[Any, Any, Any],
            request_data: GraphQLRequestData,
            context: Any,
            sub_response: Response[Any],
        ) -> ExecutionResult:
            query = request_data.query
            entry = documents.prepare(query) if documents.enabled and query is not None else None
            if entry is not None and (not entry.introspects or may_introspect(context)):
                document = entry.document
                operation = get_operation_ast(document, request_data.operation_name)
                if operation is not None and operation.operation in _FAST_OPERATIONS:
                    return await documents.execute(
                        document, request_data, _FAST_OPERATIONS[operation.operation], context
                    )
            return await internals.run_single(self, request, request_data, context, sub_response)

    return FastPostController
