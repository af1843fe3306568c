"""The fault soak: a Hypothesis state machine that drives the real stack and checks I1-I5.

Rules are what users do (create, add or edit a product, configure a target, cancel, commit,
read progress) from either instance, as either of two users, with product codes drawn from a
small pool so that drafts collide; and what production does to them (Dataverse throttling,
503s, dropped connections, writes applied but unanswered or applied late, an instance
SIGKILLed mid-commit, Redis SIGKILLed and restarted from its AOF). After every step the
invariants are checked against the emulator's rows and the API's answers.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from emulator import testing as faults
from services.auth import mint_token
from services.models import Principal, Privilege
from services.sessions import commit_guids
from tests.graphql_documents import (
    ADD_PRODUCT,
    CANCEL_SESSION,
    CONFIGURE_TARGET,
    SESSION,
    SESSION_PROGRESS,
    product_input,
)
from tests.soak.stack import SECRET, SoakStack

ORG = "6f1e3c9a-1111-4a4a-9c9c-000000000001"
USERS = ("soak-alice", "soak-bob")
CODES = ("SOAK-A", "SOAK-B", "SOAK-C")
PRICES = (Decimal("199.99"), Decimal("249"), Decimal("12.5"))
PROVINCES = ("ONTARIO", "QUEBEC", "ALBERTA")

CREATE = "mutation Create { createSession { session { sessionId expiresAt } userErrors { code } } }"
COMMIT = """
mutation Commit($sessionId: ID!) {
  commit(sessionId: $sessionId) {
    success productGuid targetGuid productCode errors
    userErrors { code message }
    session { state }
  }
}
"""

# Each fault is what one production incident queues: most are one request's worth, the
# compound ones are how faults combine in production (the write applied, its answer lost,
# and the reconcile reads that would confirm it lost too).
FAULTS: dict[str, list[dict[str, Any]]] = {
    "throttle": [faults.throttle("any", retry_after=1)],
    "unavailable": [faults.unavailable("any")],
    "drop": [faults.drop("any")],
    "write_then_drop": [faults.write_then_drop("batch")],
    "late_write": [faults.delay(2500, "batch")],  # applied after the client gave up
    "slow_read": [faults.delay(1500, "read")],
    "malformed": [faults.malformed("read")],
    "reads_lost": [faults.drop("read")] * 6,
    "write_and_checks_lost": [
        faults.passthrough("read"),
        faults.write_then_drop("batch"),
        # Three tries of the reconcile before the retry, three of the one after giving up.
        *[faults.drop("read")] * 6,
    ],
}
# The compound fault is what breaks promises: draw it as often as all the others together.
_KINDS = sorted(FAULTS)
FAULT_LISTS = st.lists(
    st.one_of(st.just("write_and_checks_lost"), st.sampled_from(_KINDS)), max_size=3
)
# Few drafts, so that steps keep meeting the same ones (and their codes collide).
MAX_DRAFTS = 3
# A transport error is expected only from an instance that was killed under the request.
ALLOWED_TOP_LEVEL = {"SERVICE_UNAVAILABLE", "SESSION_NOT_FOUND"}


class InvariantViolationError(AssertionError):
    """One of I1-I5 (or "never an internal error") does not hold."""


@dataclass
class SoakStats:
    """What the soak did, for the report of ``make soak``."""

    steps: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    commits: Counter[str] = field(default_factory=Counter)
    checks: int = 0
    violations: int = 0
    slowest_commit: float = 0.0
    runs: int = 0

    def report(self) -> str:
        lines = [
            f"runs of the state machine: {self.runs}",
            f"steps: {self.steps}",
            "faults injected: "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"),
            "commits: " + (", ".join(f"{k} {v}" for k, v in sorted(self.commits.items())) or "0"),
            f"invariant checks: {self.checks}",
            f"violations: {self.violations}",
            f"slowest commit: {self.slowest_commit:.2f} s",
        ]
        return "\n".join(lines)


STATS = SoakStats()


@dataclass
class DraftModel:
    """What the API told us about one draft: the reference the invariants compare with."""

    sid: str
    user: str
    expires_at: float
    code: str | None = None
    price: Decimal | None = None
    provinces: tuple[str, ...] | None = None
    cancelled: bool = False
    committed: bool = False
    # A commit answered "nothing was written": no row may appear unless committed again.
    nothing_written: bool = False
    # A commit whose answer never came (its instance was killed): anything may follow.
    unknown_commit: bool = False

    @property
    def principal(self) -> Principal:
        return Principal(self.user, Privilege.ADMIN, ORG, datetime(2100, 1, 1, tzinfo=UTC))

    @property
    def guids(self) -> tuple[str, str]:
        return commit_guids(self.principal, self.sid)


class CommitSoak(RuleBasedStateMachine):
    """Users and faults against two instances sharing one Redis and one Dataverse."""

    stack: SoakStack  # set by the runner before the machine is used

    drafts = Bundle("drafts")
    with_product = Bundle("with_product")  # drafts that had a product saved at least once

    def __init__(self) -> None:
        super().__init__()
        self.stack.reset()
        self.model: dict[str, DraftModel] = {}
        self.tokens = {
            user: mint_token(
                secret=SECRET,
                subject=user,
                privilege="admin",
                organization_guid=ORG,
                ttl_seconds=3600,
            )
            for user in USERS
        }
        self.http = httpx.Client(timeout=30)
        self.redis_restarted_at = 0.0
        STATS.runs += 1

    def teardown(self) -> None:
        self.http.close()

    # -- talking to the service ------------------------------------------------------------

    def call(
        self, instance: int, user: str, query: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """POST a GraphQL operation; None when the instance died under the request."""
        target = self.stack.instances[instance]
        try:
            response = self.http.post(
                f"{target.url}/graphql",
                json={"query": query, "variables": variables or {}},
                headers={"authorization": f"Bearer {self.tokens[user]}"},
            )
        except httpx.TransportError:
            if not target.running:
                return None
            raise InvariantViolationError(f"instance {target.name} did not answer") from None
        body = response.json()
        for error in body.get("errors") or []:
            code = (error.get("extensions") or {}).get("code")
            if code not in ALLOWED_TOP_LEVEL:
                raise InvariantViolationError(f"unexpected top-level error: {error}")
            if code == "SERVICE_UNAVAILABLE" and time.monotonic() - self.redis_restarted_at > 10:
                raise InvariantViolationError(f"SERVICE_UNAVAILABLE with Redis up: {error}")
        return body

    @staticmethod
    def payload(body: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
        if body is None or not body.get("data"):
            return None
        return body["data"][name]

    # -- users -----------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        STATS.steps += 1

    @precondition(lambda self: len(self.model) < MAX_DRAFTS)
    @rule(target=drafts, user=st.sampled_from(USERS), instance=st.integers(0, 1))
    def create(self, user: str, instance: int) -> str:
        return self._create(user, instance)

    def _create(self, user: str, instance: int) -> str:
        STATS.steps += 1
        created = self.payload(self.call(instance, user, CREATE), "createSession")
        assert created is not None and not created["userErrors"], created
        sid = created["session"]["sessionId"]
        expires = datetime.fromisoformat(created["session"]["expiresAt"]).timestamp()
        self.model[sid] = DraftModel(sid, user, expires)
        return sid

    @precondition(lambda self: len(self.model) < MAX_DRAFTS)
    @rule(
        target=with_product,
        user=st.sampled_from(USERS),
        instance=st.integers(0, 1),
        code=st.sampled_from(CODES),
        price=st.sampled_from(PRICES),
    )
    def create_with_product(self, user: str, instance: int, code: str, price: Decimal) -> str:
        sid = self._create(user, instance)
        self._add_product(sid, instance, code, price)
        return sid

    @rule(
        target=with_product,
        sid=drafts,
        instance=st.integers(0, 1),
        code=st.sampled_from(CODES),
        price=st.sampled_from(PRICES),
    )
    def add_product(self, sid: str, instance: int, code: str, price: Decimal) -> Any:
        STATS.steps += 1
        self._add_product(sid, instance, code, price)
        # Whatever the answer: bundles must not depend on the system, or replays diverge.
        return sid

    @rule(
        sid=with_product,
        instance=st.integers(0, 1),
        code=st.sampled_from(CODES),
        price=st.sampled_from(PRICES),
    )
    def edit_product(self, sid: str, instance: int, code: str, price: Decimal) -> None:
        STATS.steps += 1
        self._add_product(sid, instance, code, price)

    def _add_product(self, sid: str, instance: int, code: str, price: Decimal) -> None:
        draft = self.model[sid]
        variables = {
            "sessionId": sid,
            "input": product_input(productCode=code, generalPrice=float(price)),
        }
        added = self.payload(self.call(instance, draft.user, ADD_PRODUCT, variables), "addProduct")
        if added is not None and not added["userErrors"]:
            draft.code, draft.price = code, price

    @rule(
        sid=drafts,
        instance=st.integers(0, 1),
        provinces=st.lists(st.sampled_from(PROVINCES), unique=True, max_size=2),
    )
    def configure_target(self, sid: str, instance: int, provinces: list[str]) -> None:
        STATS.steps += 1
        draft = self.model[sid]
        variables = {"sessionId": sid, "input": {"province": provinces}}
        body = self.call(instance, draft.user, CONFIGURE_TARGET, variables)
        configured = self.payload(body, "configureTarget")
        if configured is not None and not configured["userErrors"]:
            draft.provinces = tuple(provinces)

    @rule(sid=consumes(drafts), instance=st.integers(0, 1))
    def cancel(self, sid: str, instance: int) -> None:
        STATS.steps += 1
        draft = self.model[sid]
        body = self.call(instance, draft.user, CANCEL_SESSION, {"sessionId": sid})
        cancelled = self.payload(body, "cancelSession")
        if cancelled is not None and cancelled["cancelled"]:
            draft.cancelled = True
            if self._row_of(draft) is not None:
                raise InvariantViolationError(f"{sid} was cancelled although its product exists")

    @rule(sid=with_product, instance=st.integers(0, 1), kinds=FAULT_LISTS)
    def commit(self, sid: str, instance: int, kinds: list[str]) -> None:
        """Commit, with faults queued just before (they hit this commit first)."""
        STATS.steps += 1
        self._set_faults(kinds)
        self._commit(sid, instance)

    @rule(
        sid=with_product,
        instance=st.integers(0, 1),
        after=st.sampled_from((0.05, 0.3, 0.8)),
        kinds=FAULT_LISTS,
    )
    def commit_and_kill(self, sid: str, instance: int, after: float, kinds: list[str]) -> None:
        """SIGKILL the instance while it commits, then start it again."""
        STATS.steps += 1
        STATS.faults["kill_instance"] += 1
        self._set_faults(kinds)
        failures: list[BaseException] = []

        def run() -> None:
            try:
                self._commit(sid, instance)
            except BaseException as exc:  # re-raised below, in the machine's thread
                failures.append(exc)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        time.sleep(after)
        self.stack.instances[instance].kill()
        worker.join(timeout=60)
        self.stack.instances[instance].start()
        if failures:
            raise failures[0]

    @rule(sid=drafts, instance=st.integers(0, 1))
    def read_progress(self, sid: str, instance: int) -> None:
        """A query, read twice: it must not change the draft (I5)."""
        STATS.steps += 1
        draft = self.model[sid]
        first = self.payload(
            self.call(instance, draft.user, SESSION_PROGRESS, {"sessionId": sid}),
            "sessionProgress",
        )
        second = self.payload(
            self.call(instance, draft.user, SESSION_PROGRESS, {"sessionId": sid}),
            "sessionProgress",
        )
        if first is None or second is None or first["state"] in ("COMMITTING", "FAILED"):
            return  # background recovery may change those
        if second["version"] != first["version"]:
            raise InvariantViolationError(f"reading {sid} changed it: {first} -> {second}")

    # -- production ------------------------------------------------------------------------

    @rule(kinds=FAULT_LISTS)
    def inject_faults(self, kinds: list[str]) -> None:
        """Queue faults (none: clear them): each hits the next Dataverse request of its kind,
        whoever sends it (an edit's code check, a recoverer, a commit)."""
        STATS.steps += 1
        self._set_faults(kinds)

    @rule(
        seconds=st.sampled_from((0.5, 2.0)), restart_redis=st.sampled_from((False,) * 3 + (True,))
    )
    def wait(self, seconds: float, restart_redis: bool) -> None:
        """Let time pass (leases run out, drafts expire, recoverers and late writes act),
        maybe with Redis SIGKILLed and started again from its append-only file."""
        STATS.steps += 1
        if restart_redis:
            STATS.faults["redis_restart"] += 1
            self.stack.redis.restart()
            self.redis_restarted_at = time.monotonic()
        time.sleep(seconds)

    def _set_faults(self, kinds: list[str]) -> None:
        STATS.faults.update(kinds)
        body = {"latency_ms": 0, "queue": [fault for kind in kinds for fault in FAULTS[kind]]}
        httpx.put(f"{self.stack.emulator.base_url}/_emulator/faults", json=body, timeout=10)

    # -- commit ----------------------------------------------------------------------------

    def _commit(self, sid: str, instance: int) -> None:
        draft = self.model[sid]
        draft.nothing_written = False
        draft.unknown_commit = True
        started = time.monotonic()
        body = self.call(instance, draft.user, COMMIT, {"sessionId": sid})
        elapsed = time.monotonic() - started
        answer = self.payload(body, "commit")
        if answer is None:
            STATS.commits["answer lost"] += 1
            return
        STATS.slowest_commit = max(STATS.slowest_commit, elapsed)
        draft.unknown_commit = False
        if answer["success"]:
            STATS.commits["committed"] += 1
            draft.committed = True
            if answer["productGuid"] != draft.guids[0]:
                raise InvariantViolationError(f"{sid} committed as {answer['productGuid']}")
            self._check_row(draft, required=True)
            return
        codes = {e["code"] for e in answer["userErrors"]}
        STATS.commits[",".join(sorted(codes)) or "failed"] += 1
        if any("nothing was written" in m.lower() for m in answer["errors"]):
            draft.nothing_written = True
            if self._row_of(draft) is not None:
                raise InvariantViolationError(
                    f"{sid}: 'nothing was written' but its product exists"
                )

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def dataverse_matches_what_was_said(self) -> None:
        """I1, I2, I3 against every row, and 'nothing written' stays true."""
        STATS.checks += 1
        products = self._rows("osot_table_products")
        targets = self._rows("osot_table_audience_targets")
        codes = Counter(str(p["osot_product_code"]).upper() for p in products)
        if duplicated := [code for code, count in codes.items() if count > 1]:
            raise InvariantViolationError(f"I1: codes written twice: {duplicated}")
        product_ids = {p["osot_table_productid"] for p in products}
        bound = Counter(t["_osot_table_product_value"] for t in targets)
        if set(bound) != product_ids or any(n != 1 for n in bound.values()):
            raise InvariantViolationError(f"I2: products {product_ids}, targets bound to {bound}")
        by_guid = {d.guids[0]: d for d in self.model.values()}
        for product in products:
            draft = by_guid.get(product["osot_table_productid"])
            if draft is None:
                raise InvariantViolationError(f"I3: a product no draft wrote: {product}")
            if draft.nothing_written:
                raise InvariantViolationError(
                    f"I3: {draft.sid} said nothing was written: {product}"
                )
            self._check_row(draft, required=True, row=product, targets=targets)

    @invariant()
    def drafts_are_never_lost(self) -> None:
        """I4: an open draft answers until expiresAt; a committed one through its receipt."""
        STATS.checks += 1
        now = time.time()
        for draft in self.model.values():
            if draft.cancelled or draft.unknown_commit:
                continue
            if not draft.committed and now > draft.expires_at - 1:
                continue
            body = self.call(0, draft.user, SESSION, {"sessionId": draft.sid})
            session = self.payload(body, "session")
            if session is None:
                if body is not None and time.monotonic() - self.redis_restarted_at > 10:
                    raise InvariantViolationError(f"I4: {draft.sid} lost: {body.get('errors')}")
                continue
            if draft.committed and session["state"] != "COMMITTED":
                raise InvariantViolationError(f"I4: committed {draft.sid} reads {session['state']}")

    # -- helpers ---------------------------------------------------------------------------

    def _rows(self, entity_set: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.stack.emulator.base_url}/_emulator/rows/{entity_set}")
        response.raise_for_status()
        return list(response.json()["value"])

    def _row_of(self, draft: DraftModel) -> dict[str, Any] | None:
        rows = [
            p
            for p in self._rows("osot_table_products")
            if p["osot_table_productid"] == draft.guids[0]
        ]
        return rows[0] if rows else None

    def _check_row(
        self,
        draft: DraftModel,
        *,
        required: bool,
        row: dict[str, Any] | None = None,
        targets: list[dict[str, Any]] | None = None,
    ) -> None:
        """I3: the row holds the draft as it was last saved (an edit is never dropped)."""
        row = row or self._row_of(draft)
        if row is None:
            if required:
                raise InvariantViolationError(f"I3: {draft.sid} reported committed, no product")
            return
        if str(row["osot_product_code"]).upper() != draft.code:
            raise InvariantViolationError(
                f"I3: {draft.sid} code {row['osot_product_code']} != {draft.code}"
            )
        if Decimal(str(row["osot_general_price"])) != draft.price:
            raise InvariantViolationError(
                f"I3: {draft.sid} price {row['osot_general_price']} != {draft.price}"
            )
        targets = targets if targets is not None else self._rows("osot_table_audience_targets")
        (target,) = [t for t in targets if t["osot_table_audience_targetid"] == draft.guids[1]]
        stored = target.get("osot_province")
        chosen = len(stored.split(",")) if stored else 0
        if chosen != len(draft.provinces or ()):
            raise InvariantViolationError(f"I3: {draft.sid} target {stored!r} != {draft.provinces}")
