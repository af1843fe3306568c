"""DataverseClient against the local Dataverse emulator, over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from emulator import DEFAULT_ORGANIZATIONS, EmulatorConfig, start_emulator
from emulator.testing import EmulatorControl, drop, error, throttle, unavailable, write_then_drop
from services.dataverse import (
    CHANGESET_PRODUCT_REF,
    DataverseAuthError,
    DataverseClient,
    DataverseDuplicateError,
    DataverseRejectedError,
    DataverseRetriesExhaustedError,
    DataverseThrottledError,
    DataverseUnavailableError,
    StaticTokenAuth,
    build_http_client,
    product_columns,
    retry_policy,
    target_columns,
)
from services.models import AudienceTargetData, ProductData

pytestmark = pytest.mark.anyio

ORG = DEFAULT_ORGANIZATIONS[0][0]


class Emu:
    """A running emulator, its control API, and a client whose waits are recorded, not slept."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token
        self.control = EmulatorControl(base_url, token=token)
        self.sleeps: list[float] = []

    def client(self, token: str | None = None, **policy: Any) -> DataverseClient:
        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        http = build_http_client(self.base_url, StaticTokenAuth(token or self.token), timeout=5)
        return DataverseClient(http, retrying=retry_policy(**policy).copy(sleep=sleep))


@pytest.fixture
async def emu() -> AsyncIterator[Emu]:
    config = EmulatorConfig(port=0, db_path=":memory:", token="emulator-token")
    async with start_emulator(config) as running:
        yield Emu(running.base_url, running.token)


@pytest.fixture
async def client(emu: Emu) -> AsyncIterator[DataverseClient]:
    async with emu.client() as dataverse:
        yield dataverse


def _bodies(
    code: str = "WIDGET-1", **product: Any
) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    product_guid, target_guid = str(uuid.uuid4()), str(uuid.uuid4())
    fields: dict[str, Any] = {
        "productName": "Widget",
        "productCode": code,
        "productDescription": "A widget for testing the commit.",
        "productCategory": 0,
        "productStatus": 1,
        "productGlCode": 3,
        "userType": 1,
        "taxes": Decimal("13.00"),
        "generalPrice": Decimal("999999.99"),
        "productYear": "2026",
    }
    data = ProductData(**(fields | product))
    target = AudienceTargetData(province=[1, 11], gender=[], language=[2])
    return (
        product_columns(data, ORG, product_guid),
        target_columns(target, target_guid, CHANGESET_PRODUCT_REF),
        product_guid,
        target_guid,
    )


async def test_create_product_with_target_binds_both_rows(emu: Emu, client: DataverseClient):
    # given
    product_body, target_body, product_guid, target_guid = _bodies()

    # when
    await client.create_product_with_target(
        product_columns=product_body, target_columns=target_body
    )

    # then
    (product,) = await emu.control.products()
    (target,) = await emu.control.targets()
    assert product["osot_table_productid"] == product_guid
    assert product["_osot_table_organization_value"] == ORG
    assert Decimal(str(product["osot_general_price"])) == Decimal("999999.99")
    assert target["osot_table_audience_targetid"] == target_guid
    assert target["_osot_table_product_value"] == product_guid
    assert (target["osot_province"], target["osot_gender"], target["osot_language"]) == (
        "1,11",
        None,
        "2",
    )
    (batch,) = [r for r in await emu.control.requests() if "$batch" in r["path"]]
    assert [op["content_id"] for op in batch["operations"]] == ["1", "2"]


async def test_get_product_and_target_confirm_a_commit(client: DataverseClient):
    product_body, target_body, product_guid, target_guid = _bodies()
    await client.create_product_with_target(
        product_columns=product_body, target_columns=target_body
    )

    product = await client.get_product(product_guid)
    target = await client.get_target(target_guid)

    assert product is not None and target is not None
    assert (product.code, product.organization_guid) == ("WIDGET-1", ORG)
    assert product.product_id and product.product_id.startswith("osot-prod-")
    assert target.product_guid == product_guid
    assert target.target_id and target.target_id.startswith("osot-tgt-")
    assert await client.get_product(str(uuid.uuid4())) is None
    assert await client.get_target(str(uuid.uuid4())) is None


async def test_find_product_by_code_is_case_insensitive(client: DataverseClient):
    product_body, target_body, product_guid, _ = _bodies(
        "WIDGET-1", productStatus=0
    )  # not AVAILABLE: still found (D5)
    await client.create_product_with_target(
        product_columns=product_body, target_columns=target_body
    )

    found = await client.find_product_by_code("widget-1")

    assert found is not None and found.guid == product_guid
    assert await client.find_product_by_code("WIDGET-2") is None
    assert await client.find_product_by_code("it's") is None  # a quote is escaped, not injected


async def test_duplicate_replay_raises_duplicate_and_keeps_one_product(
    emu: Emu, client: DataverseClient
):
    # given
    product_body, target_body, _, _ = _bodies()
    await client.create_product_with_target(
        product_columns=product_body, target_columns=target_body
    )

    # when
    with pytest.raises(DataverseDuplicateError) as caught:
        await client.create_product_with_target(
            product_columns=product_body, target_columns=target_body
        )

    # then
    assert caught.value.content_id == "1"
    assert "0x80040237" in caught.value.message
    assert len(await emu.control.products()) == 1
    assert len(await emu.control.targets()) == 1


async def test_invalid_option_is_rejected_with_emulator_message(emu: Emu, client: DataverseClient):
    product_body, target_body, _, _ = _bodies()
    product_body["osot_product_status"] = 99

    with pytest.raises(DataverseRejectedError) as caught:
        await client.create_product_with_target(
            product_columns=product_body, target_columns=target_body
        )

    assert caught.value.status == 400
    assert "The value 99 of 'osot_product_status'" in caught.value.message
    assert "is outside the valid range" in caught.value.message
    assert await emu.control.products() == []


async def test_failing_target_rolls_back_the_product(emu: Emu, client: DataverseClient):
    product_body, target_body, _, _ = _bodies()
    target_body["osot_province"] = "1,999"

    with pytest.raises(DataverseRejectedError) as caught:
        await client.create_product_with_target(
            product_columns=product_body, target_columns=target_body
        )

    assert "create the audience target" in caught.value.message
    assert await emu.control.products() == []  # the change set is atomic (D1 fixed)
    assert await emu.control.targets() == []


async def test_dropped_connection_is_ambiguous_and_writes_nothing(
    emu: Emu, client: DataverseClient
):
    await emu.control.set_faults(queue=[drop("batch")])
    product_body, target_body, _, _ = _bodies()

    with pytest.raises(DataverseUnavailableError) as caught:
        await client.create_product_with_target(
            product_columns=product_body, target_columns=target_body
        )

    assert caught.value.ambiguous is True
    assert await emu.control.products() == []


async def test_write_then_drop_is_ambiguous_and_reconciles(emu: Emu, client: DataverseClient):
    # given: the commit lands but the answer is lost
    await emu.control.set_faults(queue=[write_then_drop("batch")])
    product_body, target_body, product_guid, target_guid = _bodies()
    with pytest.raises(DataverseUnavailableError) as caught:
        await client.create_product_with_target(
            product_columns=product_body, target_columns=target_body
        )
    assert caught.value.ambiguous is True

    # when: the caller reconciles, then replays
    product = await client.get_product(product_guid)
    target = await client.get_target(target_guid)
    with pytest.raises(DataverseDuplicateError):
        await client.create_product_with_target(
            product_columns=product_body, target_columns=target_body
        )

    # then
    assert product is not None and target is not None and target.product_guid == product_guid
    assert len(await emu.control.products()) == 1


async def test_throttled_batch_carries_retry_after(emu: Emu, client: DataverseClient):
    await emu.control.set_faults(queue=[throttle("batch", retry_after=1)])
    product_body, target_body, _, _ = _bodies()

    with pytest.raises(DataverseThrottledError) as caught:
        await client.create_product_with_target(
            product_columns=product_body, target_columns=target_body
        )

    assert caught.value.retry_after == 1
    assert caught.value.dataverse_code == "0x80072322"
    assert await emu.control.products() == []


async def test_reads_wait_out_throttle_and_outage(emu: Emu, client: DataverseClient):
    await emu.control.set_faults(
        queue=[
            throttle("read", retry_after=1),
            error(500, "0x80044151", "SQL timeout expired.", "read"),
        ]
    )

    assert await client.find_product_by_code("NOPE") is None

    assert emu.sleeps[0] == 1.0
    assert len(emu.sleeps) == 2


async def test_reads_give_up_with_a_time_to_retry(emu: Emu):
    await emu.control.set_faults(queue=[unavailable("read")] * 3)
    async with emu.client(max_attempts=3) as client:
        with pytest.raises(DataverseRetriesExhaustedError) as caught:
            await client.get_product(str(uuid.uuid4()))
    assert "gave up after 3 attempts" in caught.value.message
    assert "Try again in" in caught.value.message
    assert isinstance(caught.value.last_error, DataverseUnavailableError)


async def test_wrong_token_raises_auth_error(emu: Emu):
    async with emu.client(token="not-the-token") as client:
        with pytest.raises(DataverseAuthError):
            await client.find_product_by_code("X")
