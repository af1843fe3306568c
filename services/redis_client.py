"""The process's Redis: one server, a Redis Cluster, or a master found through Sentinel.

``open_redis`` looks at what it is pointed at and returns a ``RedisStore`` holding the one
client every service uses (a plain ``Redis`` or redis-py's asyncio ``RedisCluster``), and
what the topology-aware parts need besides:

- ``pubsub_for``: a PubSub on the node that carries the events channel *now* (cluster: the
  master of the channel's slot, found again after a failover; Sentinel: the current master).
- ``wait_for_replicas``: WAIT for the replicas of the node owning a key (a no-op without).
- ``check_server``: refuse a Redis that would evict drafts, warn when nothing is persisted.

Failover is followed without a restart: the cluster client re-reads the slot map after a
connection error, the Sentinel pool asks the sentinels for the master on every reconnect.
Until the new master is known, commands fail with ``ConnectionError`` (a ``RedisError``),
which the services report as SERVICE_UNAVAILABLE.

Redis down at startup does not stop the service (it starts, is not ready, and serves once
Redis answers). Its kind is then not known yet: the store hands out a stand-in client that
is a plain one until Redis first answers, and a cluster client from then on if it turned
out to be a cluster node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis, RedisCluster
from redis.asyncio.client import PubSub
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.commands.core import AsyncScript
from redis.crc import key_slot
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    ConnectionError,
    NoPermissionError,
    RedisClusterException,
    RedisError,
    ResponseError,
)

from services.errors import SessionStoreUnavailableError

logger = logging.getLogger("orchestrator.redis")

T = TypeVar("T")

# One process's share of a Redis node: a burst beyond it waits for a connection instead of
# failing with "Too many connections" (redis-py's non-blocking pools raise past their size).
MAX_CONNECTIONS = 128
# While Redis was unreachable at startup: how often to look again for what it is.
DETECT_INTERVAL_SECONDS = 1.0
# How long a commit waits for a replica to confirm its state before writing Dataverse.
REPLICA_WAIT_SECONDS = 2.0

_PROBE_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 2, "socket_timeout": 5}
_COMMON_OPTIONS: dict[str, Any] = {
    "decode_responses": True,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    "health_check_interval": 30,
}
# Policies under which Redis may delete a key that has no TTL: a draft's bookkeeping, or a
# draft itself, could vanish under memory pressure.
_EVICTING_ALL_KEYS = ("allkeys-",)


def _retry() -> Retry:
    # A couple of quick retries ride out a blip; a real outage answers within seconds.
    return Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=2)


class RedisMode(StrEnum):
    """How the drafts' Redis is laid out."""

    STANDALONE = "standalone"
    CLUSTER = "cluster"
    SENTINEL = "sentinel"


class RedisSetupError(Exception):
    """Redis cannot hold the drafts as configured; the message is one line for a person."""


class ReplicationTimeoutError(ConnectionError):
    """A write was not confirmed by a replica in time: it could be lost in a failover."""


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """Where the drafts live: a URL (one server or any cluster node) or a Sentinel set."""

    url: str | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    sentinel_master: str | None = None
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None

    def describe(self) -> str:
        """Say where Redis is, without credentials (for log lines and errors)."""
        if self.sentinels:
            where = ",".join(f"{h}:{p}" for h, p in self.sentinels)
            return f"Sentinel master {self.sentinel_master!r} via {where}"
        kwargs = parse_url(self.url or "")
        return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


@dataclass(frozen=True, slots=True)
class ServerReport:
    """What ``check_server`` found; ``warnings`` are for the log, refusals raise instead."""

    mode: RedisMode
    nodes: int
    warnings: list[str] = field(default_factory=list)


class _BoundedCluster(RedisCluster):
    """RedisCluster with back-pressure, and its own exceptions as RedisError.

    redis-py raises RedisClusterException (not a RedisError) for some transient states of a
    cluster in failover, e.g. a slot not covered yet; callers expect RedisError for "Redis is
    unavailable". The semaphore keeps a burst within each node's pool instead of failing.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots = asyncio.Semaphore(kwargs.get("max_connections", MAX_CONNECTIONS))

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self._slots:
            try:
                return await super().execute_command(*args, **kwargs)
            except RedisClusterException as exc:
                raise ConnectionError(f"Redis Cluster unavailable: {exc}") from exc


class _BoundedRedis(Redis):
    """Redis with back-pressure for pools that cannot block (Sentinel's)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A few connections stay free for the event subscription and WAIT.
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS - 8)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self._slots:
            return await super().execute_command(*args, **kwargs)  # type: ignore[no-untyped-call]


class _LateBoundClient:
    """Stands in for the client while Redis has not answered yet (it was down at startup).

    Everything is the current client's: a plain one until Redis first answers, then a
    RedisCluster if it was a cluster node. Scripts are registered on the stand-in itself,
    so they follow the switch.
    """

    def __init__(self, client: Redis | RedisCluster) -> None:
        self.current = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current, name)

    def register_script(self, script: str) -> AsyncScript:
        return AsyncScript(self, script)  # type: ignore[arg-type]


class RedisStore:
    """The process's Redis client and the topology around it. Close it with ``aclose``."""

    def __init__(
        self,
        client: Redis | RedisCluster,
        mode: RedisMode,
        *,
        node_options: dict[str, Any] | None = None,
        sentinel: Sentinel | None = None,
        owns_client: bool = True,
    ) -> None:
        self.client: Redis | RedisCluster = client
        self.mode = mode
        self.reachable = True
        self._node_options = node_options or {}
        self._sentinel = sentinel
        self._owns_client = owns_client
        self._nodes: dict[tuple[str, int], Redis] = {}
        self._sharded: dict[tuple[str, int] | None, bool] = {}
        self._detecting: asyncio.Task[None] | None = None

    @classmethod
    def wrap(cls, client: Redis) -> RedisStore:
        """Use a client made elsewhere (tests); the caller keeps closing it."""
        return cls(client, RedisMode.STANDALONE, owns_client=False)

    @property
    def _actual(self) -> Redis | RedisCluster:
        client = self.client
        return client.current if isinstance(client, _LateBoundClient) else client

    def _detect_later(self, target: RedisTarget, *, dev: bool) -> None:
        """Redis did not answer: serve with a plain client, and find out what it is later."""
        self.reachable = False
        self.client = _LateBoundClient(self.client)  # type: ignore[assignment]
        self._detecting = asyncio.create_task(self._detect(target, dev), name="redis-detect")

    async def _detect(self, target: RedisTarget, dev: bool) -> None:
        while True:
            try:
                found = await _open_url(target)
            except (AuthenticationError, AuthorizationError) as exc:
                logger.error("Redis %s refuses the credentials: %s", target.describe(), exc)
                await asyncio.sleep(DETECT_INTERVAL_SECONDS * 10)
                continue
            except (RedisError, RedisClusterException, OSError):
                await asyncio.sleep(DETECT_INTERVAL_SECONDS)
                continue
            except RedisSetupError as exc:
                logger.error("Redis answers now, but cannot hold the drafts: %s", exc)
                return
            stand_in = self.client
            assert isinstance(stand_in, _LateBoundClient)
            old, stand_in.current = stand_in.current, found.client
            self.mode, self._node_options = found.mode, found._node_options
            self.reachable = True
            await old.aclose()
            logger.info("Redis answers: %s", found.mode)
            try:
                report = await self.check_server(dev=dev)
            except RedisSetupError as exc:
                logger.error("%s", exc)
                return
            except RedisError:
                return
            for warning in report.warnings:
                logger.warning("%s", warning)
            return

    # -- events ------------------------------------------------------------------------

    async def pubsub_for(self, channel: str, *, refresh: bool = False) -> tuple[PubSub, bool]:
        """Return a PubSub on the node that carries *channel* now, and whether to shard.

        Sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis 7) when the node has it: on a cluster a
        shard channel lives on its slot's master and replicas only, instead of every message
        crossing the whole cluster bus. draft.lua makes the same choice (SPUBLISH, else
        PUBLISH), so both sides agree on any server. *refresh* re-reads the cluster's slot
        map first: after a failover the channel has a new master.
        """
        client = self._actual
        if isinstance(client, RedisCluster):
            host, port = await self._slot_master(channel, refresh=refresh)
            node = self._node(host, port)
            return node.pubsub(), await self._supports_sharding(node, (host, port))
        return client.pubsub(), await self._supports_sharding(client, None)

    async def _supports_sharding(self, client: Redis, key: tuple[str, int] | None) -> bool:
        if key not in self._sharded:
            info = await client.info("server")
            major = int(str(info.get("redis_version", "0")).split(".")[0])
            self._sharded[key] = major >= 7
        return self._sharded[key]

    # -- replication -----------------------------------------------------------------------

    async def wait_for_replicas(
        self, key: str, *, within: float = REPLICA_WAIT_SECONDS
    ) -> tuple[int, int]:
        """Wait until a replica of *key*'s node has every write made so far; a no-op without.

        Return (replicas that confirmed, replicas waited for). Raise ReplicationTimeoutError
        when a connected replica did not confirm *within* seconds: a failover now could
        promote it without those writes.

        WAIT counts the writes of its own connection, so a marker write goes first on the
        same connection: replication is one ordered stream, so a replica that has the marker
        has everything written before it, whichever connection wrote it.
        """
        node = await self._master_of(key)
        replicas = int((await node.info("replication")).get("connected_slaves", 0))
        if replicas == 0:
            return 0, 0
        wanted = 1  # the one a failover would promote; more would only add latency
        marker = f"{{{_hash_tag(key)}}}:replication-mark"
        async with node.pipeline(transaction=False) as pipe:
            pipe.set(marker, uuid.uuid4().hex, px=60_000)
            pipe.execute_command("WAIT", wanted, int(within * 1000))
            _, acked = await pipe.execute()
        if int(acked) < wanted:
            raise ReplicationTimeoutError(
                f"no replica confirmed the write within {within:g}s ({acked}/{wanted})"
            )
        return int(acked), wanted

    def replication_barrier(self, key_of: Callable[[str], str]) -> Callable[[str], Awaitable[None]]:
        """Return what a commit awaits right before writing Dataverse, for a session id.

        It waits (wait_for_replicas) on the node of ``key_of(session_id)``; when no replica
        confirms, or Redis does not answer, it raises SessionStoreUnavailableError, so the
        commit stops before Dataverse hears of a write a failover could make Redis forget.
        """

        async def barrier(session_id: str) -> None:
            try:
                await self.wait_for_replicas(key_of(session_id))
            except RedisError as exc:
                logger.warning("commit of %s held back: %s", session_id, exc)
                raise SessionStoreUnavailableError from exc

        return barrier

    async def _master_of(self, key: str) -> Redis:
        client = self._actual
        if isinstance(client, RedisCluster):
            return self._node(*await self._slot_master(key))
        return client

    # -- startup checks --------------------------------------------------------------------

    async def check_server(self, *, dev: bool = False) -> ServerReport:
        """Refuse (RedisSetupError) a Redis that would evict drafts; report what to warn about.

        Read from INFO, which managed services usually allow (CONFIG often is not); what
        cannot be read is not judged. A Redis that does not answer yet is checked when it
        does (and only logged then).
        """
        if not self.reachable:
            return ServerReport(
                self.mode,
                0,
                [
                    f"Redis {self.describe()} does not answer: starting anyway (not ready, "
                    "calls fail with SERVICE_UNAVAILABLE until it does)"
                ],
            )
        masters = await self._masters()
        warnings: list[str] = []
        for name, node in masters:
            policy_name = str((await _info(node, "memory") or {}).get("maxmemory_policy", ""))
            if policy_name.startswith(_EVICTING_ALL_KEYS):
                raise RedisSetupError(
                    f"Redis {name} has maxmemory-policy {policy_name}, which evicts drafts under "
                    "memory pressure; set maxmemory-policy noeviction"
                )
            if policy_name.startswith("volatile-"):
                warnings.append(
                    f"Redis {name} has maxmemory-policy {policy_name}: drafts carry a TTL, so "
                    "they can be evicted if maxmemory is reached; noeviction is safer"
                )
            if not dev and await self._persistence_off(node):
                warnings.append(
                    f"Redis {name} persists nothing (no AOF, no RDB snapshots): a restart "
                    "loses every draft; turn on appendonly (see docs/deploy.md)"
                )
        return ServerReport(self.mode, len(masters), warnings)

    async def _persistence_off(self, node: Redis) -> bool:
        persistence = await _info(node, "persistence")
        if persistence is None or str(persistence.get("aof_enabled", 0)) == "1":
            return False
        save = await _readable(lambda: node.config_get("save"))
        return save is not None and not str(save.get("save", "")).strip()

    async def _masters(self) -> list[tuple[str, Redis]]:
        client = self._actual
        if isinstance(client, RedisCluster):
            await client.initialize()
            return [
                (f"{n.host}:{n.port}", self._node(n.host, int(n.port)))
                for n in client.get_primaries()
            ]
        return [(self.describe(), client)]

    def describe(self) -> str:
        client = self._actual
        if isinstance(client, RedisCluster):
            return ", ".join(f"{n.host}:{n.port}" for n in client.get_primaries())
        kwargs = client.connection_pool.connection_kwargs
        return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"

    # -- cluster plumbing --------------------------------------------------------------------

    async def _slot_master(self, key: str, *, refresh: bool = False) -> tuple[str, int]:
        client = self._actual
        assert isinstance(client, RedisCluster)
        if refresh:
            await client.nodes_manager.initialize()
        node = client.get_node_from_key(key)
        if node is None:
            raise ConnectionError(f"no Redis Cluster node serves {key!r} now")
        return node.host, int(node.port)

    def _node(self, host: str, port: int) -> Redis:
        """A plain client for one cluster node (pub/sub and WAIT must stay on that node)."""
        client = self._nodes.get((host, port))
        if client is None:
            pool = ConnectionPool(host=host, port=port, max_connections=8, **self._node_options)
            client = self._nodes[(host, port)] = Redis.from_pool(pool)
        return client

    async def aclose(self) -> None:
        if self._detecting is not None:
            self._detecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._detecting
        for node in self._nodes.values():
            with contextlib.suppress(Exception):
                await node.aclose()
        self._nodes.clear()
        if self._owns_client:
            await self._actual.aclose()
        if self._sentinel is not None:
            await _close_sentinels(self._sentinel)


async def open_redis(target: RedisTarget, *, dev: bool = False) -> RedisStore:
    """Connect to the drafts' Redis, finding out which kind it is.

    Raise RedisSetupError when Redis refuses the credentials or the URL cannot name it (a
    database other than 0 on a cluster). When it does not answer, return a store that
    serves anyway and finds out later (*dev*: the later checks do not warn about
    persistence).
    """
    try:
        if target.sentinels:
            return await _open_sentinel(target)
        return await _open_url(target)
    except (AuthenticationError, AuthorizationError, NoPermissionError) as exc:
        raise RedisSetupError(
            f"Redis refused the credentials ({target.describe()}): {exc}"
        ) from None
    except (RedisError, RedisClusterException, OSError) as exc:
        logger.debug("Redis at %s does not answer: %r", target.describe(), exc)
    if target.sentinels:
        # The master is asked for on every connection anyway: nothing to find out later.
        store = _sentinel_store(target)
        store.reachable = False
        return store
    store = RedisStore(_standalone_client(target), RedisMode.STANDALONE)
    store._detect_later(target, dev=dev)
    return store


async def _open_url(target: RedisTarget) -> RedisStore:
    assert target.url is not None
    credentials = _credentials(target)
    probe_pool = ConnectionPool.from_url(target.url, **credentials, **_PROBE_OPTIONS)
    async with Redis.from_pool(probe_pool) as probe:
        cluster = str((await probe.info("cluster")).get("cluster_enabled", 0)) == "1"
    if cluster:
        return await _open_cluster(target, credentials)
    return RedisStore(_standalone_client(target), RedisMode.STANDALONE)


def _standalone_client(target: RedisTarget) -> Redis:
    assert target.url is not None
    # A burst beyond the pool waits for a free connection instead of failing.
    pool = BlockingConnectionPool.from_url(
        target.url,
        max_connections=MAX_CONNECTIONS,
        timeout=5,
        **_credentials(target),
        **_COMMON_OPTIONS,
        retry=_retry(),
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes both


async def _open_cluster(target: RedisTarget, credentials: dict[str, Any]) -> RedisStore:
    assert target.url is not None
    url_options: dict[str, Any] = dict(parse_url(target.url))
    db = int(url_options.pop("db", 0) or 0)
    if db != 0:
        raise RedisSetupError(
            f"REDIS_URL names database {db}, but a Redis Cluster has only database 0"
        )
    client = _BoundedCluster.from_url(
        target.url,
        max_connections=MAX_CONNECTIONS,
        **credentials,
        **_COMMON_OPTIONS,
        retry=_retry(),
    )
    try:
        await client.initialize()
    except BaseException:
        await client.aclose()
        raise
    # The URL's options (TLS, credentials) for the plain per-node clients, minus its node.
    for name in ("host", "port", "path"):
        url_options.pop(name, None)
    node_options = {**_COMMON_OPTIONS, **url_options, **credentials, "retry": _retry()}
    return RedisStore(client, RedisMode.CLUSTER, node_options=node_options)


async def _open_sentinel(target: RedisTarget) -> RedisStore:
    assert target.sentinel_master is not None
    store = _sentinel_store(target)
    assert store._sentinel is not None
    try:
        # Fails (MasterNotFoundError, a ConnectionError) until a sentinel names a master.
        await store._sentinel.discover_master(target.sentinel_master)
        await store.client.ping()
    except BaseException:
        await store.aclose()
        raise
    return store


def _sentinel_store(target: RedisTarget) -> RedisStore:
    assert target.sentinel_master is not None
    sentinel_auth = {
        k: v
        for k, v in (
            ("username", target.sentinel_username),
            ("password", target.sentinel_password),
        )
        if v
    }
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(target.sentinels),
        sentinel_kwargs={**sentinel_auth, **_PROBE_OPTIONS},
        **_COMMON_OPTIONS,
        username=target.username,
        password=target.password,
        retry=_retry(),
    )
    client = sentinel.master_for(
        target.sentinel_master, redis_class=_BoundedRedis, max_connections=MAX_CONNECTIONS
    )
    return RedisStore(client, RedisMode.SENTINEL, sentinel=sentinel)


async def _close_sentinels(sentinel: Sentinel) -> None:
    for connection in sentinel.sentinels:
        with contextlib.suppress(Exception):
            await connection.aclose()


def _credentials(target: RedisTarget) -> dict[str, Any]:
    """REDIS_USERNAME/REDIS_PASSWORD, for a URL that carries none."""
    kwargs = parse_url(target.url or "redis://")
    found: dict[str, Any] = {}
    if target.username and not kwargs.get("username"):
        found["username"] = target.username
    if target.password and not kwargs.get("password"):
        found["password"] = target.password
    return found


def _hash_tag(key: str) -> str:
    """Return the part of *key* Redis Cluster hashes: the {tag}, else the whole key."""
    start = key.find("{")
    if start != -1:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


async def _info(node: Redis, section: str) -> dict[str, Any] | None:
    """Return an INFO section of *node*, or None when the server does not let us read it."""
    return await _readable(lambda: node.info(section))


async def _readable(read: Callable[[], Awaitable[T]]) -> T | None:
    """Return what *read* returns, or None when the server does not let us read it."""
    try:
        return await read()
    except (NoPermissionError, ResponseError):
        return None


def slot_of(key: str) -> int:
    """Return the Redis Cluster hash slot of *key* (diagnostics, tests)."""
    return int(key_slot(key.encode()))
