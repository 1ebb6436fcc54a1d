"""Prometheus metrics for long-running commands, served on /metrics.

One registry per process (not the client library's global one), so tests and embedded
uses do not collide.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from detectors.base import Detector
from detectors.engine import DetectionEngine

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
        self.checkpoints = Counter(
            "gatewatch_checkpoints",
            "Checkpoints of learnt detector baselines, saved or restored",
            ["action"],
            registry=self.registry,
        )
        self.checkpoint_bytes = Gauge(
            "gatewatch_checkpoint_bytes",
            "Size of the last checkpoint of learnt baselines (compressed)",
            registry=self.registry,
        )
        self._server: Any = None
        self._detectors: _DetectorCollector | None = None

    def watch(self, engine: DetectionEngine) -> None:
        """Report the detectors' state and work: entities tracked per detector and
        their counters (the payload stage: requests skipped, remembered, run by CRS)."""
        if self._detectors is None:
            self._detectors = _DetectorCollector(engine)
            self.registry.register(self._detectors)
        self._detectors.engine = engine  # a restarted pipeline reports its own

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


class _DetectorCollector(Collector):
    """Read at scrape time, from the HTTP server's thread while detection runs.

    A detector's read that races a change to its state (an iteration that sees a table
    grow) is retried; if it keeps failing, the scrape reports that detector's last
    values rather than failing whole with a 500.
    """

    retries = 3

    def __init__(self, engine: DetectionEngine) -> None:
        self.engine = engine
        self._last: dict[str, tuple[int, dict[str, int]]] = {}

    def collect(self) -> Iterator[Metric]:
        tracked = GaugeMetricFamily(
            "gatewatch_detector_tracked",
            "Entities a detector holds state for",
            labels=["detector"],
        )
        work = CounterMetricFamily(
            "gatewatch_detector_work",
            "Running totals of a detector's work",
            labels=["detector", "counter"],
        )
        for detector in list(self.engine.detectors):
            read = self._read(detector)
            if read is None:
                continue
            count, counters = read
            tracked.add_metric([detector.label], count)
            for name, value in counters.items():
                work.add_metric([detector.label, name], value)
        yield tracked
        yield work

    def _read(self, detector: Detector[Any]) -> tuple[int, dict[str, int]] | None:
        for _ in range(self.retries):
            try:
                read = detector.tracked(), dict(detector.counters())
            except RuntimeError as exc:  # "changed size during iteration"
                error = exc
                continue
            self._last[detector.label] = read
            return read
        log.warning("/metrics: detector %s could not be read: %s", detector.label, error)
        return self._last.get(detector.label)
