"""Input values of the wrong type, as errors a form can place: one per bad field.

graphql-core refuses a value of the wrong type (``generalPrice: "12,50"``, an unknown enum
value, a date that is not a date) before anything runs, with one top-level error whose
message names the variable and buries the field in its text. This module describes the
same problems again, one error per bad field: ``extensions.code`` BAD_USER_INPUT,
``extensions.field`` the path into the input as userErrors give it (``["input",
"generalPrice"]``: the argument, then the input fields), and a message saying what was
expected in a person's words, with the field's label from the catalogue.

It runs only when a request already failed before execution, so its cost is never paid
on the way to a result. Received values are quoted ASCII-escaped and shortened: a lone
surrogate stays printable and a 400-digit number stays short.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import lru_cache
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Undefined,
    ValueNode,
    VariableNode,
    get_named_type,
    get_operation_ast,
    is_input_object_type,
    is_list_type,
    is_non_null_type,
    parse,
    type_from_ast,
    validate_input_literal,
    validate_input_value,
)

from schema.scalars import DATE_EXPECTED, MONEY_EXPECTED, PERCENT_EXPECTED
from services.catalog import product_fields, target_fields

BAD_USER_INPUT = "BAD_USER_INPUT"
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"

_EXPECTED = {
    "Money": MONEY_EXPECTED,
    "Percent": PERCENT_EXPECTED,
    "Date": DATE_EXPECTED,
    "DateTime": "a date and time in ISO 8601, such as 2026-03-31T09:00:00Z",
    "Int": "a whole number from -2,147,483,648 to 2,147,483,647, such as 50",
    "Float": "a number, such as 1.5",
    "String": "text",
    "ID": "an id as the API returned it, such as a sessionId",
    "Boolean": "true or false",
}
_ENUM_NAMES_SHOWN = 8
_UNKNOWN_FIELD = re.compile(r"not to include unknown field '([^']*)'")


@lru_cache(maxsize=1)
def _labels() -> dict[tuple[str, str], str]:
    labels = {("ProductInput", f.api): f.label for f in product_fields()}
    labels |= {("AudienceTargetInput", f.api): f.label or f.api for f in target_fields()}
    return labels


@dataclass(frozen=True, slots=True)
class InputProblem:
    """One bad value: where it is (argument, then input fields), and why."""

    field: tuple[str, ...]
    message: str
    nodes: tuple[Any, ...] = ()

    def as_error(self) -> GraphQLError:
        return GraphQLError(
            self.message,
            nodes=list(self.nodes) or None,
            extensions={"code": BAD_USER_INPUT, "field": list(self.field)},
        )


def _quote(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _expected(type_: Any) -> str:
    named = get_named_type(type_)
    while isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    several = isinstance(type_, GraphQLList)
    if isinstance(named, GraphQLEnumType):
        names = list(named.values)
        if len(names) <= _ENUM_NAMES_SHOWN:
            return ("one or more of " if several else "one of ") + ", ".join(names)
        examples = [n for n in names if n not in {"N_A", "OTHER", "NONE"}][:2] or names[:2]
        return (
            f"{'one or more' if several else 'one'} of the {len(names)} {named.name} options, "
            f"such as {' or '.join(examples)} (the catalog query lists them all)"
        )
    if several:
        return f"a list, each item {_expected(type_.of_type)}"
    if isinstance(named, GraphQLInputObjectType):
        return f"an object with the fields of {named.name}"
    if isinstance(named, GraphQLScalarType):
        return _EXPECTED.get(named.name, f"a {named.name}")
    return f"a {named}"  # pragma: no cover - input types are enums, objects or scalars


def _step(type_: Any, key: str | int) -> tuple[Any, str | None, str | None]:
    """Return (the type at *key* inside *type_*, the input object's name, the field's name)."""
    while is_non_null_type(type_):
        type_ = type_.of_type
    if is_list_type(type_):
        return type_.of_type, None, None
    if is_input_object_type(type_) and isinstance(key, str):
        input_field = type_.fields.get(key)
        return (input_field.type if input_field else None), type_.name, key
    return None, None, None


def _locate(
    root: tuple[str, ...], type_: Any, path: list[str | int]
) -> tuple[tuple[str, ...], str, Any, str | None]:
    """Return the field path, its label and its type at *path*, and an unknown field's name."""
    at: Any = type_
    owner = label = None
    names = list(root)
    for key in path:
        parent = at
        at, input_type, name = _step(at, key)
        if isinstance(key, str):
            names.append(key)
            owner, label = input_type, name
        if at is None:  # a field the input type does not have
            return tuple(names), key if isinstance(key, str) else "", parent, str(key)
    label = _labels().get((owner or "", label or ""), label or names[-1])
    return tuple(names), label, at, None


def _problem(
    root: tuple[str, ...],
    type_: Any,
    path: list[str | int],
    value: Any,
    graphql_message: str,
    nodes: tuple[Any, ...],
) -> InputProblem:
    """Describe the bad value at *path* inside a value of *type_* given for *root*."""
    extra = _UNKNOWN_FIELD.search(graphql_message)
    if extra:  # graphql-core reports it at the object; a form wants the field itself
        path = [*path, extra.group(1)]
    names, label, at, unknown = _locate(root, type_, path)
    if unknown is not None:
        kind = get_named_type(at)
        return InputProblem(names, f"{kind.name} has no field {_quote(unknown)}.", nodes)
    if "was not provided" in graphql_message or "to include required" in graphql_message:
        return InputProblem(names, f"{label} is required.", nodes)
    if value is None and is_non_null_type(at):
        return InputProblem(names, f"{label} must not be null.", nodes)
    expected = _expected(at)
    got = "" if value is Undefined else f" (you sent {_quote(value)})"
    return InputProblem(names, f"{label} must be {expected}{got}.", nodes)


def _value_at(value: Any, path: list[str | int]) -> Any:
    for key in path:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return Undefined
    return value


def _lone_surrogates(value: Any, path: list[str | int]) -> Iterator[list[str | int]]:
    if isinstance(value, str):
        if any("\ud800" <= c <= "\udfff" for c in value):
            yield path
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _lone_surrogates(item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _lone_surrogates(item, [*path, index])


# -- where each variable and literal is used ---------------------------------------------


@dataclass(slots=True)
class _Uses:
    """The argument path of each variable, and each argument's literal value with its type."""

    variables: dict[str, tuple[str, ...]] = dataclass_field(default_factory=dict)
    literals: list[tuple[tuple[str, ...], ValueNode, GraphQLInputType]] = dataclass_field(
        default_factory=list
    )


def _walk_value(node: ValueNode, path: tuple[str, ...], uses: _Uses) -> None:
    if isinstance(node, VariableNode):
        uses.variables.setdefault(node.name.value, path)
    elif isinstance(node, ObjectValueNode):
        for object_field in node.fields:
            _walk_value(object_field.value, (*path, object_field.name.value), uses)
    elif isinstance(node, ListValueNode):
        for item in node.values:
            _walk_value(item, path, uses)


def _walk(
    schema: GraphQLSchema,
    document: DocumentNode,
    selections: SelectionSetNode | None,
    parent: GraphQLObjectType | None,
    uses: _Uses,
    seen: set[str],
) -> None:
    if selections is None:
        return
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            graphql_field: GraphQLField | None = (
                parent.fields.get(selection.name.value) if parent else None
            )
            for argument in selection.arguments or ():
                _argument(graphql_field, argument, uses)
            child = get_named_type(graphql_field.type) if graphql_field else None
            _walk(
                schema,
                document,
                selection.selection_set,
                child if isinstance(child, GraphQLObjectType) else None,
                uses,
                seen,
            )
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            scope = schema.get_type(condition.name.value) if condition else parent
            _walk(
                schema,
                document,
                selection.selection_set,
                scope if isinstance(scope, GraphQLObjectType) else None,
                uses,
                seen,
            )
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            seen.add(selection.name.value)
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                scope = schema.get_type(fragment.type_condition.name.value)
                _walk(
                    schema,
                    document,
                    fragment.selection_set,
                    scope if isinstance(scope, GraphQLObjectType) else None,
                    uses,
                    seen,
                )


def _argument(graphql_field: GraphQLField | None, argument: ArgumentNode, uses: _Uses) -> None:
    name = argument.name.value
    _walk_value(argument.value, (name,), uses)
    definition = graphql_field.args.get(name) if graphql_field else None
    if definition is not None:
        uses.literals.append(((name,), argument.value, definition.type))


def _uses(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode
) -> _Uses:
    uses = _Uses()
    root = schema.get_root_type(operation.operation)
    _walk(schema, document, operation.selection_set, root, uses, set())
    return uses


# -- the errors --------------------------------------------------------------------------


def _collect(check: Any, value: Any, type_: Any) -> list[tuple[str, list[str | int]]]:
    """Run graphql-core's *check* of *value* against *type_*; return (message, path) pairs."""
    found: list[tuple[str, list[str | int]]] = []
    check(value, type_, lambda error, path: found.append((error.message, list(path))))
    return found


def variable_problems(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any],
    uses: _Uses | None = None,
) -> list[InputProblem]:
    """Return every bad variable value of *operation*, one problem per bad field."""
    uses = uses or _uses(schema, document, operation)
    problems: list[InputProblem] = []
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        root = uses.variables.get(name, (name,))
        type_ = type_from_ast(schema, definition.type)
        if type_ is None:
            continue
        value = variables.get(name, Undefined)
        nodes = (definition,)
        if value is Undefined:
            if is_non_null_type(type_) and definition.default_value is None:
                problems.append(_problem(root, type_, [], value, "was not provided", nodes))
            continue
        for message, path in _collect(validate_input_value, value, type_):
            problems.append(_problem(root, type_, path, _value_at(value, path), message, nodes))
    return _one_per_field(problems)


def literal_problems(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode
) -> list[InputProblem]:
    """Return every bad literal argument value in *operation*, one problem per bad field."""
    problems: list[InputProblem] = []
    for root, node, type_ in _uses(schema, document, operation).literals:
        for message, path in _collect(validate_input_literal, node, type_):
            problems.append(_problem(root, type_, path, Undefined, message, (node,)))
    return _one_per_field(problems)


def _one_per_field(problems: list[InputProblem]) -> list[InputProblem]:
    kept: dict[tuple[str, ...], InputProblem] = {}
    for problem in problems:
        kept.setdefault(problem.field, problem)
    return list(kept.values())


def _document(query: str) -> DocumentNode | None:
    # Not cached: what reaches here is mostly text that was refused, and a cache of it by
    # query text held 64 parsed 2,500-token documents (~120 MB) for anyone with a token.
    # Only valid documents are cached (schema/documents.py).
    try:
        return parse(query)
    except GraphQLError:
        return None


def describe(
    schema: GraphQLSchema,
    query: str | None,
    variables: Mapping[str, Any] | None,
    operation_name: str | None,
    errors: list[GraphQLError],
) -> list[GraphQLError]:
    """Return *errors* (a request refused before execution) with codes, input errors per field.

    Parse errors get GRAPHQL_PARSE_FAILED; values of the wrong type, whether variables or
    literals, are replaced by one BAD_USER_INPUT error per bad field; any other validation
    error gets GRAPHQL_VALIDATION_FAILED.
    """
    if any(isinstance(e, GraphQLSyntaxError) for e in errors):
        return [_with_code(e, PARSE_FAILED) for e in errors]
    document = _document(query) if query else None
    operation = get_operation_ast(document, operation_name) if document else None
    if document is None or operation is None:
        return [_with_code(e, VALIDATION_FAILED) for e in errors]
    about_inputs = [e for e in errors if _is_input_error(e)]
    problems: list[InputProblem] = []
    if any(e.message.startswith("Variable '$") for e in about_inputs):
        problems += variable_problems(schema, document, operation, variables or {})
    if any(not e.message.startswith("Variable '$") for e in about_inputs):
        problems += literal_problems(schema, document, operation)
    described = [p.as_error() for p in _one_per_field(problems)]
    if not described:  # nothing found again: keep graphql-core's words
        described = [_with_code(e, BAD_USER_INPUT) for e in about_inputs]
    others = [_with_code(e, VALIDATION_FAILED) for e in errors if not _is_input_error(e)]
    return described + others


def surrogate_problems(
    schema: GraphQLSchema,
    query: str | None,
    variables: Mapping[str, Any] | None,
    operation_name: str | None,
) -> list[GraphQLError]:
    """Return a BAD_USER_INPUT error per variable field holding a lone surrogate.

    JSON can spell one ("\\ud800") but it is not a character: Redis and Dataverse refuse
    it, and so does the UTF-8 encoding of an answer that would echo it.
    """
    if not variables or not any(True for _ in _lone_surrogates(variables, [])):
        return []
    document = _document(query) if query else None
    operation = get_operation_ast(document, operation_name) if document else None
    if document is None or operation is None:
        return []
    uses = _uses(schema, document, operation)
    types = {
        d.variable.name.value: type_from_ast(schema, d.type)
        for d in operation.variable_definitions or ()
    }
    problems = []
    for name, *path in _lone_surrogates(variables, []):
        type_ = types.get(str(name))
        if type_ is None:
            continue  # not a variable of this operation: graphql-core ignores it
        names, label, _, _ = _locate(uses.variables.get(str(name), (str(name),)), type_, path)
        problems.append(
            InputProblem(
                names,
                f"{label} contains an invalid character (half of a UTF-16 surrogate pair); "
                "send it as text.",
            )
        )
    return [p.as_error() for p in _one_per_field(problems)]


_INPUT_MESSAGES = (
    "Variable '$",
    "Expected value of type",
    "Expected a value of non-null type",
    "cannot represent",
    "does not exist in",
    "is not defined by type",
    "of required type",
    "Expected value of non-null type",
)


def _is_input_error(error: GraphQLError) -> bool:
    if (error.extensions or {}).get("code") == BAD_USER_INPUT:
        return True  # a scalar of ours refused the value (schema/scalars.py)
    message = error.message
    if message.startswith(("Field '", "Argument '")) and "was not provided" in message:
        return "Argument '" not in message  # a missing argument is a document problem
    return any(marker in message for marker in _INPUT_MESSAGES)


def _with_code(error: GraphQLError, code: str) -> GraphQLError:
    if (error.extensions or {}).get("code"):
        return error
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions={**(error.extensions or {}), "code": code},
    )
