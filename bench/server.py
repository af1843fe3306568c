"""The app as `orchestrator serve` runs it, plus the benchmark's extra routes (benchmark only).

    python -m bench.server --port P --redis-url URL --dataverse-url URL \
        --dataverse-token T --jwt-secret S

Besides the app's /graphql it mounts the plain routes of bench/plain_routes.py and, at
/graphql-stock, Strawberry's controller without the fast POST path (variant ``stock``).
"""

from __future__ import annotations

import argparse

from app import create_app, graphql_controller
from bench.plain_routes import PLAIN_ROUTES
from cli import configure_logging, run_server
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
    settings = Settings(
        _env_file=None,
        redis_url=args.redis_url,
        jwt_secret=args.jwt_secret,
        dataverse_url=args.dataverse_url,
        dataverse_token=args.dataverse_token,
        log_level=args.log_level.upper(),
        # A benchmark is one user sending as fast as it can: measure the service, not the
        # per-user protections against that (the limiter still runs, on both paths).
        mutation_rate_per_second=10_000,
        mutation_burst=100_000,
        max_open_drafts=10_000,
    )
    app = create_app(settings)
    for handler in PLAIN_ROUTES:
        app.register(handler)
    app.register(graphql_controller(settings, path="/graphql-stock", fast_post=False))
    configure_logging(args.log_level.upper())  # as `orchestrator serve` does
    run_server(app, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
