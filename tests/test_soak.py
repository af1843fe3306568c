"""The fault soak in the suite: a bounded, fixed-seed run of the state machine (tests/soak).

``make soak MINUTES=N`` runs the same machine for longer with fresh seeds.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.soak.machine import STATS, CommitSoak
from tests.soak.stack import SoakStack


@pytest.fixture(scope="module")
def stack() -> Iterator[SoakStack]:
    stack = SoakStack().start()
    CommitSoak.stack = stack
    yield stack
    stack.stop()


@pytest.mark.timeout(300)
def test_exactly_once_and_nothing_lost_under_compound_faults(stack: SoakStack) -> None:
    run_state_machine_as_test(
        CommitSoak,
        settings=settings(
            max_examples=5,
            stateful_step_count=15,
            deadline=None,
            derandomize=True,  # the same runs every time: CI is not a lottery
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    assert STATS.checks > 0 and STATS.violations == 0
