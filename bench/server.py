"""The app as `orchestrator serve` runs it, plus the benchmark's plain routes (benchmark only).

    python -m bench.server --port P --redis-url URL --dataverse-url URL \
        --dataverse-token T --jwt-secret S
"""

from __future__ import annotations

import argparse

import uvicorn

from app import create_app
from bench.plain_routes import PLAIN_ROUTES
from settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--dataverse-url", required=True)
    parser.add_argument("--dataverse-token", required=True)
    parser.add_argument("--jwt-secret", required=True)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        redis_url=args.redis_url,
        jwt_secret=args.jwt_secret,
        dataverse_url=args.dataverse_url,
        dataverse_token=args.dataverse_token,
        log_level=args.log_level.upper(),
    )
    app = create_app(settings)
    for handler in PLAIN_ROUTES:
        app.register(handler)
    # The same server settings as `orchestrator serve` (cli._serve).
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level=args.log_level,
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
