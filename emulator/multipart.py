"""multipart/mixed and application/http (RFC 2046, OData batch format): parse, build; CRLF."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from http import HTTPStatus

CRLF = b"\r\n"
_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^;,\s]+))', re.IGNORECASE)


class MultipartError(ValueError):
    """The body is not well-formed multipart/mixed or application/http."""


@dataclass(slots=True)
class Part:
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass(slots=True)
class HttpRequestMessage:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""


def boundary_of(content_type: str) -> str | None:
    """The boundary of a ``multipart/mixed`` content type, or None for any other type."""
    if content_type.split(";")[0].strip().lower() != "multipart/mixed":
        return None
    match = _BOUNDARY.search(content_type)
    return (match[1] or match[2]) if match else None


def _headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.split(CRLF):
        name, sep, value = line.decode("utf-8").partition(":")
        if not sep or not name.strip():
            raise MultipartError(f"Malformed header line: {line[:100]!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


def _split_head(raw: bytes) -> tuple[dict[str, str], bytes]:
    if raw.startswith(CRLF):
        return {}, raw[2:]
    head, sep, body = raw.partition(CRLF + CRLF)
    if not sep:
        head, body = raw.rstrip(CRLF), b""
    return _headers(head), body


def split(body: bytes, boundary: str) -> list[Part]:
    """The body parts between ``--boundary`` delimiters; the CRLF before a delimiter belongs to it.

    Dataverse requires CRLF line endings in $batch bodies (a body with bare LF fails with a
    400), so a delimiter not preceded by CRLF is not recognised here either.
    https://learn.microsoft.com/troubleshoot/power-platform/power-apps/dataverse/web-api-client-errors
    """
    delimiter = CRLF + b"--" + boundary.encode("latin-1")
    pieces = (CRLF + body).split(delimiter)
    if len(pieces) < 2:
        raise MultipartError(f"No '--{boundary}' delimiter (with CRLF line endings) was found.")
    parts: list[Part] = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            return parts
        line, sep, rest = piece.partition(CRLF)
        if not sep or line.strip(b" \t"):
            raise MultipartError(f"Malformed delimiter line after '--{boundary}'.")
        parts.append(Part(*_split_head(rest)))
    raise MultipartError(f"The closing delimiter '--{boundary}--' is missing.")


def parse_request(data: bytes) -> HttpRequestMessage:
    """An application/http request: request line, headers, blank line, body."""
    line, _, rest = data.partition(CRLF)
    words = line.decode("utf-8").split(" ")
    if len(words) != 3 or not words[2].startswith("HTTP/1."):
        raise MultipartError(f"Malformed request line: {line[:200]!r}")
    headers: dict[str, str]
    if rest.startswith(CRLF) or not rest:
        headers, body = {}, rest[2:]
    else:
        headers, body = _split_head(rest)
    return HttpRequestMessage(words[0].upper(), words[1], headers, body)


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def format_response(status: int, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """An application/http response message, as in the Dataverse batch response examples."""
    lines = [f"HTTP/1.1 {status} {reason_phrase(status)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def build(parts: list[tuple[list[tuple[str, str]], bytes]], boundary: str) -> bytes:
    """A multipart body ending with the close delimiter (no trailing CRLF)."""
    out = bytearray()
    for headers, body in parts:
        out += f"--{boundary}\r\n".encode()
        for name, value in headers:
            out += f"{name}: {value}\r\n".encode()
        out += CRLF + body + CRLF
    out += f"--{boundary}--".encode()
    return bytes(out)
