"""Benchmarks: GraphQL versus plain routes over HTTP, and commit latency (not tests)."""
