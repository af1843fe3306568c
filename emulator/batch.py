"""$batch: parse the multipart request, run its parts and atomic change sets, build the response.

Behaviour follows "Execute batch operations using the Web API":
https://learn.microsoft.com/power-apps/developer/data-platform/webapi/execute-batch-operations-using-web-api
(MicrosoftDocs/powerapps-docs, .../data-platform/webapi/execute-batch-operations-using-web-api.md):

- Success: ``200 OK``, ``multipart/mixed; boundary=batchresponse_<guid>``; a change set answers
  with a nested ``multipart/mixed; boundary=changesetresponse_<guid>`` part holding one
  ``application/http`` part per request (``HTTP/1.1 204 No Content`` with ``Location`` and
  ``OData-EntityId``), each echoing its ``Content-ID``.
- Failure without ``Prefer: odata.continue-on-error`` ("Handling errors"): the batch stops at the
  first failing request and "the batch error represents the error of the first failing
  request": the outer status is that request's status (e.g. ``HTTP/1.1 400 BadRequest``) and the
  body is still ``multipart/mixed`` (batchresponse) holding the responses so far and the failing
  one, ``HTTP/1.1 400 Bad Request`` with its JSON error body. A failed change set is rolled back
  as a whole and answers with a changesetresponse holding only the failing request's response
  (with its Content-ID), as in the Dataverse trace of MicrosoftDocs/powerapps-docs issue #2843.
- With ``Prefer: odata.continue-on-error`` the outer status is 200 and later parts still run.
- A batch the server cannot read at all (not multipart, GET inside a change set, > 1000
  requests) is rejected with a plain JSON error, nothing executed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from . import errors, multipart
from .store import Store
from .webapi import SERVICE_PATH, ApiRequest, ApiResponse, Context, WebApi, error_response

MAX_REQUESTS = 1000
_CHANGESET_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_REFERENCE = re.compile(r"\$([^/?]+)(.*)", re.DOTALL)


@dataclass(slots=True)
class Operation:
    content_id: str | None
    request: multipart.HttpRequestMessage


@dataclass(slots=True)
class ChangeSet:
    operations: list[Operation]


class _ChangeSetFailedError(Exception):
    def __init__(self, operation: Operation, response: ApiResponse) -> None:
        super().__init__(response.status)
        self.operation = operation
        self.response = response


def _bad_batch(message: str) -> errors.DataverseError:
    return errors.DataverseError(400, errors.PAYLOAD_ERROR, message)


def _operation(part: multipart.Part) -> Operation:
    content_type = part.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/http":
        raise _bad_batch(
            f"A batch part has Content-Type '{content_type}'; expected application/http."
        )
    encoding = part.headers.get("content-transfer-encoding", "").lower()
    if encoding != "binary":
        raise _bad_batch("A batch part must have 'Content-Transfer-Encoding: binary'.")
    return Operation(part.headers.get("content-id"), multipart.parse_request(part.body))


def parse_batch(content_type: str, body: bytes) -> list[Operation | ChangeSet]:
    boundary = multipart.boundary_of(content_type)
    if boundary is None:
        raise _bad_batch("A $batch request needs 'Content-Type: multipart/mixed; boundary=...'.")
    items: list[Operation | ChangeSet] = []
    total = 0
    try:
        for part in multipart.split(body, boundary):
            inner = multipart.boundary_of(part.headers.get("content-type", ""))
            if inner is None:
                items.append(_operation(part))
                total += 1
                continue
            operations: list[Any] = []
            for inner_part in multipart.split(part.body, inner):
                if multipart.boundary_of(inner_part.headers.get("content-type", "")):
                    raise _bad_batch("A change set cannot contain another change set or batch.")
                operation = _operation(inner_part)
                if operation.request.method not in _CHANGESET_METHODS:
                    # Wording of Microsoft.OData's batch reader.
                    raise _bad_batch(
                        f"An invalid HTTP method '{operation.request.method}' was detected for a "
                        "request in a change set. Requests in change sets only support the HTTP "
                        "methods 'POST', 'PUT', 'DELETE', and 'PATCH'."
                    )
                ids = [op.content_id for op in operations if op.content_id]
                if operation.content_id and operation.content_id in ids:
                    raise _bad_batch(
                        f"The Content-ID '{operation.content_id}' is used twice in a change set."
                    )
                operations.append(operation)
            items.append(ChangeSet(operations))
            total += len(operations)
    except multipart.MultipartError as exc:
        raise _bad_batch(f"The $batch body is malformed: {exc}") from exc
    if total > MAX_REQUESTS:
        raise _bad_batch(
            f"A batch can contain at most {MAX_REQUESTS} requests; this one has {total}."
        )
    return items


class BatchRunner:
    """Runs a parsed $batch against the Web API and records what each part did."""

    def __init__(self, api: WebApi, store: Store) -> None:
        self.api = api
        self.store = store

    def run(
        self, headers: Mapping[str, str], body: bytes, service_root: str
    ) -> tuple[ApiResponse, list[dict[str, Any]]]:
        """Return the HTTP response and a log entry per executed operation."""
        try:
            items = parse_batch(headers.get("content-type", ""), body)
        except errors.DataverseError as error:
            return error_response(error), []
        preferences = [p.strip().lower() for p in headers.get("prefer", "").split(",")]
        continue_on_error = "odata.continue-on-error" in preferences
        log: list[dict[str, Any]] = []
        parts: list[tuple[list[tuple[str, str]], bytes]] = []
        status = 200
        for index, item in enumerate(items):
            if isinstance(item, Operation):
                response = self._execute(item, Context(service_root), log, None)
                parts.append(_http_part(item, response, service_root))
                failed = response if response.status >= 400 else None
            else:
                results, failed = self._run_changeset(item, service_root, log, index)
                boundary = f"changesetresponse_{uuid.uuid4()}"
                inner = [_http_part(op, resp, service_root) for op, resp in results]
                parts.append(
                    (
                        [("Content-Type", f"multipart/mixed; boundary={boundary}")],
                        multipart.build(inner, boundary),
                    )
                )
            if failed is not None and not continue_on_error:
                status = failed.status
                break
        boundary = f"batchresponse_{uuid.uuid4()}"
        response = ApiResponse(
            status,
            [("Content-Type", f"multipart/mixed; boundary={boundary}"), ("OData-Version", "4.0")],
            multipart.build(parts, boundary) + multipart.CRLF,
        )
        return response, log

    def _run_changeset(
        self, changeset: ChangeSet, service_root: str, log: list[dict[str, Any]], index: int
    ) -> tuple[list[tuple[Operation, ApiResponse]], ApiResponse | None]:
        """All operations in one transaction; on the first failure roll back and report only it."""
        context = Context(service_root, content_ids={})
        assert context.content_ids is not None
        results: list[tuple[Operation, ApiResponse]] = []
        first_entry = len(log)
        try:
            with self.store.transaction():
                for operation in changeset.operations:
                    response = self._execute(operation, context, log, index)
                    if response.status >= 400:
                        raise _ChangeSetFailedError(operation, response)
                    results.append((operation, response))
                    if operation.content_id and response.entity_path:
                        context.content_ids[operation.content_id] = response.entity_path
        except _ChangeSetFailedError as failure:
            for entry in log[first_entry:]:
                entry["rolled_back"] = True
            return [(failure.operation, failure.response)], failure.response
        return results, None

    def _execute(
        self,
        operation: Operation,
        context: Context,
        log: list[dict[str, Any]],
        changeset: int | None,
    ) -> ApiResponse:
        message = operation.request
        entry: dict[str, Any] = {
            "method": message.method,
            "url": message.url,
            "content_id": operation.content_id,
            "changeset": changeset,
        }
        try:
            path, query = _target(message.url, context)
        except errors.DataverseError as error:
            response = error_response(error)
        else:
            entry["path"] = SERVICE_PATH + path + (f"?{query}" if query else "")
            request = ApiRequest(message.method, path, query, message.headers, message.body)
            response = self.api.handle(request, context)
        entry["status"] = response.status
        log.append(entry)
        return response


def _target(url: str, context: Context) -> tuple[str, str]:
    """Resolve a part's URL (absolute, /api/data/v9.2/..., relative, or $n) to (path, query)."""
    reference = _REFERENCE.fullmatch(url)
    if reference is not None:
        url = context.resolve(f"${reference[1]}") + reference[2]
    parsed = urlsplit(url)
    path = unquote(parsed.path)
    if path.startswith(SERVICE_PATH):
        path = path[len(SERVICE_PATH) :]
    elif path.startswith("/") or parsed.scheme:
        raise errors.segment_not_found(path.lstrip("/").split("/", 1)[0])
    return path, parsed.query


def _http_part(
    operation: Operation, response: ApiResponse, service_root: str
) -> tuple[list[tuple[str, str]], bytes]:
    headers = [("Content-Type", "application/http"), ("Content-Transfer-Encoding", "binary")]
    if operation.content_id:
        headers.append(("Content-ID", operation.content_id))
    inner = list(response.headers)
    if response.entity_path and not any(name == "Location" for name, _ in inner):
        # Batch parts carry Location next to OData-EntityId (batch response examples).
        inner.insert(1, ("Location", service_root + response.entity_path))
    return headers, multipart.format_response(response.status, inner, response.body)
