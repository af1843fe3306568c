"""The README's codegen.ts generates types from schema.graphql that tsc accepts, for a typical
frontend module (tests/js/codegen/src/workflow.ts) using Apollo Client 4."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).parent.parent
JS = ROOT / "tests" / "js"
CODEGEN = JS / "codegen"


def readme_codegen_config() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```ts\n(.*?)```", readme, re.DOTALL)
    [config] = [b for b in blocks if "CodegenConfig" in b]
    return config


def _node(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node, "Node.js is needed for this test"
    return subprocess.run(
        [node, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_readme_codegen_config_types_a_typical_module(tmp_path: Path) -> None:
    assert (JS / "node_modules" / "@graphql-codegen" / "cli").is_dir(), "run make test"
    # given a frontend project: the README's codegen.ts, the schema and a typical module
    (tmp_path / "codegen.ts").write_text(readme_codegen_config())
    shutil.copy(ROOT / "schema.graphql", tmp_path / "schema.graphql")
    shutil.copytree(CODEGEN / "src", tmp_path / "src")
    shutil.copy(CODEGEN / "tsconfig.json", tmp_path / "tsconfig.json")
    (tmp_path / "node_modules").symlink_to(JS / "node_modules")

    # when codegen runs on the schema, then tsc on its output and the module
    generated = _node("node_modules/@graphql-codegen/cli/cjs/bin.js", cwd=tmp_path)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    checked = _node("node_modules/typescript/bin/tsc", "-p", "tsconfig.json", cwd=tmp_path)

    # then every custom scalar is mapped (strictScalars would have failed) and it compiles
    assert checked.returncode == 0, checked.stdout + checked.stderr
    types = (tmp_path / "src" / "gql" / "graphql.ts").read_text()
    assert "generalPrice?: number | string | null" in types  # Money in: number or string
    assert "generalPrice: number | null" in types  # Money out: a number
    assert "taxes: number | null" in types  # Percent
    assert "startDate: string | null" in types  # Date
    assert "expiresAt: string" in types  # DateTime
    assert " any" not in types


def test_a_wrong_type_in_the_module_fails_the_check(tmp_path: Path) -> None:
    # The check above can fail: without the README's config there are no types to find.
    shutil.copytree(CODEGEN / "src", tmp_path / "src")
    shutil.copy(CODEGEN / "tsconfig.json", tmp_path / "tsconfig.json")
    (tmp_path / "node_modules").symlink_to(JS / "node_modules")

    checked = _node("node_modules/typescript/bin/tsc", "-p", "tsconfig.json", cwd=tmp_path)

    assert checked.returncode != 0
    assert "./gql" in checked.stdout
