"""The emulator's configuration: address, database, bearer token and seeded organizations."""

from __future__ import annotations

from dataclasses import dataclass

# Fixed GUIDs so tests and `orchestrator dev` can bind products to a known organization.
# The first two are the organizations of the project's test tokens (tests/conftest.py ORG_A, ORG_B).
DEFAULT_ORGANIZATIONS: tuple[tuple[str, str], ...] = (
    ("6f1e3c9a-1111-4a4a-9c9c-000000000001", "Ontario Society of Occupational Therapists"),
    ("6f1e3c9a-2222-4b4b-9c9c-000000000002", "OSOT Test Organization B"),
    ("6f1e3c9a-3333-4c4c-9c9c-000000000003", "OSOT Demo Organization"),
)


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """How to run one emulator: ``port=0`` picks a free port; ``db_path`` may be a file."""

    host: str = "127.0.0.1"
    port: int = 0
    db_path: str = ":memory:"
    token: str = "emulator-token"
    organizations: tuple[tuple[str, str], ...] = DEFAULT_ORGANIZATIONS
