"""``python -m tests.soak --minutes N`` (``make soak MINUTES=N``): run the fault soak.

Runs the state machine again and again with fresh random seeds until the time is up, then
prints steps, faults injected by kind, commits by outcome, invariant checks, violations
and the slowest commit. Exits 1 if any invariant was violated (Hypothesis prints the
shrunk sequence of steps: make it a regression test).
"""

from __future__ import annotations

import argparse
import sys
import time

from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.soak.machine import STATS, CommitSoak
from tests.soak.stack import SoakStack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=5.0, help="how long to run")
    parser.add_argument("--steps", type=int, default=25, help="steps per run of the machine")
    args = parser.parse_args(argv)

    stack = SoakStack().start()
    CommitSoak.stack = stack
    deadline = time.monotonic() + args.minutes * 60
    started = time.monotonic()
    try:
        while time.monotonic() < deadline:
            try:
                run_state_machine_as_test(
                    CommitSoak,
                    settings=settings(
                        max_examples=3,
                        stateful_step_count=args.steps,
                        deadline=None,
                        database=None,
                        phases=[Phase.generate, Phase.shrink],
                        suppress_health_check=list(HealthCheck),
                        print_blob=True,
                    ),
                )
            except Exception as exc:  # an invariant, or Hypothesis reporting one (flaky, group)
                STATS.violations += 1
                print(f"VIOLATION: {exc!r}", file=sys.stderr, flush=True)
    finally:
        stack.stop()
    print(f"fault soak: {(time.monotonic() - started) / 60:.1f} min")
    print(STATS.report())
    return 1 if STATS.violations else 0


if __name__ == "__main__":
    raise SystemExit(main())
