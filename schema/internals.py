"""Everything the service takes from strawberry-graphql and graphql-core beyond their public API.

This is the only module allowed to use their private names (``tests/test_internals.py``
checks the tree). It refuses to import with versions other than the exact pins below,
which ``pyproject.toml`` repeats: on an upgrade, re-read each item against the new
sources, run ``make test`` and ``make bench``, then move both pins together.

What it relies on, and why:

- ``ExecutionContext``: the schema's executor. Strawberry's own
  (``strawberry.schema.schema.StrawberryGraphQLCoreExecutionContext``, not exported) with
  two fixes of graphql-core 3.3.2, written up for upstream in
  ``docs/design/executor-fixes.md``: no reference cycle through ``async_helpers``, and a
  subfield cache (``_relevant_sub_fields``) per subscription event.
- ``flat_input``: a ``from_input`` hook for wide inputs that decides once which fields need
  no conversion (``strawberry.types.arguments._is_leaf_type``).
- ``CannotGetOperationTypeError`` (``strawberry.schema.exceptions``): what Strawberry raises
  when a request names no operation it can run; web/controller.py answers it as the
  GraphQL request error it is.
- ``LegacyWebSocketHandlerBase``, ``TransportWebSocketHandlerBase``: Strawberry's handlers of
  the two websocket protocols (``strawberry.subscriptions.protocols.*.handlers``), which
  web/controller.py subclasses: 4403 for a refused legacy connection, as graphql-transport-ws
  closes it, and variables that are not text refused at their field.
- The prepared POST path of ``graphql_http.py``: the graphql-core schema behind Strawberry's
  (``Schema._schema``), Strawberry's validation and error processing
  (``validate_document``, ``Schema._process_errors``), its awaitable check, and the
  controller's request plumbing (the ``custom_context`` dependency, ``execute_single``,
  ``temporal_response``, ``_handle_errors``, the stream transports).
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import MISSING
from importlib.metadata import version
from typing import Any, TypeGuard, TypeVar, cast

from cross_web import LitestarRequestAdapter
from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLResolveInfoHelpers,
    GraphQLSchema,
    execute,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from litestar import Request, Response
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.http import GraphQLRequestData
from strawberry.schema import Schema
from strawberry.schema.exceptions import CannotGetOperationTypeError
from strawberry.schema.schema import (
    StrawberryGraphQLCoreExecutionContext,
    validate_document,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types import ExecutionContext as StrawberryExecutionContext
from strawberry.types import ExecutionResult, get_object_definition
from strawberry.types.arguments import (
    InputContext,
    _is_leaf_type,
    _is_optional_leaf_type,
    convert_argument,
)
from strawberry.types.base import StrawberryList, StrawberryMaybe, StrawberryOptional
from strawberry.types.unset import UNSET

__all__ = [
    "PINNED",
    "CannotGetOperationTypeError",
    "ExecutionContext",
    "GraphQLRequestData",
    "LegacyWebSocketHandlerBase",
    "TransportWebSocketHandlerBase",
    "convert_argument",
    "execute_prepared",
    "flat_input",
    "graphql_core_schema",
    "handle_errors",
    "is_awaitable",
    "process_errors",
    "receiving_context",
    "run_single",
    "run_strawberry_post",
    "streams_over_http",
    "validate",
]

PINNED = {"strawberry-graphql": "0.341.2", "graphql-core": "3.3.2", "litestar": "2.25.0"}


def check_versions(installed: Mapping[str, str] | None = None) -> None:
    """Raise ImportError unless the installed versions are exactly the pinned ones."""
    found = installed if installed is not None else {name: version(name) for name in PINNED}
    wrong = {name: found[name] for name, pin in PINNED.items() if found[name] != pin}
    if wrong:
        listed = ", ".join(f"{name} {found[name]} (expected {PINNED[name]})" for name in wrong)
        raise ImportError(
            f"schema/internals.py relies on private names of these exact versions: {listed}. "
            "Install the pinned versions (pip install -e .), or re-check every item of "
            "schema/internals.py against the new ones and move PINNED and pyproject.toml."
        )


check_versions()

Cls = TypeVar("Cls", bound=type)


# -- the executor ------------------------------------------------------------------------


def _weak_helpers(executor: Any) -> GraphQLResolveInfoHelpers:
    # graphql-core binds these to the executor itself: a reference cycle per request that
    # kept the context, the request and the response for the slow older-generation
    # collections. A weak reference suffices: the executor outlives its operation's work.
    ref = weakref.ref(executor)

    def gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
        executor: Any = ref()
        return cast("Awaitable[list[Any]]", executor.gather_async_work(values))

    def track(values: Sequence[Any]) -> None:
        executor: Any = ref()
        executor.track_async_work(values)

    return GraphQLResolveInfoHelpers(gather=gather, track=track)


class ExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor without graphql-core 3.3.2's cycle and per-event cache growth."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.async_helpers = _weak_helpers(self)

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        # The copy shares its parent's subfield cache, keyed by the id of field lists
        # built anew for every event: it grew ~4 KB per event for a subscription's life.
        executor._relevant_sub_fields = {}
        executor.async_helpers = _weak_helpers(executor)
        return executor


# -- wide inputs -------------------------------------------------------------------------

_LEAF, _LEAF_LIST, _CONVERT = 0, 1, 2
_Plan = list[tuple[str, str, int, Any]]


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


def flat_input(cls: Cls) -> Cls:
    """Give the Strawberry input *cls* a ``from_input`` hook that copies leaves; return it.

    For every field, on every request, Strawberry works out the GraphQL name and the type,
    and walks it to find that a scalar or an enum needs no conversion: ~350 µs for the 37
    fields of ProductInput, ten times what graphql-core spends coercing the value. The hook
    (``StrawberryObjectDefinition.from_input``, offered to integrations) works that out
    once per schema and builds exactly what Strawberry would.
    """
    definition = get_object_definition(cls, strict=True)
    assert definition.is_input
    plans: dict[tuple[int, int], _Plan] = {}

    def plan_for(context: InputContext) -> _Plan:
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


# -- the legacy websocket protocol (web/controller.py) -----------------------------------

LegacyWebSocketHandlerBase = BaseGraphQLWSHandler[Any, Any]
TransportWebSocketHandlerBase = BaseGraphQLTransportWSHandler[Any, Any]

# -- the prepared POST path (graphql_http.py) ------------------------------------------

# Strawberry's fast check, typed as the predicate graphql-core expects (it is one).
is_awaitable = cast("Callable[[Any], TypeGuard[Awaitable[Any]]]", optimized_is_awaitable)


def graphql_core_schema(schema: Schema) -> GraphQLSchema:
    """Return the graphql-core schema Strawberry built."""
    return schema._schema


def validate(
    schema: Schema, document: DocumentNode, rules: tuple[type[ASTValidationRule], ...]
) -> list[GraphQLError]:
    """Validate as Strawberry does: *rules* plus its own Maybe and @oneOf rules."""
    return validate_document(schema._schema, document, rules)


def execute_prepared(
    schema: Schema,
    document: DocumentNode,
    request: GraphQLRequestData,
    context: Any,
) -> GraphQLExecutionResult | Awaitable[GraphQLExecutionResult]:
    """Execute a validated document as ``Schema.execute`` would, minus its extension hooks."""
    return execute(
        schema._schema,
        document,
        root_value=None,
        variable_values=request.variables,
        operation_name=request.operation_name,
        context_value=context,
        is_awaitable=is_awaitable,
        executor_class=schema.execution_context_class,
        operation_extensions=request.extensions,
    )


def process_errors(
    schema: Schema, errors: list[GraphQLError], execution_context: StrawberryExecutionContext
) -> None:
    """Run what ``Schema.execute`` runs on errors before the extensions see them."""
    schema._process_errors(errors, execution_context)


PostHandler = Callable[[Any, Request[Any, Any, Any], Any], Awaitable[Response[Any]]]


def receiving_context(handler: PostHandler) -> Callable[..., Awaitable[Response[Any]]]:
    """Return *handler* (self, request, context) as a controller method Litestar can inject.

    ``make_graphql_controller`` provides its ``context_getter`` as the Litestar dependency
    ``custom_context``: the method asks for that one dependency and nothing else.
    """

    async def handle(
        self: Any, request: Request[Any, Any, Any], custom_context: Any
    ) -> Response[Any]:
        return await handler(self, request, custom_context)

    return handle


def streams_over_http(controller_class: Any) -> bool:
    """Whether the controller serves subscriptions over HTTP (SSE or multipart)."""
    # What the view's cached _stream_transport_map is built from.
    transports = controller_class.stream_transport_classes_by_protocol
    return any(protocol in transports for protocol in controller_class.protocols)


async def run_strawberry_post(
    controller: Any, request: Request[Any, Any, Any], context: Any, sub_response: Response[Any]
) -> Response[Any]:
    """Answer a POST exactly as Strawberry's own ``handle_http_post`` does."""
    controller.temporal_response = sub_response
    response = await controller.execute_request(request=request, context=context, root_value=None)
    return cast("Response[Any]", response)


async def run_single(
    controller: Any,
    request: Any,
    request_data: GraphQLRequestData,
    context: Any,
    sub_response: Any,
) -> ExecutionResult:
    """Run one parsed request through ``Schema.execute`` with Strawberry's HTTP checks."""
    return await controller.execute_single(  # type: ignore[no-any-return]
        request=request,
        request_adapter=LitestarRequestAdapter(request),
        sub_response=sub_response,
        context=context,
        root_value=None,
        request_data=request_data,
    )


def handle_errors(controller: Any, errors: list[GraphQLError], response_data: Any) -> None:
    """Call the view's error hook, as Strawberry's ``run`` does for a result with errors."""
    controller._handle_errors(errors, response_data)
