"""The README's GraphQL examples run as pasted in GraphiQL: named operations, one variable."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from graphql import OperationDefinitionNode, parse, validate

from api import schema
from schema.internals import graphql_core_schema
from tests.helpers import GraphQLClient, token
from tests.ws_client import subscription

pytestmark = pytest.mark.anyio

README = Path(__file__).parent.parent / "README.md"


def _examples() -> list[str]:
    return re.findall(r"```graphql\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def _names(document: str) -> list[str]:
    return [
        d.name.value if d.name else ""
        for d in parse(document).definitions
        if isinstance(d, OperationDefinitionNode)
    ]


def test_every_example_is_a_valid_document_of_named_operations() -> None:
    examples = _examples()

    assert len(examples) == 2  # the workflow, the live progress subscription
    for document in examples:
        assert validate(graphql_core_schema(schema), parse(document)) == []
        assert all(_names(document)), document


async def test_the_workflow_runs_in_graphiql_order_with_one_variable(
    client: GraphQLClient, base_url: str
) -> None:
    workflow, live = _examples()
    variables: dict[str, Any] = {}

    async def run(name: str) -> dict[str, Any]:
        # As GraphiQL sends it: the whole document, the chosen operation, the Variables pane.
        response = await client.http.post(
            "/graphql",
            json={"query": workflow, "operationName": name, "variables": variables},
            headers={"authorization": f"Bearer {client.default_token}"},
        )
        body = response.json()
        assert "errors" not in body, (name, body)
        return body["data"][next(iter(body["data"]))]

    assert _names(workflow) == [
        "CreateSession",
        "AddProduct",
        "ConfigureTarget",
        "Commit",
        "Progress",
    ]
    created = await run("CreateSession")
    variables["id"] = created["session"]["sessionId"]
    async with subscription(base_url, token(), live, variables) as ws:
        snapshot = await ws.event()
        added = await run("AddProduct")
        configured = await run("ConfigureTarget")
        committed = await run("Commit")
        progress = await run("Progress")
        events = [(await ws.event())["type"]]
        while events[-1] != "COMMITTED":
            events.append((await ws.event())["type"])

    assert snapshot["type"] == "SNAPSHOT"
    assert added["userErrors"] == [] and configured["userErrors"] == []
    assert committed["success"] is True, committed
    assert progress["percentage"] == 100
    assert events == ["PRODUCT_ADDED", "TARGET_CONFIGURED", "COMMIT_STARTED", "COMMITTED"]
