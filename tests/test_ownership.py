"""A draft belongs to its creator and organization; others cannot tell it exists."""

from __future__ import annotations

from typing import Any

import pytest

from tests.graphql_documents import (
    ADD_PRODUCT,
    CANCEL_SESSION,
    CONFIGURE_TARGET,
    SESSION,
    SESSION_PROGRESS,
    product_input,
)
from tests.helpers import ORG_A, ORG_B, GraphQLClient, create_session, token

pytestmark = pytest.mark.anyio

STRANGERS = {
    "same-org-other-user": token("user-2", org=ORG_A),
    "other-org-same-user-id": token("user-1", org=ORG_B),
}


@pytest.mark.parametrize("stranger", STRANGERS.values(), ids=STRANGERS.keys())
async def test_others_get_session_not_found_for_every_operation(
    client: GraphQLClient, stranger: str
) -> None:
    # given a draft of user-1 in ORG_A with a product
    sid = (await create_session(client))["sessionId"]
    await client.data(ADD_PRODUCT, {"sessionId": sid, "input": product_input()})
    missing = "00000000-0000-4000-8000-000000000000"

    # when a stranger, and then anyone asking for a missing id, tries everything
    async def attempts(session_id: str) -> list[tuple[str, str]]:
        variables: dict[str, Any] = {"sessionId": session_id}
        results = []
        extras: list[tuple[str, str, dict[str, Any]]] = [
            (ADD_PRODUCT, "addProduct", {"input": product_input(productName="Hijacked")}),
            (CONFIGURE_TARGET, "configureTarget", {"input": {}}),
            (CANCEL_SESSION, "cancelSession", {}),
        ]
        for document, name, extra in extras:
            payload = (await client.data(document, variables | extra, token=stranger))[name]
            results.append((payload["userErrors"][0]["code"], payload["userErrors"][0]["message"]))
        for document, name in [(SESSION, "session"), (SESSION_PROGRESS, "sessionProgress")]:
            body = await client.execute(document, variables, token=stranger)
            assert body["data"][name] is None
            results.append((body["errors"][0]["extensions"]["code"], body["errors"][0]["message"]))
        return results

    foreign, absent = await attempts(sid), await attempts(missing)

    # then the answers are identical to those for a session that does not exist
    assert foreign == absent
    assert {code for code, _ in foreign} == {"SESSION_NOT_FOUND"}
    stored = (await client.data(SESSION, {"sessionId": sid}))["session"]
    assert stored["product"]["productName"] == "Advanced OT Workshop 2026"
    assert stored["version"] == 2
