"""/metrics reports what the detectors hold and do: entities tracked per detector, and
the payload stage's work (requests the prefilter skipped, CRS runs)."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from detectors.anomaly.detector import AnomalyModel, AnomalyModelParams, WindowSpec
from detectors.base import Detector, DetectorParams
from detectors.crs import RULES_DIR
from detectors.engine import DetectionEngine
from detectors.payload.detector import PayloadDetector, PayloadParams
from gatewatch.event import Event
from gatewatch.metrics import Metrics, _DetectorCollector
from tests.detectors.events import events_at
from tests.threads import reads_during

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


class _Racing(Detector[DetectorParams]):
    """Reads like a detector whose tables change under the scrape, ``failures`` times."""

    Params = DetectorParams
    label = "racing"

    def __init__(self, failures: int) -> None:
        super().__init__(DetectorParams(), label="racing")
        self.failures = failures
        self.entities = 7

    def observe(self, event: Event) -> None:
        pass

    def tracked(self) -> int:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("OrderedDict mutated during iteration")
        return self.entities


def test_a_read_that_races_detection_is_retried_and_never_fails_the_scrape() -> None:
    racing = _Racing(failures=2)
    metrics = Metrics()
    metrics.watch(DetectionEngine([racing], lambda f: None, allowed_lateness_s=0))
    tracked = 'gatewatch_detector_tracked{detector="racing"}'
    assert sample(generate_latest(metrics.registry).decode(), tracked) == 7  # third read

    racing.entities, racing.failures = 9, 10  # keeps failing: the last values stand
    assert sample(generate_latest(metrics.registry).decode(), tracked) == 7
    assert racing.failures == 10 - _DetectorCollector.retries
    racing.failures = 0
    assert sample(generate_latest(metrics.registry).decode(), tracked) == 9


def test_scrapes_while_the_anomaly_model_learns_in_another_thread() -> None:
    """What ``gatewatch run`` does: detection in a worker thread, /metrics in the HTTP
    server's. New routes grow the model's tables while the scrapes walk them."""
    busy = (WindowSpec(size_s=10, min_requests=2),)  # every route judged, every window
    detector = AnomalyModel(AnomalyModelParams(windows=busy))
    engine = DetectionEngine([detector], lambda f: None, allowed_lateness_s=0)
    metrics = Metrics()
    metrics.watch(engine)
    routes = [f"/api/v1/r{i}" for i in range(500)]

    def detect() -> None:
        for i in range(40_000):
            route = routes[i % len(routes)]
            engine.process(ev(i * 0.01, route=route, path=route, client_ip=f"10.0.{i % 7}.1"))

    def scrape() -> None:
        detector.tracked(), detector.counters()  # the reads themselves never race
        generate_latest(metrics.registry)

    assert reads_during(detect, scrape) > 0
    assert detector.counters()["windows_judged"] > 0
