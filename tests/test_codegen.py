"""The code generated from the catalogue (codegen.py) is checked in and up to date."""

from __future__ import annotations

from pathlib import Path

import pytest

import codegen

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("path", list(codegen.GENERATED), ids=list(codegen.GENERATED))
def test_generated_file_matches_the_catalogue(path: str) -> None:
    assert (ROOT / path).read_text(encoding="utf-8") == codegen.GENERATED[path](), (
        f"{path} is out of date: run `make models`"
    )
