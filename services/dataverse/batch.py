"""The OData ``$batch`` wire format: build one atomic change set, parse the multipart answer.

Format from https://learn.microsoft.com/power-apps/developer/data-platform/webapi/execute-batch-operations-using-web-api
(OData 4.0 part 1 §11.7). Lines end in CRLF, as in Microsoft's own Python SDK.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from email.message import Message
from typing import Any

CRLF = "\r\n"
_STATUS_LINE = re.compile(r"HTTP/\d(?:\.\d)?\s+(\d{3})\s*(.*)")
_LINE_BREAK = re.compile(r"\r?\n")


class BatchFormatError(ValueError):
    """A ``$batch`` response that is not the multipart document Dataverse documents."""


@dataclass(frozen=True, slots=True)
class BatchOperation:
    """One request of a change set: ``POST <entity_set>`` with a JSON body."""

    entity_set: str
    body: Mapping[str, Any]
    method: str = "POST"


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """A ready ``$batch`` body and the Content-Type header that names its boundary."""

    content_type: str
    body: bytes
    boundary: str
    changeset_boundary: str


@dataclass(frozen=True, slots=True)
class BatchPart:
    """One response inside a ``$batch`` answer (change-set responses are flattened)."""

    status: int
    reason: str
    headers: Mapping[str, str]  # lower-cased names
    content_id: str | None
    text: str
    body: Any  # the JSON body, or None when the body is empty or not JSON

    @property
    def ok(self) -> bool:
        return self.status < 400


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        as_float = float(value)
        # Only send a Decimal as a number if the float says exactly the same amount.
        if Decimal(repr(as_float)) == value:
            return as_float
        raise ValueError(f"{value} cannot be written as an exact JSON number")
    raise TypeError(f"Cannot encode {type(value).__name__} as JSON")


def dumps(body: Mapping[str, Any]) -> str:
    """Encode a request body as JSON (Decimals as exact numbers)."""
    return json.dumps(body, default=_json_default, separators=(",", ":"), allow_nan=False)


def build_changeset(
    operations: Sequence[BatchOperation], *, api_path: str = "/api/data/v9.2/"
) -> BatchRequest:
    """Return a ``$batch`` holding one change set; part *n* gets ``Content-ID: n``.

    A change set is atomic: if any part fails, Dataverse rolls back the others.
    """
    batch = f"batch_{uuid.uuid4()}"
    changeset = f"changeset_{uuid.uuid4()}"
    lines = [f"--{batch}", f'Content-Type: multipart/mixed; boundary="{changeset}"', ""]
    for content_id, operation in enumerate(operations, start=1):
        lines += [
            f"--{changeset}",
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            f"Content-ID: {content_id}",
            "",
            f"{operation.method} {api_path}{operation.entity_set} HTTP/1.1",
            "Content-Type: application/json; type=entry",
            "",
            dumps(operation.body),
        ]
    lines += [f"--{changeset}--", "", f"--{batch}--", ""]
    return BatchRequest(
        content_type=f'multipart/mixed; boundary="{batch}"',
        body=CRLF.join(lines).encode("utf-8"),
        boundary=batch,
        changeset_boundary=changeset,
    )


def boundary_of(content_type: str | None) -> str | None:
    """Return the boundary of a ``multipart/*`` Content-Type, else None."""
    if not content_type:
        return None
    message = Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "multipart":
        return None
    boundary = message.get_param("boundary")
    return boundary if isinstance(boundary, str) and boundary else None


def parse_batch_response(content_type: str | None, body: bytes) -> list[BatchPart]:
    """Return every response of a ``$batch`` answer in order, change sets flattened."""
    boundary = boundary_of(content_type)
    if boundary is None:
        raise BatchFormatError(f"expected a multipart/mixed $batch response, got {content_type!r}")
    return _parse_multipart(body.decode("utf-8", errors="replace"), boundary)


def first_failure(parts: Sequence[BatchPart]) -> BatchPart | None:
    """Return the first part whose status is 4xx or 5xx."""
    return next((part for part in parts if not part.ok), None)


def _parse_multipart(text: str, boundary: str) -> list[BatchPart]:
    results: list[BatchPart] = []
    for chunk in _split(text, boundary):
        headers, content = _split_head(chunk)
        nested = boundary_of(headers.get("content-type"))
        if nested is not None:  # a changesetresponse
            results += _parse_multipart(content, nested)
        else:
            results.append(_parse_http(content, headers.get("content-id")))
    return results


def _split(text: str, boundary: str) -> list[str]:
    delimiter, close = f"--{boundary}", f"--{boundary}--"
    chunks: list[str] = []
    current: list[str] | None = None
    closed = False
    for line in _LINE_BREAK.split(text):
        marker = line.rstrip()
        if marker in (delimiter, close):
            if current is not None:
                chunks.append(CRLF.join(current))
            current = None if marker == close else []
            closed = marker == close
            if closed:
                break
        elif current is not None:
            current.append(line)
    if not closed:
        raise BatchFormatError(f"the multipart body never closes boundary {boundary!r}")
    return chunks


def _split_head(chunk: str) -> tuple[dict[str, str], str]:
    lines = _LINE_BREAK.split(chunk)
    headers: dict[str, str] = {}
    index = 0
    while index < len(lines) and lines[index].strip():
        name, sep, value = lines[index].partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
        index += 1
    return headers, CRLF.join(lines[index + 1 :])


def _parse_http(message: str, content_id: str | None) -> BatchPart:
    lines = _LINE_BREAK.split(message.lstrip("\r\n"))
    match = _STATUS_LINE.fullmatch(lines[0].strip()) if lines else None
    if match is None:
        raise BatchFormatError(f"expected an HTTP status line, got {lines[0][:80]!r}")
    headers, text = _split_head(CRLF.join(lines[1:]))
    text = text.strip()
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    return BatchPart(
        status=int(match.group(1)),
        reason=match.group(2).strip(),
        headers=headers,
        content_id=content_id or headers.get("content-id"),
        text=text,
        body=body,
    )
