"""docs/deploy.md stays true: linked, every setting in it, and the ACL the tests run with."""

from __future__ import annotations

import re
from pathlib import Path

from settings import Settings
from tests.ha.topology import APP_ACL, APP_USER

ROOT = Path(__file__).parent.parent.parent
GUIDE = ROOT / "docs" / "deploy.md"


def test_the_readme_links_the_deploy_guide_and_states_the_capacity() -> None:
    readme = (ROOT / "README.md").read_text()

    assert "(docs/deploy.md)" in readme
    assert re.search(r"[\d,]+.{0,40}state changes per second", readme)


def test_the_deploy_guide_covers_every_setting() -> None:
    guide = GUIDE.read_text()
    mentioned = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", guide))

    missing = {name.upper() for name in Settings.model_fields} - mentioned
    assert missing == set(), f"document these in docs/deploy.md section 5: {sorted(missing)}"


def test_the_documented_acl_is_the_one_the_ha_tests_run_with() -> None:
    guide = GUIDE.read_text()

    assert f"user {APP_USER} on >PASSWORD {APP_ACL}\n" in guide
    quoted = " ".join(f"'{r}'" if r[0] in "~&" else r for r in APP_ACL.split())
    assert f"ACL SETUSER {APP_USER} on '>PASSWORD' {quoted}\n" in guide
