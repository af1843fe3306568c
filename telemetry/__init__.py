"""Operating the service: Prometheus metrics, structured logs, traces, and what a request knows.

``telemetry.context``, ``telemetry.metrics``, ``telemetry.logs`` and ``telemetry.tracing`` are
plain Python (services may use them); ``telemetry.http`` is the Litestar glue.
"""
