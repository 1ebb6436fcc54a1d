import random
from typing import Any

import pytest

from detectors.base import Detector
from detectors.engine import DetectionEngine
from detectors.requests import (
    MalformedRequest,
    MalformedRequestParams,
    OversizedPayload,
    OversizedPayloadParams,
)
from gatewatch.event import Event
from gatewatch.finding import EntityType, Finding, Severity
from tests.detectors.events import BASE_TS, events_at

T0 = BASE_TS
CART = "/api/v1/cart"
PHOTOS = "/api/v1/products/{productId}/reviews/photos"
MiB = 1 << 20


ev = events_at(method="POST", path=CART, route=CART, request_bytes=400)


def run(detector: Detector[Any], events: list[Event]) -> list[Finding]:
    """The last version of every finding."""
    found: dict[str, Finding] = {}
    engine = DetectionEngine(
        [detector], lambda f: found.__setitem__(f.id, f), allowed_lateness_s=0, evidence_limit=None
    )
    for event in sorted(events, key=lambda e: e.ts):
        engine.process(event)
    engine.finish()
    return list(found.values())


def shoppers(rng: random.Random, count: int = 300, seconds: float = 3_600) -> list[Event]:
    """Cart updates of a few hundred bytes, and photo uploads of megabytes by design."""
    return [
        ev(rng.uniform(0, seconds), client_ip=f"192.0.2.{i % 200}",
           request_bytes=rng.randint(200, 600))
        for i in range(count)
    ] + [
        ev(rng.uniform(0, seconds), client_ip=f"192.0.2.{i % 200}", route=PHOTOS,
           path="/api/v1/products/7/reviews/photos", request_bytes=rng.randint(400_000, 6_000_000))
        for i in range(count // 3)
    ]  # fmt: skip


# -- oversized payload ----------------------------------------------------------------


def test_megabyte_bodies_on_a_route_that_takes_bytes_are_flagged() -> None:
    rng = random.Random(1)
    attack = [ev(3_000 + i, client_ip="203.0.113.5", request_bytes=5 * MiB) for i in range(3)]
    (finding,) = run(OversizedPayload(OversizedPayloadParams()), shoppers(rng) + attack)
    assert (finding.kind, finding.entity, finding.entity_type) == (
        "oversized_payload", "203.0.113.5", EntityType.IP,
    )  # fmt: skip
    assert finding.evidence == tuple(e.request_id for e in attack)
    assert finding.subkind == "above_route_profile"
    assert "5.0 MiB body to POST /api/v1/cart" in finding.summary
    assert "3 oversized" in finding.summary


def test_bodies_above_the_hard_limit_are_flagged_on_any_route() -> None:
    rng = random.Random(2)
    huge = ev(3_000, client_ip="203.0.113.6", route=PHOTOS, request_bytes=64 * MiB)
    cold = ev(10, client_ip="203.0.113.7", route="/api/v1/new", request_bytes=40 * MiB)
    findings = sorted(
        run(OversizedPayload(OversizedPayloadParams()), [*shoppers(rng), huge, cold]),
        key=lambda f: f.entity,
    )
    assert [(f.entity, f.subkind, f.evidence) for f in findings] == [
        ("203.0.113.6", "hard_limit", (huge.request_id,)),
        ("203.0.113.7", "hard_limit", (cold.request_id,)),
    ]


def test_flagged_bodies_are_not_learnt() -> None:
    """A flood of oversized bodies does not make them the route's norm."""
    rng = random.Random(3)
    flood = [ev(2_000 + i, client_ip="203.0.113.8", request_bytes=8 * MiB) for i in range(500)]
    (finding,) = run(OversizedPayload(OversizedPayloadParams()), shoppers(rng) + flood)
    assert len(finding.evidence) == 500 and "500 oversized" in finding.summary


@pytest.mark.parametrize(
    ("benign", "params"),
    [
        # Photo uploads of megabytes, the route's norm (and its first ones, while cold).
        ([ev(3_000, route=PHOTOS, request_bytes=6_000_000)], {}),
        ([ev(1, route="/api/v1/brand-new/photos", request_bytes=6_000_000)], {}),
        # 500 KB on a route that takes 400 B: far above its norm, but under the floor.
        ([ev(3_000, request_bytes=500_000)], {}),
        # An allowlisted backup client.
        (
            [ev(3_000, client_ip="10.1.2.3", request_bytes=40 * MiB)],
            {"allow": {"ips": ["10.0.0.0/8"]}},
        ),
    ],
    ids=["photo_upload", "cold_route", "under_floor", "allowlisted"],
)
def test_large_but_normal_bodies_are_not_flagged(
    benign: list[Event], params: dict[str, Any]
) -> None:
    rng = random.Random(4)
    assert run(OversizedPayload(OversizedPayloadParams(**params)), shoppers(rng) + benign) == []


# -- malformed request ----------------------------------------------------------------


def scanner(ip: str, start: float = 1_000.0) -> list[Event]:
    """A scanner's protocol probing: odd methods, overlong URIs, garbage."""
    events = []
    for i in range(30):
        kind = i % 5
        fields: dict[str, Any] = {
            0: {"method": "TRACE", "status": 405},
            1: {"method": "PROPFIND", "status": 405},
            2: {"method": "GET", "status": 414, "path": "/" + "A" * 300},
            3: {"method": "-", "path": "", "route": "", "status": 400},
            4: {"method": "DEBUG", "status": 501},
        }[kind]
        events.append(ev(start + i * 0.5, client_ip=ip, **fields))
    return events


def traffic(rng: random.Random, seconds: float = 3_600) -> list[Event]:
    return [
        ev(rng.uniform(0, seconds), client_ip=f"192.0.2.{i % 100}", method="GET")
        for i in range(2_000)
    ]


def test_a_burst_of_malformed_requests_is_flagged() -> None:
    rng = random.Random(5)
    attack = scanner("203.0.113.20")
    (finding,) = run(MalformedRequest(MalformedRequestParams()), traffic(rng) + attack)
    assert (finding.kind, finding.entity, finding.entity_type) == (
        "malformed_request", "203.0.113.20", EntityType.IP,
    )  # fmt: skip
    assert finding.evidence == tuple(e.request_id for e in attack)
    assert finding.severity == Severity.LOW
    assert "30 malformed requests of 30" in finding.summary
    assert "DEBUG, PROPFIND, TRACE" in finding.summary
    assert finding.subkind == "invalid_method"


def test_a_burst_of_400s_and_unreadable_requests_is_flagged() -> None:
    garbage = [
        ev(i * 0.2, client_ip="203.0.113.21", method="-", path="", route="", status=400)
        for i in range(25)
    ]
    (finding,) = run(MalformedRequest(MalformedRequestParams()), garbage)
    assert finding.subkind == "unreadable" and len(finding.evidence) == 25
    assert "25 unreadable" in finding.summary


@pytest.mark.parametrize(
    "benign",
    [
        # A buggy client: one 400 a minute for three hours among its ordinary requests.
        [ev(i * 60.0, client_ip="192.0.2.77", status=400) for i in range(180)]
        + [ev(i * 3.0, client_ip="192.0.2.77") for i in range(3_600)],
        # A burst of 400s that is a small share of a busy client's requests.
        [ev(i * 2.0, client_ip="192.0.2.78", status=400) for i in range(25)]
        + [ev(i * 0.2, client_ip="192.0.2.78") for i in range(300)],
        # A monitor's single TRACE, and CORS preflights.
        [ev(5, client_ip="192.0.2.79", method="TRACE", status=405)]
        + [ev(i, client_ip="192.0.2.80", method="OPTIONS", status=204) for i in range(100)],
    ],
    ids=["steady_trickle", "small_share", "single_trace"],
)
def test_benign_errors_are_not_flagged(benign: list[Event]) -> None:
    rng = random.Random(6)
    assert run(MalformedRequest(MalformedRequestParams()), traffic(rng) + benign) == []


# -- both -----------------------------------------------------------------------------


def _detectors() -> list[Detector[Any]]:
    return [
        OversizedPayload(OversizedPayloadParams(max_routes=50, max_entities=500)),
        MalformedRequest(MalformedRequestParams(max_entities=500)),
    ]


@pytest.mark.parametrize("index", [0, 1])
def test_same_findings_on_replay(index: int) -> None:
    rng = random.Random(7)
    events = shoppers(rng) + traffic(rng) + scanner("203.0.113.22", 500) + scanner("203.0.113.23")
    events += [ev(2_000 + i, client_ip="203.0.113.24", request_bytes=3 * MiB) for i in range(3)]
    first = run(_detectors()[index], events)
    assert first and first == run(_detectors()[index], events)


@pytest.mark.parametrize("index", [0, 1])
def test_state_is_bounded(index: int) -> None:
    detector = _detectors()[index]
    engine = DetectionEngine([detector], lambda f: None, allowed_lateness_s=0)
    for i in range(50_000):
        engine.process(
            ev(i * 0.01, client_ip=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
               route=f"/r{i}", method="TRACE" if i % 2 else "GET", status=405,
               request_bytes=(i % 7) * MiB)
        )  # fmt: skip
        if i % 5_000 == 0:
            assert detector.tracked() <= 50 + 500 + 100_000
    engine.finish()
    table = getattr(detector, "routes", None) or detector.sources  # type: ignore[attr-defined]
    assert len(table) <= 500
    assert len(detector.sources) <= 500  # type: ignore[attr-defined]


@pytest.mark.parametrize("index", [0, 1])
def test_tolerates_empty_fields(index: int) -> None:
    events = [
        Event(request_id=f"e{i}", ts=T0 + i * 0.01, client_ip="", method="", path="", route="",
              status=0)
        for i in range(500)
    ] + [
        ev(10 + i * 0.01, route="", path="", method="", status=400, request_bytes=0)
        for i in range(500)
    ]  # fmt: skip
    run(_detectors()[index], events)
