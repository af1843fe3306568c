"""docs/migrating-from-rest.md is current and true: its generated tables match the catalogue,
its GraphQL runs against the app, and its Apollo and urql recipes type-check."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from graphql import OperationDefinitionNode, parse, validate

from api import schema
from schema.internals import graphql_core_schema
from services.catalog import choice_sets, target_fields
from tests.helpers import GraphQLClient

ROOT = Path(__file__).parent.parent
GUIDE = ROOT / "docs" / "migrating-from-rest.md"
JS = ROOT / "tests" / "js"

pytestmark = pytest.mark.anyio


def _tables() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "migration_tables", ROOT / "docs" / "migration_tables.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.DOTALL)


def test_the_generated_tables_are_current() -> None:
    text = GUIDE.read_text(encoding="utf-8")

    assert _tables().render(text) == text, "run `python docs/migration_tables.py`"


def test_every_option_value_and_target_key_is_listed() -> None:
    text = GUIDE.read_text(encoding="utf-8")

    for name, choices in choice_sets().items():
        for choice in choices:
            assert f"| {choice.value} | `{choice.name}` |" in text, (name, choice)
    for field in target_fields():
        assert f"| `{field.column}` | `{field.api}` |" in text


def test_every_rest_route_of_the_old_guide_has_its_operation() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    routes = ["session/create", "/product`", "/audience-target`", "/commit`", "/progress`"]

    for route in routes:
        assert route in text, route


async def test_the_guides_workflow_runs_as_written(client: GraphQLClient) -> None:
    [document] = _blocks("graphql")
    assert validate(graphql_core_schema(schema), parse(document)) == []
    names = [
        d.name.value
        for d in parse(document).definitions
        if isinstance(d, OperationDefinitionNode) and d.name
    ]
    assert names == ["CreateSession", "AddProduct", "ConfigureTarget", "Commit", "Progress"]

    async def run(name: str, **variables: Any) -> dict[str, Any]:
        response = await client.http.post(
            "/graphql",
            json={"query": document, "operationName": name, "variables": variables},
            headers={"authorization": f"Bearer {client.default_token}"},
        )
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    created = await run("CreateSession")
    sid = created["createSession"]["session"]["sessionId"]
    added = await run("AddProduct", id=sid, version=1)
    configured = await run("ConfigureTarget", id=sid)
    committed = await run("Commit", id=sid)
    progress = await run("Progress", id=sid)

    assert added["addProduct"]["userErrors"] == []
    assert configured["configureTarget"]["userErrors"] == []
    assert committed["commit"]["success"] is True, committed
    assert progress["sessionProgress"]["percentage"] == 100


def test_the_apollo_and_urql_recipes_type_check(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed for this test"
    assert (JS / "node_modules" / "@urql" / "core").is_dir(), "run `make test` first"
    recipes = _blocks("ts")
    assert len(recipes) == 2
    (tmp_path / "src").mkdir()
    for index, recipe in enumerate(recipes):
        (tmp_path / "src" / f"recipe{index}.ts").write_text(recipe)
    shutil.copy(JS / "codegen" / "tsconfig.json", tmp_path / "tsconfig.json")
    (tmp_path / "node_modules").symlink_to(JS / "node_modules")

    checked = subprocess.run(
        [node, "node_modules/typescript/bin/tsc", "-p", "tsconfig.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
