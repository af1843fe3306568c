"""DataverseClient: the product orchestrator's calls to the Dataverse Web API."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from tenacity import AsyncRetrying

from services.dataverse.batch import (
    BatchFormatError,
    BatchOperation,
    BatchPart,
    boundary_of,
    build_changeset,
    first_failure,
    parse_batch_response,
)
from services.dataverse.errors import (
    OBJECT_DOES_NOT_EXIST,
    DataverseUnavailableError,
    error_from_response,
    parse_error_body,
)
from services.dataverse.mapping import PRODUCTS, TARGETS, canonical_guid
from services.dataverse.records import ProductRecord, ProductRef, TargetRecord
from services.dataverse.retry import retry_policy
from telemetry import metrics

API_PATH = "/api/data/v9.2/"
T = TypeVar("T")

# Failures before the request left this process: it cannot have been applied.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
_PRODUCT_SELECT = (
    "osot_table_productid,osot_productid,osot_product_code,_osot_table_organization_value"
)
_TARGET_SELECT = "osot_table_audience_targetid,osot_target,_osot_table_product_value"
_PART_ACTIONS = {"1": "create the product", "2": "create the audience target"}


def build_http_client(
    base_url: str,
    auth: httpx.Auth,
    timeout: float = 15,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """Return the one AsyncClient a process uses for Dataverse at *base_url* (the org URL)."""
    return httpx.AsyncClient(
        base_url=f"{base_url.rstrip('/')}{API_PATH}",
        auth=auth,
        headers={
            "OData-MaxVersion": "4.0",
            "OData-Version": "4.0",
            "Accept": "application/json",
        },
        # The old client had no timeout at all, so one hung call hung the commit (D37).
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        # Dataverse enforces 52 concurrent requests per user; stay well below. Keep every
        # connection alive: a smaller keep-alive pool closes and reopens connections (TCP
        # and TLS handshakes) on every burst above it.
        # https://learn.microsoft.com/power-apps/developer/data-platform/api-limits
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=20),
        transport=transport,
    )


def _malformed(action: str, what: str) -> DataverseUnavailableError:
    # A read answered with something Dataverse never sends: a fault, worth a retry.
    return DataverseUnavailableError(
        f"Dataverse answered the request to {action} with an unreadable body ({what}).",
        ambiguous=False,
    )


def _text(row: Any, column: str, action: str) -> str:
    value = row.get(column) if isinstance(row, dict) else None
    if not isinstance(value, str) or not value:
        raise _malformed(action, f"no '{column}' in the row")
    return value


def _odata_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"  # OData doubles a quote inside a literal


def _query(**options: str) -> str:
    # Percent-encode values ourselves: a "+" for a space would not mean a space to OData.
    return "&".join(f"${name}={quote(value, safe=',()')}" for name, value in options.items())


class DataverseClient:
    """Read products and targets, and create both in one atomic change set."""

    def __init__(self, http: httpx.AsyncClient, *, retrying: AsyncRetrying | None = None) -> None:
        self._http = http
        self._retrying = retrying if retrying is not None else retry_policy()

    async def __aenter__(self) -> DataverseClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying HTTP client."""
        await self._http.aclose()

    async def find_product_by_code(self, code: str) -> ProductRef | None:
        """Return the product with this code in any status (case-insensitive), or None."""
        url = f"{PRODUCTS}?" + _query(
            filter=f"osot_product_code eq {_odata_string(code)}",
            select="osot_table_productid,osot_product_code",
            top="1",
        )
        action = f"look up product code {code}"
        body = await self._retry(self._get_json, url, action, operation="find_product_by_code")
        rows = body.get("value") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise _malformed(action, "no 'value' list")
        if not rows:
            return None
        row = rows[0]
        return ProductRef(
            guid=_text(row, "osot_table_productid", action),
            code=_text(row, "osot_product_code", action),
        )

    async def get_row(
        self, entity_set: str, guid: str, columns: Iterable[str]
    ) -> dict[str, Any] | None:
        """Return these columns of the row with this GUID, or None if there is no such row."""
        guid = canonical_guid(guid)
        url = f"{entity_set}({guid})?" + _query(select=",".join(columns))
        action = f"read {entity_set}({guid})"
        row = await self._retry(self._get_json, url, action, operation="get_row", missing_ok=True)
        if row is not None and not isinstance(row, dict):
            raise _malformed(action, "not a JSON object")
        return row

    async def get_product(self, guid: str) -> ProductRecord | None:
        """Return the product with this GUID, or None if it does not exist."""
        guid = canonical_guid(guid)
        url = f"{PRODUCTS}({guid})?" + _query(select=_PRODUCT_SELECT)
        action = f"read product {guid}"
        row = await self._retry(
            self._get_json, url, action, operation="get_product", missing_ok=True
        )
        if row is None:
            return None
        if not isinstance(row, dict):
            raise _malformed(action, "not a JSON object")
        return ProductRecord(
            guid=str(row.get("osot_table_productid") or guid),
            product_id=row.get("osot_productid"),
            code=row.get("osot_product_code"),
            organization_guid=row.get("_osot_table_organization_value"),
        )

    async def get_target(self, guid: str) -> TargetRecord | None:
        """Return the audience target with this GUID, or None if it does not exist."""
        guid = canonical_guid(guid)
        url = f"{TARGETS}({guid})?" + _query(select=_TARGET_SELECT)
        action = f"read audience target {guid}"
        row = await self._retry(
            self._get_json, url, action, operation="get_target", missing_ok=True
        )
        if row is None:
            return None
        if not isinstance(row, dict):
            raise _malformed(action, "not a JSON object")
        return TargetRecord(
            guid=str(row.get("osot_table_audience_targetid") or guid),
            target_id=row.get("osot_target"),
            product_guid=row.get("_osot_table_product_value"),
        )

    async def create_product_with_target(
        self, *, product_columns: Mapping[str, Any], target_columns: Mapping[str, Any]
    ) -> None:
        """Create the product and its target in one change set: both rows or neither.

        Not retried here: after an ambiguous failure the caller must reconcile first
        (get_product/get_target), then may resend the same bodies; a resend that finds
        the rows raises DataverseDuplicateError.
        """
        batch = build_changeset(
            [BatchOperation(PRODUCTS, product_columns), BatchOperation(TARGETS, target_columns)],
            api_path=self._http.base_url.path,
        )
        action = "create the product and its audience target"
        response = await self._send(
            "POST",
            "$batch",
            action,
            operation="create_product_with_target",
            content=batch.body,
            headers={"Content-Type": batch.content_type},
        )
        parts: list[BatchPart] = []
        if boundary_of(response.headers.get("content-type")) is not None:
            try:
                parts = parse_batch_response(response.headers["content-type"], response.content)
            except BatchFormatError as exc:
                if response.status_code < 400:
                    raise DataverseUnavailableError(
                        f"Dataverse answered the change set to {action} with an unreadable "
                        f"body ({exc}). It may or may not have been applied.",
                        ambiguous=True,
                        status=response.status_code,
                    ) from exc
        # A failed change set comes back either as the failing part inside the multipart
        # body (outer status 200 or the part's own status), or as a plain error response.
        failure = first_failure(parts)
        if failure is not None:
            raise error_from_response(
                failure.status,
                {**response.headers, **failure.headers},
                failure.text,
                action=_PART_ACTIONS.get(failure.content_id or "", action),
                content_id=failure.content_id,
            )
        if response.status_code >= 400:
            raise error_from_response(
                response.status_code, response.headers, response.content, action=action
            )
        if len(parts) != 2:
            raise DataverseUnavailableError(
                f"Dataverse answered the change set to {action} with {len(parts)} responses "
                f"instead of 2 (HTTP {response.status_code}). It may or may not have been applied.",
                ambiguous=True,
                status=response.status_code,
            )

    async def _retry(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        # A retrying object keeps per-call state; concurrent calls must each use a copy.
        return await self._retrying.copy()(fn, *args, **kwargs)

    async def _get_json(
        self, url: str, action: str, *, operation: str, missing_ok: bool = False
    ) -> Any:
        response = await self._send("GET", url, action, operation=operation)
        if response.status_code == 404 and missing_ok:
            code, _ = parse_error_body(response.content)
            if code is None or code.lower() == OBJECT_DOES_NOT_EXIST:
                return None  # another 404 (an unknown entity set) is a fault, not "absent"
        if response.status_code >= 400:
            raise error_from_response(
                response.status_code, response.headers, response.content, action=action
            )
        try:
            return response.json()
        except ValueError as exc:
            raise DataverseUnavailableError(
                f"Dataverse answered the request to {action} with a body that is not JSON.",
                ambiguous=False,
                status=response.status_code,
            ) from exc

    async def _send(
        self,
        method: str,
        url: str,
        action: str,
        *,
        operation: str,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        try:
            return await self._measured(
                method, url, operation=operation, content=content, headers=headers
            )
        except _NOT_SENT as exc:
            raise DataverseUnavailableError(
                f"Could not reach Dataverse to {action} ({type(exc).__name__}: {exc}). "
                "Nothing was sent, so nothing was applied.",
                ambiguous=False,
            ) from exc
        except httpx.TimeoutException as exc:
            raise DataverseUnavailableError(
                f"Dataverse did not answer in time to {action} ({type(exc).__name__}). "
                "The request may or may not have been applied.",
                ambiguous=True,
            ) from exc
        except httpx.RequestError as exc:
            raise DataverseUnavailableError(
                f"The connection to Dataverse failed while trying to {action} "
                f"({type(exc).__name__}: {exc}). The request may or may not have been applied.",
                ambiguous=True,
            ) from exc

    async def _measured(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        content: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        # Counted by operation (the method's name) and HTTP status; 429 is Dataverse throttling.
        status = "connection_error"
        started = time.perf_counter()
        try:
            response = await self._http.request(method, url, content=content, headers=headers)
            status = str(response.status_code)
            return response
        except httpx.TimeoutException:
            status = "timeout"
            raise
        finally:
            metrics.DATAVERSE_REQUESTS.labels(operation, status).inc()
            metrics.DATAVERSE_DURATION.labels(operation).observe(time.perf_counter() - started)
