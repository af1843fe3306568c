"""POST /graphql on a short path: no per-request dependency resolution, documents prepared once.

Strawberry's Litestar controller resolves five Litestar dependencies for every request
(custom_context, context, root_value and response, three of them concurrently in an anyio
task group), runs its generic view, and runs every schema extension's hooks around
parsing, validation and execution, even when the caches answer. ``with_fast_post``
replaces only the controller's POST handler:

- the context is built directly and the body decoded with orjson (responses too);
- each query text is parsed and validated once, with the token limit and validation rules
  of the schema's own extensions (``PreparedDocuments``), and a valid one is executed
  directly by graphql-core with the schema's executor, minus its reference cycle;
- a result with errors goes through the extensions' ``on_operation`` hooks as Strawberry
  would run them, so the error policy masks and logs exactly as before.

Everything else takes Strawberry's own path unchanged, so its status codes and messages
stay the same: another content type, a body that is not one JSON request object, a query
that does not parse or validate (Strawberry reports the errors), a subscription, or no
operation to run. GET (GraphiQL) and websockets stay Strawberry's controller as they are.
If the schema gains an extension this module does not know, every request takes
Strawberry's path (``PreparedDocuments.enabled`` is False). Queries and mutations on the
prepared path do not go through ``Schema.execute``: put per-operation behaviour in a schema
extension (and teach it here), not in an override of ``execute``.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from typing import Any

import orjson
from cross_web import HTTPException, LitestarRequestAdapter
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLResolveInfoHelpers,
    execute,
    get_operation_ast,
    parse,
    specified_rules,
)
from graphql import (
    ExecutionResult as GraphQLExecutionResult,
)
from graphql import (
    OperationType as GraphQLOperationType,
)
from litestar import MediaType, Request, Response, post
from litestar.status_codes import HTTP_200_OK
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.http import GraphQLRequestData
from strawberry.litestar.controller import GraphQLController
from strawberry.schema import Schema
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

ContextGetter = Callable[[Request[Any, Any, Any]], Awaitable[Any]]

# What the prepared path reproduces: limits and rules before execution (taken from the
# instances), caching (its own), and MaskErrors' masking of a result's errors.
_KNOWN_EXTENSIONS = (MaxTokensLimiter, AddValidationRules, ParserCache, ValidationCache, MaskErrors)
_HOOKS = ("on_operation", "on_parse", "on_validate", "on_execute", "resolve", "get_results")
_FAST_OPERATIONS = {
    GraphQLOperationType.QUERY: OperationType.QUERY,
    GraphQLOperationType.MUTATION: OperationType.MUTATION,
}


def _acyclic(executor_class: type[Any]) -> type[Any]:
    """Return *executor_class* without the reference cycle graphql-core builds into it.

    graphql-core 3.3 gives every executor ``async_helpers`` made of its own bound methods,
    so each request's executor, and with it the context, the request and the response,
    lives until a gen-1 or gen-2 collection finds the cycle: those collections took ~10x
    longer than on the plain routes. The helpers here reach the executor through a weak
    reference; it is alive for as long as its operation runs.
    """

    class AcyclicExecutor(executor_class):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            executor = weakref.ref(self)

            def gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
                return executor().gather_async_work(values)  # type: ignore[union-attr]

            def track(values: Sequence[Any]) -> None:
                executor().track_async_work(values)  # type: ignore[union-attr]

            self.async_helpers = GraphQLResolveInfoHelpers(gather=gather, track=track)

    return AcyclicExecutor


def _is_known(extension: SchemaExtension) -> bool:
    """Whether the prepared path reproduces *extension*: a known class, its hooks unchanged."""
    known = next((k for k in _KNOWN_EXTENSIONS if isinstance(extension, k)), None)
    return known is not None and all(
        getattr(type(extension), hook) is getattr(known, hook) for hook in _HOOKS
    )


class PreparedDocuments:
    """Each query text parsed and validated once, as the schema's extensions would do it."""

    def __init__(self, schema: Schema, maxsize: int = 256) -> None:
        self.schema = schema
        extensions = [e if isinstance(e, SchemaExtension) else e() for e in schema.extensions]
        self.enabled = (
            all(_is_known(extension) for extension in extensions)
            and not schema.directives
            and not schema.config.enable_experimental_incremental_execution
        )
        self._parse_options: dict[str, Any] = {}
        rules: list[Any] = list(specified_rules)
        for extension in extensions:
            if isinstance(extension, MaxTokensLimiter):
                self._parse_options["max_tokens"] = extension.max_token_count
            elif isinstance(extension, AddValidationRules):
                rules.extend(extension.validation_rules)
        self._rules = tuple(rules)
        self._executor_class = _acyclic(schema.execution_context_class)
        self.document = lru_cache(maxsize=maxsize)(self._prepare)

    def _prepare(self, query: str) -> DocumentNode | None:
        """Return the valid document of *query*, or None to let Strawberry report why not."""
        try:
            document = parse(query, **self._parse_options)
        except GraphQLError:
            return None
        if validate_document(self.schema._schema, document, self._rules):
            return None
        return document

    async def execute(
        self,
        document: DocumentNode,
        request: GraphQLRequestData,
        operation: OperationType,
        context: Any,
    ) -> ExecutionResult:
        """Run a prepared document; errors go through the extensions' operation hooks."""
        schema = self.schema
        try:
            result = execute(
                schema._schema,
                document,
                root_value=None,
                variable_values=request.variables,
                operation_name=request.operation_name,
                context_value=context,
                is_awaitable=optimized_is_awaitable,
                executor_class=self._executor_class,
                operation_extensions=request.extensions,
            )
            if optimized_is_awaitable(result):
                result = await result  # type: ignore[misc]
        except Exception as exc:
            result = GraphQLExecutionResult(
                data=None, errors=[GraphQLError(str(exc), original_error=exc)]
            )
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
        async with runner.operation():
            execution_context.result = result
            execution_context.pre_execution_errors = result.errors
            schema._process_errors(result.errors, execution_context)
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
    controller: type[GraphQLController], context_getter: ContextGetter
) -> type[GraphQLController]:
    """Return *controller* with the short POST path described in the module docstring."""
    documents = PreparedDocuments(controller.schema)  # type: ignore[arg-type]

    class FastPostController(controller):  # type: ignore[valid-type,misc]
        def encode_json(self, data: object) -> bytes:
            return orjson.dumps(data)

        @post(status_code=HTTP_200_OK)
        async def handle_http_post(self, request: Request[Any, Any, Any]) -> Response[Any]:
            context = await context_getter(request)
            sub_response: Response[Any] = Response({})
            context.request = request
            context.response = sub_response
            request_data = None
            if _is_json(request) and not self._stream_transport_map:
                request_data = _request_data(await request.body())
            if request_data is None:
                # Strawberry's own path: its status codes and messages for everything else.
                self.temporal_response = sub_response
                return await self.execute_request(request=request, context=context, root_value=None)
            try:
                result = await self._execute(request, request_data, context, sub_response)
            except HTTPException as e:
                return Response(e.reason, status_code=e.status_code, media_type=MediaType.TEXT)
            response_data = await self.process_result(request=request, result=result)
            if result.errors:
                self._handle_errors(result.errors, response_data)
            return self.create_response(response_data=response_data, sub_response=sub_response)

        async def _execute(
            self,
            request: Request[Any, Any, Any],
            request_data: GraphQLRequestData,
            context: Any,
            sub_response: Response[Any],
        ) -> ExecutionResult:
            document = documents.document(request_data.query) if documents.enabled else None
            if document is not None:
                operation = get_operation_ast(document, request_data.operation_name)
                if operation is not None and operation.operation in _FAST_OPERATIONS:
                    return await documents.execute(
                        document, request_data, _FAST_OPERATIONS[operation.operation], context
                    )
            return await self.execute_single(
                request=request,
                request_adapter=LitestarRequestAdapter(request),
                sub_response=sub_response,
                context=context,
                root_value=None,
                request_data=request_data,
            )

    return FastPostController
