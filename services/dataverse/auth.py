"""Bearer-token authentication for Dataverse: a static token, or Entra ID client credentials."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Generator
from typing import Any

import httpx
import msal

from services.dataverse.errors import DataverseAuthError

# One ConfidentialClientApplication per process and credential: msal caches tokens in the
# app object, and building one costs a network round trip (authority discovery).
_APPS: dict[tuple[str, str, str], Any] = {}
_APPS_LOCK = threading.Lock()


class StaticTokenAuth(httpx.Auth):
    """Send a fixed bearer token (the emulator, or ``DATAVERSE_TOKEN``)."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


def _shared_app(tenant_id: str, client_id: str, client_secret: str) -> Any:
    key = (tenant_id, client_id, client_secret)
    with _APPS_LOCK:
        app = _APPS.get(key)
        if app is None:
            app = msal.ConfidentialClientApplication(
                client_id,
                authority=f"https://login.microsoftonline.com/{tenant_id}",
                client_credential=client_secret,
            )
            _APPS[key] = app
        return app


class MsalClientCredentialsAuth(httpx.Auth):
    """Fetch app tokens with msal (client credentials); on a 401, refresh once and resend.

    msal is synchronous, so every call runs in a worker thread. ``acquire_token_for_client``
    answers from msal's own cache until the token nears expiry (msal >= 1.23).
    """

    requires_request_body = True  # the request may be sent twice

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        resource_url: str,
        *,
        application: Any | None = None,
    ) -> None:
        self._credentials = (tenant_id, client_id, client_secret)
        self._scopes = [f"{resource_url.rstrip('/')}/.default"]
        self._app = application  # tests pass a fake; otherwise built on first use
        self._refresh_lock = asyncio.Lock()

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        # A revoked or rotated token can still sit in msal's cache: drop it, fetch anew,
        # resend once. A second 401 reaches the client, which raises DataverseAuthError.
        token = await self._token(stale=token)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("MsalClientCredentialsAuth works with httpx.AsyncClient only")

    async def _application(self) -> Any:
        if self._app is None:
            self._app = await asyncio.to_thread(_shared_app, *self._credentials)
        return self._app

    async def _token(self, *, stale: str | None = None) -> str:
        try:
            app = await self._application()
            if stale is None:
                result = await asyncio.to_thread(app.acquire_token_for_client, scopes=self._scopes)
            else:
                async with self._refresh_lock:  # concurrent 401s refresh once
                    await asyncio.to_thread(self._forget, app, stale)
                    result = await asyncio.to_thread(
                        app.acquire_token_for_client, scopes=self._scopes
                    )
        except DataverseAuthError:
            raise
        except Exception as exc:  # msal raises requests/ValueError on network or config faults
            raise DataverseAuthError(
                f"Could not get a Dataverse access token from Microsoft Entra ID: {exc}"
            ) from exc
        token = result.get("access_token") if isinstance(result, dict) else None
        if not token:
            error = result.get("error", "no token") if isinstance(result, dict) else "no token"
            description = result.get("error_description", "") if isinstance(result, dict) else ""
            raise DataverseAuthError(
                f"Microsoft Entra ID refused a Dataverse access token: {error}"
                + (f" - {description.splitlines()[0]}" if description else "")
            )
        return str(token)

    def _forget(self, app: Any, stale: str) -> None:
        # force_refresh is not allowed for client credentials; removing the cached token is.
        cache = app.token_cache
        kind = msal.TokenCache.CredentialType.ACCESS_TOKEN
        for item in list(cache.search(kind, target=self._scopes)):
            if item.get("secret") == stale:
                cache.remove_at(item)
