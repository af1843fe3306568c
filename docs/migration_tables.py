"""Write the tables of docs/migrating-from-rest.md that come from the catalogue; ``make docs``.

The REST service took target criteria under their Dataverse column names and every option
as its Dataverse number; the GraphQL API takes camelCase fields and enum names. Both
tables are generated from ``services/data/*.json`` (through ``services.catalog``) between
``<!-- BEGIN GENERATED: name -->`` and ``<!-- END GENERATED: name -->`` markers, so they
cannot drift from the schema; ``tests/test_migration_guide.py`` fails when they are stale.

    python docs/migration_tables.py           # rewrite the generated sections
    python docs/migration_tables.py --check   # exit 1 when they are out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from services.catalog import choice_sets, product_fields, target_fields  # noqa: E402

GUIDE = ROOT / "docs" / "migrating-from-rest.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def target_keys() -> str:
    """Return the table of the REST service's target keys and their GraphQL fields."""
    lines = [
        "| REST key (Dataverse column) | GraphQL field of `AudienceTargetInput` | label | enum |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{f.column}` | `{f.api}` | {_cell(f.label)} | `{f.choices}` |" for f in target_fields()
    ]
    return "\n".join(lines)


def option_values() -> str:
    """Return, per choice set, each Dataverse option value with its enum name and label."""
    users: dict[str, list[str]] = {}
    for product_field in product_fields():
        if product_field.choices:
            users.setdefault(product_field.choices, []).append(f"`{product_field.api}`")
    for target_field in target_fields():
        users.setdefault(target_field.choices, []).append(f"`{target_field.api}`")
    sections = []
    for name in sorted(choice_sets(), key=lambda n: (n not in _PRODUCT_SETS, n)):
        fields = ", ".join(users.get(name, [])) or "(no field)"
        rows = [f"#### `{name}`: {fields}", "", "| REST value | GraphQL enum value | label |"]
        rows.append("|---:|---|---|")
        rows += [f"| {c.value} | `{c.name}` | {_cell(c.label)} |" for c in choice_sets()[name]]
        sections.append("\n".join(rows))
    return "\n\n".join(sections)


_PRODUCT_SETS = {f.choices for f in product_fields() if f.choices}
SECTIONS: dict[str, Callable[[], str]] = {
    "target-keys": target_keys,
    "option-values": option_values,
}


def render(text: str) -> str:
    """Return *text* with every generated section written anew."""
    for name, generate in SECTIONS.items():
        pattern = re.compile(
            rf"(<!-- BEGIN GENERATED: {name} -->\n).*?(<!-- END GENERATED: {name} -->)",
            re.DOTALL,
        )
        match = pattern.search(text)
        if match is None:
            raise ValueError(f"{GUIDE.name} has no generated section {name!r}")
        text = text[: match.end(1)] + generate() + "\n" + text[match.start(2) :]
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report a stale guide")
    args = parser.parse_args(argv)
    current = GUIDE.read_text(encoding="utf-8")
    fresh = render(current)
    if args.check:
        if fresh != current:
            print(f"{GUIDE} is out of date: run `make docs`", file=sys.stderr)
            return 1
        return 0
    GUIDE.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
