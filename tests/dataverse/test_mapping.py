"""Product and audience-target bodies: every column, option values, money, dates, binds."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from services.catalog import target_fields
from services.dataverse import CHANGESET_PRODUCT_REF, product_columns, product_ref, target_columns
from services.dataverse.batch import dumps
from services.dataverse.mapping import json_number
from services.models import AudienceTargetData, ProductData

ORG = "6f1e3c9a-1111-4a4a-9c9c-000000000001"
PRODUCT_GUID = "11111111-2222-3333-4444-555555555555"
TARGET_GUID = "AAAAAAAA-2222-3333-4444-555555555555"

FULL_PRODUCT = {
    "productName": "Liability insurance",
    "productCode": "INS-2026",
    "productDescription": "Professional liability insurance for members.",
    "productPicture": "https://example.org/ins.png",
    "productCategory": 1,
    "insuranceType": 2,
    "insuranceLimit": Decimal("999999999.99"),
    "productAdditionalInfo": "Extra info",
    "productStatus": 1,
    "productGlCode": 11,
    "privilege": 3,
    "userType": 2,
    "accessModifiers": 1,
    "generalPrice": Decimal("120.00"),
    "otStuPrice": Decimal("10.01"),
    "otNgPrice": Decimal("20.02"),
    "otPrPrice": Decimal("30.03"),
    "otNpPrice": Decimal("40.04"),
    "otRetPrice": Decimal("50.05"),
    "otLifePrice": Decimal("0"),
    "otaStuPrice": Decimal("60.06"),
    "otaNgPrice": Decimal("70.07"),
    "otaNpPrice": Decimal("80.08"),
    "otaRetPrice": Decimal("90.09"),
    "otaPrPrice": Decimal("100.10"),
    "otaLifePrice": Decimal("110.11"),
    "assocPrice": Decimal("0.10"),
    "affPrimPrice": Decimal("999999.99"),
    "affPremPrice": Decimal("130.13"),
    "inventory": 2_147_483_647,
    "shipping": Decimal("7.5"),
    "taxes": Decimal("13.00"),
    "startDate": date(2026, 1, 1),
    "endDate": date(2026, 12, 31),
    "activeMembershipOnly": True,
    "postPurchaseInfo": "Thanks",
    "productYear": "2026",
}

EXPECTED_PRODUCT_BODY = {
    "osot_table_productid": PRODUCT_GUID,
    "osot_product_name": "Liability insurance",
    "osot_product_code": "INS-2026",
    "osot_product_description": "Professional liability insurance for members.",
    "osot_product_picture": "https://example.org/ins.png",
    "osot_product_category": 1,
    "osot_insurance_type": 2,
    "osot_insurance_limit": 999999999.99,
    "osot_product_additional_info": "Extra info",
    "osot_product_status": 1,
    "osot_product_gl_code": 11,
    "osot_privilege": 3,
    "osot_user_type": 2,
    "osot_access_modifiers": 1,
    "osot_general_price": 120,
    "osot_otstu_price": 10.01,
    "osot_otng_price": 20.02,
    "osot_otpr_price": 30.03,
    "osot_otnp_price": 40.04,
    "osot_otret_price": 50.05,
    "osot_otlife_price": 0,
    "osot_otastu_price": 60.06,
    "osot_otang_price": 70.07,
    "osot_otanp_price": 80.08,
    "osot_otaret_price": 90.09,
    "osot_otapr_price": 100.1,
    "osot_otalife_price": 110.11,
    "osot_assoc_price": 0.1,
    "osot_affprim_price": 999999.99,
    "osot_affprem_price": 130.13,
    "osot_inventory": 2147483647,
    "osot_shipping": 7.5,
    "osot_taxes": 13,
    "osot_start_date": "2026-01-01",
    "osot_end_date": "2026-12-31",
    "osot_active_membership_only": True,
    "osot_post_purchase_info": "Thanks",
    "osot_product_year": "2026",
    "osot_Table_Organization@odata.bind": f"/osot_table_organizations({ORG})",
}


def test_product_columns_maps_every_field():
    # given
    product = ProductData(**FULL_PRODUCT)

    # when
    body = product_columns(product, ORG, PRODUCT_GUID)

    # then
    assert body == EXPECTED_PRODUCT_BODY
    assert next(iter(body)) == "osot_table_productid"
    assert list(body)[-1] == "osot_Table_Organization@odata.bind"


def test_product_columns_money_is_exact_on_the_wire():
    body = product_columns(ProductData(**FULL_PRODUCT), ORG, PRODUCT_GUID)
    wire = json.loads(dumps(body), parse_float=Decimal)
    for api, column in [
        ("insuranceLimit", "osot_insurance_limit"),
        ("otaPrPrice", "osot_otapr_price"),
        ("affPrimPrice", "osot_affprim_price"),
        ("assocPrice", "osot_assoc_price"),
    ]:
        assert wire[column] == FULL_PRODUCT[api]


def test_product_columns_omits_unset_fields():
    product = ProductData(
        productName="Widget", productCode="W-1", taxes=Decimal("0"), activeMembershipOnly=False
    )
    assert product_columns(product, ORG.upper(), PRODUCT_GUID) == {
        "osot_table_productid": PRODUCT_GUID,
        "osot_product_name": "Widget",
        "osot_product_code": "W-1",
        "osot_taxes": 0,
        "osot_active_membership_only": False,
        "osot_Table_Organization@odata.bind": f"/osot_table_organizations({ORG})",
    }


def test_product_columns_rejects_unknown_fields_and_bad_guids():
    with pytest.raises(ValueError, match="unknown field"):
        product_columns(
            {"productName": "X", "osot_Table_Organization@odata.bind": "/x(1)"}, ORG, PRODUCT_GUID
        )
    with pytest.raises(ValueError):
        product_columns({"productName": "X"}, "6f1e3c9a) or (1", PRODUCT_GUID)


def test_product_columns_refuses_wrong_option_types():
    with pytest.raises(TypeError, match="productStatus"):
        product_columns({"productStatus": "AVAILABLE"}, ORG, PRODUCT_GUID)  # D18


def test_target_columns_multi_select_order_empty_and_omitted():
    # given
    target = AudienceTargetData(province=[1, 11], gender=[], language=[3, 1, 2])

    # when
    body = target_columns(target, TARGET_GUID, CHANGESET_PRODUCT_REF)

    # then
    assert body == {
        "osot_table_audience_targetid": TARGET_GUID.lower(),
        "osot_province": "1,11",
        "osot_gender": None,
        "osot_language": "3,1,2",
        "osot_Table_Product@odata.bind": "$1",
    }


def test_target_columns_maps_every_field():
    target = AudienceTargetData(**{f.api: [index, 0] for index, f in enumerate(target_fields(), 1)})
    body = target_columns(target, TARGET_GUID, product_ref(PRODUCT_GUID))
    expected = {f.column: f"{index},0" for index, f in enumerate(target_fields(), 1)}
    assert body == {
        "osot_table_audience_targetid": TARGET_GUID.lower(),
        **expected,
        "osot_Table_Product@odata.bind": f"/osot_table_products({PRODUCT_GUID})",
    }
    assert len(expected) == 34


def test_target_columns_bind_cannot_be_overridden():
    # D17 (docs/design/old-service-defects.md): a caller-supplied bind never wins over ours.
    with pytest.raises(ValueError, match="unknown field"):
        target_columns(
            {"osot_Table_Product@odata.bind": "/osot_table_products(x)"}, TARGET_GUID, "$1"
        )
    with pytest.raises(ValueError, match="product_ref"):
        target_columns({}, TARGET_GUID, "/osot_table_products/" + PRODUCT_GUID)  # D33 slash form


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("12.50"), 12.5),
        (Decimal("13.00"), 13),
        (5, 5),
        (Decimal("999999999.99"), 999999999.99),
    ],
    ids=["cents", "integral", "int", "max-limit"],
)
def test_json_number_is_exact(value, expected):
    number = json_number(value)
    assert number == expected
    assert Decimal(repr(number)) == value


def test_json_number_refuses_to_round():
    with pytest.raises(ValueError):
        json_number(Decimal("1234567890123456.78"))
