"""The domain catalogue: product and target fields, Dataverse columns, limits, choice sets.

The JSON files in ``services/data`` are the project's own copy of the domain study
(field names, columns, option values and labels); the limits below are its rules with the
old service's defects fixed (docs/design/domain-catalogue.md, old-service-defects.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any


class FieldKind(StrEnum):
    """How a product field is typed, validated and written to Dataverse."""

    TEXT = "text"
    URL = "url"
    CHOICE = "choice"
    MONEY = "money"
    PERCENT = "percent"
    INTEGER = "integer"
    DATE = "date"
    BOOLEAN = "boolean"


@dataclass(frozen=True, slots=True)
class Choice:
    """One option of a choice set: its GraphQL name, Dataverse value and label."""

    name: str
    value: int
    label: str


@dataclass(frozen=True, slots=True)
class ProductField:
    """One of the 37 client fields of a product."""

    api: str
    column: str
    kind: FieldKind
    required: bool
    label: str
    description: str
    choices: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    pattern_message: str | None = None
    min_value: Decimal | int | None = None
    max_value: Decimal | int | None = None


@dataclass(frozen=True, slots=True)
class TargetField:
    """One of the 34 multi-select criteria of an audience target."""

    api: str
    column: str
    choices: str
    max_items: int
    label: str = ""
    description: str = ""


MAX_PRICE = Decimal("999999.99")
MAX_INSURANCE_LIMIT = Decimal("999999999.99")
MAX_INVENTORY = 2_147_483_647
PRODUCT_CODE_MAX_LENGTH = 25  # The Dataverse column is 25 characters.
INSURANCE_CATEGORY = 1  # ProductCategory.INSURANCE

# Dataverse column lengths of the text fields (emulator/metadata.json has them too).
_TEXT_LIMITS: dict[str, tuple[int | None, int]] = {
    "productName": (3, 100),
    "productCode": (3, PRODUCT_CODE_MAX_LENGTH),
    "productDescription": (10, 4000),
    "productPicture": (None, 850),
    "productAdditionalInfo": (None, 4000),
    "postPurchaseInfo": (None, 4000),
    "productYear": (None, 4),
}

_PRODUCT_CHOICE_SETS = {
    "productCategory": "ProductCategory",
    "insuranceType": "InsuranceType",
    "productStatus": "ProductStatus",
    "productGlCode": "ProductGLCode",
    "privilege": "Privilege",
    "userType": "ProductUserType",
    "accessModifiers": "AccessModifier",
}

_PRICE_LABELS = {
    "generalPrice": "General price, for buyers without a category price.",
    "otStuPrice": "Price for OT students (OT-STU).",
    "otNgPrice": "Price for OT new graduates (OT-NG).",
    "otPrPrice": "Price for practising OTs (OT-PR).",
    "otNpPrice": "Price for non-practising OTs (OT-NP).",
    "otRetPrice": "Price for retired OTs (OT-RET).",
    "otLifePrice": "Price for OT life members (OT-LIFE).",
    "otaStuPrice": "Price for OTA students (OTA-STU).",
    "otaNgPrice": "Price for OTA new graduates (OTA-NG).",
    "otaNpPrice": "Price for non-practising OTAs (OTA-NP).",
    "otaRetPrice": "Price for retired OTAs (OTA-RET).",
    "otaPrPrice": "Price for practising OTAs (OTA-PR).",
    "otaLifePrice": "Price for OTA life members (OTA-LIFE).",
    "assocPrice": "Price for associate members (ASSOC).",
    "affPrimPrice": "Price for primary affiliates (AFF-PRIM).",
    "affPremPrice": "Price for premium affiliates (AFF-PREM).",
}

_DESCRIPTIONS = {
    "productName": "Display name, 3 to 100 characters. Required.",
    "productCode": (
        "Unique product code: letters, digits, '-' and '_', 3 to 25 characters. "
        "Stored upper-cased. Required."
    ),
    "productDescription": "Description, 10 to 4000 characters. Required.",
    "productPicture": "Picture URL (http or https), at most 850 characters.",
    "productCategory": "What kind of product this is. Required.",
    "insuranceType": "Insurance type. Required when productCategory is INSURANCE.",
    "insuranceLimit": (
        "Insurance coverage limit, 0 to 999,999,999.99. Required when productCategory is INSURANCE."
    ),
    "productAdditionalInfo": "Additional information, at most 4000 characters.",
    "productStatus": "Catalogue status. Required.",
    "productGlCode": "General-ledger account the sale is booked to. Required.",
    "privilege": "Lowest user privilege that may manage the product.",
    "userType": "Which kind of user may buy the product. Required.",
    "accessModifiers": "Visibility of the product record.",
    "inventory": "Units in stock, 0 to 2,147,483,647 (0 means unlimited).",
    "shipping": "Shipping cost, 0 to 999,999.99.",
    "taxes": "Tax rate in percent, 0 to 100, at most 2 decimals. Required.",
    "startDate": "First day the product is offered.",
    "endDate": "Last day the product is offered; on or after startDate.",
    "activeMembershipOnly": "Only members with an active membership may buy it.",
    "postPurchaseInfo": "Information shown after purchase, at most 4000 characters.",
    "productYear": "Product year, four digits (e.g. 2026). Required.",
}

# Target criteria as a person names them, and what of a member each one is compared with
# (docs/design/domain-catalogue.md).
_TARGET_WORDS: dict[str, tuple[str, str]] = {
    "accountGroup": ("Account group", "account group"),
    "affiliateArea": ("Affiliate business area", "affiliate business area"),
    "affiliateCity": ("Affiliate city", "affiliate city"),
    "affiliateProvince": ("Affiliate province", "affiliate province"),
    "membershipCity": ("City", "address city"),
    "province": ("Province", "address province"),
    "gender": ("Gender", "gender"),
    "indigenousDetails": ("Indigenous identity", "Indigenous identity"),
    "language": ("Language", "languages"),
    "race": ("Race", "race"),
    "eligibilityAffiliate": ("Affiliate eligibility", "affiliate eligibility"),
    "membershipCategory": ("Membership category", "membership category"),
    "earnings": ("Hourly earnings", "hourly earnings as an employee"),
    "earningsSelfdirect": (
        "Hourly earnings, self-employed (direct)",
        "hourly earnings from direct self-employment",
    ),
    "earningsSelfindirect": (
        "Hourly earnings, self-employed (indirect)",
        "hourly earnings from indirect self-employment",
    ),
    "employmentBenefits": ("Employment benefits", "employment benefits"),
    "employmentStatus": ("Employment status", "employment status"),
    "positionFunding": ("Position funding", "position funding"),
    "practiceYears": ("Years in practice", "years in practice"),
    "roleDescription": ("Role", "role description"),
    "workHours": ("Work hours", "weekly work hours"),
    "clientAge": ("Client age groups", "clients' age groups"),
    "practiceArea": ("Practice area", "practice areas"),
    "practiceServices": ("Practice services", "practice services"),
    "practiceSettings": ("Practice settings", "practice settings"),
    "membershipSearchTools": ("Member search tools", "member search tool preferences"),
    "practicePromotion": ("Practice promotion", "practice promotion"),
    "psychotherapySupervision": ("Psychotherapy supervision", "psychotherapy supervision"),
    "thirdParties": ("Third-party contact", "third-party contact preferences"),
    "cotoStatus": ("COTO status", "College of Occupational Therapists of Ontario status"),
    "otGradYear": ("OT graduation year", "OT graduation year"),
    "otUniversity": ("OT university", "OT university"),
    "otaGradYear": ("OTA graduation year", "OTA graduation year"),
    "otaCollege": ("OTA college", "OTA college"),
}

_KINDS = {
    "string": FieldKind.TEXT,
    "string (URL)": FieldKind.URL,
    "int choice": FieldKind.CHOICE,
    "money": FieldKind.MONEY,
    "decimal (%)": FieldKind.PERCENT,
    "int": FieldKind.INTEGER,
    "date": FieldKind.DATE,
    "boolean": FieldKind.BOOLEAN,
}


def _label(api: str) -> str:
    """Return a field's name as a person reads it: 'otaNgPrice' -> 'OTA-NG price'."""
    if api in _PRICE_LABELS and api != "generalPrice":
        return _PRICE_LABELS[api].rsplit("(", 1)[1].rstrip(").") + " price"
    words = re.findall(r"[a-z]+|[A-Z][a-z]*", api)
    text = " ".join(w.lower() for w in words).replace("gl code", "GL code")
    return text[0].upper() + text[1:]


def _load(name: str) -> Any:
    return json.loads(resources.files("services.data").joinpath(name).read_text("utf-8"))


def _product_field(raw: dict[str, Any]) -> ProductField:
    api = raw["api"]
    kind = _KINDS[raw["type"]]
    min_length, max_length = _TEXT_LIMITS.get(api, (None, None))
    limits: dict[str, Any] = {}
    if kind is FieldKind.MONEY:
        top = MAX_INSURANCE_LIMIT if api == "insuranceLimit" else MAX_PRICE
        limits = {"min_value": Decimal(0), "max_value": top}
    elif kind is FieldKind.PERCENT:
        limits = {"min_value": Decimal(0), "max_value": Decimal(100)}
    elif kind is FieldKind.INTEGER:
        limits = {"min_value": 0, "max_value": MAX_INVENTORY}
    if api == "productCode":
        limits |= {
            "pattern": r"^[A-Z0-9_-]+$",
            "pattern_message": (
                "Product code may contain only letters, digits, hyphens and underscores."
            ),
        }
    elif api == "productYear":
        limits |= {
            "pattern": r"^\d{4}$",
            "pattern_message": "Product year must be four digits, e.g. 2026.",
        }
    return ProductField(
        api=api,
        column=raw["column"],
        kind=kind,
        required=raw["required"],
        label=_label(api),
        description=_DESCRIPTIONS.get(api) or _PRICE_LABELS[api],
        choices=_PRODUCT_CHOICE_SETS.get(api),
        min_length=min_length,
        max_length=max_length,
        **limits,
    )


@cache
def choice_sets() -> dict[str, tuple[Choice, ...]]:
    """Return every choice set by name, members in Dataverse order."""
    return {
        name: tuple(Choice(m["name"], m["value"], m["label"]) for m in members)
        for name, members in _load("choices.json").items()
    }


@cache
def product_fields() -> tuple[ProductField, ...]:
    """Return the 37 product fields in their documented order."""
    return tuple(_product_field(raw) for raw in _load("product_fields.json"))


@cache
def target_fields() -> tuple[TargetField, ...]:
    """Return the 34 audience-target fields in their documented order."""
    return tuple(_target_field(raw) for raw in _load("target_fields.json"))


def _target_field(raw: dict[str, Any]) -> TargetField:
    label, subject = _TARGET_WORDS[raw["api"]]
    return TargetField(
        raw["api"],
        raw["column"],
        raw["choices"],
        raw["max_items"],
        label=label,
        description=(
            f"Members whose {subject} is one of these may see the product "
            f"(at most {raw['max_items']} values, each once)."
        ),
    )


def price_fields() -> tuple[ProductField, ...]:
    """Return the 16 price fields (general plus one per membership category)."""
    return tuple(f for f in product_fields() if f.api in _PRICE_LABELS)


# -- The form catalogue: what a client needs to build the product and target forms -------


@dataclass(frozen=True, slots=True)
class FormField:
    """One field of ProductInput or AudienceTargetInput, described for a form."""

    name: str
    label: str
    help: str
    required: bool
    kind: FieldKind
    multiple: bool = False
    choice_set: str | None = None
    choices: tuple[Choice, ...] = ()
    min_length: int | None = None
    max_length: int | None = None
    min_value: Decimal | int | None = None
    max_value: Decimal | int | None = None
    decimals: int | None = None
    pattern: str | None = None
    pattern_message: str | None = None
    max_selections: int | None = None


@dataclass(frozen=True, slots=True)
class FormRule:
    """A rule that spans fields (or that no single field's limits express)."""

    fields: tuple[str, ...]
    description: str


@dataclass(frozen=True, slots=True)
class FormCatalog:
    """The fields and cross-field rules of the product and audience-target inputs."""

    product: tuple[FormField, ...]
    product_rules: tuple[FormRule, ...]
    target: tuple[FormField, ...]
    target_rules: tuple[FormRule, ...]


_DECIMALS = {FieldKind.MONEY: 2, FieldKind.PERCENT: 2, FieldKind.INTEGER: 0}


def _product_form_field(field: ProductField) -> FormField:
    return FormField(
        name=field.api,
        label=field.label,
        help=field.description,
        required=field.required,
        kind=field.kind,
        choice_set=field.choices,
        choices=choice_sets()[field.choices] if field.choices else (),
        min_length=field.min_length,
        max_length=field.max_length,
        min_value=field.min_value,
        max_value=field.max_value,
        decimals=_DECIMALS.get(field.kind),
        pattern=field.pattern,
        pattern_message=field.pattern_message,
    )


def _target_form_field(field: TargetField) -> FormField:
    return FormField(
        name=field.api,
        label=field.label,
        help=field.description,
        required=False,
        kind=FieldKind.CHOICE,
        multiple=True,
        choice_set=field.choices,
        choices=choice_sets()[field.choices],
        max_selections=field.max_items,
    )


@cache
def form_catalog() -> FormCatalog:
    """Return the form catalogue (the rules services.validation applies, as data)."""
    return FormCatalog(
        product=tuple(_product_form_field(f) for f in product_fields()),
        product_rules=(
            FormRule(
                tuple(f.api for f in price_fields()),
                "Set at least one price: generalPrice or a category price (0 means free).",
            ),
            FormRule(
                ("productCategory", "insuranceType", "insuranceLimit"),
                "Insurance products (productCategory INSURANCE) need an insuranceType and an "
                "insuranceLimit.",
            ),
            FormRule(("startDate", "endDate"), "endDate must be on or after startDate."),
            FormRule(
                ("productCode",),
                "productCode is trimmed and upper-cased, and must not be used by another open "
                "draft or by any existing product, whatever its status.",
            ),
        ),
        target=tuple(_target_form_field(f) for f in target_fields()),
        target_rules=(
            FormRule(
                tuple(f.api for f in target_fields()),
                "A member sees the product when any one set criterion matches. Leave every "
                "criterion empty to open the product to everyone.",
            ),
        ),
    )
