"""CORS for HTTP, from the same ALLOWED_ORIGINS policy the websocket handshake applies."""

from __future__ import annotations

from litestar.config.cors import CORSConfig

from web.origins import OriginPolicy

# How long a browser may cache a preflight answer (Chromium caps it at 2 hours).
PREFLIGHT_MAX_AGE_SECONDS = 600


def cors_config(policy: OriginPolicy) -> CORSConfig | None:
    """Return Litestar's CORS configuration, or None when no other origin is allowed."""
    if policy.is_empty:
        return None
    return CORSConfig(
        # Only "*" itself answers "*": a listed origin is echoed back, never widened.
        allow_origins=["*"] if policy.allow_all else sorted(policy.exact),
        allow_origin_regex=None if policy.allow_all else policy.any_port_pattern(),
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
        # Bearer tokens, not cookies: a page never needs to send the browser's credentials.
        allow_credentials=False,
        max_age=PREFLIGHT_MAX_AGE_SECONDS,
    )
