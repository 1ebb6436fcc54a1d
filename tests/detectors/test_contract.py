"""What every registered detector must do, whatever it detects (STYLE.md, rule 12).

- the same input gives the same findings (ids, evidence, summaries);
- events with empty fields never raise;
- state stays bounded: thousands of one-off entities cost at most 1 KB each, and
  ``tracked()`` never exceeds what was fed;
- findings are well formed: a declared kind, evidence drawn from the input, times
  inside the input's event time;
- ``tracked()`` and ``counters()`` can be read from another thread while the detector
  works (/metrics scrapes from its own).
"""

from __future__ import annotations

import random
import tracemalloc
from typing import Any

import pytest

from detectors.base import Detector
from detectors.engine import DetectionEngine
from detectors.registry import DETECTORS
from gatewatch.event import Event
from gatewatch.finding import Finding
from tests.detectors.events import BASE_TS, make_event
from tests.threads import reads_during

REGISTERED = sorted(DETECTORS)


def _mixed_traffic(seed: int, count: int = 4_000) -> list[Event]:
    """Benign-looking and hostile-looking requests mixed, so every detector does work."""
    rng = random.Random(seed)
    events = []
    for i in range(count):
        ip = f"203.0.113.{rng.randrange(8)}" if rng.random() < 0.5 else f"198.51.100.{i % 200}"
        login = rng.random() < 0.3
        object_id = rng.randrange(100_000)
        events.append(
            make_event(
                request_id=f"c{seed}-{i}",
                ts=BASE_TS + i * 0.05,
                client_ip=ip,
                method="POST" if login else rng.choice(("GET", "GET", "PUT", "TRACE")),
                path="/api/v1/auth/login" if login else f"/api/v1/orders/{object_id}",
                route="/api/v1/auth/login" if login else "/api/v1/orders/{orderId}",
                status=rng.choice((200, 401, 401, 403, 404)) if login else rng.choice((200, 404)),
                user=f"user{rng.randrange(300)}",
                api_key=rng.choice(("", "fp:aaaa", "fp:bbbb")),
                scheme=rng.choice(("https", "https", "http")),
                tls_version=rng.choice(("TLSv1.3", "TLSv1.2", "TLSv1.0")),
                request_bytes=rng.choice((300, 800, 5_000_000)),
                response_bytes=rng.choice((200, 2_000, 50_000_000)),
                query=rng.choice(("", "page=2", "api_key=fp:cccc")),
            )
        )
    return events


def _run(detector: Detector[Any], events: list[Event]) -> list[Finding]:
    found: list[Finding] = []
    engine = DetectionEngine([detector], found.append, allowed_lateness_s=2, evidence_limit=None)
    for event in events:
        engine.process(event)
    engine.finish()
    return found


def _fresh(name: str) -> Detector[Any]:
    cls = DETECTORS[name]
    return cls(cls.Params())


@pytest.mark.parametrize("name", REGISTERED)
def test_same_input_same_findings(name: str) -> None:
    events = _mixed_traffic(seed=1)
    first = _run(_fresh(name), events)
    second = _run(_fresh(name), events)
    assert first == second


@pytest.mark.parametrize("name", REGISTERED)
def test_findings_are_well_formed(name: str) -> None:
    events = _mixed_traffic(seed=2)
    ids = {e.request_id for e in events}
    detector = _fresh(name)
    for finding in _run(detector, events):
        assert finding.kind in detector.kinds
        assert finding.summary and finding.entity
        assert set(finding.evidence) <= ids and finding.evidence
        assert events[0].ts <= finding.first_ts <= finding.last_ts <= events[-1].ts
        assert finding.first_ts <= finding.detected_ts <= finding.last_ts


@pytest.mark.parametrize("name", REGISTERED)
def test_tolerates_empty_fields(name: str) -> None:
    empty = [
        Event(
            request_id=f"e{i}", ts=BASE_TS + i, client_ip="", method="", path="", route="", status=0
        )
        for i in range(200)
    ]
    odd = [
        make_event(ts=BASE_TS + 300 + i, route="", path="", status=400, method="")
        for i in range(50)
    ]
    _run(_fresh(name), empty + odd)


@pytest.mark.parametrize("name", REGISTERED)
def test_state_is_bounded_per_entity(name: str) -> None:
    count = 20_000
    detector = _fresh(name)
    engine = DetectionEngine([detector], lambda f: None, allowed_lateness_s=0)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(count):
        login = i % 3 == 0
        engine.process(
            make_event(
                request_id=f"b{i}",
                ts=BASE_TS + i * 0.01,
                client_ip=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                user=f"u{i}",
                api_key=f"fp:{i:016x}",
                method="POST" if login else "GET",
                path="/api/v1/auth/login" if login else f"/api/v1/orders/{i}",
                route="/api/v1/auth/login" if login else "/api/v1/orders/{orderId}",
                status=401 if login else 404,
            )
        )
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert detector.tracked() <= 3 * count
    assert grown / count <= 1024, f"{grown / count:.0f} bytes per entity"


@pytest.mark.parametrize("name", REGISTERED)
def test_introspection_can_be_read_while_detection_runs(name: str) -> None:
    """New entities all the time, and busy routes judged every window: the tables
    that ``tracked()`` and ``counters()`` read keep changing under them."""
    rng = random.Random(3)
    events = [
        make_event(
            request_id=f"t{i}",
            ts=BASE_TS + i * 0.01,
            client_ip=f"10.0.{i % 50}.{rng.randrange(256)}",
            user=f"u{i % 400}",
            path=f"/api/v1/r{i % 20}/{i}",
            route=f"/api/v1/r{i % 20}/{{id}}",
            status=rng.choice((200, 401, 404)),
            query=rng.choice(("", "q=1", "page=2")),
        )
        for i in range(15_000)
    ]
    detector = _fresh(name)
    engine = DetectionEngine([detector], lambda f: None, allowed_lateness_s=0)

    def detect() -> None:
        for event in events:
            engine.process(event)

    def read() -> None:
        assert detector.tracked() >= 0
        assert all(value >= 0 for value in detector.counters().values())

    assert reads_during(detect, read) > 0
