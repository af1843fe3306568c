"""JSON in and out as OData does it: exact decimals as numbers, no duplicate property names."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


class JsonBodyError(ValueError):
    """The body is not the JSON the Web API accepts."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise JsonBodyError(f"Duplicate property names are not allowed: '{key}'.")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise JsonBodyError(f"'{name}' is not a valid JSON number.")


def loads(data: bytes) -> Any:
    """Parse JSON, keeping non-integers as exact ``Decimal`` (money must not pass through float)."""
    try:
        return json.loads(
            data.decode("utf-8"),
            parse_float=Decimal,
            parse_constant=_no_constants,
            object_pairs_hook=_no_duplicates,
        )
    except JsonBodyError:
        raise
    except (UnicodeDecodeError, ValueError) as exc:
        raise JsonBodyError(f"The body is not valid JSON: {exc}") from exc


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, Decimal):
        # A JSON number with the exact digits (json.dumps cannot write a Decimal as a number).
        out.append(format(value, "f"))
    elif isinstance(value, float):
        out.append(json.dumps(value))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, dict):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                out.append(",")
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"Cannot encode {type(value).__name__} as JSON")


def dumps(value: Any) -> bytes:
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode("utf-8")
