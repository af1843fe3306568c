"""The $batch wire format: the change set we send and the answers we must understand."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest

from services.dataverse.batch import (
    BatchFormatError,
    BatchOperation,
    build_changeset,
    dumps,
    first_failure,
    parse_batch_response,
)

PRODUCT_GUID = "11111111-2222-3333-4444-555555555555"
TARGET_GUID = "aaaaaaaa-2222-3333-4444-555555555555"
ORG_BIND = "/osot_table_organizations(6f1e3c9a-1111-4a4a-9c9c-000000000001)"


def _changeset() -> tuple[str, bytes, str, str]:
    request = build_changeset(
        [
            BatchOperation(
                "osot_table_products",
                {
                    "osot_table_productid": PRODUCT_GUID,
                    "osot_product_code": "WIDGET-1",
                    "osot_general_price": Decimal("12.50"),
                    "osot_Table_Organization@odata.bind": ORG_BIND,
                },
            ),
            BatchOperation(
                "osot_table_audience_targets",
                {
                    "osot_table_audience_targetid": TARGET_GUID,
                    "osot_Table_Product@odata.bind": "$1",
                },
            ),
        ]
    )
    return request.content_type, request.body, request.boundary, request.changeset_boundary


def test_build_changeset_uses_crlf_only():
    _, body, _, _ = _changeset()
    assert b"\n" not in body.replace(b"\r\n", b"")
    assert body.endswith(b"\r\n")


def test_build_changeset_matches_documented_layout():
    content_type, body, batch, changeset = _changeset()
    assert re.fullmatch(r"batch_[0-9a-f-]{36}", batch)
    assert re.fullmatch(r"changeset_[0-9a-f-]{36}", changeset)
    assert content_type == f'multipart/mixed; boundary="{batch}"'
    lines = body.decode().split("\r\n")
    # JSON bodies are compared as JSON in the next test; here only their place matters.
    assert lines[11].startswith("{") and lines[20].startswith("{")
    lines[11] = lines[20] = "<json>"
    assert lines == [
        f"--{batch}",
        f'Content-Type: multipart/mixed; boundary="{changeset}"',
        "",
        f"--{changeset}",
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "Content-ID: 1",
        "",
        "POST /api/data/v9.2/osot_table_products HTTP/1.1",
        "Content-Type: application/json; type=entry",
        "",
        "<json>",
        f"--{changeset}",
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "Content-ID: 2",
        "",
        "POST /api/data/v9.2/osot_table_audience_targets HTTP/1.1",
        "Content-Type: application/json; type=entry",
        "",
        "<json>",
        f"--{changeset}--",
        "",
        f"--{batch}--",
        "",
    ]


def test_build_changeset_parts_in_order_with_json_bodies():
    _, body, _, changeset = _changeset()
    text = body.decode()
    parts = text.split(f"--{changeset}")[1:3]
    product_head, product_json = parts[0].split("\r\n\r\n", 2)[1:]
    assert product_head == (
        "POST /api/data/v9.2/osot_table_products HTTP/1.1\r\n"
        "Content-Type: application/json; type=entry"
    )
    assert "Content-ID: 1\r\n" in parts[0]
    assert json.loads(product_json) == {
        "osot_table_productid": PRODUCT_GUID,
        "osot_product_code": "WIDGET-1",
        "osot_general_price": 12.5,
        "osot_Table_Organization@odata.bind": ORG_BIND,
    }
    target_head, target_json = parts[1].split("\r\n\r\n", 2)[1:]
    assert target_head.startswith("POST /api/data/v9.2/osot_table_audience_targets HTTP/1.1\r\n")
    assert "Content-ID: 2\r\n" in parts[1]
    assert json.loads(target_json) == {
        "osot_table_audience_targetid": TARGET_GUID,
        "osot_Table_Product@odata.bind": "$1",
    }


def test_build_changeset_uses_fresh_boundaries():
    assert _changeset()[2] != _changeset()[2]


def test_dumps_writes_decimals_as_exact_numbers():
    assert (
        dumps({"a": Decimal("999999999.99"), "b": Decimal("0.10")}) == '{"a":999999999.99,"b":0.1}'
    )
    with pytest.raises(ValueError, match="exact"):
        dumps({"a": Decimal("0.12345678901234567890")})
    with pytest.raises(ValueError):
        dumps({"a": Decimal("NaN")})


# The success answer of the change-set example in Microsoft's batch article.
SUCCESS = (
    "--batchresponse_f27ef42d\r\n"
    "Content-Type: multipart/mixed; boundary=changesetresponse_64cc3fff\r\n"
    "\r\n"
    "--changesetresponse_64cc3fff\r\n"
    "Content-Type: application/http\r\n"
    "Content-Transfer-Encoding: binary\r\n"
    "Content-ID: 1\r\n"
    "\r\n"
    "HTTP/1.1 204 No Content\r\n"
    "OData-Version: 4.0\r\n"
    "Location: https://org/api/data/v9.2/osot_table_products(11111111-2222-3333-4444-555555555555)\r\n"
    "OData-EntityId: https://org/api/data/v9.2/osot_table_products(11111111-2222-3333-4444-555555555555)\r\n"
    "\r\n"
    "\r\n"
    "--changesetresponse_64cc3fff\r\n"
    "Content-Type: application/http\r\n"
    "Content-Transfer-Encoding: binary\r\n"
    "Content-ID: 2\r\n"
    "\r\n"
    "HTTP/1.1 201 Created\r\n"
    "Content-Type: application/json; odata.metadata=minimal\r\n"
    "\r\n"
    '{"osot_target":"osot-tgt-0000001"}\r\n'
    "--changesetresponse_64cc3fff--\r\n"
    "--batchresponse_f27ef42d--\r\n"
)

# Without continue-on-error the batch answers with the failing request's status and that
# request's response (Microsoft's "Handling errors" example): no changesetresponse, no Content-ID.
FAILED_OUTER_STATUS = (
    "--batchresponse_156da4b8\r\n"
    "Content-Type: application/http\r\n"
    "Content-Transfer-Encoding: binary\r\n"
    "\r\n"
    "HTTP/1.1 400 Bad Request\r\n"
    "REQ_ID: 5ecd1cb3\r\n"
    "Content-Type: application/json; odata.metadata=minimal\r\n"
    "OData-Version: 4.0\r\n"
    "\r\n"
    '{"error":{"code":"0x80044331","message":"A validation error occurred.  The length of the '
    "'subject' attribute of the 'task' entity exceeded the maximum allowed length of '200'.\"}}\r\n"
    "--batchresponse_156da4b8--\r\n"
)

# A failed change set wrapped in a changesetresponse with the failing part's Content-ID;
# the outer status may be 200 (continue-on-error) or the part's status.
FAILED_IN_CHANGESET = (
    "--batchresponse_aa\r\n"
    'Content-Type: multipart/mixed; boundary="changesetresponse_bb"\r\n'
    "\r\n"
    "--changesetresponse_bb\r\n"
    "Content-Type: application/http\r\n"
    "Content-Transfer-Encoding: binary\r\n"
    "Content-ID: 1\r\n"
    "\r\n"
    "HTTP/1.1 412 Precondition Failed\r\n"
    "Content-Type: application/json; odata.metadata=minimal\r\n"
    "\r\n"
    '{"error":{"code":"0x80040237","message":"A record with matching key values already exists."}}'
    "\r\n"
    "--changesetresponse_bb--\r\n"
    "--batchresponse_aa--"
)


def test_parse_batch_response_flattens_changeset_parts():
    parts = parse_batch_response(
        "multipart/mixed; boundary=batchresponse_f27ef42d", SUCCESS.encode()
    )
    assert [(p.status, p.content_id) for p in parts] == [(204, "1"), (201, "2")]
    assert parts[0].reason == "No Content"
    assert (
        parts[0]
        .headers["odata-entityid"]
        .endswith("osot_table_products(11111111-2222-3333-4444-555555555555)")
    )
    assert parts[0].body is None
    assert parts[1].body == {"osot_target": "osot-tgt-0000001"}
    assert first_failure(parts) is None


def test_parse_batch_response_failed_request_without_changeset_wrapper():
    parts = parse_batch_response(
        'multipart/mixed; boundary="batchresponse_156da4b8"', FAILED_OUTER_STATUS.encode()
    )
    failure = first_failure(parts)
    assert failure is not None
    assert (failure.status, failure.content_id) == (400, None)
    assert failure.body["error"]["code"] == "0x80044331"
    assert failure.headers["req_id"] == "5ecd1cb3"


def test_parse_batch_response_failed_part_inside_changeset():
    parts = parse_batch_response(
        "multipart/mixed; boundary=batchresponse_aa", FAILED_IN_CHANGESET.encode()
    )
    failure = first_failure(parts)
    assert failure is not None
    assert (failure.status, failure.content_id) == (412, "1")
    assert failure.body == {
        "error": {
            "code": "0x80040237",
            "message": "A record with matching key values already exists.",
        }
    }


def test_parse_batch_response_tolerates_bare_lf():
    parts = parse_batch_response(
        "multipart/mixed; boundary=batchresponse_f27ef42d", SUCCESS.replace("\r\n", "\n").encode()
    )
    assert [p.status for p in parts] == [204, 201]


def test_parse_batch_response_keeps_non_json_part_text():
    body = (
        "--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 400 Bad Request\r\n\r\n"
        "Content-ID Reference: '$1' does not exist in the batch context.\r\n--b--\r\n"
    )
    (part,) = parse_batch_response("multipart/mixed; boundary=b", body.encode())
    assert part.body is None
    assert part.text == "Content-ID Reference: '$1' does not exist in the batch context."


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"error":{}}'),
        (
            "multipart/mixed; boundary=b",
            b"--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 204\r\n",
        ),
        (
            "multipart/mixed; boundary=b",
            b"--b\r\nContent-Type: application/http\r\n\r\nnot http\r\n--b--",
        ),
    ],
    ids=["not-multipart", "unterminated", "no-status-line"],
)
def test_parse_batch_response_rejects_malformed_bodies(content_type, body):
    with pytest.raises(BatchFormatError):
        parse_batch_response(content_type, body)
