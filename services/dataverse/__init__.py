"""Dataverse Web API access for the orchestrator: client, auth, errors, retries, mapping."""

from services.dataverse.auth import MsalClientCredentialsAuth, StaticTokenAuth
from services.dataverse.batch import (
    BatchFormatError,
    BatchOperation,
    BatchPart,
    BatchRequest,
    build_changeset,
    first_failure,
    parse_batch_response,
)
from services.dataverse.client import DataverseClient, build_http_client
from services.dataverse.errors import (
    DataverseAuthError,
    DataverseDuplicateError,
    DataverseError,
    DataverseRejectedError,
    DataverseRetriesExhaustedError,
    DataverseThrottledError,
    DataverseUnavailableError,
    error_from_response,
)
from services.dataverse.mapping import (
    CHANGESET_PRODUCT_REF,
    PRODUCTS,
    TARGETS,
    organization_ref,
    product_columns,
    product_ref,
    target_columns,
)
from services.dataverse.records import ProductRecord, ProductRef, TargetRecord
from services.dataverse.retry import TRANSIENT_ERRORS, retry_policy

__all__ = [
    "CHANGESET_PRODUCT_REF",
    "PRODUCTS",
    "TARGETS",
    "TRANSIENT_ERRORS",
    "BatchFormatError",
    "BatchOperation",
    "BatchPart",
    "BatchRequest",
    "DataverseAuthError",
    "DataverseClient",
    "DataverseDuplicateError",
    "DataverseError",
    "DataverseRejectedError",
    "DataverseRetriesExhaustedError",
    "DataverseThrottledError",
    "DataverseUnavailableError",
    "MsalClientCredentialsAuth",
    "ProductRecord",
    "ProductRef",
    "StaticTokenAuth",
    "TargetRecord",
    "build_changeset",
    "build_http_client",
    "error_from_response",
    "first_failure",
    "organization_ref",
    "parse_batch_response",
    "product_columns",
    "product_ref",
    "retry_policy",
    "target_columns",
]
