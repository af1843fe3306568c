"""OData URL parsing: resource paths, keys, and the $select, $filter and $top query options."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from . import errors
from .tables import ColumnType, Table, parse_guid

Row = dict[str, Any]
Predicate = Callable[[Row], bool]

_PATH = re.compile(r"(?P<name>[A-Za-z_$][A-Za-z0-9_.]*)(?:\((?P<key>[^)]*)\))?(?:/(?P<rest>.*))?")


@dataclass(frozen=True, slots=True)
class ResourcePath:
    name: str
    key: str | None  # the text between the parentheses, if any
    rest: str  # what follows "name(key)/", "" if nothing


def parse_path(path: str) -> ResourcePath:
    match = _PATH.fullmatch(path)
    if match is None:
        raise errors.segment_not_found(path.split("/", 1)[0])
    return ResourcePath(match["name"], match["key"], match["rest"] or "")


def parse_key(table: Table, key: str) -> str:
    """The GUID in ``set(<guid>)``; alternate keys are not modelled."""
    guid = parse_guid(key.strip())
    if guid is None:
        raise errors.query_error(
            f"Bad Request - Error in query syntax. The key '{key}' of '{table.entity_set}' is "
            "not a GUID (the emulator models no alternate keys)."
        )
    return guid


def parse_query(query: str, allowed: frozenset[str]) -> dict[str, str]:
    """System query options ($...) by name; options not in ``allowed`` are rejected, not ignored."""
    options: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if not name.startswith("$"):
            continue  # custom query options are allowed by OData and ignored
        if name in options:
            raise errors.query_error(
                f"Query option '{name}' was specified more than once, but it must be specified "
                "at most once."
            )
        if name not in allowed:
            raise errors.query_error(
                f"The query option '{name}' is not supported by the Dataverse emulator here "
                f"(supported: {', '.join(sorted(allowed)) or 'none'})."
            )
        options[name] = value
    return options


def parse_select(table: Table, value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [name.strip() for name in value.split(",")]
    readable = set(table.readable())
    for name in names:
        if name not in readable:
            raise errors.property_not_found(table.entity_type, name)
    return list(dict.fromkeys(names))


def parse_top(value: str | None) -> int | None:
    if value is None:
        return None
    if not re.fullmatch(r"\d+", value.strip()):
        raise errors.query_error(
            f"Invalid value '{value}' for $top query option found. The $top query option "
            "requires a non-negative integer value."
        )
    return int(value)


# -- $filter ---------------------------------------------------------------------------------
#
# Supported: <property> eq|ne <literal>, joined by and/or, with parentheses. Literals: 'string'
# (with '' escaping), GUID, integer, decimal, true/false, null, and YYYY-MM-DD dates. Anything
# else is a 400, never silently ignored.

_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<string>'(?:[^']|'')*')"
    r"|(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(?![\w-])"
    r"|(?P<date>\d{4}-\d{2}-\d{2})(?![\w:.-])"
    r"|(?P<number>-?\d+(?:\.\d+)?)(?![\w.])"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<paren>[()])"
    r")"
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise _unsupported(text)
        kind = match.lastgroup
        assert kind is not None
        tokens.append(_Token(kind, match[kind]))
        position = match.end()
    return tokens


def _unsupported(text: str) -> errors.DataverseError:
    return errors.query_error(
        f"The $filter '{text}' is not supported by the Dataverse emulator: it supports "
        "'<property> eq|ne <literal>' joined by 'and'/'or', with parentheses."
    )


def _normalize(text: str) -> str:
    """Dataverse compares strings with a case- and accent-insensitive SQL collation
    (Latin1_General_CI_AI) that also ignores trailing spaces."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).rstrip(" ")


class _FilterParser:
    def __init__(self, table: Table, text: str) -> None:
        self.table = table
        self.text = text
        self.tokens = _tokenize(text)
        self.position = 0

    def parse(self) -> Predicate:
        if not self.tokens:
            raise _unsupported(self.text)
        predicate = self._or()
        if self.position != len(self.tokens):
            raise _unsupported(self.text)
        return predicate

    def _peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _next(self) -> _Token:
        token = self._peek()
        if token is None:
            raise _unsupported(self.text)
        self.position += 1
        return token

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token.kind == "name" and token.text == word:
            self.position += 1
            return True
        return False

    def _or(self) -> Predicate:
        terms = [self._and()]
        while self._keyword("or"):
            terms.append(self._and())
        return terms[0] if len(terms) == 1 else lambda row: any(term(row) for term in terms)

    def _and(self) -> Predicate:
        terms = [self._primary()]
        while self._keyword("and"):
            terms.append(self._primary())
        return terms[0] if len(terms) == 1 else lambda row: all(term(row) for term in terms)

    def _primary(self) -> Predicate:
        token = self._next()
        if token.kind == "paren" and token.text == "(":
            inner = self._or()
            closing = self._next()
            if closing.text != ")":
                raise _unsupported(self.text)
            return inner
        if token.kind != "name" or token.text in ("and", "or", "not"):
            raise _unsupported(self.text)
        operator = self._next()
        if operator.kind != "name" or operator.text not in ("eq", "ne"):
            raise _unsupported(self.text)
        return self._comparison(token.text, operator.text, self._next())

    def _comparison(self, name: str, operator: str, literal: _Token) -> Predicate:
        kind = self.table.column_type(name)
        if kind is None:
            raise errors.property_not_found(self.table.entity_type, name)
        expected = self._literal(name, kind, literal)
        normal = _comparable(kind)

        def equal(row: Row) -> bool:
            stored = row.get(name)
            if expected is None or stored is None:
                return expected is None and stored is None
            return normal(stored) == expected

        if operator == "eq":
            return equal
        return lambda row: not equal(row)

    def _literal(self, name: str, kind: ColumnType, token: _Token) -> Any:
        if token.kind == "name" and token.text == "null":
            return None
        literal_type = {
            "string": "Edm.String",
            "guid": "Edm.Guid",
            "date": "Edm.Date",
            "number": "Edm.Decimal" if "." in token.text else "Edm.Int32",
        }.get(token.kind)
        if token.kind == "name" and token.text in ("true", "false"):
            literal_type = "Edm.Boolean"
        if literal_type is None:
            raise _unsupported(self.text)
        compatible = {
            ColumnType.GUID: {"Edm.Guid"},
            ColumnType.STRING: {"Edm.String"},
            ColumnType.MULTISELECT: {"Edm.String"},
            ColumnType.PICKLIST: {"Edm.Int32"},
            ColumnType.INTEGER: {"Edm.Int32"},
            ColumnType.MONEY: {"Edm.Int32", "Edm.Decimal"},
            ColumnType.DECIMAL: {"Edm.Int32", "Edm.Decimal"},
            ColumnType.DATEONLY: {"Edm.Date"},
            ColumnType.BOOLEAN: {"Edm.Boolean"},
        }.get(kind, set())
        if literal_type not in compatible:
            raise errors.query_error(
                "A binary operator with incompatible types was detected. Found operand types "
                f"'{kind.edm}' and '{literal_type}' for operator kind 'Equal'."
            )
        text = token.text
        if token.kind == "string":
            return _normalize(text[1:-1].replace("''", "'"))
        if token.kind == "guid":
            return text.lower()
        if literal_type == "Edm.Boolean":
            return text == "true"
        if token.kind == "number":
            try:
                return (
                    Decimal(text) if kind in (ColumnType.MONEY, ColumnType.DECIMAL) else int(text)
                )
            except (InvalidOperation, ValueError) as exc:
                raise _unsupported(self.text) from exc
        return text


def _comparable(kind: ColumnType) -> Callable[[Any], Any]:
    if kind in (ColumnType.STRING, ColumnType.MULTISELECT):
        return _normalize
    if kind in (ColumnType.MONEY, ColumnType.DECIMAL):
        return Decimal
    if kind is ColumnType.BOOLEAN:
        return bool
    if kind is ColumnType.GUID:
        return str.lower
    return lambda value: value


def parse_filter(table: Table, value: str | None) -> Predicate | None:
    if value is None:
        return None
    return _FilterParser(table, value).parse()
