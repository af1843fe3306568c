"""A closed-loop HTTP/1.1 load generator, used when wrk is not installed.

    python -m bench.loadgen HOST PORT REQUESTS_FILE MARKER AUTHORIZATION \
        --connections N --duration SECONDS

Same input and output as bench/replay.lua: requests replayed round robin over keep-alive
connections, each response checked for status 200 and the marker, then one ``RESULT {...}``
line. It runs in its own process (and on its own core when the benchmark pins), so it does
not take the server's CPU; it is slower than wrk, so it may limit the fastest routes.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections.abc import Callable
from typing import Any


def _load(path: str, host: str, port: int, authorization: str) -> list[bytes]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            method, target, body, *own = line.rstrip("\n").split("\t", 3)
            payload = body.encode()
            head = (
                f"{method} {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Authorization: {own[0] if own else authorization}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n"
            )
            out.append(head.encode() + payload)
    return out


async def _connection(
    host: str,
    port: int,
    requests: itertools.cycle[bytes],
    marker: bytes,
    until: float,
    latencies: list[float],
    counts: dict[str, int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(next(requests))
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != 200 or marker not in body:
                counts["bad"] += 1
    except (OSError, asyncio.IncompleteReadError):
        counts["socket_errors"] += 1
    finally:
        writer.close()


async def _run(args: argparse.Namespace) -> dict[str, object]:
    requests = itertools.cycle(_load(args.requests, args.host, args.port, args.authorization))
    latencies: list[float] = []
    counts = {"bad": 0, "socket_errors": 0}
    started = time.perf_counter()
    until = started + args.duration
    await asyncio.gather(
        *(
            _connection(
                args.host, args.port, requests, args.marker.encode(), until, latencies, counts
            )
            for _ in range(args.connections)
        )
    )
    elapsed = time.perf_counter() - started
    latencies.sort()
    # The distribution as 1000 quantiles, as bench/replay.lua reports it.
    quantiles = (
        [
            int(latencies[min(len(latencies) - 1, int((i + 0.5) / 1000 * len(latencies)))] * 1e6)
            for i in range(1000)
        ]
        if latencies
        else []
    )
    return {
        "requests": len(latencies),
        "duration_us": int(elapsed * 1e6),
        "quantiles_us": quantiles,
        **counts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("requests")
    parser.add_argument("marker")
    parser.add_argument("authorization")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5)
    args = parser.parse_args()
    run: Callable[..., Any]
    try:
        from uvloop import run
    except ImportError:
        run = asyncio.run
    print("RESULT " + json.dumps(run(_run(args))), flush=True)


if __name__ == "__main__":
    main()
