"""Routes each HTTP request: control API, or Web API with latency, auth, faults and logging."""

from __future__ import annotations

import asyncio
import hmac
import logging
from urllib.parse import unquote

from . import errors
from .batch import BatchRunner
from .control import PREFIX, ControlApi
from .faults import FaultState, RequestLog, request_class
from .server import DROP, Drop, HttpRequest, HttpResponse
from .webapi import (
    SERVICE_PATH,
    ApiRequest,
    ApiResponse,
    Context,
    WebApi,
    error_response,
    json_response,
)

logger = logging.getLogger("emulator")

# Dataverse's own 401 usually has an empty body; the header is what Azure AD clients look at.
_UNAUTHORIZED = errors.DataverseError(
    401,
    errors.UNAUTHORIZED,
    "The bearer token is missing or is not the emulator's token.",
    (
        (
            "WWW-Authenticate",
            "Bearer authorization_uri=https://login.microsoftonline.com/common/oauth2/authorize",
        ),
    ),
)


class Dispatcher:
    """The server's handler: one instance per emulator, shared by all connections."""

    def __init__(
        self,
        api: WebApi,
        batch: BatchRunner,
        control: ControlApi,
        faults: FaultState,
        requests: RequestLog,
        token: str,
    ) -> None:
        self.api = api
        self.batch = batch
        self.control = control
        self.faults = faults
        self.requests = requests
        self.token = token

    async def handle(self, request: HttpRequest) -> HttpResponse | Drop:
        path = request.target.split("?", 1)[0]
        if path.startswith(PREFIX):
            return self.control.handle(request)
        if path.rstrip("/") + "/" != SERVICE_PATH and not path.startswith(SERVICE_PATH):
            error = errors.segment_not_found(path.strip("/").split("/", 1)[0])
            return _http(error_response(error))
        try:
            return await self._web_api(request)
        except Exception:
            logger.exception("The emulator failed on %s %s", request.method, request.target)
            failure = errors.DataverseError(500, errors.UNEXPECTED, "An unexpected error occurred.")
            return _http(error_response(failure))

    async def _web_api(self, request: HttpRequest) -> HttpResponse | Drop:
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        if not self._authorized(request.headers.get("authorization", "")):
            self.requests.add(request.method, request.target, 401)
            return _http(error_response(_UNAUTHORIZED))

        raw_path, _, query = request.target.partition("?")
        path = unquote(raw_path)[len(SERVICE_PATH) :]
        is_batch = path == "$batch"
        fault = self.faults.take(request_class(request.method, is_batch))
        fault_kind = fault.kind if fault is not None else None
        if fault is not None and fault.kind == "drop":
            self.requests.add(request.method, request.target, None, fault=fault_kind)
            return DROP
        if fault is not None and fault.kind == "pass":
            fault = None
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep((fault.delay_ms or 0) / 1000)
            fault = None  # then run normally, even if the client gave up meanwhile
        if fault is not None and fault.kind == "malformed":
            self.requests.add(request.method, request.target, 200, fault=fault_kind)
            return _http(json_response(200, {"value": [{}]}))
        if fault is not None and fault.kind != "write_then_drop":
            response = error_response(fault.error())
            self.requests.add(request.method, request.target, response.status, fault=fault_kind)
            return _http(response)

        context = Context(f"http://{request.headers.get('host', 'localhost')}{SERVICE_PATH}")
        operations = None
        if not is_batch:
            api_request = ApiRequest(request.method, path, query, request.headers, request.body)
            response = self.api.handle(api_request, context)
        elif request.method != "POST":
            response = error_response(errors.method_not_allowed(request.method, "POST"))
        else:
            response, operations = self.batch.run(
                request.headers, request.body, context.service_root
            )
        self.requests.add(
            request.method, request.target, response.status, fault=fault_kind, operations=operations
        )
        if fault is not None:  # write_then_drop: the request ran and committed; lose the reply
            return DROP
        return _http(response)

    def _authorized(self, header: str) -> bool:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(credentials.strip().encode(), self.token.encode())


def _http(response: ApiResponse) -> HttpResponse:
    return HttpResponse(response.status, response.headers, response.body)
