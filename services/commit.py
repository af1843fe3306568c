"""Commit a draft to Dataverse: product and target together or not at all, exactly once.

How exactly-once holds (DOMAIN.md D1-D5 are what the old service got wrong):
- ``begin_commit`` moves the draft to COMMITTING under a lease by compare-and-set, and
  chooses the product and target GUIDs once; every attempt, and every later commit of
  the draft, writes those same GUIDs.
- The write is one ``$batch`` change set (atomic in Dataverse). Resending it after an
  ambiguous failure either creates both rows or answers 412 duplicate key; then a
  reconcile read of the two GUIDs confirms the earlier write.
- A process that dies mid-commit leaves the lease to expire; the next ``commit`` or
  ``sessionProgress`` takes the draft over, reconciles, and finishes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

from tenacity import RetryCallState

from services.dataverse import (
    CHANGESET_PRODUCT_REF,
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
    CommitInProgressError,
    InvalidStateError,
    ProductCodeTakenError,
    SessionNotFoundError,
    UserInputError,
)
from services.models import CommitResult, Draft, Principal, SessionState
from services.sessions import AlreadyCommittedError, LeaseLostError, SessionService

logger = logging.getLogger("orchestrator.commit")


class CodeCheckUnavailableError(UserInputError):
    """Dataverse could not be asked whether the product code is free; nothing was saved."""

    code: ClassVar[str] = "DATAVERSE_UNAVAILABLE"


@dataclass(frozen=True, slots=True)
class CommitPolicy:
    """How hard a commit tries, and how long its traces last."""

    max_attempts: int = 3
    max_total_wait: float = 30.0
    backoff_base: float = 0.5
    lease: timedelta = timedelta(seconds=60)
    cleanup_after: timedelta = timedelta(seconds=5)
    receipt_ttl: timedelta = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class CommitOutcome:
    """The draft after a commit; ``failure_code`` says why it is FAILED, if it is."""

    draft: Draft
    failure_code: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.draft.state is SessionState.COMMITTED


class CommitService:
    """Run commits and recover the ones a crashed process left behind."""

    def __init__(
        self,
        sessions: SessionService,
        dataverse: DataverseClient,
        policy: CommitPolicy | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._sessions = sessions
        self._dataverse = dataverse
        self._policy = policy or CommitPolicy()
        self._sleep = sleep

    async def ensure_code_available(self, principal: Principal, session_id: str, code: str) -> None:
        """Raise ProductCodeTakenError if a Dataverse product (any status) has this code.

        Only on a hit is the draft read: a draft past its commit gets INVALID_STATE instead,
        and the product an earlier, unconfirmed commit of this very draft created is its own.
        """
        try:
            existing = await self._dataverse.find_product_by_code(code)
        except DataverseError as exc:
            # Failing open here would let a taken code through (DOMAIN.md D5).
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
        if draft.commit is not None and draft.commit.product_guid.lower() == existing.guid.lower():
            return
        raise ProductCodeTakenError(code, where="an existing Dataverse product")

    async def commit(
        self, principal: Principal, session_id: str, operation_id: str
    ) -> CommitOutcome:
        """Write the draft's product and target to Dataverse, or say why not."""
        lease_owner = uuid.uuid4().hex
        try:
            draft = await self._sessions.begin_commit(
                principal,
                session_id,
                lease_owner=lease_owner,
                lease=self._policy.lease,
                operation_id=operation_id,
            )
        except AlreadyCommittedError as exc:
            return CommitOutcome(exc.draft)
        except SessionNotFoundError:
            # Cleaned up after its commit: the receipt answers a repeated commit.
            draft = await self._sessions.get(principal, session_id)
            if draft.state is SessionState.COMMITTED:
                return CommitOutcome(draft)
            raise
        try:
            return await _Attempt(self, draft, lease_owner).run()
        except LeaseLostError:
            raise CommitInProgressError(
                "Another commit of this session took over; follow it with sessionProgress."
            ) from None

    async def recover_if_stale(self, principal: Principal, draft: Draft) -> Draft:
        """Finish a commit whose process died: reconcile with Dataverse once its lease expired."""
        if draft.state is not SessionState.COMMITTING or draft.commit is None:
            return draft
        if draft.commit.lease_until_ms > time.time() * 1000:
            return draft
        lease_owner = uuid.uuid4().hex
        try:
            taken = await self._sessions.begin_commit(
                principal,
                draft.session_id,
                lease_owner=lease_owner,
                lease=self._policy.lease,
                operation_id=draft.commit.operation_id or "recovery",
            )
        except (CommitInProgressError, AlreadyCommittedError, SessionNotFoundError):
            return await self._sessions.get(principal, draft.session_id)
        logger.warning("recovering session %s left in COMMITTING", draft.session_id)
        return (await _Attempt(self, taken, lease_owner).recover()).draft


class _Attempt:
    """One commit run by the process holding the lease."""

    def __init__(self, service: CommitService, draft: Draft, lease_owner: str) -> None:
        assert draft.commit is not None and draft.product is not None
        self._sessions = service._sessions
        self._dataverse = service._dataverse
        self._policy = service._policy
        self._sleep = service._sleep
        self._draft = draft
        self._lease_owner = lease_owner
        self._product_guid = draft.commit.product_guid
        self._target_guid = draft.commit.target_guid
        self._code = draft.product_code or ""
        self._ambiguous = draft.commit.recovering or draft.commit.uncertain

    async def run(self) -> CommitOutcome:
        try:
            if self._ambiguous and (found := await self._reconcile()):
                return await self._succeed(found)
            existing = await self._dataverse.find_product_by_code(self._code)
            if existing is not None:
                if existing.guid.lower() == self._product_guid.lower() and (
                    found := await self._reconcile()
                ):
                    return await self._succeed(found)
                return await self._fail(
                    [
                        f"Product code {self._code} already exists in Dataverse; change the code "
                        "with addProduct and commit again. Nothing was written."
                    ],
                    "PRODUCT_CODE_TAKEN",
                )
            return await self._write()
        except DataverseDuplicateError:
            if found := await self._reconcile():
                return await self._succeed(found)
            return await self._fail(
                [
                    "Dataverse already holds a record with this commit's id but not the product "
                    "and target it expects; contact support with the session id."
                ],
                "COMMIT_FAILED",
            )
        except (DataverseRejectedError, DataverseAuthError) as exc:
            return await self._fail(
                [
                    f"Dataverse rejected the product: {exc.message} Nothing was written; fix the "
                    "draft and commit again."
                ],
                "COMMIT_FAILED",
            )
        except DataverseRetriesExhaustedError as exc:
            return await self._gave_up(exc)
        except DataverseUnavailableError as exc:  # a read outside the retried write
            return await self._gave_up(exc)

    async def recover(self) -> CommitOutcome:
        try:
            if found := await self._reconcile():
                return await self._succeed(found)
        except DataverseError as exc:
            return await self._fail(
                [
                    f"A commit was interrupted and Dataverse could not be checked ({exc.message}). "
                    "Commit again to finish: it will not create a duplicate."
                ],
                "DATAVERSE_UNAVAILABLE",
                uncertain=True,
            )
        return await self._fail(
            ["A commit was interrupted before anything was written. Commit again."],
            "COMMIT_FAILED",
        )

    async def _write(self) -> CommitOutcome:
        draft = self._draft
        product = product_columns(draft.product, draft.organization_guid, self._product_guid)  # type: ignore[arg-type]
        target = target_columns(
            draft.audience_target or {},
            self._target_guid,
            CHANGESET_PRODUCT_REF,  # type: ignore[arg-type]
        )
        policy = self._policy
        retrying = retry_policy(
            policy.max_attempts, policy.max_total_wait, policy.backoff_base
        ).copy(before_sleep=self._announce_retry, sleep=self._sleep)
        async for attempt in retrying:
            with attempt:
                try:
                    await self._dataverse.create_product_with_target(
                        product_columns=product, target_columns=target
                    )
                except DataverseUnavailableError as exc:
                    self._ambiguous |= exc.ambiguous
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
        self._draft = await self._sessions.commit_retrying(
            self._draft,
            lease_owner=self._lease_owner,
            lease=self._policy.lease + timedelta(seconds=wait),
            attempt=state.attempt_number + 1,
            cause=getattr(error, "message", str(error)),
            retry_at_ms=int((time.time() + wait) * 1000),
        )

    async def _reconcile(self) -> CommitResult | None:
        """Return what an earlier attempt created, or None if it created nothing."""
        product = await self._dataverse.get_product(self._product_guid)
        target = await self._dataverse.get_target(self._target_guid)
        if product is None and target is None:
            return None
        if (
            product is None
            or target is None
            or (target.product_guid or "").lower() != self._product_guid.lower()
        ):
            raise DataverseRejectedError(
                409,
                None,
                f"Dataverse holds only part of this commit (product {bool(product)}, target "
                f"{bool(target)}), which a change set cannot leave behind.",
            )
        return CommitResult(
            product_guid=product.guid,
            target_guid=target.guid,
            product_code=product.code or self._code,
            product_id=product.product_id,
            target_id=target.target_id,
        )

    async def _gave_up(self, exc: DataverseError) -> CommitOutcome:
        if self._ambiguous:
            try:
                if found := await self._reconcile():
                    return await self._succeed(found)
            except DataverseError:
                return await self._fail(
                    [
                        f"{exc.message} The last attempt may have reached Dataverse and could "
                        "not be checked; commit again to finish: it will not create a duplicate."
                    ],
                    "DATAVERSE_UNAVAILABLE",
                    uncertain=True,
                )
        return await self._fail([f"{exc.message} Nothing was written."], "DATAVERSE_UNAVAILABLE")

    async def _succeed(self, result: CommitResult) -> CommitOutcome:
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
        return CommitOutcome(draft)

    async def _fail(
        self, errors: list[str], code: str, *, uncertain: bool = False
    ) -> CommitOutcome:
        draft = await self._sessions.commit_failed(
            self._draft, lease_owner=self._lease_owner, errors=errors, uncertain=uncertain
        )
        logger.warning("session %s commit failed (%s): %s", draft.session_id, code, errors[0])
        return CommitOutcome(draft, code)
