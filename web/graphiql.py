"""GraphiQL served offline: the page and every script and style come from this service.

The vendor files (GraphiQL, React, ReactDOM) are the npm packages pinned in
``web/ide/package.json`` and its lock, installed into ``web/ide/node_modules`` at install
time (``npm ci --prefix web/ide``, which the Makefile runs). Nothing is fetched from a CDN
when the page loads, so it works offline and under the page's own strict
Content-Security-Policy: scripts only from this origin, none inline. Asset URLs carry
GraphiQL's version, so browsers may cache them for good.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from string import Template

from litestar import Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

IDE_DIR = Path(__file__).parent / "ide"
NODE_MODULES = IDE_DIR / "node_modules"
ASSETS_PATH = "/graphiql"

# Served name -> file. Only these are served: node_modules itself is not exposed.
_FILES = {
    "graphiql.min.js": NODE_MODULES / "graphiql" / "graphiql.min.js",
    "graphiql.min.css": NODE_MODULES / "graphiql" / "graphiql.min.css",
    "react.production.min.js": NODE_MODULES / "react" / "umd" / "react.production.min.js",
    "react-dom.production.min.js": (
        NODE_MODULES / "react-dom" / "umd" / "react-dom.production.min.js"
    ),
    "graphiql-init.js": IDE_DIR / "graphiql-init.js",
    "graphiql-page.css": IDE_DIR / "graphiql-page.css",
}
_MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

# Styles may be inline: GraphiQL's dialogs and CodeMirror inject <style> elements.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
NOT_INSTALLED = (
    "<!doctype html><title>GraphiQL is not installed</title>"
    "<p>GraphiQL's files are not installed. Run <code>make dev</code>, or "
    "<code>npm ci --prefix web/ide</code> in the project, then reload.</p>"
)


@cache
def graphiql_version() -> str | None:
    """Return the installed GraphiQL's version, or None when its files are missing."""
    if not all(path.is_file() for path in _FILES.values()):
        return None
    manifest = json.loads((NODE_MODULES / "graphiql" / "package.json").read_text("utf-8"))
    return str(manifest["version"])


def page(endpoint: str) -> Response[str]:
    """Return the GraphiQL page for the API at *endpoint* (a path such as /graphql)."""
    version = graphiql_version()
    if version is None:
        return Response(NOT_INSTALLED, status_code=503, media_type="text/html")
    template = Template((IDE_DIR / "graphiql.html").read_text("utf-8"))
    html = template.substitute(assets=f"{ASSETS_PATH}/{version}", endpoint=endpoint)
    return Response(
        html,
        media_type="text/html",
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"},
    )


@cache
def _read(name: str) -> bytes:
    return _FILES[name].read_bytes()


@get(f"{ASSETS_PATH}/{{version:str}}/{{name:str}}", include_in_schema=False, sync_to_thread=False)
def graphiql_asset(version: FromPath[str], name: FromPath[str]) -> Response[bytes]:
    """Serve one of GraphiQL's files; the version in the path makes it cacheable forever."""
    if version != graphiql_version() or name not in _FILES:
        raise NotFoundException(f"No GraphiQL file {version}/{name}.")
    return Response(
        _read(name),
        media_type=_MEDIA_TYPES[Path(name).suffix],
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )
