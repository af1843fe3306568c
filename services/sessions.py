"""Drafts in Redis: every change is one atomic Lua compare-and-set (services/lua/draft.lua)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from importlib import resources
from typing import Any, TypeVar, cast

from pydantic import BaseModel
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisError

from services.errors import (
    AlreadyCommittedError,
    CommitInProgressError,
    CommitUnconfirmedError,
    InvalidStateError,
    LeaseLostError,
    ProductCodeTakenError,
    SessionNotFoundError,
    SessionStoreUnavailableError,
    StaleVersionError,
    TooManyDraftsError,
)
from services.models import Draft, Principal, SessionState
from telemetry import metrics

T = TypeVar("T")

_SCRIPT = resources.files("services.lua").joinpath("draft.lua").read_text("utf-8")
# Drafts read per MGET when listing a user's drafts.
_LIST_CHUNK = 50


@dataclass(frozen=True, slots=True)
class Owner:
    """Who a draft belongs to: a user within an organization."""

    user_id: str
    organization_guid: str

    @classmethod
    def of(cls, who: Principal | Draft) -> Owner:
        return cls(who.user_id, who.organization_guid)


@dataclass(frozen=True, slots=True)
class KeySpace:
    """Redis key names; one hash tag keeps them all in one Redis Cluster slot."""

    tag: str = "orchestrator"

    def draft(self, session_id: str) -> str:
        return f"{{{self.tag}}}:draft:{session_id}"

    def receipt(self, session_id: str) -> str:
        return f"{{{self.tag}}}:receipt:{session_id}"

    def owner(self, owner: Owner) -> str:
        return f"{{{self.tag}}}:owner:{owner.organization_guid}:{owner.user_id}"

    @property
    def unused(self) -> str:
        """Fills a script's key slot that an operation does not use (same hash slot)."""
        return f"{{{self.tag}}}:unused"

    @property
    def codes(self) -> str:
        return f"{{{self.tag}}}:codes"

    @property
    def code_expiry(self) -> str:
        return f"{{{self.tag}}}:code-expiry"

    @property
    def schedule(self) -> str:
        return f"{{{self.tag}}}:schedule"

    @property
    def events(self) -> str:
        return f"{{{self.tag}}}:events"

    @property
    def recovery(self) -> str:
        return f"{{{self.tag}}}:recovery"

    @property
    def draft_prefix(self) -> str:
        return self.draft("")


# Namespace of the commit GUIDs: uuid5(COMMIT_NAMESPACE, "<sessionId>/product") and ".../target".
COMMIT_NAMESPACE = uuid.UUID("5f0c6c2e-8f43-4d39-9d2b-4a0c1f6e7a10")


def commit_guids(owner: Principal | Draft, session_id: str) -> tuple[str, str]:
    """Return the product and target GUIDs a session's commit writes, derived from its id.

    Derived, not drawn: however Redis loses or replays state (failover, restart), a draft
    can never get new GUIDs for rows that may already exist in Dataverse. The owner is part
    of the name, so only the draft's owner can find its rows from its session id.
    """
    name = f"{owner.organization_guid.lower()}/{owner.user_id}/{session_id}"
    return (
        str(uuid.uuid5(COMMIT_NAMESPACE, f"{name}/product")),
        str(uuid.uuid5(COMMIT_NAMESPACE, f"{name}/target")),
    )


def _invalid_state(state: str, action: str) -> InvalidStateError:
    if state == SessionState.COMMITTING:
        return InvalidStateError(f"Cannot {action}: a commit of this session is in progress.")
    return InvalidStateError(f"Cannot {action}: the session is {state}.")


class SessionService:
    """Create, read and change drafts; each change is one round trip to Redis."""

    def __init__(
        self,
        redis: Redis | RedisCluster,
        *,
        ttl: timedelta = timedelta(hours=2),
        keys: KeySpace | None = None,
        max_open_drafts: int | None = None,
    ) -> None:
        self._redis = redis
        self._ttl_ms = int(ttl.total_seconds() * 1000)
        self._max_open = max_open_drafts
        self.keys = keys or KeySpace()
        self._script = redis.register_script(_SCRIPT)

    @property
    def events_channel(self) -> str:
        return self.keys.events

    async def ping(self) -> None:
        """Raise SessionStoreUnavailableError unless Redis answers."""
        await self._call(self._redis.ping)

    # -- reads -----------------------------------------------------------------

    async def get(self, principal: Principal, session_id: str) -> Draft:
        """Return the caller's draft, or its commit receipt once the draft is cleaned up."""
        raw_draft, raw_receipt = await self._call(
            lambda: self._redis.mget(self.keys.draft(session_id), self.keys.receipt(session_id))
        )
        if raw_draft is not None:
            draft = Draft.model_validate_json(raw_draft)
        elif raw_receipt is not None:
            draft = _draft_from_receipt(json.loads(raw_receipt))
        else:
            raise SessionNotFoundError
        if Owner.of(draft) != Owner.of(principal):
            raise SessionNotFoundError
        return draft

    async def list_open(
        self, principal: Principal, *, offset: int = 0, limit: int | None = None
    ) -> list[Draft]:
        """Return the caller's drafts that have not expired, newest first.

        With *limit*, one page: at most *limit* drafts after the first *offset*. Only the
        drafts up to the end of the page are read from Redis.
        """
        index = self.keys.owner(Owner.of(principal))
        # Scored by expiresAt, creation time plus the TTL: highest first is newest first.
        ids = cast(
            list[str],
            await self._call(
                lambda: self._redis.zrange(index, "+inf", "(0", byscore=True, desc=True)
            ),
        )
        page: list[Draft] = []
        skipped = 0
        for start in range(0, len(ids), _LIST_CHUNK):
            chunk = [self.keys.draft(i) for i in ids[start : start + _LIST_CHUNK]]
            raws = await self._call(partial(self._redis.mget, chunk))
            for raw in raws:
                if raw is None:
                    continue  # expired since the index was read
                draft = Draft.model_validate_json(raw)
                if draft.state is SessionState.COMMITTED:
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                page.append(draft)
                if limit is not None and len(page) >= limit:
                    return page
        return page

    # -- workflow steps ---------------------------------------------------------

    async def create(self, principal: Principal, *, operation_id: str) -> Draft:
        """Open a new draft for the caller, expiring TTL after now."""
        session_id = str(uuid.uuid4())
        args = {
            "sessionId": session_id,
            "ttlMs": self._ttl_ms,
            "privilege": int(principal.privilege),
            "operationId": operation_id,
            "maxOpen": self._max_open,
        }
        draft = await self._apply("create", principal, session_id, args)
        metrics.DRAFTS_CREATED.inc()
        return draft

    async def add_product(
        self,
        principal: Principal,
        session_id: str,
        product: BaseModel,
        *,
        expected_version: int | None = None,
    ) -> Draft:
        """Store (or replace) the draft's product and reserve its code."""
        args = {
            "product": product.model_dump(mode="json", exclude_none=True),
            "productCode": product.productCode,  # type: ignore[attr-defined]
        }
        return await self._apply(
            "add_product",
            principal,
            session_id,
            args,
            expected_version=expected_version,
            action="change the product",
        )

    async def configure_target(
        self,
        principal: Principal,
        session_id: str,
        target: BaseModel,
        *,
        expected_version: int | None = None,
    ) -> Draft:
        """Store (or replace) the draft's audience target."""
        args = {"audienceTarget": target.model_dump(mode="json", exclude_none=True)}
        return await self._apply(
            "configure_target",
            principal,
            session_id,
            args,
            expected_version=expected_version,
            action="configure the target",
        )

    async def cancel(
        self, principal: Principal, session_id: str, *, expected_version: int | None = None
    ) -> Draft:
        """Delete the draft and release its product code."""
        draft = await self._apply(
            "cancel",
            principal,
            session_id,
            {},
            expected_version=expected_version,
            action="cancel the session",
        )
        metrics.DRAFTS_CANCELLED.inc()
        return draft

    # -- commit bookkeeping (used by the commit service) ----------------------------

    async def begin_commit(
        self,
        principal: Principal,
        session_id: str,
        *,
        lease_owner: str,
        lease: timedelta,
        operation_id: str,
        expected_version: int | None = None,
    ) -> Draft:
        """Move the draft to COMMITTING under a lease, holding its product code meanwhile."""
        args = _lease_args(principal, session_id, lease_owner, lease, operation_id)
        return await self._apply(
            "begin_commit",
            principal,
            session_id,
            args,
            expected_version=expected_version,
            action="commit",
        )

    async def take_over(
        self, session_id: str, *, lease_owner: str, lease: timedelta, operation_id: str
    ) -> Draft | None:
        """Claim a commit that is due for recovery (see ``due_recoveries``), once.

        Return the draft, now COMMITTING under this lease, or None when it is not due
        (finished, renewed or claimed by another process meanwhile).
        """
        raw = await self._call(lambda: self._redis.get(self.keys.draft(session_id)))
        if raw is None:
            await self._call(lambda: self._redis.zrem(self.keys.recovery, session_id))
            return None
        owner = Draft.model_validate_json(raw)
        args = _lease_args(owner, session_id, lease_owner, lease, operation_id)
        try:
            return await self._apply("take_over", owner, session_id, args, action="commit")
        except (_NotDueError, SessionNotFoundError):
            return None

    async def due_recoveries(self, *, limit: int = 20) -> list[str]:
        """Return the sessions whose commit is due to be finished by a recoverer."""
        now_ms = await self._now_ms()
        due = await self._call(
            lambda: self._redis.zrangebyscore(
                self.keys.recovery, "-inf", now_ms, start=0, num=limit
            )
        )
        return [str(session_id) for session_id in due]

    async def heartbeat(self, draft: Draft, *, lease_owner: str, lease: timedelta) -> Draft:
        """Renew the commit lease; raise LeaseLostError if another process holds it."""
        args = {"leaseOwner": lease_owner, "leaseMs": _ms(lease)}
        return await self._apply_owned("heartbeat", draft, args)

    async def fence(self, draft: Draft, *, lease_owner: str, lease: timedelta) -> Draft:
        """Check, right before a write is sent, that this process still owns the commit.

        Also renews the lease, re-asserts the code reservation, and records durably that a
        write may be in Dataverse from now on (so no one can later say "nothing written").
        """
        args = {"leaseOwner": lease_owner, "leaseMs": _ms(lease)}
        return await self._apply_owned("fence", draft, args)

    async def commit_retrying(
        self,
        draft: Draft,
        *,
        lease_owner: str,
        lease: timedelta,
        attempt: int,
        cause: str,
        retry_at_ms: int,
    ) -> Draft:
        """Record a failed attempt that will be retried, and renew the lease."""
        args = {
            "leaseOwner": lease_owner,
            "leaseMs": int(lease.total_seconds() * 1000),
            "attempt": attempt,
            "cause": cause,
            "retryAtMs": retry_at_ms,
        }
        return await self._apply_owned("commit_retrying", draft, args)

    async def commit_succeeded(
        self,
        draft: Draft,
        *,
        lease_owner: str,
        result: BaseModel,
        cleanup: timedelta,
        receipt_ttl: timedelta,
    ) -> Draft:
        """Mark the draft COMMITTED, schedule its cleanup and keep a receipt."""
        args = {
            "leaseOwner": lease_owner,
            "result": result.model_dump(mode="json", by_alias=True),
            "cleanupMs": int(cleanup.total_seconds() * 1000),
            "receiptTtlMs": int(receipt_ttl.total_seconds() * 1000),
        }
        return await self._apply_owned("commit_succeeded", draft, args)

    async def commit_failed(
        self,
        draft: Draft,
        *,
        lease_owner: str,
        errors: list[str],
        uncertain: bool = False,
        recover_after: timedelta = timedelta(0),
    ) -> Draft:
        """Mark the draft FAILED with readable errors.

        A certain failure leaves it editable and committable. An *uncertain* one (a write
        may be in Dataverse) keeps its content frozen and its code held until a commit
        settles it; a recoverer does that at the latest *recover_after* from now, or at
        expiresAt, whichever is later.
        """
        args = {
            "leaseOwner": lease_owner,
            "errors": errors,
            "uncertain": uncertain,
            "recoverAfterMs": _ms(recover_after),
        }
        return await self._apply_owned("commit_failed", draft, args)

    async def sweep(self, *, limit: int = 100) -> list[str]:
        """Fire due expiry notices and drop expired code reservations; return what fired."""
        unused = self.keys.unused
        keys = [unused, self.keys.codes, self.keys.code_expiry, unused, self.keys.schedule]
        keys += [unused, unused]
        sweep_args = {"limit": limit, "draftPrefix": self.keys.draft_prefix}
        args = ["sweep", "", "", "", json.dumps(sweep_args), self.keys.events]
        raw = await self._call(lambda: self._script(keys=keys, args=args))
        return list(json.loads(raw)["fired"] or [])

    # -- plumbing ---------------------------------------------------------------

    async def _apply_owned(self, op: str, draft: Draft, args: dict[str, Any]) -> Draft:
        return await self._apply(op, draft, draft.session_id, args, action="commit")

    async def _apply(
        self,
        op: str,
        who: Principal | Draft,
        session_id: str,
        args: dict[str, Any],
        *,
        expected_version: int | None = None,
        action: str = "change the session",
    ) -> Draft:
        owner = Owner.of(who)
        keys = [
            self.keys.draft(session_id),
            self.keys.codes,
            self.keys.code_expiry,
            self.keys.owner(owner),
            self.keys.schedule,
            self.keys.receipt(session_id),
            self.keys.recovery,
        ]
        argv = [
            op,
            owner.user_id,
            owner.organization_guid,
            "" if expected_version is None else str(expected_version),
            json.dumps(args, separators=(",", ":")),
            self.keys.events,
        ]
        raw = await self._call(lambda: self._script(keys=keys, args=argv))
        reply = json.loads(raw)
        if "draft" in reply and "error" not in reply:
            return Draft.model_validate(reply["draft"])
        raise _error(reply, action, expected_version)

    async def _now_ms(self) -> int:
        seconds, micros = await self._call(self._redis.time)
        return int(seconds) * 1000 + int(micros) // 1000

    @staticmethod
    async def _call(fn: Callable[[], Awaitable[T]]) -> T:
        try:
            return await fn()
        except RedisError as exc:
            metrics.REDIS_ERRORS.inc()
            raise SessionStoreUnavailableError from exc


class _NotDueError(Exception):
    """take_over found nothing to recover: finished, renewed, or claimed by another process."""


def _ms(duration: timedelta) -> int:
    return int(duration.total_seconds() * 1000)


def _lease_args(
    owner: Principal | Draft, session_id: str, lease_owner: str, lease: timedelta, operation_id: str
) -> dict[str, Any]:
    product_guid, target_guid = commit_guids(owner, session_id)
    return {
        "productGuid": product_guid,
        "targetGuid": target_guid,
        "leaseOwner": lease_owner,
        "leaseMs": _ms(lease),
        "operationId": operation_id,
    }


def _draft_from_receipt(receipt: dict[str, Any]) -> Draft:
    return Draft.model_validate(
        {
            **receipt,
            "state": SessionState.COMMITTED,
            "privilege": 0,
            "updatedAtMs": receipt["committedAtMs"],
            "productCode": receipt["result"]["productCode"],
        }
    )


def _error(reply: dict[str, Any], action: str, expected_version: int | None) -> Exception:
    code = reply["error"]
    state = reply.get("state", "")
    match code:
        case "SESSION_NOT_FOUND":
            return SessionNotFoundError()
        case "STALE_VERSION":
            return StaleVersionError(expected_version or 0, int(reply["version"]))
        case "PRODUCT_CODE_TAKEN":
            return ProductCodeTakenError(reply["productCode"])
        case "COMMIT_IN_PROGRESS":
            return CommitInProgressError(
                f"Cannot {action}: a commit of this session is in progress. "
                "Follow it with sessionProgress or the sessionStateChanged subscription."
            )
        case "PRODUCT_REQUIRED":
            return InvalidStateError(
                "Add a product (addProduct) before configuring its audience target."
            )
        case "ALREADY_COMMITTED":
            return AlreadyCommittedError(Draft.model_validate(reply["draft"]))
        case "LEASE_LOST":
            return LeaseLostError(Draft.model_validate(reply["draft"]))
        case "NOT_DUE":
            return _NotDueError()
        case "COMMIT_UNCONFIRMED":
            return CommitUnconfirmedError(
                f"Cannot {action}: a previous commit may already be in Dataverse. Commit again "
                "to confirm it; the draft can be changed again only if that commit finds that "
                "nothing was written."
            )
        case "INVALID_STATE":
            return _invalid_state(state, action)
        case "TOO_MANY_DRAFTS":
            return TooManyDraftsError(int(reply["limit"]))
    return RuntimeError(f"unexpected reply from the draft script: {reply}")
