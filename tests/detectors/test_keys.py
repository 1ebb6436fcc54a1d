import random
import re
from typing import Any

import pytest

from detectors.engine import DetectionEngine
from detectors.keys import TokenMisuse, TokenMisuseParams
from gatewatch.event import Event
from gatewatch.finding import EntityType, Finding, Severity
from tests.detectors.events import BASE_TS, events_at

T0 = BASE_TS
KEY = "fp:0123456789abcdef"
TOKEN = "fp:fedcba9876543210"


ev = events_at(path="/api/v1/orders", route="/api/v1/orders")


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def run(events: list[Event], **params: Any) -> list[Finding]:
    """The last version of every finding."""
    found: dict[str, Finding] = {}
    detector = TokenMisuse(TokenMisuseParams(**params))
    engine = DetectionEngine(
        [detector], lambda f: found.__setitem__(f.id, f), allowed_lateness_s=0, evidence_limit=None
    )
    for event in sorted(events, key=lambda e: e.ts):
        engine.process(event)
    engine.finish()
    return list(found.values())


def owners(rng: random.Random, count: int = 50) -> list[Event]:
    """Ordinary clients: each key or token used from its own address."""
    events = []
    for i in range(count):
        credential: dict[str, Any] = (
            {"api_key": f"fp:{i:016x}"} if i % 2 else {"headers": bearer(f"fp:{i:016x}")}
        )
        events += [
            ev(rng.uniform(0, 1_800), client_ip=f"192.0.2.{i}", user=f"user{i}", **credential)
            for _ in range(20)
        ]
    return events


def test_a_key_used_concurrently_from_many_networks_is_flagged() -> None:
    rng = random.Random(1)
    # A leaked key used by a dozen parties at once: requests alternate between them.
    ips = [f"{rng.randrange(1, 223)}.{n}.{n}.{rng.randrange(1, 255)}" for n in range(12)]
    attack = [ev(600 + i * 2.0, client_ip=ips[i % 12], api_key=KEY) for i in range(120)]
    (finding,) = run(owners(rng) + attack)
    assert (finding.kind, finding.entity, finding.entity_type) == (
        "token_misuse", KEY, EntityType.API_KEY,
    )  # fmt: skip
    assert finding.subkind == "concurrent_use" and finding.severity == Severity.HIGH
    # Every request from the first to the end, but those of the first few addresses.
    assert set(finding.evidence) >= {e.request_id for e in attack[:1] + attack[3:]}
    assert set(finding.evidence) <= {e.request_id for e in attack}
    match = re.search(r"used from (\d+) addresses in (\d+) networks and (\d+)", finding.summary)
    assert match and match.groups() == ("12", "12", "12")


def test_a_bearer_token_rotated_through_many_proxies_is_flagged() -> None:
    rng = random.Random(2)
    attack = [
        ev(300 + i * 5.0, client_ip=f"100.{40 + i}.7.{i + 1}", headers=bearer(), user="alice")
        for i in range(30)
    ]
    (finding,) = run(owners(rng) + attack)
    assert (finding.entity, finding.subkind) == (TOKEN, "address_rotation")
    assert "bearer token" in finding.summary and "principal alice" in finding.summary
    assert set(finding.evidence) <= {e.request_id for e in attack}
    assert attack[-1].request_id in finding.evidence


@pytest.mark.parametrize(
    "benign",
    [
        # A phone roaming across carrier-NAT addresses, a new one every couple of minutes.
        [
            ev(i * 10.0, client_ip=f"100.{64 + i // 12}.{i // 12}.9", headers=bearer(),
               user="bob")
            for i in range(90)
        ],
        # A partner calling at a high rate from three fixed cloud addresses.
        [
            ev(i * 0.1, client_ip=f"198.18.0.{i % 3 + 1}", api_key=KEY, user="northwind")
            for i in range(20_000)
        ],
        # An application key every install of a public client sends, one user each.
        [
            ev(i * 3.0, client_ip=f"203.0.{i % 60}.8", api_key=KEY, user=f"shopper{i % 60}")
            for i in range(600)
        ],
        # A household of phones sharing one account on a carrier's NAT: many addresses
        # used at once, but all within the carrier's three address blocks.
        [
            ev(i * 5.0, client_ip=f"100.{72 + i % 3}.{i % 17}.{i % 11 + 1}", headers=bearer())
            for i in range(300)
        ],
        # Wi-Fi and mobile data, back and forth between two addresses.
        [
            ev(i * 5.0, client_ip=("192.0.2.5", "100.64.3.3")[i % 2], headers=bearer())
            for i in range(200)
        ],
    ],
    ids=["mobile_roaming", "partner", "public_app_key", "carrier_nat", "wifi_and_mobile"],
)  # fmt: skip
def test_benign_spread_is_not_flagged(benign: list[Event]) -> None:
    assert run(owners(random.Random(3)) + benign) == []


def test_keys_in_urls_are_flagged_per_key_or_address() -> None:
    rng = random.Random(4)
    keyed = [
        ev(i * 30.0, client_ip="192.0.2.44", api_key=KEY, query=f"page={i}&api_key={KEY}")
        for i in range(40)
    ]
    anonymous = [ev(100, client_ip="192.0.2.45", query="access_token=fp:aaaaaaaaaaaaaaaa&x=1")]
    findings = sorted(run(owners(rng) + keyed + anonymous), key=lambda f: f.entity_type)
    assert [(f.entity_type, f.entity, f.subkind, f.severity) for f in findings] == [
        (EntityType.API_KEY, KEY, "key_in_url", Severity.LOW),
        (EntityType.IP, "192.0.2.45", "key_in_url", Severity.LOW),
    ]
    assert set(findings[0].evidence) == {e.request_id for e in keyed}
    assert "(api_key=...) in 40 requests" in findings[0].summary
    assert "(access_token=...)" in findings[1].summary
    assert run(keyed, key_in_url=False) == []


def test_same_findings_on_replay() -> None:
    rng = random.Random(5)
    ips = [f"{100 + n}.{n}.0.7" for n in range(10)]
    events = owners(rng) + [
        ev(600 + i, client_ip=ips[i % 10], api_key=KEY, query=f"key={KEY}" if i % 7 else "")
        for i in range(100)
    ]
    first = run(events)
    assert len(first) == 2 and first == run(events)


def test_state_is_bounded() -> None:
    detector = TokenMisuse(TokenMisuseParams(max_entities=500))
    engine = DetectionEngine([detector], lambda f: None, allowed_lateness_s=0)
    for i in range(50_000):
        engine.process(
            ev(i * 0.01, client_ip=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
               api_key=f"fp:{i:016x}", headers=bearer(f"fp:{i + 1:016x}"),
               query=f"token=fp:{i:016x}" if i % 3 == 0 else "")
        )  # fmt: skip
        if i % 5_000 == 0:
            assert len(detector.credentials) <= 500 and len(detector.in_url) <= 500
    engine.finish()
    assert detector.tracked() <= 1_000


def test_tolerates_empty_and_odd_fields() -> None:
    events = [
        Event(request_id=f"e{i}", ts=T0 + i, client_ip="", method="", path="", route="", status=0)
        for i in range(100)
    ] + [
        ev(200, headers={"authorization": ""}),
        ev(201, headers={"authorization": "Bearer"}),
        ev(202, headers={"authorization": "Basic fp:1111222233334444"}, client_ip=""),
        ev(203, api_key=KEY, client_ip="not-an-ip", query="=fp:"),
        ev(204, api_key=KEY, client_ip="2001:db8::1"),
        ev(205, api_key=KEY, client_ip="::ffff:192.0.2.1"),
    ]
    findings = run(events)
    assert all(f.subkind == "key_in_url" for f in findings)
