"""The admin console in Chromium, against the running app, Redis and the Dataverse emulator.

The page is driven only through the contract of issue 10: controls named as the GraphQL
input fields, the buttons "New draft", "Save product", "Save target", "Commit",
"Cancel draft" and "Create product", a progressbar and the "expires in" text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect
from redis.asyncio import Redis

from emulator.testing import EmulatorControl, throttle
from tests.browser.conftest import assert_accessible, console_server, screenshot
from tests.graphql_documents import ADD_PRODUCT, CONFIGURE_TARGET, SESSION, product_input
from tests.helpers import GraphQLClient, RedisServer, create_session, token

pytestmark = pytest.mark.anyio

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


async def sign_in(open_page: Any, url: str, **size: int) -> Page:
    page: Page = await open_page(url, **size)
    await page.goto(f"{url}/#token={token()}")
    await expect(page.get_by_text("Signed in as user-1")).to_be_visible()
    return page


async def fill_product(page: Page, **values: str) -> None:
    """Type or choose each value in the control named as the input field."""
    for name, value in values.items():
        control = page.locator(f"[name={name}]")
        if await control.evaluate("e => e.tagName") == "SELECT":
            await control.select_option(value)
        else:
            await control.fill(value)


WORKSHOP = {
    "productName": "Advanced OT Workshop 2026",
    "productCode": "osot-ws-2026",
    "productDescription": "Professional development workshop for OTs.",
    "productCategory": "EVENT",
    "productStatus": "AVAILABLE",
    "productGlCode": "WORKSHOPS_AND_WEBINARS_4475",
    "userType": "OT_OTA",
    "generalPrice": "199.99",
    "taxes": "13",
    "productYear": "2026",
}


def progress(page: Page) -> Any:
    return page.get_by_role("progressbar")


async def prepared_draft(client: GraphQLClient, **product: Any) -> str:
    sid = (await create_session(client))["sessionId"]
    added = await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input(**product)})
    assert added["addProduct"]["userErrors"] == []
    return sid


@pytest.fixture
async def api(app_url: str) -> Any:
    async with httpx.AsyncClient(base_url=app_url, timeout=30) as http:
        yield GraphQLClient(http, token())


async def test_happy_path_creates_the_product_and_its_target_in_dataverse(
    context_factory: Any, app_url: str, dataverse: EmulatorControl, tmp_path: Path
) -> None:
    # given a signed-in page: the token has left the address bar
    page = await sign_in(context_factory, app_url)
    assert "token" not in page.url

    # when the admin opens a draft and fills the product form
    await page.get_by_role("button", name="New draft").click()
    await expect(progress(page)).to_have_attribute("aria-valuenow", "25")
    await expect(page.get_by_text(re.compile(r"expires in 1 h 59 min"))).to_be_visible()
    await fill_product(page, **WORKSHOP)
    await page.get_by_role("button", name="Save product").click()

    # then the product is saved, its code normalized
    await expect(progress(page)).to_have_attribute("aria-valuenow", "50")
    await expect(page.locator("[name=productCode]")).to_have_value("OSOT-WS-2026")
    await page.evaluate("window.scrollTo(0, 0)")
    await screenshot(page, "draft", tmp_path)

    # when the target is chosen in the multi-selects
    await page.locator("select[multiple][name=province]").select_option(["ONTARIO", "QUEBEC"])
    await page.locator("select[multiple][name=membershipCategory]").select_option(["OT_PR"])
    await expect(page.get_by_text("Province: Ontario, Quebec")).to_be_visible()
    await page.locator("#step-target").evaluate("e => e.scrollIntoView()")
    await screenshot(page, "target", tmp_path)
    await page.get_by_role("button", name="Save target").click()
    await expect(progress(page)).to_have_attribute("aria-valuenow", "75")
    await page.get_by_role("button", name="Commit").click()

    # then a dialog names the product and summarizes the target
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("Advanced OT Workshop 2026 (OSOT-WS-2026)")
    await expect(dialog).to_contain_text("Province (2), Membership category (1)")
    await screenshot(page, "confirm", tmp_path)
    await assert_accessible(page)

    # when the admin confirms
    await dialog.get_by_role("button", name="Create product").click()

    # then the product GUID is shown, and product and target are in Dataverse
    guid = page.locator("[data-guid=product]")
    await expect(guid).to_have_text(GUID)
    await expect(progress(page)).to_have_attribute("aria-valuenow", "100")
    await expect(page.get_by_role("button", name="Commit")).to_be_disabled()
    await page.evaluate("window.scrollTo(0, 0)")
    await screenshot(page, "committed", tmp_path)
    await assert_accessible(page)
    product_guid = await guid.text_content()
    [product] = await dataverse.products()
    [target] = await dataverse.targets()
    assert product["osot_table_productid"] == product_guid
    assert product["osot_product_code"] == "OSOT-WS-2026"
    assert product["osot_general_price"] == 199.99
    assert target["_osot_table_product_value"] == product_guid
    assert target["osot_province"] == "1,11"
    assert target["osot_membership_category"] == "1"


async def test_a_rule_error_is_shown_at_its_field_and_nothing_is_saved(
    context_factory: Any, app_url: str, api: GraphQLClient, tmp_path: Path
) -> None:
    # given a new draft and a price that is not an amount
    page = await sign_in(context_factory, app_url)
    await page.get_by_role("button", name="New draft").click()
    await fill_product(page, **{**WORKSHOP, "generalPrice": "12,50"})
    await page.get_by_role("button", name="Save product").click()

    # then the price is marked before anything is sent
    price = page.locator("[name=generalPrice]")
    await expect(price).to_have_attribute("aria-invalid", "true")
    await expect(price).to_be_focused()
    await expect(price).to_have_accessible_description(re.compile("dollars and cents"))

    # when the price is fixed but the product is insurance without a type or limit
    await fill_product(page, generalPrice="12.50", productCategory="INSURANCE")
    await page.get_by_role("button", name="Save product").click()

    # then the service's rule errors are shown at their fields, the first focused
    insurance_type = page.locator("[name=insuranceType]")
    await expect(insurance_type).to_have_attribute("aria-invalid", "true")
    await expect(insurance_type).to_be_focused()
    message = page.locator(f"#{await insurance_type.get_attribute('aria-describedby')}")
    await expect(message).to_be_visible()
    await expect(message).to_have_text("Insurance products need an insurance type.")
    await expect(page.locator("[name=insuranceLimit]")).to_have_attribute("aria-invalid", "true")
    await expect(price).not_to_have_attribute("aria-invalid", "true")
    await screenshot(page, "rule-error", tmp_path)
    await assert_accessible(page)
    # and nothing was saved
    await expect(progress(page)).to_have_attribute("aria-valuenow", "25")
    [draft] = (await api.data("query { mySessions { sessionId product { productCode } } }"))[
        "mySessions"
    ]
    assert draft["product"] is None


async def test_a_commit_retry_is_shown_live_then_success(
    context_factory: Any,
    app_url: str,
    api: GraphQLClient,
    dataverse: EmulatorControl,
    tmp_path: Path,
) -> None:
    # given a draft with a product, opened in the console, and Dataverse throttling once
    await prepared_draft(api)
    page = await sign_in(context_factory, app_url)
    await expect(progress(page)).to_have_attribute("aria-valuenow", "50")
    await dataverse.set_faults(queue=[throttle("batch", retry_after=2)])

    # when the admin commits
    await page.get_by_role("button", name="Commit").click()
    await page.get_by_role("dialog").get_by_role("button", name="Create product").click()

    # then the retry appears while it waits, with its cause and a countdown
    retry = page.locator(".commit-log li", has_text="Attempt 2")
    await expect(retry).to_contain_text("Number of requests exceeded the limit")
    await expect(retry).to_contain_text(re.compile(r"in [12] s"))
    await page.locator("#step-commit").scroll_into_view_if_needed()
    await screenshot(page, "retry", tmp_path)
    # and then the commit succeeds
    await expect(page.locator("[data-guid=product]")).to_have_text(GUID)
    await expect(progress(page)).to_have_attribute("aria-valuenow", "100")
    assert len(await dataverse.products()) == 1


async def test_a_failed_commit_is_explained_then_fixed_and_committed_again(
    context_factory: Any, app_url: str, api: GraphQLClient, dataverse: EmulatorControl
) -> None:
    # given a draft targeting Quebec, an option Dataverse has since retired
    sid = await prepared_draft(api)
    target = {"province": ["ONTARIO", "QUEBEC"]}
    configured = await api.data(CONFIGURE_TARGET, {"sessionId": sid, "input": target})
    assert configured["configureTarget"]["userErrors"] == []
    await dataverse.retire_options("osot_table_audience_targets", "osot_province", [11])
    page = await sign_in(context_factory, app_url)
    await expect(progress(page)).to_have_attribute("aria-valuenow", "75")

    # when the admin commits
    await page.get_by_role("button", name="Commit").click()
    await page.get_by_role("dialog").get_by_role("button", name="Create product").click()

    # then the failure says why, and Commit is offered again
    failure = page.get_by_role("alert").filter(has_text="The commit failed")
    await expect(failure).to_contain_text("osot_province")
    await expect(failure).to_contain_text("Nothing was written")
    await expect(page.get_by_role("button", name="Commit")).to_be_enabled()

    # when the target is fixed and the draft committed again
    await page.locator("select[multiple][name=province]").select_option(["ONTARIO"])
    await page.get_by_role("button", name="Save target").click()
    await expect(page.get_by_text(re.compile(r"Target saved \(version \d+\)"))).to_be_visible()
    await page.get_by_role("button", name="Commit").click()
    await page.get_by_role("dialog").get_by_role("button", name="Create product").click()

    # then it is in Dataverse, with the target as fixed
    await expect(page.locator("[data-guid=product]")).to_have_text(GUID)
    [target_row] = await dataverse.targets()
    assert target_row["osot_province"] == "1"


async def test_the_15_minute_warning_then_expiry(
    context_factory: Any,
    redis_server: RedisServer,
    redis: Redis,
    dataverse: EmulatorControl,
    tmp_path: Path,
) -> None:
    # given drafts that live 6 seconds: less than 15 minutes from the start
    async with console_server(redis_server, session_ttl_seconds=6) as url:
        page = await sign_in(context_factory, url)

        # when a draft is opened
        await page.get_by_role("button", name="New draft").click()

        # then the time left and the warning show
        await expect(page.get_by_text(re.compile(r"expires in \d s"))).to_be_visible()
        warning = page.get_by_role("alert").filter(has_text="Less than 15 minutes left")
        await expect(warning).to_be_visible()
        await page.evaluate("window.scrollTo(0, 0)")
        await screenshot(page, "expiring", tmp_path)

        # and then the expiry: the forms close and the draft leaves the list
        await expect(page.get_by_text("This draft has expired")).to_be_visible()
        await expect(page.get_by_role("button", name="Save product")).to_be_disabled()
        await expect(page.get_by_role("button", name="Commit")).to_be_disabled()
        await expect(page.get_by_text("No open drafts.")).to_be_visible()
        await page.evaluate("window.scrollTo(0, 0)")
        await screenshot(page, "expired", tmp_path)


async def test_a_reload_resumes_the_open_draft(
    context_factory: Any, app_url: str, tmp_path: Path
) -> None:
    # given a draft with a saved product, then a second, newer draft
    page = await sign_in(context_factory, app_url)
    await page.get_by_role("button", name="New draft").click()
    await fill_product(page, **WORKSHOP)
    await page.get_by_role("button", name="Save product").click()
    await expect(progress(page)).to_have_attribute("aria-valuenow", "50")
    await page.get_by_role("button", name="New draft").click()
    await expect(progress(page)).to_have_attribute("aria-valuenow", "25")

    # when the page is reloaded
    await page.reload()

    # then the newest draft is open again without a click, and the other is listed
    await expect(progress(page)).to_have_attribute("aria-valuenow", "25")
    await expect(page.get_by_text(re.compile(r"expires in 1 h \d+ min"))).to_be_visible()
    older = page.get_by_role("button", name=re.compile("Open draft Advanced OT Workshop 2026"))

    # when the admin switches to the older one and reloads
    await older.click()
    await expect(page.locator("[name=productName]")).to_have_value(WORKSHOP["productName"])
    await page.reload()

    # then that one is shown again, product and all
    await expect(page.locator("[name=productName]")).to_have_value(WORKSHOP["productName"])
    await expect(page.locator("[name=productCode]")).to_have_value("OSOT-WS-2026")
    await expect(progress(page)).to_have_attribute("aria-valuenow", "50")


async def test_a_change_made_through_the_api_appears_without_reload(
    context_factory: Any, app_url: str, api: GraphQLClient, tmp_path: Path
) -> None:
    # given a draft open in the console
    sid = await prepared_draft(api)
    page = await sign_in(context_factory, app_url)
    await expect(page.locator("[name=productName]")).to_have_value("Advanced OT Workshop 2026")
    await page.evaluate("window.notReloaded = true")

    # when another client renames the product and sets a target
    renamed = await api.data(
        ADD_PRODUCT, {"sessionId": sid, "input": product_input(productName="Renamed Workshop")}
    )
    assert renamed["addProduct"]["userErrors"] == []
    target = await api.data(CONFIGURE_TARGET, {"sessionId": sid, "input": {"gender": ["FEMALE"]}})
    assert target["configureTarget"]["userErrors"] == []

    # then the page shows both, without a reload
    await expect(page.locator("[name=productName]")).to_have_value("Renamed Workshop")
    await expect(progress(page)).to_have_attribute("aria-valuenow", "75")
    await expect(page.locator("select[name=gender] option:checked")).to_have_text(["Female"])
    assert await page.evaluate("window.notReloaded") is True

    # when the admin is editing the product while another client changes it again
    await page.locator("[name=productDescription]").fill("My unsaved words about it.")
    again = await api.data(
        ADD_PRODUCT, {"sessionId": sid, "input": product_input(productName="Third Name")}
    )
    assert again["addProduct"]["userErrors"] == []

    # then the edit is kept, and the latest version is offered
    load = page.get_by_role("button", name="Load the latest")
    await expect(load).to_be_visible()
    await expect(page.locator("[name=productDescription]")).to_have_value(
        "My unsaved words about it."
    )
    await load.click()
    await expect(page.locator("[name=productName]")).to_have_value("Third Name")
    await expect(load).to_be_hidden()


async def test_cancel_draft_asks_first_then_deletes_it(
    context_factory: Any, app_url: str, api: GraphQLClient
) -> None:
    # given a draft open in the console
    sid = await prepared_draft(api)
    page = await sign_in(context_factory, app_url)
    await expect(progress(page)).to_have_attribute("aria-valuenow", "50")

    # when the admin declines the confirmation, then accepts it
    page.once("dialog", lambda dialog: dialog.dismiss())
    await page.get_by_role("button", name="Cancel draft").click()
    await expect(progress(page)).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Cancel draft").click()

    # then the draft is gone
    await expect(page.get_by_text("Draft cancelled.")).to_be_visible()
    await expect(progress(page)).to_be_hidden()
    body = await api.execute(SESSION, {"sessionId": sid})
    assert body["errors"][0]["extensions"]["code"] == "SESSION_NOT_FOUND"


async def test_sign_in_says_plainly_when_a_token_is_expired_or_refused(
    context_factory: Any, app_url: str, tmp_path: Path
) -> None:
    # given a link with an expired token (Chromium logs the 401 of the refused one itself)
    refused = "the server responded with a status of 401"
    page = await context_factory(app_url, width=390, height=844, allow=(refused,))
    await page.goto(f"{app_url}/#token={token(ttl=-60)}")

    # then the page says so and asks for a token
    await expect(page.get_by_role("alert")).to_contain_text("This access token expired")
    await screenshot(page, "signin-mobile", tmp_path)
    await assert_accessible(page)

    # when a token signed with another key is pasted
    await page.get_by_label("Access token").fill(token(secret="another-secret-of-32-bytes-or-more"))
    await page.get_by_role("button", name="Sign in").click()

    # then the service's refusal is shown
    await expect(page.get_by_role("alert")).to_contain_text("refused this access token")

    # when a valid token is pasted
    await page.get_by_label("Access token").fill(token())
    await page.get_by_role("button", name="Sign in").click()

    # then the admin is signed in
    await expect(page.get_by_text("Signed in as user-1")).to_be_visible()
    await expect(page.get_by_role("button", name="New draft")).to_be_visible()
