"""Prometheus metrics for long-running commands, served on /metrics.

One registry per process (not the client library's global one), so tests and embedded
uses do not collide.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)


class Metrics:
    """What an ingest process reports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.consumed = Counter(
            "gatewatch_records_consumed", "Log records read", ["source"], registry=self.registry
        )
        self.stored = Counter(
            "gatewatch_events_stored", "Events written to the store", registry=self.registry
        )
        self.dead_lettered = Counter(
            "gatewatch_dead_letters", "Records dead-lettered", ["source"], registry=self.registry
        )
        self.findings = Counter(
            "gatewatch_findings",
            "Findings raised or updated by the detectors",
            ["kind", "severity"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "gatewatch_kafka_lag",
            "Records behind the partition's high watermark",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "gatewatch_batch_seconds",
            "Time to parse, store and commit one batch",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self._server: Any = None

    def serve(self, host: str, port: int) -> int:
        """Start the /metrics HTTP endpoint; returns the port (0 picks a free one)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        bound = int(server.server_address[1])
        log.info("metrics on http://%s:%d/metrics", host, bound)
        return bound

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
