"""The benchmarks' own stack: redis-server, the Dataverse emulator and the app, each a process.

Everything listens on 127.0.0.1 on free ports and is stopped when the ``Stack`` closes. On a
machine with two or more cores the app server gets core 0 to itself; this process, and so
everything it starts later (redis-server, the emulator, the load generator), runs on the
other cores, so the load generator never steals the server's CPU.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from cli import free_port, redis_server_command, wait_for_redis

ROOT = Path(__file__).resolve().parent.parent
SERVER_CORE = 0
JWT_SECRET = "bench-secret-that-is-at-least-32-bytes"
EMULATOR_TOKEN = "emulator-token"
# Seeded by the emulator (emulator/config.py DEFAULT_ORGANIZATIONS): products bind to it.
ORGANIZATION = "6f1e3c9a-1111-4a4a-9c9c-000000000001"


def bench_authorization(subject: str = "bench-user") -> str:
    """Return the Authorization header value of a benchmark admin user."""
    from services.auth import mint_token

    token = mint_token(
        secret=JWT_SECRET,
        subject=subject,
        privilege="admin",
        organization_guid=ORGANIZATION,
        ttl_seconds=3600,
    )
    return f"Bearer {token}"


def cores() -> tuple[set[int], set[int]] | None:
    """Return (server cores, everything else), or None when there is one core only."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return None
    return {available[0]}, set(available[1:])


def cpu_seconds(pid: int) -> float:
    """Return the user+system CPU time a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """Return the CPU time all processes on this machine have used (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _wait_until(
    check: object, what: str, process: subprocess.Popen[bytes], timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {timeout:.0f} s")
        time.sleep(0.05)


class Stack:
    """Start redis-server, the emulator and the app server (with the plain routes)."""

    def __init__(self, *, pin: bool = True, log_level: str = "warning") -> None:
        self.pin = cores() if pin else None
        self.log_level = log_level
        self._exit = ExitStack()
        self._dir = tempfile.mkdtemp(prefix="orchestrator-bench-")
        self.redis_port = free_port()
        self.emulator_port = free_port()
        self.app_port = free_port()
        self.server: subprocess.Popen[bytes] | None = None
        self._logs: list[Any] = []
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    def __enter__(self) -> Stack:
        try:
            self._start()
        except BaseException:
            print(self.logs(), file=sys.stderr)
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._exit.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _spawn(
        self, argv: list[str], *, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = open(Path(self._dir) / f"{Path(argv[0]).name}-{len(self._logs)}.log", "wb")  # noqa: SIM115
        self._logs.append(log)
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self._exit.callback(log.close)
        self._processes.append(process)

        def stop() -> None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

        self._exit.callback(stop)
        return process

    def logs(self) -> str:
        """Return what the started processes printed (for error reports)."""
        out = []
        for log in self._logs:
            log.flush()
            out.append(f"--- {log.name}\n" + Path(log.name).read_text(errors="replace")[-4000:])
        return "\n".join(out)

    def _start(self) -> None:
        if self.pin:
            # Children inherit this; only the app server is moved to its own core.
            os.sched_setaffinity(0, self.pin[1])
        redis_process = self._spawn(redis_server_command(self.redis_port, self._dir))
        emulator = self._spawn(
            [
                sys.executable,
                "-c",
                "import sys; from cli import main; main(sys.argv[1:])",
                "dataverse-emulator",
                "--port",
                str(self.emulator_port),
                "--token",
                EMULATOR_TOKEN,
            ]
        )
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
        self.server = self._spawn(
            [
                sys.executable,
                "-m",
                "bench.server",
                "--port",
                str(self.app_port),
                "--redis-url",
                self.redis_url,
                "--dataverse-url",
                self.emulator_url,
                "--dataverse-token",
                EMULATOR_TOKEN,
                "--jwt-secret",
                JWT_SECRET,
                "--log-level",
                self.log_level,
            ],
            env=env,
        )
        if self.pin:
            os.sched_setaffinity(self.server.pid, self.pin[0])
        wait_for_redis(self.redis_port, redis_process, timeout=30)
        _wait_until(
            lambda: httpx.get(f"{self.emulator_url}/_emulator/health").status_code == 200,
            "the Dataverse emulator",
            emulator,
        )
        _wait_until(
            lambda: httpx.get(f"{self.app_url}/ready").status_code == 200, "the app", self.server
        )

    def server_cpu_seconds(self) -> float:
        assert self.server is not None
        return cpu_seconds(self.server.pid)

    def own_cpu_seconds(self) -> float:
        """CPU time of everything the benchmark runs: its processes and this one's children."""
        times = os.times()
        total = times.user + times.system + times.children_user + times.children_system
        return total + sum(cpu_seconds(p.pid) for p in self._processes if p.poll() is None)

    def describe_pinning(self) -> str:
        if not self.pin:
            return "not pinned (one core available)"
        server, rest = self.pin
        return (
            f"app server on core {sorted(server)}; load generator, redis-server and emulator "
            f"on cores {sorted(rest)}"
        )
