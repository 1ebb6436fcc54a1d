"""The dashboard's own Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry()
REQUESTS = Counter(
    "gatewatch_dashboard_requests",
    "Dashboard and API requests",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "gatewatch_dashboard_request_seconds",
    "Server time per request",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
LOGINS = Counter("gatewatch_dashboard_logins", "Login attempts", ["outcome"], registry=REGISTRY)
