"""ALLOWED_ORIGINS as one policy for both doors a browser uses: HTTP (CORS) and the websocket.

An entry is ``*`` (any origin), an origin (``https://app.example.com``), or an origin whose
port is ``*`` (``http://localhost:*``: any port of that host, what a dev server needs).
Browsers send ``Origin`` lower-cased and without a default port; entries are normalized
the same way, so ``https://App.Example.com:443`` allows ``https://app.example.com``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

ANY_PORT = ":*"
# Origins a page served by `orchestrator dev`'s neighbours (Vite, webpack...) comes from.
DEV_ORIGINS = ("http://localhost:*", "http://127.0.0.1:*")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(origin: str) -> str | None:
    """Return *origin* as a browser sends it (lower case, no default port), or None."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None and port != _DEFAULT_PORTS[parts.scheme.lower()]:
        host = f"{host}:{port}"
    return f"{parts.scheme.lower()}://{host}"


_ENTRY = re.compile(
    r"(?P<base>https?://(?:\[[0-9a-f:.]+\]|[a-z0-9.-]+))(?P<port>:[0-9]{1,5}|:\*)?/?", re.IGNORECASE
)


def normalize_entry(entry: str) -> str:
    """Return an ALLOWED_ORIGINS entry as browsers spell origins; raise ValueError if none."""
    entry = entry.strip()
    if entry == "*":
        return entry
    match = _ENTRY.fullmatch(entry)
    normalized = None
    if match and match["port"] == ANY_PORT:
        normalized = match["base"].lower() + ANY_PORT
    elif match:
        normalized = normalize_origin(match["base"] + (match["port"] or ""))
    if normalized is None:
        raise ValueError(
            f"use '*', origins like https://app.example.com, or http://localhost:* for any "
            f"port: {entry!r}"
        )
    return normalized


@dataclass(frozen=True, slots=True)
class OriginPolicy:
    """Which cross-origin pages may call the API; same-origin pages and non-browsers always may."""

    exact: frozenset[str]
    any_port_hosts: tuple[str, ...] = ()
    allow_all: bool = False

    @classmethod
    def of(cls, entries: Iterable[str]) -> OriginPolicy:
        """Build the policy from ALLOWED_ORIGINS entries."""
        normalized = [normalize_entry(e) for e in entries]
        wildcard = [e.removesuffix(ANY_PORT) for e in normalized if e.endswith(ANY_PORT)]
        return cls(
            exact=frozenset(e for e in normalized if e != "*" and not e.endswith(ANY_PORT)),
            any_port_hosts=tuple(wildcard),
            allow_all="*" in normalized,
        )

    @property
    def is_empty(self) -> bool:
        return not (self.exact or self.any_port_hosts or self.allow_all)

    def any_port_pattern(self) -> str | None:
        """Return a regular expression of the any-port entries' origins, or None."""
        if not self.any_port_hosts:
            return None
        hosts = "|".join(re.escape(h) for h in self.any_port_hosts)
        return f"(?:{hosts})(?::[0-9]{{1,5}})?"

    def allows(self, origin: str) -> bool:
        """Whether a page on *origin* (an Origin header's value) may call the API."""
        if self.allow_all:
            return True
        normalized = normalize_origin(origin)
        if normalized is None:
            return False
        pattern = self.any_port_pattern()
        return normalized in self.exact or (
            pattern is not None and re.fullmatch(pattern, normalized) is not None
        )
