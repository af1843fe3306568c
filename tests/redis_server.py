"""The tests' redis-server is the one ``orchestrator dev`` runs (cli.RedisServer)."""

from __future__ import annotations

from cli import RedisServer

__all__ = ["RedisServer"]
