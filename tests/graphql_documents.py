"""GraphQL documents and inputs the tests send, as a frontend would."""

from __future__ import annotations

from typing import Any

SESSION_FIELDS = """
    sessionId version state userId organizationGuid createdAt updatedAt expiresAt errors
    product {
      productName productCode productDescription productPicture productCategory insuranceType
      insuranceLimit productAdditionalInfo productStatus productGlCode privilege userType
      accessModifiers generalPrice otStuPrice otNgPrice otPrPrice otNpPrice otRetPrice
      otLifePrice otaStuPrice otaNgPrice otaNpPrice otaRetPrice otaPrPrice otaLifePrice
      assocPrice affPrimPrice affPremPrice inventory shipping taxes startDate endDate
      activeMembershipOnly postPurchaseInfo productYear
    }
    audienceTarget { province gender membershipCategory practiceArea language }
    progress { state percentage canCommit steps { productAdded targetConfigured committed } }
"""

USER_ERRORS = "userErrors { field message code } operationId"

CREATE_SESSION = f"mutation {{ createSession {{ session {{ {SESSION_FIELDS} }} {USER_ERRORS} }} }}"

ADD_PRODUCT = f"""
mutation AddProduct($sessionId: ID!, $input: ProductInput!, $expectedVersion: Int) {{
  addProduct(sessionId: $sessionId, input: $input, expectedVersion: $expectedVersion) {{
    session {{ {SESSION_FIELDS} }}
    {USER_ERRORS}
  }}
}}
"""

CONFIGURE_TARGET = f"""
mutation ConfigureTarget($sessionId: ID!, $input: AudienceTargetInput!, $expectedVersion: Int) {{
  configureTarget(sessionId: $sessionId, input: $input, expectedVersion: $expectedVersion) {{
    session {{ {SESSION_FIELDS} }}
    {USER_ERRORS}
  }}
}}
"""

CANCEL_SESSION = f"""
mutation Cancel($sessionId: ID!) {{
  cancelSession(sessionId: $sessionId) {{ sessionId cancelled {USER_ERRORS} }}
}}
"""

SESSION = (
    f"query Session($sessionId: ID!) {{ session(sessionId: $sessionId) {{ {SESSION_FIELDS} }} }}"
)

SESSION_PROGRESS = """
query Progress($sessionId: ID!) {
  sessionProgress(sessionId: $sessionId) {
    sessionId state version percentage canCommit errors expiresAt secondsRemaining expiringSoon
    steps { productAdded targetConfigured committed }
  }
}
"""

MY_SESSIONS = "query { mySessions { sessionId state } }"


def product_input(**overrides: Any) -> dict[str, Any]:
    """Return a valid workshop product; overrides replace or (with None) clear fields."""
    product: dict[str, Any] = {
        "productName": "Advanced OT Workshop 2026",
        "productCode": "osot-workshop-2026",
        "productDescription": "Professional development workshop for OTs.",
        "productCategory": "EVENT",
        "productStatus": "AVAILABLE",
        "productGlCode": "WORKSHOPS_AND_WEBINARS_4475",
        "userType": "OT_OTA",
        "generalPrice": 199.99,
        "otStuPrice": 149.99,
        "inventory": 50,
        "taxes": 13,
        "shipping": 0,
        "productYear": "2026",
        "activeMembershipOnly": True,
        "postPurchaseInfo": "Workshop materials will be sent 1 week before the event.",
    }
    product.update(overrides)
    return product


def product_values(**overrides: Any) -> dict[str, Any]:
    """Return a valid product as the services take it: option values, not enum names."""
    values: dict[str, Any] = {
        "productName": "Widget",
        "productCode": "wid-1",
        "productDescription": "A widget for the tests",
        "productCategory": 0,
        "productStatus": 1,
        "productGlCode": 1,
        "userType": 1,
        "taxes": 13,
        "productYear": "2026",
        "generalPrice": 10,
    }
    values.update(overrides)
    return values
