import math
from typing import ClassVar

from detectors.base import Detector, DetectorParams
from detectors.engine import DetectionEngine
from gatewatch.event import Event
from gatewatch.finding import EntityType, Finding, Severity
from tests.detectors.events import BASE_TS, make_event


class Recorder(Detector[DetectorParams]):
    """Records what the engine shows it; raises a finding for status 599."""

    name: ClassVar[str] = "recorder"
    kinds: ClassVar[tuple[str, ...]] = ("anomaly",)

    def __init__(self, params: DetectorParams | None = None) -> None:
        super().__init__(params or DetectorParams())
        self.seen: list[float] = []
        self.advanced: list[float] = []

    def observe(self, event: Event) -> None:
        self.seen.append(event.ts)
        if event.status == 599:
            self.raise_finding(
                kind="anomaly",
                entity_type=EntityType.IP,
                entity=event.client_ip,
                first_ts=event.ts,
                last_ts=event.ts,
                detected_ts=event.ts,
                summary="status 599",
                evidence=[event.request_id],
                score=0.5,
            )

    def advance(self, watermark: float) -> None:
        self.advanced.append(watermark)


def test_reorders_within_the_allowed_lateness() -> None:
    recorder = Recorder()
    engine = DetectionEngine([recorder], lambda f: None, allowed_lateness_s=5)
    for offset in (0, 3, 1, 2, 10, 4, 20):
        engine.process(make_event(ts=BASE_TS + offset))
    # Released once the newest event is 5 s ahead: 0..4 sorted, then 10 (at 20 - 5 = 15).
    assert recorder.seen == [BASE_TS + o for o in (0, 1, 2, 3, 4, 10)]
    engine.finish()
    assert recorder.seen[-1] == BASE_TS + 20
    assert engine.stats.late == 0 and engine.stats.events == 7


def test_events_later_than_the_lateness_are_still_observed_and_counted() -> None:
    recorder = Recorder()
    engine = DetectionEngine([recorder], lambda f: None, allowed_lateness_s=1)
    for offset in (0, 10, 12, 2):
        engine.process(make_event(ts=BASE_TS + offset))
    engine.finish()
    assert recorder.seen == [BASE_TS, BASE_TS + 10, BASE_TS + 2, BASE_TS + 12]
    assert engine.stats.late == 1


def test_advances_about_once_per_second_of_event_time_and_at_the_end() -> None:
    recorder = Recorder()
    engine = DetectionEngine([recorder], lambda f: None, allowed_lateness_s=0)
    for i in range(50):
        engine.process(make_event(ts=BASE_TS + i * 0.1))
    engine.finish()
    assert recorder.advanced[:5] == [BASE_TS + i for i in range(5)]
    assert recorder.advanced[-1] == math.inf


def test_findings_reach_the_sink_with_taxonomy_and_a_stable_id() -> None:
    found: list[Finding] = []
    engine = DetectionEngine([Recorder()], found.append, allowed_lateness_s=0)
    engine.process(make_event(status=599, client_ip="203.0.113.9", request_id="x1"))
    engine.finish()
    (finding,) = found
    assert finding.owasp == "API4:2023" and finding.detector == "recorder"
    assert finding.evidence == ("x1",) and finding.entity == "203.0.113.9"
    again: list[Finding] = []
    replay = DetectionEngine([Recorder()], again.append, allowed_lateness_s=0)
    replay.process(make_event(status=599, client_ip="203.0.113.9", request_id="x1"))
    assert again[0].id == finding.id


def test_reconfigure_swaps_params_and_keeps_state() -> None:
    recorder = Recorder()
    engine = DetectionEngine([recorder], lambda f: None, allowed_lateness_s=0)
    engine.process(make_event())
    engine.reconfigure({"recorder": DetectorParams(enabled=True, severity=Severity.LOW)})
    assert recorder.params.severity == "low" and len(recorder.seen) == 1


def test_release_held_lets_an_idle_stream_catch_up() -> None:
    recorder = Recorder()
    engine = DetectionEngine([recorder], lambda f: None, allowed_lateness_s=30)
    for offset in (0, 1, 2):
        engine.process(make_event(ts=BASE_TS + offset))
    assert recorder.seen == [] and engine.holding == 3
    engine.release_held()
    assert recorder.seen == [BASE_TS, BASE_TS + 1, BASE_TS + 2] and engine.holding == 0
