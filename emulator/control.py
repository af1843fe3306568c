"""The control API under /_emulator/ (not Dataverse, no auth): faults, request log, rows, reset."""

from __future__ import annotations

import dataclasses
from typing import Any

from . import jsonio
from .faults import FaultConfigError, FaultState, RequestLog
from .server import HttpRequest, HttpResponse
from .store import Store
from .webapi import SERVICE_PATH, ApiRequest, Context, WebApi

PREFIX = "/_emulator/"


def _json(status: int, body: Any) -> HttpResponse:
    return HttpResponse(status, [("Content-Type", "application/json")], jsonio.dumps(body))


def _error(status: int, message: str) -> HttpResponse:
    return _json(status, {"error": {"code": "emulator", "message": message}})


class ControlApi:
    def __init__(self, api: WebApi, store: Store, faults: FaultState, requests: RequestLog) -> None:
        self.api = api
        self.store = store
        self.faults = faults
        self.requests = requests
        self._original_columns: dict[tuple[str, str], Any] = {}

    def handle(self, request: HttpRequest) -> HttpResponse:
        resource, _, query = request.target.partition("?")
        resource = resource[len(PREFIX) :].rstrip("/")
        if resource.startswith("rows/") and request.method == "GET":
            return self._rows(request, resource[len("rows/") :], query)
        if resource.startswith("options/") and request.method == "PUT":
            return self._retire_options(request, resource[len("options/") :])
        routes = {
            "health": {"GET": self._health},
            "faults": {
                "GET": self._get_faults,
                "PUT": self._put_faults,
                "DELETE": self._clear_faults,
            },
            "requests": {"GET": self._get_requests, "DELETE": self._clear_requests},
            "reset": {"POST": self._reset},
        }
        methods = routes.get(resource)
        if methods is None:
            return _error(404, f"No control resource '{PREFIX}{resource}'.")
        action = methods.get(request.method)
        if action is None:
            response = _error(405, f"{request.method} is not allowed on {PREFIX}{resource}.")
            response.headers.append(("Allow", ", ".join(methods)))
            return response
        return action(request)

    def _health(self, request: HttpRequest) -> HttpResponse:
        return _json(200, {"status": "ok"})

    def _get_faults(self, request: HttpRequest) -> HttpResponse:
        return _json(200, self.faults.to_json())

    def _put_faults(self, request: HttpRequest) -> HttpResponse:
        try:
            self.faults.configure(jsonio.loads(request.body or b"{}"))
        except (FaultConfigError, jsonio.JsonBodyError) as exc:
            return _error(400, str(exc))
        return _json(200, self.faults.to_json())

    def _clear_faults(self, request: HttpRequest) -> HttpResponse:
        self.faults.clear()
        return HttpResponse(204)

    def _get_requests(self, request: HttpRequest) -> HttpResponse:
        return _json(200, {"requests": self.requests.entries})

    def _clear_requests(self, request: HttpRequest) -> HttpResponse:
        self.requests.clear()
        return HttpResponse(204)

    def _rows(self, request: HttpRequest, entity_set: str, query: str) -> HttpResponse:
        """A Web API query (same JSON, $filter/$select/$top) that skips auth, faults and the log,
        so reading rows in a test does not change the request counts it checks."""
        host = request.headers.get("host", "localhost")
        api_request = ApiRequest("GET", entity_set, query, {}, b"")
        response = self.api.handle(api_request, Context(f"http://{host}{SERVICE_PATH}"))
        return HttpResponse(response.status, response.headers, response.body)

    def _retire_options(self, request: HttpRequest, path: str) -> HttpResponse:
        """Remove options from a choice column, as an administrator editing Dataverse's
        metadata would: writes using them are then rejected like any invalid option.
        ``PUT /_emulator/options/<entity set>/<column>`` with ``{"retire": [11, 12]}``."""
        entity_set, _, name = path.partition("/")
        table = self.store.tables.get(entity_set)
        column = table.columns.get(name) if table else None
        if table is None or column is None or not column.options:
            return _error(404, f"No choice column '{name}' on '{entity_set}'.")
        try:
            retire = {int(v) for v in jsonio.loads(request.body or b"{}").get("retire", [])}
        except (jsonio.JsonBodyError, AttributeError, TypeError, ValueError) as exc:
            return _error(400, f'Expected {{"retire": [option values]}}: {exc}')
        self._original_columns.setdefault((entity_set, name), column)
        table.columns[name] = dataclasses.replace(column, options=column.options - retire)  # type: ignore[index]
        return _json(200, {"column": name, "options": sorted(table.columns[name].options)})

    def _reset(self, request: HttpRequest) -> HttpResponse:
        """Back to the start state: no rows but the seeded organizations, no faults, empty log,
        every retired option restored."""
        for (entity_set, name), column in self._original_columns.items():
            self.store.tables[entity_set].columns[name] = column  # type: ignore[index]
        self._original_columns.clear()
        self.store.reset()
        self.faults.clear()
        self.requests.clear()
        return HttpResponse(204)
