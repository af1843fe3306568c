"""The real stack the fault soak drives: Redis with AOF, two app processes, the emulator.

The app instances are separate processes, so that SIGKILL means what it means in
production: nothing of the killed process runs again, not even a ``finally``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from cli import free_port, redis_server_binary
from tests.dataverse_emulator import ThreadedEmulator

SECRET = "soak-secret-that-is-32-bytes-long!!"
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class SoakTimings:
    """Short enough that expiry, lease runs-out and settling all happen within a run."""

    session_ttl_seconds: int = 8
    commit_lease_seconds: float = 1.5
    commit_settle_seconds: float = 4.0  # > the longest delay the soak injects (2.5 s)
    commit_max_wait_seconds: float = 2.0
    dataverse_timeout_seconds: float = 1.0
    recovery_interval_seconds: float = 0.25


class SoakRedis:
    """A redis-server with AOF fsynced on every write, so a SIGKILL loses nothing it acked."""

    def __init__(self) -> None:
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix="orchestrator-soak-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            redis_server_binary(),
            *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.directory),
            *("--save", "", "--appendonly", "yes", "--appendfsync", "always"),
            *("--loglevel", "warning"),
        ]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        _wait_for(lambda: redis.Redis(port=self.port, socket_connect_timeout=0.2).ping(), 10)

    def kill(self) -> None:
        """SIGKILL: whatever was not fsynced is lost (with appendfsync always, nothing acked)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=10)
            self._process = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def flush(self) -> None:
        redis.Redis(port=self.port).flushall()

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


class AppInstance:
    """One ``orchestrator serve`` process on its own port."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = env
        self._process: subprocess.Popen[bytes] | None = None
        self._killing = False  # set before the signal: a request cut by it is expected
        self._log = Path(tempfile.mkstemp(prefix=f"orchestrator-soak-{name}-", suffix=".log")[1])

    @property
    def running(self) -> bool:
        return not self._killing and self._process is not None and self._process.poll() is None

    def start(self) -> None:
        self._killing = False
        command = [
            sys.executable,
            "-c",
            "import cli; cli.main()",
            "serve",
            "--port",
            str(self.port),
        ]
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                command, cwd=ROOT, env=self._env, stdout=log, stderr=subprocess.STDOUT
            )
        _wait_for(lambda: httpx.get(f"{self.url}/health", timeout=0.5).raise_for_status(), 30)

    def kill(self) -> None:
        if self._process is not None:
            self._killing = True
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=10)
            self._process = None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
            self._process = None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])


class SoakStack:
    """Start everything once; ``reset()`` between runs of the state machine."""

    def __init__(self, timings: SoakTimings | None = None) -> None:
        self.timings = timings or SoakTimings()
        self.redis = SoakRedis()
        self.emulator = ThreadedEmulator()
        self.instances: list[AppInstance] = []

    def start(self) -> SoakStack:
        self.redis.start()
        self.emulator.start()
        env = self._env()
        self.instances = [AppInstance(name, env) for name in ("a", "b")]
        for instance in self.instances:
            instance.start()
        return self

    def _env(self) -> dict[str, str]:
        t = self.timings
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
        return {
            **keep,
            "PYTHONPATH": str(ROOT),
            "REDIS_URL": self.redis.url,
            "JWT_SECRET": SECRET,
            "DATAVERSE_URL": self.emulator.base_url,
            "DATAVERSE_TOKEN": self.emulator.token,
            "DATAVERSE_TIMEOUT_SECONDS": str(t.dataverse_timeout_seconds),
            "SESSION_TTL_SECONDS": str(t.session_ttl_seconds),
            "COMMIT_LEASE_SECONDS": str(t.commit_lease_seconds),
            "COMMIT_SETTLE_SECONDS": str(t.commit_settle_seconds),
            "COMMIT_MAX_WAIT_SECONDS": str(t.commit_max_wait_seconds),
            "COMMIT_RECOVERY_INTERVAL_SECONDS": str(t.recovery_interval_seconds),
            "LOG_LEVEL": "WARNING",
        }

    def reset(self) -> None:
        """A clean slate: no drafts, no rows, no faults; every instance up."""
        for instance in self.instances:
            if not instance.running:
                instance.start()
        self.redis.flush()
        httpx.post(f"{self.emulator.base_url}/_emulator/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        for instance in self.instances:
            instance.stop()
        self.emulator.stop()
        self.redis.cleanup()


def _wait_for(probe: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            probe()  # type: ignore[operator]
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
