"""Fixtures for the high-availability tests: real Redis Cluster and Sentinel deployments."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from settings import Settings
from tests.dataverse_emulator import ThreadedEmulator
from tests.ha.topology import ClusterTopology, RedisProcess, SentinelTopology
from tests.helpers import SECRET, GraphQLClient, serve, token

DRAFT_KEY = "{orchestrator}:draft:any"  # every orchestrator key hashes to this one slot


@dataclass
class Deployment:
    """A Redis deployment the service is pointed at, and what a test does to it."""

    name: str
    topology: ClusterTopology | SentinelTopology
    emulator: ThreadedEmulator | None = None

    def settings(self, **overrides: Any) -> Settings:
        if isinstance(self.topology, ClusterTopology):
            redis = {"redis_url": self.topology.url(node=len(self.topology.nodes) - 1)}
        else:
            redis = self.topology.settings()
        assert self.emulator is not None
        values = {
            **redis,
            "jwt_secret": SECRET,
            "dataverse_url": self.emulator.base_url,
            "dataverse_token": self.emulator.token,
            "commit_max_wait_seconds": 5,
            **overrides,
        }
        return Settings(_env_file=None, **values)

    def master(self) -> RedisProcess:
        """The master holding the orchestrator's keys."""
        if isinstance(self.topology, ClusterTopology):
            return self.topology.owner_of(DRAFT_KEY)
        port = self.topology.master_port()
        return next(n for n in (self.topology.master, self.topology.replica) if n.port == port)

    def replica(self) -> RedisProcess:
        """The replica that a failover of ``master()`` promotes."""
        if isinstance(self.topology, ClusterTopology):
            return self.topology.replica_of(self.master())
        master = self.master()
        return self.topology.replica if master is self.topology.master else self.topology.master

    def wait_for_promotion(self, replica: RedisProcess) -> float:
        """Wait until the deployment itself names *replica* master; return when (monotonic)."""
        if isinstance(self.topology, ClusterTopology):
            return self.topology.wait_for_promotion(replica)
        return self.topology.wait_for_promotion()

    def flush(self) -> None:
        masters = (
            self.topology.masters()
            if isinstance(self.topology, ClusterTopology)
            else [self.master()]
        )
        for node in masters:
            with node.client() as c:
                c.flushall()

    def replica_has(self, key: str, fragment: str) -> bool:
        """True when the replica's copy of *key* contains *fragment* (replication caught up)."""
        with self.replica().client() as c:
            if isinstance(self.topology, ClusterTopology):
                c.execute_command("READONLY")
            value = c.get(key)
        return value is not None and fragment in value


def _start(name: str) -> Deployment:
    topology = ClusterTopology() if name == "cluster" else SentinelTopology()
    started = time.monotonic()
    try:
        topology.start()
    except BaseException:
        topology.cleanup()
        raise
    print(f"\n{name}: started in {time.monotonic() - started:.1f}s")
    return Deployment(name, topology)


@pytest.fixture(scope="module", params=["cluster", "sentinel"])
def deployment(
    request: pytest.FixtureRequest, dataverse_emulator: ThreadedEmulator
) -> Iterator[Deployment]:
    """A deployment shared by a module's tests (each test starts from empty data)."""
    deployed = _start(request.param)
    deployed.emulator = dataverse_emulator
    yield deployed
    deployed.topology.cleanup()


@pytest.fixture(params=["cluster", "sentinel"])
def fresh_deployment(
    request: pytest.FixtureRequest, dataverse_emulator: ThreadedEmulator
) -> Iterator[Deployment]:
    """A deployment of the test's own, for tests that break it."""
    deployed = _start(request.param)
    deployed.emulator = dataverse_emulator
    yield deployed
    deployed.topology.cleanup()


@pytest.fixture
def empty(deployment: Deployment) -> Deployment:
    deployment.flush()
    return deployment


@dataclass
class Instances:
    """Two app instances on one deployment, as two machines behind a load balancer."""

    urls: tuple[str, str]
    a: GraphQLClient
    b: GraphQLClient


async def start_instances(stack: AsyncExitStack, settings: Settings) -> Instances:
    urls = []
    clients = []
    for _ in range(2):
        url = await stack.enter_async_context(serve(settings))
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))
        urls.append(url)
        clients.append(GraphQLClient(http, token()))
    return Instances((urls[0], urls[1]), clients[0], clients[1])


@pytest.fixture
async def instances(empty: Deployment, dataverse: Any) -> AsyncIterator[Instances]:
    async with AsyncExitStack() as stack:
        yield await start_instances(stack, empty.settings())
