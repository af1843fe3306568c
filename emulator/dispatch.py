"""Routes each HTTP request: control API, or Web API with latency, bearer auth, faults and logging."""

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
from .webapi import SERVICE_PATH, ApiRequest, ApiResponse, Context, WebApi, error_response

logger = logging.getLogger("emulator")


class Dispatcher:
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
        raw_path, _, query = request.target.partition("?")
        path = unquote(raw_path)[len(SERVICE_PATH) :]
        log_path = request.target
        host = request.headers.get("host", "localhost")
        context = Context(f"http://{host}{SERVICE_PATH}")

        if not self._authorized(request.headers.get("authorization", "")):
            response = error_response(
                errors.DataverseError(
                    401,
                    errors.UNAUTHORIZED,
                    "The bearer token is missing or is not the emulator's token.",
                    (("WWW-Authenticate", "Bearer authorization_uri=https://login.microsoftonline.com/common/oauth2/authorize"),),
                )
            )
            self.requests.add(request.method, log_path, 401)
            return _http(response)

        is_batch = path == "$batch"
        fault = self.faults.take(request_class(request.method, is_batch))
        if fault is not None and fault.kind == "drop":
            self.requests.add(request.method, log_path, None, fault=fault.kind)
            return DROP
        if fault is not None and fault.kind != "write_then_drop":
            response = error_response(fault.error())
            self.requests.add(request.method, log_path, response.status, fault=fault.kind)
            return _http(response)

        if is_batch:
            if request.method != "POST":
                response = error_response(errors.method_not_allowed(request.method, "POST"))
                self.requests.add(request.method, log_path, response.status)
            else:
                response, operations = self.batch.run(request.headers, request.body, context.service_root)
                self.requests.add(
                    request.method, log_path, response.status, operations=operations,
                    fault=fault.kind if fault else None,
                )
        else:
            api_request = ApiRequest(request.method, path, query, request.headers, request.body)
            response = self.api.handle(api_request, context)
            self.requests.add(request.method, log_path, response.status, fault=fault.kind if fault else None)

        if fault is not None:  # write_then_drop: the request ran and committed; now lose the reply
            return DROP
        return _http(response)

    def _authorized(self, header: str) -> bool:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(credentials.strip().encode(), self.token.encode())


def _http(response: ApiResponse) -> HttpResponse:
    return HttpResponse(response.status, response.headers, response.body)
