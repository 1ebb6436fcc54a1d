"""/metrics reports what the detectors hold and do: entities tracked per detector, and
the payload stage's work (requests the prefilter skipped, CRS runs)."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from detectors.crs import RULES_DIR
from detectors.engine import DetectionEngine
from detectors.payload.detector import PayloadDetector, PayloadParams
from gatewatch.metrics import Metrics
from tests.detectors.events import events_at

ev = events_at(route="/api/v1/search", path="/api/v1/search")


def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in the scrape:\n{text}")


@pytest.mark.skipif(not RULES_DIR.is_dir(), reason="needs Debian's modsecurity-crs")
def test_the_payload_stage_reports_its_work() -> None:
    engine = DetectionEngine(
        [PayloadDetector(PayloadParams())], lambda f: None, allowed_lateness_s=0
    )
    metrics = Metrics()
    metrics.watch(engine)
    metrics.watch(engine)  # a second pipeline in the same process: no duplicate series
    for i in range(10):
        engine.process(ev(i, client_ip=f"198.51.100.{i}", query="q=garden+hose"))
    engine.process(ev(20, client_ip="203.0.113.9", query="q=1%27%20OR%20%271%27%3D%271"))
    text = generate_latest(metrics.registry).decode()
    work = 'gatewatch_detector_work_total{counter="%s",detector="payload"}'
    assert sample(text, work % "requests") == 11
    assert sample(text, work % "prefilter_skipped") == 10
    assert sample(text, work % "crs_runs") == 1
    assert sample(text, work % "crs_flagged") == 1
    assert sample(text, 'gatewatch_detector_tracked{detector="payload"}') >= 1
