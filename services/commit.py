"""Commit a draft to Dataverse: product and target together or not at all, exactly once.

How exactly-once holds, whatever fails and whenever (see the README's exactly-once section):
- The GUIDs are derived from the session id, so no loss or replay of Redis state can give
  a draft new ones. The write is one ``$batch`` change set creating both rows under those
  GUIDs: atomic in Dataverse, and a resend that finds them answers 412 duplicate key.
- From the first write sent until its outcome is known, the draft's content is frozen and
  its product code held (draft.lua): a later commit resends exactly what may already be
  there, so it can only confirm it. An earlier write is ruled out only by a reconcile that
  finds nothing at least ``settle_after`` after it was sent (Dataverse ends every request
  well within that), so "nothing was written" is never said while a write may be on its way.
- The process that commits holds a lease, renewed by a heartbeat and checked (fenced) in
  Redis right before every write. A process that dies leaves its lease to expire; the
  recoverer of any instance (services/recovery.py) then takes the commit over, once.
- Before every retry that follows a wait, the product code and any earlier write are looked
  up again, and every exit path releases the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from tenacity import RetryCallState

from services.dataverse import (
    CHANGESET_PRODUCT_REF,
    PRODUCTS,
    TARGETS,
    DataverseAuthError,
    DataverseClient,
    DataverseDuplicateError,
    DataverseError,
    DataverseRejectedError,
    DataverseRetriesExhaustedError,
    DataverseUnavailableError,
    product_columns,
    retry_policy,
    target_columns,
)
from services.errors import (
    AlreadyCommittedError,
    CodeCheckUnavailableError,
    CommitInProgressError,
    InvalidStateError,
    LeaseLostError,
    ProductCodeTakenError,
    SessionNotFoundError,
    SessionStoreUnavailableError,
    StaleVersionError,
)
from services.models import CommitResult, Draft, Principal, SessionState
from services.sessions import SessionService, commit_guids
from telemetry import metrics

logger = logging.getLogger("orchestrator.commit")

_PRODUCT_READ = ("osot_productid", "_osot_table_organization_value")
_TARGET_READ = ("osot_target", "_osot_table_product_value")


@dataclass(frozen=True, slots=True)
class CommitPolicy:
    """How hard a commit tries, how it guards its lease, and how long its traces last."""

    max_attempts: int = 3
    max_total_wait: float = 30.0
    backoff_base: float = 0.5
    lease: timedelta = timedelta(seconds=60)
    # Dataverse ends a request within 2 minutes; a write sent longer ago than this and
    # not found by a reconcile can no longer land.
    settle_after: timedelta = timedelta(seconds=300)
    cleanup_after: timedelta = timedelta(seconds=5)
    receipt_ttl: timedelta = timedelta(hours=24)

    @property
    def heartbeat_every(self) -> float:
        """Seconds between lease renewals: three renewals fit in one lease."""
        return self.lease.total_seconds() / 3


@dataclass(frozen=True, slots=True)
class CommitOutcome:
    """What a commit led to, as far as it is known.

    ``draft`` is the draft after the commit (None when the session store lost it or could
    not be updated); ``result`` is set whenever Dataverse is known to hold the product;
    ``notes`` say what the draft cannot (an outcome Redis could not record).
    """

    draft: Draft | None
    failure_code: str | None = None
    result: CommitResult | None = None
    notes: tuple[str, ...] = ()

    @property
    def succeeded(self) -> bool:
        return self.result is not None

    @property
    def messages(self) -> list[str]:
        """Everything the admin should read: the notes, then the draft's own errors."""
        return [*self.notes, *(self.draft.errors if self.draft else [])]


class CommitService:
    """Run commits, and finish the ones whose process died or that were left unconfirmed."""

    def __init__(
        self,
        sessions: SessionService,
        dataverse: DataverseClient,
        policy: CommitPolicy | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        replicated: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._sessions = sessions
        self._dataverse = dataverse
        self._policy = policy or CommitPolicy()
        self._sleep = sleep
        # Waits until a replica holds the session's draft as written so far (WAIT; a no-op
        # without replicas): services/redis_client.py, RedisStore.replication_barrier.
        self._replicated = replicated or _no_replicas

    @property
    def policy(self) -> CommitPolicy:
        return self._policy

    async def ensure_code_available(self, principal: Principal, session_id: str, code: str) -> None:
        """Raise ProductCodeTakenError if a Dataverse product (any status) has this code.

        Only on a hit is the draft read: a draft past its commit gets INVALID_STATE instead,
        and the product an earlier commit of this very draft created is its own.
        """
        try:
            existing = await self._dataverse.find_product_by_code(code)
        except DataverseError as exc:
            # Failing open would let a taken code through (docs/design/old-service-defects.md D5).
            error = CodeCheckUnavailableError(
                f"Could not check with Dataverse that product code {code} is free, so nothing "
                f"was saved: {exc.message}"
            )
            error.field = ("input", "productCode")
            raise error from exc
        if existing is None:
            return
        draft = await self._sessions.get(principal, session_id)
        if draft.state in {SessionState.COMMITTING, SessionState.COMMITTED}:
            raise InvalidStateError(f"Cannot change the product: the session is {draft.state}.")
        if existing.guid.lower() == commit_guids(principal, session_id)[0]:
            return
        raise ProductCodeTakenError(code, where="an existing Dataverse product")

    async def commit(
        self,
        principal: Principal,
        session_id: str,
        operation_id: str,
        *,
        expected_version: int | None = None,
    ) -> CommitOutcome:
        """Write the draft's product and target to Dataverse, or say why not.

        With *expected_version*, only that version of the draft is committed
        (StaleVersionError otherwise).
        """
        lease_owner = uuid.uuid4().hex
        try:
            draft = await self._sessions.begin_commit(
                principal,
                session_id,
                lease_owner=lease_owner,
                lease=self._policy.lease,
                operation_id=operation_id,
                expected_version=expected_version,
            )
        except AlreadyCommittedError as exc:
            return CommitOutcome(exc.draft, result=exc.draft.result)
        except SessionNotFoundError:
            return await self._without_draft(principal, session_id)
        except StaleVersionError:
            # A retry of this very commit (its answer was lost) finds the draft moved on by
            # the commit itself: answer with what that commit did, not a refusal.
            current = await self._sessions.get(principal, session_id)
            if current.state is SessionState.COMMITTED:
                return CommitOutcome(current, result=current.result)
            if current.state is SessionState.COMMITTING:
                raise CommitInProgressError(
                    "A commit of this session is in progress; follow it with sessionProgress."
                ) from None
            raise
        return await self._run(_Attempt(self, draft, lease_owner))

    async def recover(self, session_id: str) -> CommitOutcome | None:
        """Finish a commit nobody runs any more (its lease ran out, or it was left
        unconfirmed past expiresAt); None when another process got to it first."""
        lease_owner = uuid.uuid4().hex
        draft = await self._sessions.take_over(
            session_id,
            lease_owner=lease_owner,
            lease=self._policy.lease,
            operation_id=f"recovery-{lease_owner[:12]}",
        )
        if draft is None:
            return None
        logger.warning("finishing the commit of session %s, which no process runs", session_id)
        try:
            return await self._run(_Attempt(self, draft, lease_owner))
        except CommitInProgressError:
            return None

    async def _run(self, attempt: _Attempt) -> CommitOutcome:
        started = time.perf_counter()
        outcome = await self._outcome_of(attempt)
        metrics.record_commit(
            outcome.succeeded, outcome.failure_code, time.perf_counter() - started
        )
        return outcome

    async def _outcome_of(self, attempt: _Attempt) -> CommitOutcome:
        try:
            return await attempt.run()
        except LeaseLostError as exc:
            if attempt.written is not None:
                # Written, but another process took over before we could record it: it
                # will find these same rows. Say what Dataverse holds.
                return CommitOutcome(
                    exc.draft,
                    result=attempt.written,
                    notes=(
                        "The product is in Dataverse; another instance took this commit over "
                        "and is recording it.",
                    ),
                )
            raise CommitInProgressError(
                "Another commit of this session took over; follow it with sessionProgress."
            ) from None
        except (SessionStoreUnavailableError, SessionNotFoundError) as exc:
            return attempt.unrecorded(exc)

    async def _without_draft(self, principal: Principal, session_id: str) -> CommitOutcome:
        """Answer a commit of a session Redis no longer has: its receipt, or Dataverse's rows.

        The GUIDs are derived from the session id, so a draft lost by a Redis restart can
        still be matched with what its commit wrote.
        """
        try:
            draft = await self._sessions.get(principal, session_id)  # the receipt
        except SessionNotFoundError:
            draft = None
        if draft is not None and draft.state is SessionState.COMMITTED:
            return CommitOutcome(draft, result=draft.result)
        found = await _committed_rows(self._dataverse, principal, session_id)
        if found is None:
            raise SessionNotFoundError
        return CommitOutcome(
            None,
            result=found,
            notes=(
                "This session is no longer in the session store, but its commit is in "
                f"Dataverse: product {found.product_guid} ({found.product_code}).",
            ),
        )


async def _committed_rows(
    dataverse: DataverseClient, principal: Principal, session_id: str
) -> CommitResult | None:
    """What this caller's commit of *session_id* wrote, found by its derived GUIDs."""
    try:
        uuid.UUID(session_id)
    except ValueError:
        return None
    product_guid, target_guid = commit_guids(principal, session_id)
    try:
        product = await dataverse.get_product(product_guid)
        target = await dataverse.get_target(target_guid) if product else None
    except DataverseError:
        return None
    if product is None or target is None:
        return None
    if (product.organization_guid or "").lower() != principal.organization_guid.lower():
        return None
    return CommitResult(
        product_guid=product.guid,
        target_guid=target.guid,
        product_code=product.code or "",
        product_id=product.product_id,
        target_id=target.target_id,
    )


async def _no_replicas(session_id: str) -> None:
    return None


class _CodeTakenError(Exception):
    """Dataverse holds another product with this code."""


class _MismatchError(Exception):
    """Dataverse holds rows under this commit's GUIDs that are not what the draft says."""


class _Attempt:
    """One commit run by the process holding the lease."""

    def __init__(self, service: CommitService, draft: Draft, lease_owner: str) -> None:
        assert draft.commit is not None and draft.product is not None
        self._sessions = service._sessions
        self._dataverse = service._dataverse
        self._policy = service._policy
        self._sleep = service._sleep
        self._replicated = service._replicated
        self._draft = draft
        self._lease_owner = lease_owner
        self._product_guid = draft.commit.product_guid
        self._target_guid = draft.commit.target_guid
        self._code = draft.product_code or ""
        # A takeover cannot know what the process before it sent: assume it may have.
        self._ambiguous = draft.commit.recovering or draft.commit.uncertain
        self._last_write_at_ms = draft.commit.last_write_at_ms
        self._product: dict[str, Any] = {}
        self._target: dict[str, Any] = {}
        self.written: CommitResult | None = None

    async def run(self) -> CommitOutcome:
        try:
            return await self._run_beating()
        except asyncio.CancelledError:
            # The process is stopping (SIGTERM past SHUTDOWN_TIMEOUT_SECONDS): leave no
            # draft COMMITTING for a whole lease; another instance finishes it at once. (After
            # the heartbeat has stopped, so that no late beat renews the lease again.)
            await asyncio.shield(self._interrupted())
            raise

    async def _run_beating(self) -> CommitOutcome:
        async with self._heartbeat():
            try:
                return await self._run()
            except (LeaseLostError, SessionStoreUnavailableError, SessionNotFoundError):
                raise
            except Exception as exc:
                # Never leave the draft COMMITTING for a whole lease because of a bug or an
                # answer nobody foresaw: record a failure, frozen if a write may have landed.
                logger.exception("commit of session %s failed unexpectedly", self._session_id)
                return await self._fail(
                    [
                        f"The commit stopped on an unexpected error ({type(exc).__name__}). "
                        + self._advice()
                    ],
                    "COMMIT_FAILED",
                )

    @property
    def _session_id(self) -> str:
        return self._draft.session_id

    async def _run(self) -> CommitOutcome:
        draft = self._draft
        assert draft.product is not None
        # Built here, inside run(): a body that cannot be built fails the commit cleanly.
        self._product = product_columns(draft.product, draft.organization_guid, self._product_guid)
        self._target = target_columns(
            draft.audience_target or {}, self._target_guid, CHANGESET_PRODUCT_REF
        )
        try:
            if (found := await self._already_there()) is not None:
                return await self._succeed(found)
            return await self._write()
        except (_CodeTakenError, ProductCodeTakenError):
            return await self._fail(
                [
                    f"Product code {self._code} already exists in Dataverse; change the code "
                    "with addProduct and commit again. " + self._advice()
                ],
                "PRODUCT_CODE_TAKEN",
            )
        except DataverseDuplicateError:
            if (found := await self._reconcile_or_none()) is not None:
                return await self._succeed(found)
            return await self._fail(
                [
                    "Dataverse already holds a record with this commit's id but not the product "
                    "and target it expects; contact support with the session id."
                ],
                "COMMIT_FAILED",
            )
        except _MismatchError as exc:
            return await self._fail(
                [
                    f"Dataverse holds this commit's rows with other values ({exc}); they were "
                    "changed outside this service. Contact support with the session id."
                ],
                "COMMIT_FAILED",
            )
        except (DataverseRejectedError, DataverseAuthError) as exc:
            return await self._fail(
                [f"Dataverse rejected the product: {exc.message} " + self._advice()],
                "COMMIT_FAILED",
            )
        except (DataverseRetriesExhaustedError, DataverseUnavailableError) as exc:
            return await self._gave_up(exc)

    async def _already_there(self) -> CommitResult | None:
        """Look in Dataverse before a write: an earlier write of ours, or the code taken.

        Return what an earlier write created; raise _CodeTakenError if another product has
        the code; None when the way is clear.
        """
        if self._ambiguous:
            if (found := await self._reconcile()) is not None:
                return found
            if self._settled():
                self._ambiguous = False  # nothing there, and nothing can still land
        existing = await self._dataverse.find_product_by_code(self._code)
        if existing is None:
            return None
        if existing.guid.lower() != self._product_guid.lower():
            raise _CodeTakenError(existing.guid)
        return await self._reconcile()

    async def _write(self) -> CommitOutcome:
        policy = self._policy
        retrying = retry_policy(
            policy.max_attempts, policy.max_total_wait, policy.backoff_base
        ).copy(before_sleep=self._announce_retry, sleep=self._sleep)
        async for attempt in retrying:
            with attempt:
                # After a wait the world may have moved on (the code taken, an earlier
                # write landed): look again before sending anything.
                if attempt.retry_state.attempt_number > 1 and (
                    found := await self._already_there()
                ):
                    return await self._succeed(found)
                fenced = await self._sessions.fence(
                    self._draft, lease_owner=self._lease_owner, lease=policy.lease
                )
                assert fenced.commit is not None
                self._last_write_at_ms = fenced.commit.last_write_at_ms
                # The fence must outlive a failover before Dataverse hears of this write:
                # asynchronous replication could otherwise lose it (issue 8).
                await self._replicated(self._session_id)
                try:
                    await self._dataverse.create_product_with_target(
                        product_columns=self._product, target_columns=self._target
                    )
                except DataverseUnavailableError as exc:
                    self._ambiguous |= exc.ambiguous  # other answers say it was not applied
                    raise
        return await self._succeed(
            CommitResult(
                product_guid=self._product_guid,
                target_guid=self._target_guid,
                product_code=self._code,
            )
        )

    async def _announce_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.upcoming_sleep
        metrics.record_retry(error)
        self._draft = await self._sessions.commit_retrying(
            self._draft,
            lease_owner=self._lease_owner,
            lease=self._policy.lease + timedelta(seconds=wait),
            attempt=state.attempt_number + 1,
            cause=getattr(error, "message", str(error)),
            retry_at_ms=int((time.time() + wait) * 1000),
        )

    def _settled(self) -> bool:
        """True when every write sent so far is too old to still be applied by Dataverse."""
        settle_ms = self._policy.settle_after.total_seconds() * 1000
        return time.time() * 1000 - self._last_write_at_ms >= settle_ms

    async def _reconcile_or_none(self) -> CommitResult | None:
        try:
            return await self._reconcile()
        except DataverseError:
            return None

    async def _reconcile(self) -> CommitResult | None:
        """Return what an earlier write created, checked against the draft; None if nothing."""
        product = await self._dataverse.get_row(
            PRODUCTS, self._product_guid, [*_written_columns(self._product), *_PRODUCT_READ]
        )
        target = await self._dataverse.get_row(
            TARGETS, self._target_guid, [*_written_columns(self._target), *_TARGET_READ]
        )
        if product is None and target is None:
            return None
        if product is None or target is None:
            # A change set cannot leave half of itself behind: someone deleted a row.
            raise _MismatchError(f"only the {'product' if product else 'audience target'} exists")
        bound_to = str(target.get("_osot_table_product_value") or "").lower()
        differences = _differences(self._product, product) + _differences(self._target, target)
        if bound_to != self._product_guid.lower():
            differences.append("the target is bound to another product")
        if differences:
            raise _MismatchError("; ".join(differences))
        return CommitResult(
            product_guid=self._product_guid,
            target_guid=self._target_guid,
            product_code=self._code,
            product_id=product.get("osot_productid"),
            target_id=target.get("osot_target"),
        )

    async def _gave_up(self, exc: DataverseError) -> CommitOutcome:
        if self._ambiguous:
            try:
                if (found := await self._reconcile()) is not None:
                    return await self._succeed(found)
                if self._settled():
                    self._ambiguous = False
            except DataverseError:
                pass  # could not look: it stays unconfirmed
        if self._ambiguous:
            message = (
                f"{exc.message} The last attempt may have reached Dataverse and could not be "
                "checked: commit again to finish it (it will not create a duplicate). Until "
                "then the draft cannot be changed or cancelled."
            )
        else:
            message = f"{exc.message} Nothing was written."
        return await self._fail([message], "DATAVERSE_UNAVAILABLE")

    def _advice(self) -> str:
        if self._ambiguous:
            return (
                "An earlier attempt may still reach Dataverse, so the draft stays as it is: "
                "commit again to settle it."
            )
        return "Nothing was written."

    async def _succeed(self, result: CommitResult) -> CommitOutcome:
        self.written = result
        policy = self._policy
        draft = await self._sessions.commit_succeeded(
            self._draft,
            lease_owner=self._lease_owner,
            result=result,
            cleanup=policy.cleanup_after,
            receipt_ttl=policy.receipt_ttl,
        )
        logger.info(
            "session %s committed: product %s (%s), target %s",
            draft.session_id,
            result.product_guid,
            result.product_code,
            result.target_guid,
        )
        return CommitOutcome(draft, result=draft.result)

    async def _interrupted(self) -> None:
        """Hand a commit this process will not finish over to any instance's recoverer now.

        Its lease is released (renewed for no time): the recoverer of any instance takes it
        over within its interval, exactly as after a crash, without waiting for the lease.
        """
        try:
            await self._sessions.heartbeat(
                self._draft, lease_owner=self._lease_owner, lease=timedelta(0)
            )
        except Exception:
            # Redis unreachable or the lease gone already: the lease's expiry hands it over.
            logger.warning("could not hand over the stopped commit of %s", self._session_id)

    async def _fail(self, errors: list[str], code: str) -> CommitOutcome:
        draft = await self._sessions.commit_failed(
            self._draft,
            lease_owner=self._lease_owner,
            errors=errors,
            uncertain=self._ambiguous,
            recover_after=self._policy.lease,
        )
        logger.warning("session %s commit failed (%s): %s", draft.session_id, code, errors[0])
        return CommitOutcome(draft, code)

    def unrecorded(self, exc: SessionStoreUnavailableError | SessionNotFoundError) -> CommitOutcome:
        """Say what is known when the outcome could not be saved in Redis."""
        cause = (
            "the session store is unavailable"
            if isinstance(exc, SessionStoreUnavailableError)
            else "the session is no longer in the session store (was Redis restarted?)"
        )
        where = f"product {self._product_guid} ({self._code})"
        if self.written is not None:
            return CommitOutcome(
                None,
                result=self.written,
                notes=(
                    f"The product is in Dataverse ({where}), but {cause}, so the session "
                    "could not be updated. Commit again later: it confirms the same product.",
                ),
            )
        if not self._ambiguous:
            raise exc
        return CommitOutcome(
            None,
            "COMMIT_UNCONFIRMED",
            notes=(
                f"The commit stopped because {cause}. The product may have been created "
                f"({where}): commit again to find out, or look it up by its code.",
            ),
        )

    @contextlib.asynccontextmanager
    async def _heartbeat(self) -> AsyncIterator[None]:
        """Renew the lease while the attempt runs, so a slow Dataverse never loses it."""

        async def beat() -> None:
            while True:
                await asyncio.sleep(self._policy.heartbeat_every)
                try:
                    await self._sessions.heartbeat(
                        self._draft, lease_owner=self._lease_owner, lease=self._policy.lease
                    )
                except (LeaseLostError, SessionNotFoundError):
                    return  # the fence before any write, or the outcome, will say so
                except SessionStoreUnavailableError:
                    continue  # try again next beat; the fence has the last word

        task = asyncio.create_task(beat(), name=f"commit-heartbeat-{self._session_id}")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _written_columns(body: Mapping[str, Any]) -> list[str]:
    return [name for name in body if "@" not in name]


def _differences(written: Mapping[str, Any], stored: Mapping[str, Any]) -> list[str]:
    """Return the columns whose stored value is not the value written."""
    return [
        name for name in _written_columns(written) if not _same(written[name], stored.get(name))
    ]


def _same(written: Any, stored: Any) -> bool:
    if isinstance(written, bool) or isinstance(stored, bool):
        return bool(written == stored)
    if isinstance(written, int | float) and isinstance(stored, int | float | str | Decimal):
        try:
            return Decimal(str(written)) == Decimal(str(stored))
        except InvalidOperation:
            return False
    if isinstance(written, str) and isinstance(stored, str):
        if "," in written or "," in stored:  # multi-select: the same options in any order
            return sorted(written.split(",")) == sorted(stored.split(","))
        return written.lower() == stored.lower() if _is_guid(written) else written == stored
    return bool(written == stored)


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
