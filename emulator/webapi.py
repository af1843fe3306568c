"""The Web API operations on a table: create, upsert, retrieve, query, delete, as Dataverse."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import errors, jsonio, odata
from .store import Store, now
from .tables import Lookup, Table, parse_guid

SERVICE_PATH = "/api/data/v9.2/"
JSON_TYPE = "application/json; odata.metadata=minimal"
# Fixed ids for WhoAmI, so a client health check has something stable to read.
_WHOAMI = {
    "BusinessUnitId": "0f0d1e52-5b0b-4f0e-8b55-00000000b0b0",
    "UserId": "0f0d1e52-5b0b-4f0e-8b55-00000000a5e7",
    "OrganizationId": "0f0d1e52-5b0b-4f0e-8b55-000000000e90",
}


@dataclass(slots=True)
class ApiRequest:
    """One Web API request, with ``path`` relative to the service root (already %-decoded)."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""


@dataclass(slots=True)
class ApiResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    entity_path: str | None = None  # "<set>(<guid>)" of the row written; what "$n" refers to


@dataclass(slots=True)
class Context:
    """Where the request came in (for absolute URLs) and, inside a change set, its Content-IDs."""

    service_root: str  # e.g. "http://127.0.0.1:5000/api/data/v9.2/"
    content_ids: dict[str, str] | None = None  # Content-ID -> "<set>(<guid>)"

    def resolve(self, reference: str) -> str:
        """The entity path a ``$n`` reference stands for; only within the same change set."""
        target = (self.content_ids or {}).get(reference[1:])
        if target is None:
            raise errors.content_id_missing(reference)
        return target


def json_response(
    status: int, body: Any, headers: list[tuple[str, str]] | None = None
) -> ApiResponse:
    return ApiResponse(
        status,
        [("Content-Type", JSON_TYPE), ("OData-Version", "4.0"), *(headers or [])],
        jsonio.dumps(body),
    )


def error_response(error: errors.DataverseError) -> ApiResponse:
    return json_response(error.status, error.body(), list(error.headers))


def prefers_representation(headers: Mapping[str, str]) -> bool:
    preferences = [item.strip().lower() for item in headers.get("prefer", "").split(",")]
    return "return=representation" in preferences


class WebApi:
    """Executes single operations against the store; $batch calls it once per part."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.tables = store.tables

    def handle(self, request: ApiRequest, context: Context) -> ApiResponse:
        try:
            return self._dispatch(request, context)
        except errors.DataverseError as error:
            return error_response(error)

    # -- routing ---------------------------------------------------------------------------

    def _dispatch(self, request: ApiRequest, context: Context) -> ApiResponse:
        method = request.method
        if request.path == "":
            self._allow(method, "GET")
            entity_sets = [{"name": name, "kind": "EntitySet", "url": name} for name in self.tables]
            return json_response(
                200, {"@odata.context": f"{context.service_root}$metadata", "value": entity_sets}
            )
        if request.path == "WhoAmI":
            self._allow(method, "GET")
            context_url = f"{context.service_root}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"
            return json_response(200, {"@odata.context": context_url, **_WHOAMI})
        path = odata.parse_path(request.path)
        table = self.tables.get(path.name)
        if table is None:
            raise errors.segment_not_found(path.name)
        if path.rest:
            segment = path.rest.split("/", 1)[0]
            if segment in table.readable():
                raise errors.DataverseError(
                    501,
                    errors.ODATA_ERROR,
                    "The Dataverse emulator does not support property paths.",
                )
            raise errors.segment_not_found(segment)
        if path.key is None:
            if method == "GET":
                return self._query(table, request, context)
            if method == "POST":
                return self._create(table, request, context)
            raise errors.method_not_allowed(method, "GET, POST")
        record_id = odata.parse_key(table, path.key)
        if method == "GET":
            return self._retrieve(table, record_id, request, context)
        if method == "PATCH":
            return self._upsert(table, record_id, request, context)
        if method == "DELETE":
            return self._delete(table, record_id, request)
        raise errors.method_not_allowed(method, "GET, PATCH, DELETE")

    @staticmethod
    def _allow(method: str, allowed: str) -> None:
        if method != allowed:
            raise errors.method_not_allowed(method, allowed)

    # -- operations ------------------------------------------------------------------------

    def _create(self, table: Table, request: ApiRequest, context: Context) -> ApiResponse:
        # https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-entity-web-api
        options = odata.parse_query(request.query, frozenset({"$select"}))
        values, binds = self._payload(table, request, context)
        record_id = values.pop(table.primary_key, None) or str(uuid.uuid4())
        with self.store.transaction():
            self._check_binds(binds)
            if self.store.get(table, record_id) is not None:
                raise errors.duplicate_record()
            self._insert(table, record_id, values, binds)
        return self._written(table, record_id, request, context, options, created=True)

    def _upsert(
        self, table: Table, record_id: str, request: ApiRequest, context: Context
    ) -> ApiResponse:
        # PATCH creates or updates; If-None-Match: * = create only, If-Match: * (or an ETag) =
        # update only. https://learn.microsoft.com/power-apps/developer/data-platform/webapi/perform-conditional-operations-using-web-api
        options = odata.parse_query(request.query, frozenset({"$select"}))
        values, binds = self._payload(table, request, context)
        body_id = values.pop(table.primary_key, None)
        if body_id is not None and body_id != record_id:
            raise errors.DataverseError(
                400,
                errors.PAYLOAD_ERROR,
                f"The primary key '{table.primary_key}' in the body ({body_id}) differs from the "
                f"key in the URL ({record_id}).",
            )
        if_match = request.headers.get("if-match")
        if_none_match = request.headers.get("if-none-match")
        with self.store.transaction():
            existing = self.store.get(table, record_id)
            if if_none_match == "*" and existing is not None:
                raise errors.duplicate_record()
            if if_match is not None:
                if existing is None:
                    raise errors.record_not_found(table.logical_name, record_id)
                if if_match != "*" and if_match != _etag(existing):
                    raise errors.version_mismatch()
            self._check_binds(binds)
            if existing is None:
                self._insert(table, record_id, values, binds)
            else:
                changes = {**values, **{lookup.column: guid for lookup, guid in binds.items()}}
                self.store.update(table, record_id, {**changes, "modifiedon": now()})
        return self._written(table, record_id, request, context, options, created=existing is None)

    def _retrieve(
        self, table: Table, record_id: str, request: ApiRequest, context: Context
    ) -> ApiResponse:
        options = odata.parse_query(request.query, frozenset({"$select"}))
        select = odata.parse_select(table, options.get("$select"))
        row = self.store.get(table, record_id)
        if row is None:
            raise errors.record_not_found(table.logical_name, record_id)
        body = {"@odata.context": _context_url(context, table, select, entity=True)}
        body.update(self._render(table, row, select))
        return json_response(200, body)

    def _query(self, table: Table, request: ApiRequest, context: Context) -> ApiResponse:
        # https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query-data-web-api
        options = odata.parse_query(request.query, frozenset({"$select", "$filter", "$top"}))
        select = odata.parse_select(table, options.get("$select"))
        predicate = odata.parse_filter(table, options.get("$filter"))
        top = odata.parse_top(options.get("$top"))
        rows = [row for row in self.store.rows(table) if predicate is None or predicate(row)]
        if top is not None:
            rows = rows[:top]
        return json_response(
            200,
            {
                "@odata.context": _context_url(context, table, select, entity=False),
                "value": [self._render(table, row, select) for row in rows],
            },
        )

    def _delete(self, table: Table, record_id: str, request: ApiRequest) -> ApiResponse:
        odata.parse_query(request.query, frozenset())
        if_match = request.headers.get("if-match")
        with self.store.transaction():
            existing = self.store.get(table, record_id)
            if existing is None:
                raise errors.record_not_found(table.logical_name, record_id)
            if if_match not in (None, "*") and if_match != _etag(existing):
                raise errors.version_mismatch()
            self.store.delete(table, record_id)
        return ApiResponse(204, [("OData-Version", "4.0")])

    # -- helpers ---------------------------------------------------------------------------

    def _payload(
        self, table: Table, request: ApiRequest, context: Context
    ) -> tuple[dict[str, Any], dict[Lookup, str]]:
        """Validate a create/update body; return column values and lookup binds."""
        content_type = request.headers.get("content-type", "")
        if not content_type.split(";")[0].strip().lower() == "application/json":
            raise errors.DataverseError(
                415,
                errors.PAYLOAD_ERROR,
                f"The content type '{content_type}' is not supported; send application/json.",
            )
        try:
            payload = jsonio.loads(request.body)
        except jsonio.JsonBodyError as exc:
            raise errors.payload_error(table.entity_set, str(exc)) from exc
        if not isinstance(payload, dict):
            raise errors.payload_error(table.entity_set, "The body must be a JSON object.")
        values: dict[str, Any] = {}
        binds: dict[Lookup, str] = {}
        for key, value in payload.items():
            if key.endswith("@odata.bind"):
                navigation = key[: -len("@odata.bind")]
                lookup = table.lookup(navigation)
                if lookup is None:
                    raise errors.payload_error(
                        table.entity_set,
                        f"An undeclared property '{navigation}' which only has property "
                        "annotations in the payload but no property value was found in the "
                        "payload.",
                    )
                binds[lookup] = self._bind_target(table, lookup, value, context)
            elif key.startswith("@odata."):
                continue  # instance annotations such as @odata.type / @odata.etag
            elif table.lookup(key) is not None:
                raise errors.DataverseError(
                    501, errors.ODATA_ERROR, "The Dataverse emulator does not support deep insert."
                )
            elif table.lookup_column(key) is not None:
                raise errors.payload_error(
                    table.entity_set,
                    "CRM do not support direct update of Entity Reference properties, Use "
                    "Navigation properties instead.",
                )
            elif key in table.columns:
                column = table.columns[key]
                if column.writable:
                    values[key] = table.coerce(column, value)
            else:
                raise errors.unknown_property(table.entity_type, key)
        return values, binds

    def _bind_target(self, table: Table, lookup: Lookup, value: Any, context: Context) -> str:
        """The GUID an @odata.bind value names: "/set(id)", "set(id)", an absolute URL, "$n"."""
        if not isinstance(value, str):
            raise errors.payload_error(
                table.entity_set,
                f"The @odata.bind value of '{lookup.navigation}' must be a URL string.",
            )
        if value.startswith("$"):
            path = context.resolve(value)
        else:
            path = urlsplit(value).path if "://" in value else value
            path = path.lstrip("/")
            service = SERVICE_PATH.lstrip("/")
            if path.startswith(service):
                path = path[len(service) :]
        try:
            resource = odata.parse_path(path)
        except errors.DataverseError:
            resource = None
        guid = parse_guid(resource.key.strip()) if resource and resource.key else None
        if resource is None or resource.rest or guid is None:
            raise errors.payload_error(
                table.entity_set, f"The @odata.bind value '{value}' is not a valid entity URL."
            )
        if resource.name != lookup.target:
            raise errors.payload_error(
                table.entity_set,
                f"The entity set '{resource.name}' is not valid for the navigation property "
                f"'{lookup.navigation}' (expected '{lookup.target}').",
            )
        return guid

    def _check_binds(self, binds: dict[Lookup, str]) -> None:
        for lookup, guid in binds.items():
            target = self.tables[lookup.target]
            if self.store.get(target, guid) is None:
                raise errors.record_not_found(target.logical_name, guid)

    def _insert(
        self, table: Table, record_id: str, values: dict[str, Any], binds: dict[Lookup, str]
    ) -> None:
        row = {**values, table.primary_key: record_id}
        for lookup, guid in binds.items():
            row[lookup.column] = guid
        if table.autonumber and row.get(table.autonumber) is None:
            # Autonumber format "<prefix>{SEQNUM:7}".
            number = self.store.next_autonumber(table)
            row[table.autonumber] = f"{table.autonumber_prefix}{number:07d}"
        stamp = now()
        row["createdon"] = stamp
        row["modifiedon"] = stamp
        self.store.insert(table, row)

    def _written(
        self,
        table: Table,
        record_id: str,
        request: ApiRequest,
        context: Context,
        options: dict[str, str],
        *,
        created: bool,
    ) -> ApiResponse:
        """The reply to a create/upsert: 204 + OData-EntityId, or the row with return=representation
        (201 when created, 200 when updated; no OData-EntityId then: Microsoft's
        compose-http-requests-handle-errors, "Prefer: return=representation")."""
        entity_path = f"{table.entity_set}({record_id})"
        if prefers_representation(request.headers):
            select = odata.parse_select(table, options.get("$select"))
            row = self.store.get(table, record_id)
            assert row is not None
            body = {"@odata.context": _context_url(context, table, select, entity=True)}
            body.update(self._render(table, row, select))
            response = json_response(
                201 if created else 200,
                body,
                [("Preference-Applied", "return=representation"), ("ETag", _etag(row))],
            )
        else:
            response = ApiResponse(
                204,
                [("OData-Version", "4.0"), ("OData-EntityId", context.service_root + entity_path)],
            )
        response.entity_path = entity_path
        return response

    @staticmethod
    def _render(table: Table, row: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
        names = table.readable() if select is None else [table.primary_key, *select]
        body: dict[str, Any] = {"@odata.etag": _etag(row)}
        for name in dict.fromkeys(names):
            body[name] = table.to_json(name, row.get(name))
        return body


def _etag(row: dict[str, Any]) -> str:
    return f'W/"{row["versionnumber"]}"'


def _context_url(context: Context, table: Table, select: list[str] | None, *, entity: bool) -> str:
    selected = f"({','.join(select)})" if select else ""
    suffix = "/$entity" if entity else ""
    return f"{context.service_root}$metadata#{table.entity_set}{selected}{suffix}"
