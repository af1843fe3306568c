"""Classifying Dataverse error responses: which exception, transient or not, and what it says."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from services.dataverse import (
    TRANSIENT_ERRORS,
    DataverseAuthError,
    DataverseDuplicateError,
    DataverseRejectedError,
    DataverseRetriesExhaustedError,
    DataverseThrottledError,
    DataverseUnavailableError,
    error_from_response,
)
from services.dataverse.errors import parse_error_body, parse_retry_after
from services.errors import ServiceError


def _body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected", "transient"),
    [
        (
            400,
            _body("0x80044331", "The length of 'osot_product_name' exceeded 100."),
            {},
            DataverseRejectedError,
            False,
        ),
        (401, b"", {}, DataverseAuthError, False),
        (
            403,
            _body("0x80040220", "Principal user is missing prvCreateosot_table_product."),
            {},
            DataverseRejectedError,
            False,
        ),
        (
            404,
            _body("0x80040217", "osot_table_product With Id = 1 Does Not Exist"),
            {},
            DataverseRejectedError,
            False,
        ),
        (
            405,
            _body("0x80060888", "The requested resource does not support http method 'PUT'."),
            {},
            DataverseRejectedError,
            False,
        ),
        (
            412,
            _body("0x80040237", "A record with matching key values already exists."),
            {},
            DataverseDuplicateError,
            False,
        ),
        (
            412,
            _body("0x80060882", "The version of the existing record doesn't match."),
            {},
            DataverseRejectedError,
            False,
        ),
        (413, b"Request Entity Too Large", {}, DataverseRejectedError, False),
        (
            429,
            _body(
                "0x80072322",
                "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
            ),
            {"Retry-After": "17"},
            DataverseThrottledError,
            True,
        ),
        (500, _body("0x80044151", "SQL timeout expired."), {}, DataverseUnavailableError, True),
        (500, _body("0x80044150", "Generic SQL error."), {}, DataverseUnavailableError, True),
        (
            400,
            _body("0x80040255", "The transaction was already rolled back or committed."),
            {},
            DataverseUnavailableError,
            True,
        ),
        (501, _body("0x8006088b", "Not implemented."), {}, DataverseRejectedError, False),
        (502, b"<html><body>Bad Gateway</body></html>", {}, DataverseUnavailableError, True),
        (
            503,
            _body("0x80040216", "An unexpected error occurred."),
            {},
            DataverseUnavailableError,
            True,
        ),
        (504, b"", {}, DataverseUnavailableError, True),
    ],
    ids=[
        "400-validation",
        "401-after-refresh",
        "403-privilege",
        "404-not-found",
        "405-method",
        "412-duplicate-key",
        "412-concurrency",
        "413-too-large",
        "429-throttled",
        "500-sql-timeout",
        "500-sql-deadlock",
        "400-rolled-back-transaction",
        "501-not-implemented",
        "502-html",
        "503-unexpected",
        "504-no-body",
    ],
)
def test_error_from_response_maps_status_and_code(status, body, headers, expected, transient):
    # when
    error = error_from_response(status, headers, body, action="create the product")

    # then
    assert type(error) is expected
    assert isinstance(error, ServiceError)
    assert isinstance(error, TRANSIENT_ERRORS) is transient
    assert f"HTTP {status}" in error.message
    assert "create the product" in error.message
    assert "Application error" not in error.message


def test_error_from_response_names_the_dataverse_cause():
    error = error_from_response(
        400,
        {},
        _body(
            "0x8004431A",
            "A validation error occurred. "
            "The value 99 of 'osot_product_status' is outside the valid range.",
        ),
        action="create the product",
    )
    assert isinstance(error, DataverseRejectedError)
    assert (error.status, error.dataverse_code, error.code) == (
        400,
        "0x8004431A",
        "DATAVERSE_REJECTED",
    )
    assert "The value 99 of 'osot_product_status' is outside the valid range" in error.message
    assert "0x8004431A" in error.message


def test_throttled_error_carries_retry_after():
    error = error_from_response(429, {"retry-after": "2.5"}, b"", action="read product x")
    assert isinstance(error, DataverseThrottledError)
    assert error.retry_after == 2.5
    assert "2.5 s" in error.message


def test_unavailable_5xx_is_ambiguous():
    error = error_from_response(503, {}, b"", action="create the product")
    assert isinstance(error, DataverseUnavailableError)
    assert error.ambiguous is True
    assert "may or may not have been applied" in error.message


def test_duplicate_error_keeps_failing_content_id():
    error = error_from_response(
        412, {}, _body("0x80040237", "Cannot insert duplicate key."), action="x", content_id="2"
    )
    assert isinstance(error, DataverseDuplicateError)
    assert error.content_id == "2"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'{"error":{"code":"0x80040217","message":"Does Not Exist"}}',
            ("0x80040217", "Does Not Exist"),
        ),
        (b'{"Message":"An error has occurred."}', (None, "An error has occurred.")),
        (
            b"<html>\n  <b>Service   Unavailable</b>\n</html>",
            (None, "<html> <b>Service Unavailable</b> </html>"),
        ),
        (b"", (None, None)),
        (b'["odd"]', (None, '["odd"]')),
    ],
    ids=["dataverse", "aspnet", "html", "empty", "json-not-object"],
)
def test_parse_error_body_tolerates_any_body(body, expected):
    assert parse_error_body(body) == expected


def test_parse_retry_after_reads_seconds_and_http_dates():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) == 5.0
    assert parse_retry_after("soon") == 5.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 28 <= parse_retry_after(later) <= 30


def test_retries_exhausted_says_when_to_retry():
    last = DataverseThrottledError("Dataverse is throttling.", retry_after=12)
    error = DataverseRetriesExhaustedError(last, 11.2, attempts=3)
    assert error.code == "DATAVERSE_RETRIES_EXHAUSTED"
    assert error.retry_after_hint == 12
    assert "gave up after 3 attempts" in error.message
    assert "Try again in 12 s (after " in error.message
    assert f"{error.retry_at:%H:%M:%S} UTC" in error.message
    assert error.last_error is last
    assert error.ambiguous is False
