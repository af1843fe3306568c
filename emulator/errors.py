"""Dataverse-style errors: an HTTP status and the ``{"error": {"code", "message"}}`` body."""

from __future__ import annotations

from typing import Any

# Error codes. Sources:
# - https://learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors
# - https://learn.microsoft.com/troubleshoot/power-platform/power-apps/dataverse/web-api-client-errors
# - https://learn.microsoft.com/power-apps/developer/data-platform/api-limits
DUPLICATE_RECORD = "0x80040237"  # 412, "A record with matching key values already exists."
OBJECT_DOES_NOT_EXIST = "0x80040217"  # 404, "<logical name> With Id = <guid> Does Not Exist"
CONCURRENCY_VERSION_MISMATCH = "0x80060882"  # 412 on an If-Match ETag that no longer matches
MAX_LENGTH_EXCEEDED = "0x80044331"  # 400, text longer than the column allows
OPTION_OUT_OF_RANGE = "0x8004431A"  # 400, PicklistValueOutOfRange
VALUE_OUT_OF_RANGE = "0x80040203"  # 400, InvalidArgument; used for numbers outside the column range
PAYLOAD_ERROR = "0x80048d19"  # 400, "Error identified in Payload provided by the user ..."
ODATA_ERROR = "0x80060888"  # 400, OData URI/query/property errors ("Could not find a property ...")
RESOURCE_NOT_FOUND = "0x8006088a"  # 404, "Resource not found for the segment '...'."
THROTTLED = "0x80072322"  # 429, number of requests over the service protection limit
UNEXPECTED = "0x80040216"  # 500/503, "An unexpected error occurred."
UNAUTHORIZED = "0x80070005"  # 401; Dataverse's own 401 usually has no body, this code is ours


class DataverseError(Exception):
    """A failed Web API operation, carried as status, error code and message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def record_not_found(logical_name: str, record_id: str) -> DataverseError:
    return DataverseError(
        404, OBJECT_DOES_NOT_EXIST, f"{logical_name} With Id = {record_id} Does Not Exist"
    )


def duplicate_record() -> DataverseError:
    return DataverseError(
        412, DUPLICATE_RECORD, "A record with matching key values already exists."
    )


def version_mismatch() -> DataverseError:
    return DataverseError(
        412,
        CONCURRENCY_VERSION_MISMATCH,
        "The version of the existing record doesn't match the RowVersion property provided.",
    )


def segment_not_found(segment: str) -> DataverseError:
    return DataverseError(
        404, RESOURCE_NOT_FOUND, f"Resource not found for the segment '{segment}'."
    )


def property_not_found(entity_type: str, name: str) -> DataverseError:
    """A name in $select or $filter that the entity type does not have."""
    return DataverseError(
        400, ODATA_ERROR, f"Could not find a property named '{name}' on type '{entity_type}'."
    )


def unknown_property(entity_type: str, name: str) -> DataverseError:
    """A property in a create/update body that the entity type does not have."""
    return DataverseError(
        400,
        ODATA_ERROR,
        f"The property '{name}' does not exist on type '{entity_type}'. Make sure to only use "
        "property names that are defined by the type or mark the type as open type.",
    )


def payload_error(entity_set: str, inner: str) -> DataverseError:
    """A body the OData reader rejects (wrong JSON type, bad literal, bad bind)."""
    return DataverseError(
        400,
        PAYLOAD_ERROR,
        f"Error identified in Payload provided by the user for Entity :'{entity_set}', "
        "For more information on this error please follow this help link "
        "https://go.microsoft.com/fwlink/?linkid=2195293  ---->  "
        f"InnerException : Microsoft.OData.ODataException: {inner}",
    )


def query_error(message: str) -> DataverseError:
    return DataverseError(400, ODATA_ERROR, message)


def content_id_missing(reference: str) -> DataverseError:
    # https://learn.microsoft.com/power-apps/developer/data-platform/webapi/execute-batch-operations-using-web-api#reference-uris-in-an-operation
    return DataverseError(
        400,
        ODATA_ERROR,
        f"Content-ID Reference: '{reference}' does not exist in the batch context.",
    )


def method_not_allowed(method: str, allowed: str) -> DataverseError:
    return DataverseError(
        405,
        ODATA_ERROR,
        f"The requested resource does not support http method '{method}'.",
        headers=(("Allow", allowed),),
    )
