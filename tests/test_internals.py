"""Private names of strawberry-graphql and graphql-core are used in schema/internals.py only."""

from __future__ import annotations

import ast
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

from schema import internals

ROOT = Path(__file__).resolve().parent.parent
ADAPTER = ROOT / "schema" / "internals.py"
THIS = Path(__file__).resolve()
# Modules of the two packages that their documentation presents as API; what they define
# without a leading underscore is public.
PUBLIC_MODULES = {
    "graphql",
    "strawberry",
    "strawberry.exceptions",
    "strawberry.extensions",
    "strawberry.litestar",
    "strawberry.litestar.controller",  # GraphQLController, what make_graphql_controller returns
    "strawberry.schema.config",
    "strawberry.types",
    "strawberry.types.graphql",  # OperationType, a parameter type of Schema.execute
}
# Attributes the adapter reaches for; seen anywhere else, they are a private use.
PRIVATE_ATTRIBUTES = {
    "_schema",
    "_process_errors",
    "_handle_errors",
    "_stream_transport_map",
    "_relevant_sub_fields",
    "_is_leaf_type",
    "async_helpers",
    "execute_single",
    "temporal_response",
    "__strawberry_definition__",
}
WATCHED = ("strawberry", "graphql", "cross_web")


def _python_files() -> list[Path]:
    skip = {".venv", "node_modules", ".git", "build"}
    return [
        path
        for path in ROOT.rglob("*.py")
        if not skip & set(path.relative_to(ROOT).parts) and path not in (ADAPTER, THIS)
    ]


def _is_public(module: str, name: str) -> bool:
    return module in PUBLIC_MODULES and not name.startswith("_")


def _private_uses(source: str, where: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, where)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] not in WATCHED:
                continue
            found += [
                f"{where}:{node.lineno} from {node.module} import {alias.name}"
                for alias in node.names
                if node.module != "cross_web" and not _is_public(node.module, alias.name)
            ]
        elif isinstance(node, ast.Import):
            found += [
                f"{where}:{node.lineno} import {alias.name}"
                for alias in node.names
                if alias.name.split(".")[0] in WATCHED and alias.name not in PUBLIC_MODULES
            ]
        elif isinstance(node, ast.Attribute) and node.attr in PRIVATE_ATTRIBUTES:
            found.append(f"{where}:{node.lineno} .{node.attr}")
        elif isinstance(node, ast.Constant) and node.value in PRIVATE_ATTRIBUTES:
            found.append(f"{where}:{node.lineno} {node.value!r}")
    return found


def test_no_module_but_the_adapter_uses_a_private_name_of_strawberry_or_graphql_core() -> None:
    files = _python_files()
    assert len(files) > 50  # the walk found the tree

    uses = [
        use
        for path in files
        for use in _private_uses(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]

    assert uses == [], "use schema/internals.py instead:\n" + "\n".join(uses)


def test_the_check_finds_a_private_use() -> None:
    source = (
        "from strawberry.schema.schema import validate_document\n"
        "from strawberry.types.arguments import _is_leaf_type\n"
        "def f(schema):\n    return schema._schema\n"
    )

    assert len(_private_uses(source, "sample.py")) == 3


def test_pins_in_pyproject_are_the_adapters_and_installed() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = dict(d.split("==", 1) for d in project["project"]["dependencies"] if "==" in d)
    pins = {name.split("[")[0]: value for name, value in pins.items()}

    assert {name: pins.get(name) for name in internals.PINNED} == internals.PINNED
    assert {name: version(name) for name in internals.PINNED} == internals.PINNED


def test_other_versions_are_refused_with_a_message_naming_them() -> None:
    installed = {**internals.PINNED, "graphql-core": "3.3.3"}

    with pytest.raises(ImportError, match=r"graphql-core 3\.3\.3 \(expected 3\.3\.2\)"):
        internals.check_versions(installed)
