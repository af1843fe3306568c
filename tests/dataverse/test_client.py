"""DataverseClient over httpx.MockTransport: URLs, headers, results, errors and retries."""

from __future__ import annotations

import asyncio
from urllib.parse import unquote

import httpx
import pytest

from services.dataverse import (
    DataverseAuthError,
    DataverseDuplicateError,
    DataverseRejectedError,
    DataverseRetriesExhaustedError,
    DataverseThrottledError,
    DataverseUnavailableError,
    ProductRecord,
    ProductRef,
    TargetRecord,
)
from tests.dataverse.fakes import Router, dv_error, json_of, make_client

pytestmark = pytest.mark.anyio

PRODUCTS = "/api/data/v9.2/osot_table_products"
BATCH = "/api/data/v9.2/$batch"
PRODUCT_GUID = "11111111-2222-3333-4444-555555555555"
TARGET_GUID = "aaaaaaaa-2222-3333-4444-555555555555"
ORG = "6f1e3c9a-1111-4a4a-9c9c-000000000001"
PRODUCT_BODY = {"osot_table_productid": PRODUCT_GUID, "osot_product_code": "W-1"}
TARGET_BODY = {"osot_table_audience_targetid": TARGET_GUID, "osot_Table_Product@odata.bind": "$1"}
FOUND = httpx.Response(
    200, json={"value": [{"osot_table_productid": PRODUCT_GUID, "osot_product_code": "O'NEIL-1"}]}
)


def _batch_response(status: int, parts: list[tuple[str, str, str]]) -> httpx.Response:
    """A changesetresponse holding (content_id, status line, json body) parts."""
    inner = "".join(
        "--changesetresponse_x\r\nContent-Type: application/http\r\n"
        f"Content-Transfer-Encoding: binary\r\nContent-ID: {cid}\r\n\r\n"
        f"HTTP/1.1 {line}\r\nContent-Type: application/json\r\n\r\n{body}\r\n"
        for cid, line, body in parts
    )
    body = (
        "--batchresponse_y\r\nContent-Type: multipart/mixed; boundary=changesetresponse_x\r\n\r\n"
        f"{inner}--changesetresponse_x--\r\n--batchresponse_y--\r\n"
    )
    return httpx.Response(
        status,
        content=body.encode(),
        headers={"Content-Type": "multipart/mixed; boundary=batchresponse_y"},
    )


DUPLICATE_BODY = (
    '{"error":{"code":"0x80040237","message":"A record with matching key values already exists."}}'
)
CREATED = _batch_response(200, [("1", "204 No Content", ""), ("2", "204 No Content", "")])


async def test_find_product_by_code_sends_escaped_filter_and_odata_headers():
    # given
    router = Router({("GET", PRODUCTS): FOUND})

    # when
    async with make_client(router) as client:
        found = await client.find_product_by_code("o'neil-1")

    # then
    assert found == ProductRef(guid=PRODUCT_GUID, code="O'NEIL-1")
    (request,) = router.requests
    query = unquote(request.url.query.decode())
    assert query == (
        "$filter=osot_product_code eq 'o''neil-1'"
        "&$select=osot_table_productid,osot_product_code&$top=1"
    )
    assert b"+" not in request.url.query
    assert request.headers["OData-MaxVersion"] == "4.0"
    assert request.headers["OData-Version"] == "4.0"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Authorization"] == "Bearer t0ken"


async def test_find_product_by_code_returns_none_when_no_row():
    router = Router({("GET", PRODUCTS): httpx.Response(200, json={"value": []})})
    async with make_client(router) as client:
        assert await client.find_product_by_code("NOPE") is None


async def test_get_product_and_target_read_confirmation_fields():
    router = Router(
        {
            ("GET", f"{PRODUCTS}({PRODUCT_GUID})"): httpx.Response(
                200,
                json={
                    "osot_table_productid": PRODUCT_GUID,
                    "osot_productid": "osot-prod-0000001",
                    "osot_product_code": "W-1",
                    "_osot_table_organization_value": ORG,
                },
            ),
            ("GET", f"/api/data/v9.2/osot_table_audience_targets({TARGET_GUID})"): httpx.Response(
                200,
                json={
                    "osot_table_audience_targetid": TARGET_GUID,
                    "osot_target": "osot-tgt-0000001",
                    "_osot_table_product_value": PRODUCT_GUID,
                },
            ),
        }
    )
    async with make_client(router) as client:
        product = await client.get_product(PRODUCT_GUID.upper())
        target = await client.get_target(TARGET_GUID)
    assert product == ProductRecord(PRODUCT_GUID, "osot-prod-0000001", "W-1", ORG)
    assert target == TargetRecord(TARGET_GUID, "osot-tgt-0000001", PRODUCT_GUID)
    assert "_osot_table_organization_value" in unquote(router.requests[0].url.query.decode())


async def test_get_product_returns_none_on_record_not_found():
    router = Router(
        {("GET", f"{PRODUCTS}({PRODUCT_GUID})"): dv_error(404, "0x80040217", "Does Not Exist")}
    )
    async with make_client(router) as client:
        assert await client.get_product(PRODUCT_GUID) is None


async def test_get_product_raises_on_unknown_entity_set():
    router = Router()  # every path answers 404 "Resource not found for the segment"
    async with make_client(router) as client:
        with pytest.raises(DataverseRejectedError, match="0x8006088a"):
            await client.get_product(PRODUCT_GUID)


async def test_get_product_refuses_a_non_guid():
    async with make_client(Router()) as client:
        with pytest.raises(ValueError):
            await client.get_product("x) or (1")


async def test_create_product_with_target_posts_one_changeset():
    # given
    router = Router({("POST", BATCH): CREATED})

    # when
    async with make_client(router) as client:
        await client.create_product_with_target(
            product_columns=PRODUCT_BODY, target_columns=TARGET_BODY
        )

    # then
    (request,) = router.requests
    assert request.headers["Content-Type"].startswith('multipart/mixed; boundary="batch_')
    body = request.content.decode()
    assert body.count("POST /api/data/v9.2/osot_table_products HTTP/1.1") == 1
    assert body.count("POST /api/data/v9.2/osot_table_audience_targets HTTP/1.1") == 1
    assert '"osot_Table_Product@odata.bind":"$1"' in body


@pytest.mark.parametrize("outer", [200, 412], ids=["outer-200", "outer-412"])
async def test_create_product_with_target_duplicate_in_changeset(outer):
    failed = _batch_response(
        outer,
        [
            (
                "1",
                "412 Precondition Failed",
                DUPLICATE_BODY,
            )
        ],
    )
    router = Router({("POST", BATCH): failed})
    async with make_client(router) as client:
        with pytest.raises(DataverseDuplicateError, match="create the product") as caught:
            await client.create_product_with_target(
                product_columns=PRODUCT_BODY, target_columns=TARGET_BODY
            )
    assert caught.value.content_id == "1"


async def test_create_product_with_target_names_the_failing_target_part():
    failed = _batch_response(
        400,
        [
            (
                "2",
                "400 Bad Request",
                '{"error":{"code":"0x8004431A",'
                '"message":"Option 99 of osot_province is not valid."}}',
            )
        ],
    )
    router = Router({("POST", BATCH): failed})
    async with make_client(router) as client:
        with pytest.raises(DataverseRejectedError) as caught:
            await client.create_product_with_target(
                product_columns=PRODUCT_BODY, target_columns=TARGET_BODY
            )
    assert "create the audience target" in caught.value.message
    assert "Option 99 of osot_province is not valid." in caught.value.message
    assert caught.value.status == 400


async def test_create_product_with_target_plain_json_error():
    router = Router(
        {("POST", BATCH): dv_error(429, "0x80072322", "Too many requests", **{"Retry-After": "3"})}
    )
    async with make_client(router) as client:
        with pytest.raises(DataverseThrottledError) as caught:
            await client.create_product_with_target(
                product_columns=PRODUCT_BODY, target_columns=TARGET_BODY
            )
    assert caught.value.retry_after == 3


async def test_create_product_with_target_does_not_retry():
    router = Router({("POST", BATCH): [dv_error(503, None, "Service Unavailable"), CREATED]})
    async with make_client(router) as client:
        with pytest.raises(DataverseUnavailableError) as caught:
            await client.create_product_with_target(
                product_columns=PRODUCT_BODY, target_columns=TARGET_BODY
            )
    assert caught.value.ambiguous is True
    assert len(router.requests) == 1


async def test_create_product_with_target_unreadable_success_is_ambiguous():
    garbled = httpx.Response(
        200, content=b"--b\r\n", headers={"Content-Type": "multipart/mixed; boundary=b"}
    )
    router = Router({("POST", BATCH): garbled})
    async with make_client(router) as client:
        with pytest.raises(DataverseUnavailableError) as caught:
            await client.create_product_with_target(
                product_columns=PRODUCT_BODY, target_columns=TARGET_BODY
            )
    assert caught.value.ambiguous is True


@pytest.mark.parametrize(
    ("exc", "ambiguous"),
    [
        (httpx.ConnectError("connection refused"), False),
        (httpx.ConnectTimeout("connect timed out"), False),
        (httpx.PoolTimeout("pool exhausted"), False),
        (httpx.ReadTimeout("read timed out"), True),
        (httpx.WriteTimeout("write timed out"), True),
        (httpx.ReadError("connection reset"), True),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), True),
    ],
    ids=[
        "connect-error",
        "connect-timeout",
        "pool-timeout",
        "read-timeout",
        "write-timeout",
        "read-error",
        "disconnected",
    ],
)
async def test_transport_failures_are_unavailable_and_ambiguous_once_sent(exc, ambiguous):
    router = Router({("POST", BATCH): exc})
    async with make_client(router) as client:
        with pytest.raises(DataverseUnavailableError) as caught:
            await client.create_product_with_target(
                product_columns=PRODUCT_BODY, target_columns=TARGET_BODY
            )
    assert caught.value.ambiguous is ambiguous
    assert type(exc).__name__ in caught.value.message
    assert caught.value.__cause__ is exc


async def test_reads_retry_transient_errors_then_succeed():
    sleeps: list[float] = []
    router = Router(
        {("GET", PRODUCTS): [dv_error(503, None, "busy"), httpx.ReadError("reset"), FOUND]}
    )
    async with make_client(router, sleeps=sleeps, base=0.5) as client:
        assert await client.find_product_by_code("O'NEIL-1") is not None
    assert len(router.requests) == 3
    assert len(sleeps) == 2 and all(0 < s <= 8 for s in sleeps)


async def test_reads_honour_retry_after_exactly():
    # given
    sleeps: list[float] = []
    throttled = dv_error(
        429, "0x80072322", "Number of requests exceeded the limit", **{"Retry-After": "7"}
    )
    router = Router({("GET", PRODUCTS): [throttled, FOUND]})

    # when
    async with make_client(router, sleeps=sleeps) as client:
        await client.find_product_by_code("W-1")

    # then
    assert sleeps == [7.0]


async def test_reads_stop_when_total_wait_would_exceed_budget():
    # given: each 429 asks for 6 s; the budget is 10 s, so one wait fits and the second does not
    sleeps: list[float] = []
    throttled = dv_error(
        429, "0x80072322", "Number of requests exceeded the limit", **{"Retry-After": "6"}
    )
    router = Router({("GET", PRODUCTS): [throttled]})

    # when
    async with make_client(router, sleeps=sleeps, max_attempts=5, max_total_wait=10) as client:
        with pytest.raises(DataverseRetriesExhaustedError) as caught:
            await client.find_product_by_code("W-1")

    # then
    assert sleeps == [6.0]
    assert len(router.requests) == 2
    error = caught.value
    assert isinstance(error.last_error, DataverseThrottledError)
    assert error.retry_after_hint == 6
    assert "Try again in 6 s (after " in error.message
    assert "gave up after 2 attempts" in error.message


async def test_reads_stop_after_max_attempts():
    sleeps: list[float] = []
    router = Router({("GET", PRODUCTS): [dv_error(504, None, "Gateway Timeout")]})
    async with make_client(router, sleeps=sleeps, max_attempts=3) as client:
        with pytest.raises(DataverseRetriesExhaustedError) as caught:
            await client.find_product_by_code("W-1")
    assert len(router.requests) == 3
    assert len(sleeps) == 2
    assert isinstance(caught.value.last_error, DataverseUnavailableError)
    assert caught.value.ambiguous is True


@pytest.mark.parametrize(
    "response",
    [
        dv_error(400, "0x80060888", "Could not find a property named 'x'."),
        dv_error(403, "0x80040220", "Principal user is missing privilege."),
        dv_error(412, "0x80040237", "A record with matching key values already exists."),
    ],
    ids=["400", "403", "412"],
)
async def test_reads_never_retry_permanent_errors(response):
    router = Router({("GET", PRODUCTS): [response, FOUND]})
    async with make_client(router) as client:
        with pytest.raises((DataverseRejectedError, DataverseDuplicateError)):
            await client.find_product_by_code("W-1")
    assert len(router.requests) == 1


async def test_concurrent_reads_keep_separate_retry_state():
    # Each call copies the policy; a shared AsyncRetrying would mix up attempt counts.
    calls: dict[str, int] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        code = unquote(request.url.query.decode()).split("'")[1]
        calls[code] = calls.get(code, 0) + 1
        if calls[code] < 3:
            return dv_error(503, None, "busy")
        return httpx.Response(
            200, json={"value": [{"osot_table_productid": PRODUCT_GUID, "osot_product_code": code}]}
        )

    router = Router({("GET", PRODUCTS): handler})
    async with make_client(router, max_attempts=3) as client:
        found = await asyncio.gather(*(client.find_product_by_code(f"C-{i}") for i in range(8)))
    assert [f.code for f in found if f] == [f"C-{i}" for i in range(8)]
    assert set(calls.values()) == {3}


async def test_auth_failure_is_not_retried():
    router = Router({("GET", PRODUCTS): httpx.Response(401)})
    async with make_client(router) as client:
        with pytest.raises(DataverseAuthError, match="HTTP 401"):
            await client.find_product_by_code("W-1")
    assert len(router.requests) == 1


async def test_build_http_client_settings():
    async with make_client(Router()) as client:
        http = client._http
        assert str(http.base_url) == "https://org.example.crm.dynamics.com/api/data/v9.2/"
        assert http.timeout.read == 15
        assert http.timeout.connect == 5


def test_json_of_helper_roundtrip():
    request = httpx.Request("POST", "https://x", json={"a": 1})
    assert json_of(request) == {"a": 1}


async def test_create_product_with_target_failure_without_changeset_wrapper():
    # Microsoft's "Handling errors" shape: outer status = the failing request's, no Content-ID.
    from tests.dataverse.test_batch import FAILED_OUTER_STATUS

    response = httpx.Response(
        400,
        content=FAILED_OUTER_STATUS.encode(),
        headers={"Content-Type": 'multipart/mixed; boundary="batchresponse_156da4b8"'},
    )
    router = Router({("POST", BATCH): response})
    async with make_client(router) as client:
        with pytest.raises(DataverseRejectedError) as caught:
            await client.create_product_with_target(
                product_columns=PRODUCT_BODY, target_columns=TARGET_BODY
            )
    assert caught.value.dataverse_code == "0x80044331"
    assert "create the product and its audience target" in caught.value.message
    assert "exceeded the maximum allowed length of '200'" in caught.value.message
