"""Building $batch bodies and reading batch responses, the way a client would (CRLF, boundaries)."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from emulator import DEFAULT_ORGANIZATIONS

ORG_ID = DEFAULT_ORGANIZATIONS[0][0]
ORG_BIND = f"/osot_table_organizations({ORG_ID})"


def product(**values: Any) -> dict[str, Any]:
    """A product body a real client could send."""
    body: dict[str, Any] = {
        "osot_product_name": "Annual Conference",
        "osot_product_code": "CONF-2026",
        "osot_product_description": "The annual conference of the society.",
        "osot_product_category": 0,
        "osot_product_status": 1,
        "osot_product_gl_code": 2,
        "osot_user_type": 1,
        "osot_taxes": 13,
        "osot_product_year": "2026",
        "osot_Table_Organization@odata.bind": ORG_BIND,
    }
    body.update(values)
    return body


@dataclass
class Op:
    method: str
    url: str
    body: dict[str, Any] | None = None
    content_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _part(op: Op, boundary: str) -> str:
    lines = [f"--{boundary}", "Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if op.content_id:
        lines.append(f"Content-ID: {op.content_id}")
    lines += ["", f"{op.method} {op.url} HTTP/1.1"]
    if op.body is not None:
        lines.append("Content-Type: application/json; type=entry")
    lines += [f"{name}: {value}" for name, value in op.headers.items()]
    lines.append("")
    if op.body is not None:
        lines.append(json.dumps(op.body))
    return "\r\n".join(lines) + "\r\n"


def batch_body(*items: Op | list[Op]) -> tuple[str, str]:
    """(content type, body); a list of Ops is one change set."""
    batch = f"batch_{uuid.uuid4()}"
    out = ""
    for item in items:
        if isinstance(item, Op):
            out += _part(item, batch)
        else:
            changeset = f"changeset_{uuid.uuid4()}"
            out += f'--{batch}\r\nContent-Type: multipart/mixed; boundary="{changeset}"\r\n\r\n'
            out += "".join(_part(op, changeset) for op in item)
            out += f"--{changeset}--\r\n\r\n"
    out += f"--{batch}--\r\n"
    return f'multipart/mixed; boundary="{batch}"', out


async def send_batch(dv: httpx.AsyncClient, *items: Op | list[Op]) -> httpx.Response:
    content_type, body = batch_body(*items)
    return await dv.post("$batch", content=body.encode(), headers={"Content-Type": content_type})


@dataclass
class PartResponse:
    status: int
    headers: dict[str, str]
    body: str
    content_id: str | None
    in_changeset: bool

    def json(self) -> Any:
        return json.loads(self.body)


def _boundary(content_type: str) -> str:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    assert match, content_type
    return match[1]


def _split(body: str, boundary: str) -> list[tuple[dict[str, str], str]]:
    pieces = ("\r\n" + body).split(f"\r\n--{boundary}")
    assert pieces[-1].startswith("--"), "missing close delimiter"
    parts = []
    for piece in pieces[1:-1]:
        assert piece.startswith("\r\n")
        head, _, content = piece[2:].partition("\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.split("\r\n"))
        parts.append((headers, content))
    return parts


def parse_batch_response(response: httpx.Response) -> list[PartResponse]:
    """Flatten a multipart batch response into its application/http responses."""
    results = []
    for headers, content in _split(response.text, _boundary(response.headers["content-type"])):
        if headers["Content-Type"].startswith("multipart/mixed"):
            for inner_headers, inner in _split(content, _boundary(headers["Content-Type"])):
                results.append(_http(inner_headers, inner, in_changeset=True))
        else:
            results.append(_http(headers, content, in_changeset=False))
    return results


def _http(part_headers: dict[str, str], message: str, *, in_changeset: bool) -> PartResponse:
    assert part_headers["Content-Type"] == "application/http"
    assert part_headers["Content-Transfer-Encoding"] == "binary"
    head, _, body = message.partition("\r\n\r\n")
    status_line, *header_lines = head.split("\r\n")
    version, status, _ = status_line.split(" ", 2)
    assert version == "HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in header_lines)
    return PartResponse(int(status), headers, body, part_headers.get("Content-ID"), in_changeset)
