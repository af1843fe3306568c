"""Query documents: limits whose cost is linear in the document, and a cache of valid ones.

Strawberry's depth and alias limiters walk fragment spreads without memoization: a document
whose fragments each spread the previous one twice costs 2^n (20 levels took 4.5 s, 29 ran
for minutes), and graphql-core's OverlappingFieldsCanBeMerged rule compares every pair of
fields with the same response name (250 copies of one field took 0.6 s). ``document_limits``
measures depth, aliases, fields (counted as execution would expand fragments) and repeated
response names once per fragment and once per selection set, and refuses what is over a
bound before any validation rule runs.

``DocumentCache`` keeps parsed documents that passed the limits and validation, keyed by
their text, in least-recently-used order and bounded by an estimate of their memory, not by
a count: 256 entries of ~2 MB each would be half a gigabyte. A text over ``MAX_QUERY_BYTES``
never gets in (comments do not count as tokens, so size is bounded separately).
``ValidDocuments`` is the schema extension that uses it on Strawberry's own path (GET,
websockets, and what graphql_http.py hands back); graphql_http.py uses the same cache.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import SchemaExtension

from schema import internals
from services.models import Privilege

MAX_QUERY_BYTES = 32 * 1024  # a real operation is 1-3 KB; introspection 1.5 KB
MAX_TOKENS = 4000
MAX_DEPTH = 10
MAX_ALIASES = 15
MAX_FIELDS = 500  # fields as executed, fragments expanded; GraphiQL's introspection has ~230
MAX_REPEATS = 10  # the same response name at one level (fragments may repeat a field or two)
CACHE_BYTES = 16 * 1024 * 1024
# A parsed document keeps every token (~600 bytes each with its nodes, measured): the
# estimate is per token, plus the text that keys it.
_BYTES_PER_TOKEN = 600
# Nesting beyond this is refused outright (the depth limit ignores introspection fields).
_MAX_NESTING = 64

INTROSPECTION_DISABLED = (
    "GraphQL introspection is not allowed for this caller: it needs an admin token, and "
    "the service's INTROSPECTION setting on."
)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one document."""

    max_depth: int = MAX_DEPTH
    max_aliases: int = MAX_ALIASES
    max_fields: int = MAX_FIELDS
    max_repeats: int = MAX_REPEATS


@dataclass(slots=True)
class _Shape:
    """What one selection set (or fragment) amounts to once its fragments are expanded."""

    depth: int = 0
    fields: int = 0
    aliases: int = 0
    introspects: bool = False
    # Response names at this level (inline fragments and spreads flattened into it).
    names: dict[str, int] = field(default_factory=dict)


class _TooNestedError(Exception):
    pass


class _Measure:
    """One pass over a document: each selection set once, each fragment once (memoized)."""

    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self._memo: dict[str, _Shape] = {}
        self._open: set[str] = set()
        self.cycle: str | None = None
        self.max_repeat = ("", 0)

    def fragment(self, name: str, nesting: int) -> _Shape:
        shape = self._memo.get(name)
        if shape is not None:
            return shape
        definition = self.fragments.get(name)
        if definition is None or name in self._open:
            if definition is not None:
                self.cycle = self.cycle or name
            return _Shape()  # unknown fragments and cycles are validation's to report
        self._open.add(name)
        shape = self.selection_set(definition.selection_set, nesting)
        self._open.discard(name)
        self._memo[name] = shape
        return shape

    def selection_set(self, selections: SelectionSetNode, nesting: int) -> _Shape:
        if nesting > _MAX_NESTING:
            raise _TooNestedError
        shape = _Shape()
        names = shape.names
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                shape.fields += 1
                shape.aliases += selection.alias is not None
                key = (selection.alias or selection.name).value
                names[key] = names.get(key, 0) + 1
                introspection = name in ("__schema", "__type")
                shape.introspects |= introspection
                if selection.selection_set is not None:
                    inner = self.selection_set(selection.selection_set, nesting + 1)
                    shape.fields += inner.fields
                    shape.aliases += inner.aliases
                    shape.introspects |= inner.introspects
                    # As Strawberry's limiter: introspection fields add no depth.
                    if not name.startswith("__"):
                        shape.depth = max(shape.depth, 1 + inner.depth)
                continue
            if isinstance(selection, InlineFragmentNode):
                inner = self.selection_set(selection.selection_set, nesting + 1)
            else:
                assert isinstance(selection, FragmentSpreadNode)
                inner = self.fragment(selection.name.value, nesting + 1)
            shape.depth = max(shape.depth, inner.depth)
            shape.fields += inner.fields
            shape.aliases += inner.aliases
            shape.introspects |= inner.introspects
            for key, count in inner.names.items():
                names[key] = names.get(key, 0) + count
        for key, count in names.items():
            if count > self.max_repeat[1]:
                self.max_repeat = (key, count)
        return shape


@dataclass(frozen=True, slots=True)
class Measured:
    """A document's size as executed, and whether it asks for the schema."""

    errors: list[GraphQLError]
    introspects: bool


def document_limits(document: DocumentNode, limits: Limits = Limits()) -> Measured:
    """Measure *document* in one linear pass; list what is over *limits*."""
    measure = _Measure(document)
    try:
        operations = [
            (d, measure.selection_set(d.selection_set, 0))
            for d in document.definitions
            if isinstance(d, OperationDefinitionNode)
        ]
        for name in measure.fragments:  # unused fragments are measured too
            measure.fragment(name, 0)
    except _TooNestedError:
        message = f"The document is nested more than {_MAX_NESTING} levels deep."
        return Measured([GraphQLError(message)], introspects=False)
    errors = []
    if measure.cycle is not None:
        errors.append(GraphQLError(f"Cannot spread fragment '{measure.cycle}' within itself."))
    aliases = sum(shape.aliases for _, shape in operations)
    fields = sum(shape.fields for _, shape in operations)
    for definition, shape in operations:
        if shape.depth > limits.max_depth:
            name = definition.name.value if definition.name else "anonymous"
            errors.append(
                GraphQLError(
                    f"'{name}' exceeds maximum operation depth of {limits.max_depth}",
                    [definition],
                )
            )
    if aliases > limits.max_aliases:
        errors.append(GraphQLError(f"{aliases} aliases found. Allowed: {limits.max_aliases}"))
    if fields > limits.max_fields:
        errors.append(
            GraphQLError(
                f"{fields} fields found (fragments expanded). Allowed: {limits.max_fields}"
            )
        )
    name, repeats = measure.max_repeat
    if repeats > limits.max_repeats:
        errors.append(
            GraphQLError(
                f"'{name}' is selected {repeats} times at one level. Allowed: {limits.max_repeats}"
            )
        )
    introspects = any(shape.introspects for _, shape in operations)
    return Measured(errors, introspects)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A valid document, as cached."""

    document: DocumentNode
    introspects: bool
    size: int


def _token_count(document: DocumentNode) -> int:
    count = 0
    token = document.loc.start_token if document.loc is not None else None
    while token is not None:
        count += 1
        token = token.next
    return count


class DocumentCache:
    """Valid documents by query text: least recently used first out, bounded in bytes."""

    def __init__(self, max_bytes: int = CACHE_BYTES, max_query_bytes: int = MAX_QUERY_BYTES):
        self.max_bytes = max_bytes
        self.max_query_bytes = max_query_bytes
        # Used from the event loop's thread only, so no lock.
        self._entries: OrderedDict[str, Prepared] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, query: str) -> Prepared | None:
        """Return the cached document of *query*, marking it recently used."""
        entry = self._entries.get(query)
        if entry is not None:
            self._entries.move_to_end(query)
        return entry

    def put(self, query: str, document: DocumentNode, *, introspects: bool) -> Prepared:
        """Keep a valid document (unless its text is over the size limit); return its entry."""
        size = len(query) + _BYTES_PER_TOKEN * _token_count(document)
        entry = Prepared(document, introspects, size)
        if len(query) > self.max_query_bytes or size > self.max_bytes:
            return entry
        previous = self._entries.pop(query, None)
        if previous is not None:
            self.bytes -= previous.size
        self._entries[query] = entry
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= evicted.size
        return entry

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0


Validator = Callable[[DocumentNode], list[GraphQLError]]


def query_too_large(query: str, max_bytes: int = MAX_QUERY_BYTES) -> GraphQLError | None:
    """Return the error for a query text over the size limit, if it is."""
    if len(query) * 4 <= max_bytes:
        return None  # fits even if every character takes 4 bytes
    size = len(query.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        return GraphQLError(f"The query is {size} bytes long; at most {max_bytes} are accepted.")
    return None


def check(
    query: str,
    document: DocumentNode,
    cache: DocumentCache,
    validate: Validator,
    limits: Limits = Limits(),
) -> tuple[Prepared | None, list[GraphQLError]]:
    """Limits, then validation, for a parsed *document*; cache it if it passes."""
    too_large = query_too_large(query, cache.max_query_bytes)
    if too_large is not None:
        return None, [too_large]
    measured = document_limits(document, limits)
    if measured.errors:
        return None, measured.errors
    errors = validate(document)
    if errors:
        return None, errors
    return cache.put(query, document, introspects=measured.introspects), []


def may_introspect(context: Any) -> bool:
    """Whether the caller behind *context* may read the schema (admins, if allowed)."""
    principal = getattr(context, "principal", None)
    return bool(
        getattr(context, "introspection", False)
        and principal is not None
        and principal.privilege is Privilege.ADMIN
    )


class ValidDocuments(SchemaExtension):
    """Parse and validate through the document cache; refuse introspection to non-admins.

    Replaces Strawberry's ParserCache and ValidationCache, which keep every text they see,
    valid or not. Pass it as a factory (``lambda: ValidDocuments(cache)``).
    """

    def __init__(self, cache: DocumentCache, limits: Limits = Limits()) -> None:
        super().__init__()
        self.cache = cache
        self.limits = limits
        self._entry: Prepared | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and context.graphql_document is None:
            self._entry = self.cache.get(context.query)
            if self._entry is not None:
                context.graphql_document = self._entry.document
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        entry, errors = self._entry, list[GraphQLError]()
        if entry is None and context.graphql_document is not None:
            rules = tuple(context.validation_rules)
            entry, errors = check(
                context.query or "",
                context.graphql_document,
                self.cache,
                lambda document: internals.validate(context.schema, document, rules),
                self.limits,
            )
        if entry is not None and entry.introspects and not may_introspect(context.context):
            errors = [GraphQLError(INTROSPECTION_DISABLED)]
        context.pre_execution_errors = errors
        yield
