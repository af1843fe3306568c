"""Serve the admin console: index.html at / and its assets under /console/, from memory."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from litestar.status_codes import HTTP_304_NOT_MODIFIED, HTTP_404_NOT_FOUND

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}

# Everything from this origin, nothing from any other: no CDN, no fonts, no inline code.
# connect-src 'self' covers the same-origin websocket of the subscription (CSP level 3).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate every time (a 304 is cheap): a new release is picked up on the next load.
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True, slots=True)
class Asset:
    """A file of the console, loaded once."""

    body: bytes
    media_type: str
    etag: str


def load_assets() -> dict[str, Asset]:
    """Read the console's files from the package (installed or not); name -> asset."""
    assets = {}
    for entry in resources.files("console").joinpath("static").iterdir():
        suffix = entry.name[entry.name.rfind(".") :]
        if entry.is_file() and suffix in _MEDIA_TYPES:
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            assets[entry.name] = Asset(body, _MEDIA_TYPES[suffix], etag)
    return assets


def _answer(request: Request[Any, Any, Any], asset: Asset | None) -> Response[bytes]:
    if asset is None:
        return Response(b"Not found", status_code=HTTP_404_NOT_FOUND, media_type="text/plain")
    headers = {**_HEADERS, "ETag": asset.etag}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(b"", status_code=HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def console_routes() -> list[HTTPRouteHandler]:
    """Return the route handlers of the console: GET / and GET /console/{name}."""
    assets = load_assets()
    page = assets.pop("index.html")

    @get("/", include_in_schema=False, sync_to_thread=False)
    def console_page(request: Request[Any, Any, Any]) -> Response[bytes]:
        return _answer(request, page)

    @get("/console/{name:str}", include_in_schema=False, sync_to_thread=False)
    def console_asset(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
        return _answer(request, assets.get(name))

    return [console_page, console_asset]
