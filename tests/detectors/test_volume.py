import random
import re
from typing import Any

import pytest

from detectors.base import Allowlist, Detector
from detectors.engine import DetectionEngine
from detectors.volume import (
    DataExfiltration,
    DataExfiltrationParams,
    OctaveHistogram,
    RateAnomaly,
    RateAnomalyParams,
)
from gatewatch.event import Event
from gatewatch.finding import EntityType, Finding
from tests.detectors.events import BASE_TS, events_at

T0 = BASE_TS
PRODUCT = "/api/v1/products/{productId}"
CUSTOMERS = "/api/v1/customers"
MiB = 1 << 20


ev = events_at(
    path="/api/v1/products/1", route=PRODUCT, response_bytes=2_000, user_agent="Mozilla/5.0"
)


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


def steady(
    start: float, seconds: float, rate: float, rng: random.Random, **fields: Any
) -> list[Event]:
    """Requests at ``rate`` per second with jitter, from ``start`` for ``seconds``."""
    events, t = [], start
    while t < start + seconds:
        events.append(ev(t, **fields))
        t += rng.uniform(0.5, 1.5) / rate
    return events


def browsers(rng: random.Random, count: int = 40, seconds: float = 1_800) -> list[Event]:
    """Signed-in users browsing products, a request every few seconds."""
    events = []
    for u in range(count):
        events += steady(
            rng.uniform(0, 60), seconds, rng.uniform(0.05, 0.3), rng,
            user=f"user{u}", client_ip=f"192.0.2.{u}",
        )  # fmt: skip
    return events


def number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, text
    return float(match.group(1))


# -- rate anomaly ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attacker", "rate", "entity_type", "subkind"),
    [
        # A new address scraping the catalogue at 20 requests per second: flagged at once.
        ({"client_ip": "203.0.113.66"}, 20.0, EntityType.IP, "burst"),
        # 6 per second: above the floor but below the cold floor, two windows running.
        ({"client_ip": "203.0.113.67"}, 6.0, EntityType.IP, "sustained"),
        # A signed-in user's stolen session scraping from a new address.
        ({"user": "mallory", "client_ip": "203.0.113.68"}, 20.0, EntityType.USER, "burst"),
    ],
)
def test_scraping_far_above_the_route_is_flagged(
    attacker: dict[str, Any], rate: float, entity_type: EntityType, subkind: str
) -> None:
    rng = random.Random(1)
    attack = steady(600, 240, rate, rng, **attacker)
    findings = run(RateAnomaly(RateAnomalyParams()), browsers(rng) + attack)
    (finding,) = findings
    entity = attacker.get("user") or attacker["client_ip"]
    assert (finding.kind, finding.entity, finding.entity_type) == (
        "rate_anomaly",
        entity,
        entity_type,
    )
    assert finding.subkind == subkind
    attack_ids = {e.request_id for e in attack}
    assert set(finding.evidence) <= attack_ids
    assert len(finding.evidence) > 0.5 * len(attack)
    assert number(r"sent (\d+) requests", finding.summary) >= 300
    assert PRODUCT in finding.summary
    assert attack[0].ts <= finding.detected_ts <= attack[-1].ts


def test_established_client_jumping_far_above_its_own_baseline_is_flagged() -> None:
    rng = random.Random(2)
    history = steady(0, 900, 0.5, rng, user="carol", client_ip="192.0.2.200")
    burst = steady(960, 120, 15.0, rng, user="carol", client_ip="192.0.2.200")
    (finding,) = run(RateAnomaly(RateAnomalyParams()), browsers(rng) + history + burst)
    assert finding.entity == "carol"
    assert 20 <= number(r"its usual (\d+) per 60 s", finding.summary) <= 40
    assert set(finding.evidence) <= {e.request_id for e in burst}


def test_flagged_windows_are_not_learnt() -> None:
    """A scraper going on for half an hour stays flagged: its windows never become its
    baseline, and the episode keeps collecting its requests."""
    rng = random.Random(3)
    attack = steady(300, 1_800, 12.0, rng, client_ip="203.0.113.70")
    detector = RateAnomaly(RateAnomalyParams())
    (finding,) = run(detector, browsers(rng, seconds=2_400) + attack)
    assert finding.last_ts >= attack[-1].ts - 60
    assert len(finding.evidence) > 0.8 * len(attack)
    state = detector.clients.peek("203.0.113.70")
    assert state is None or state.learned == 0


@pytest.mark.parametrize(
    "benign",
    [
        # Partner integration: a key, a principal, 10 requests per second from the first
        # second, from three fixed addresses, and a 30 % step up later.
        lambda rng: [
            e._replace(client_ip=f"198.18.0.{int(e.ts) % 3}")
            for e in steady(0, 1_200, 10.0, rng, user="northwind", api_key="fp:partner")
            + steady(1_200, 600, 13.0, rng, user="northwind", api_key="fp:partner")
        ],
        # A crawler at a steady moderate rate for an hour.
        lambda rng: steady(0, 3_600, 1.5, rng, client_ip="66.249.66.1", user_agent="Googlebot"),
        # A corporate NAT: anonymous visitors of many browsers behind one address at a
        # combined 12 per second, plus signed-in users keyed by principal.
        lambda rng: (
            [
                e._replace(user_agent=f"Mozilla/5.0 build{rng.randrange(60)}")
                for e in steady(0, 1_800, 12.0, rng, client_ip="192.0.2.250")
            ]
            + [
                e._replace(user=f"corp{rng.randrange(300)}")
                for e in steady(0, 1_800, 8.0, rng, client_ip="192.0.2.250")
            ]
        ),
        # A user clicking quickly (a burst far above their baseline, below the floor).
        lambda rng: steady(0, 600, 0.2, rng, user="dave") + steady(700, 30, 4.0, rng, user="dave"),
    ],
    ids=["partner", "crawler", "corporate_nat", "fast_clicker"],
)
def test_benign_traffic_is_not_flagged(benign: Any) -> None:
    rng = random.Random(4)
    assert run(RateAnomaly(RateAnomalyParams()), browsers(rng) + benign(rng)) == []


def test_a_shared_address_is_recognised_by_its_many_user_agents() -> None:
    """Without the guard, the NAT of the benign test above would be flagged."""
    rng = random.Random(4)
    nat = [
        e._replace(user_agent=f"Mozilla/5.0 build{rng.randrange(60)}")
        for e in steady(0, 1_800, 12.0, rng, client_ip="192.0.2.250")
    ]
    assert run(RateAnomaly(RateAnomalyParams()), nat) == []
    (finding,) = run(RateAnomaly(RateAnomalyParams(shared_ip_min_agents=0)), nat)
    assert finding.entity == "192.0.2.250" and finding.subkind == "sustained"


def test_allowlisted_client_and_login_attempt_names_are_not_principals() -> None:
    rng = random.Random(5)
    attack = steady(0, 120, 20.0, rng, client_ip="203.0.113.80")
    params = RateAnomalyParams(allow=Allowlist(ips=("203.0.113.0/24",)))
    assert run(RateAnomaly(params), attack) == []
    # Login attempts for many usernames from one address are that address's rate.
    logins = [
        e._replace(user=f"victim{i}", route="/api/v1/auth/login")
        for i, e in enumerate(steady(0, 120, 20.0, rng, client_ip="203.0.113.81"))
    ]
    (finding,) = run(RateAnomaly(RateAnomalyParams()), logins)
    assert finding.entity == "203.0.113.81" and finding.entity_type == EntityType.IP


# -- data exfiltration ----------------------------------------------------------------


def customers_readers(rng: random.Random, count: int = 30, seconds: float = 3_600) -> list[Event]:
    """Support agents reading customer pages: a few 20 KB pages every few minutes."""
    events = []
    for u in range(count):
        events += steady(
            rng.uniform(0, 300), seconds, rng.uniform(0.01, 0.05), rng,
            user=f"agent{u}", client_ip=f"192.0.2.{u}", route=CUSTOMERS, path=CUSTOMERS,
            response_bytes=20_000,
        )  # fmt: skip
    return events


def test_paging_through_a_whole_list_is_flagged() -> None:
    rng = random.Random(6)
    who = {"user": "eve", "client_ip": "203.0.113.90", "route": CUSTOMERS, "path": CUSTOMERS}
    history = steady(0, 1_800, 0.02, rng, response_bytes=20_000, **who)
    export = [
        ev(e.ts - T0, query=f"page={i}", response_bytes=20_000, **who)
        for i, e in enumerate(steady(2_000, 300, 8.0, rng))
    ]
    (finding,) = run(
        DataExfiltration(DataExfiltrationParams()), customers_readers(rng) + history + export
    )
    assert (finding.kind, finding.entity, finding.entity_type) == (
        "data_exfiltration", "eve", EntityType.USER,
    )  # fmt: skip
    assert set(finding.evidence) <= {e.request_id for e in export}
    assert number(r"received ([\d.]+) MiB", finding.summary) >= 10
    assert CUSTOMERS in finding.summary


def test_huge_responses_on_a_route_that_serves_small_ones_are_flagged() -> None:
    rng = random.Random(7)
    huge = [
        ev(2_000 + i * 30, client_ip="203.0.113.91", route=CUSTOMERS, response_bytes=80 * MiB)
        for i in range(3)
    ]
    (finding,) = run(DataExfiltration(DataExfiltrationParams()), customers_readers(rng) + huge)
    assert finding.entity == "203.0.113.91" and finding.entity_type == EntityType.IP
    assert set(finding.evidence) == {e.request_id for e in huge}
    assert finding.summary.startswith("203.0.113.91 received 80.0 MiB in 1 s")


def test_a_key_without_history_pulling_far_more_than_any_partner_is_flagged() -> None:
    """Keys get the benefit of the doubt while their history builds (partners sync at
    high rates from their first request), but not for hundreds of megabytes at once."""
    rng = random.Random(10)
    who = {"user": "wingtip", "api_key": "fp:stolen", "client_ip": "146.70.1.2"}
    pages = steady(1_000, 240, 0.6, rng, route="/api/v1/partners/{id}/orders", **who)
    pulls = [e._replace(response_bytes=rng.randint(1_300_000, 3_000_000)) for e in pages]
    findings = run(DataExfiltration(DataExfiltrationParams()), partner_sync(rng) + pulls)
    (finding,) = findings
    assert (finding.entity, finding.entity_type) == ("wingtip", EntityType.USER)
    assert set(finding.evidence) <= {e.request_id for e in pulls}
    assert number(r"received ([\d.]+) MiB", finding.summary) >= 256


def test_a_new_key_fetching_outsized_pages_is_flagged_at_the_ordinary_floor() -> None:
    """Partners fetch orders in pages of 20 KB; a key never seen before pulls 2 MB pages
    (page_size=1000): far less than the integration floor, but each response is far
    larger than the route ever serves."""
    rng = random.Random(11)
    orders = "/api/v1/partners/{id}/orders"
    partners = [
        e._replace(route=orders, response_bytes=rng.randint(2_000, 40_000))
        for e in steady(0, 3_600, 1.0, rng, user="contoso", api_key="fp:partner2")
    ]
    who = {"user": "wingtip", "api_key": "fp:stolen", "client_ip": "146.70.1.2", "route": orders}
    pulls = [
        e._replace(response_bytes=rng.randint(1_500_000, 2_500_000))
        for e in steady(1_800, 240, 0.3, rng, **who)
    ]
    (finding,) = run(DataExfiltration(DataExfiltrationParams()), partners + pulls)
    assert finding.entity == "wingtip" and set(finding.evidence) <= {e.request_id for e in pulls}
    assert 10 <= number(r"received ([\d.]+) MiB", finding.summary) < 256


EXPORTS = "/api/v1/admin/exports/{dataset}"


def admin_exports(rng: random.Random) -> list[Event]:
    """An admin's occasional exports: 3 x 30 MB from a route nobody else uses."""
    return [
        ev(100 + 400 * i, user="admin", route=EXPORTS, response_bytes=30_000_000) for i in range(3)
    ]


def big_admin_exports(rng: random.Random) -> list[Event]:
    """A known admin exporting far more (allowlisted below)."""
    return [
        ev(100 + 20 * i, user="admin", route=EXPORTS, response_bytes=40_000_000) for i in range(20)
    ]


def partner_sync(rng: random.Random) -> list[Event]:
    """A partner syncing inventory pages (60 KB) at 3 per second from the start."""
    route = "/api/v1/partners/{partnerId}/inventory"
    who = {"user": "contoso", "api_key": "fp:partner2", "route": route}
    return steady(0, 3_600, 3.0, rng, response_bytes=60_000, **who)


def busy_agent(rng: random.Random) -> list[Event]:
    """An agent reading three times more pages than the others."""
    return steady(0, 3_600, 0.15, rng, user="busy", route=CUSTOMERS, response_bytes=20_000)


@pytest.mark.parametrize(
    ("benign", "params"),
    [
        (admin_exports, {}),
        (big_admin_exports, {"allow": {"users": ["admin"]}}),
        (partner_sync, {}),
        (busy_agent, {}),
    ],
)
def test_benign_bulk_reads_are_not_flagged(benign: Any, params: dict[str, Any]) -> None:
    rng = random.Random(8)
    detector = DataExfiltration(DataExfiltrationParams(**params))
    assert run(detector, customers_readers(rng) + benign(rng)) == []


def _exporting_admins(rng: random.Random, hours: int = 3) -> list[Event]:
    """Two admins exporting 20-30 MB a few times an hour from the office, the route's
    heavy users: a window of 150 MB there is what the route has seen before."""
    events = []
    for admin in ("admin1", "admin2"):
        for hour in range(hours):
            t = hour * 3_600.0 + rng.uniform(0, 600)
            for _ in range(rng.randint(3, 6)):
                t += rng.uniform(60, 500)
                size = rng.randint(20_000_000, 30_000_000)
                events.append(
                    ev(t, user=admin, route=EXPORTS, client_ip="192.0.2.25", response_bytes=size)
                )
    return events


def _stolen_token_export(ip: str) -> list[Event]:
    start = 3 * 3_600.0 + 300
    return [
        ev(start + 4 * i, user="admin1", route=EXPORTS, client_ip=ip, response_bytes=6_000_000)
        for i in range(50)
    ]


def test_an_admin_token_exporting_from_an_address_it_never_used_is_flagged() -> None:
    rng = random.Random(12)
    benign = _exporting_admins(rng)
    stolen = _stolen_token_export("45.135.159.179")
    (finding,) = run(DataExfiltration(DataExfiltrationParams()), benign + stolen)
    assert (finding.entity_type, finding.entity, finding.subkind) == (
        EntityType.USER,
        "admin1",
        "new_address",
    )
    assert "45.135.159.179, an address it has not used before" in finding.summary
    assert set(finding.evidence) <= {e.request_id for e in stolen}
    # The same pull from the admin's own office is the route's business: not flagged.
    rng = random.Random(12)
    assert (
        run(
            DataExfiltration(DataExfiltrationParams()),
            _exporting_admins(rng) + _stolen_token_export("192.0.2.25"),
        )
        == []
    )
    # ... and with the address memory off, neither is the stolen token's.
    rng = random.Random(12)
    off = DataExfiltration(DataExfiltrationParams(known_addresses=0))
    assert run(off, _exporting_admins(rng) + _stolen_token_export("45.135.159.179")) == []


# -- both -----------------------------------------------------------------------------


def _detectors() -> list[Detector[Any]]:
    return [
        RateAnomaly(RateAnomalyParams()),
        DataExfiltration(DataExfiltrationParams(min_bytes=MiB, cold_min_bytes=MiB)),
    ]


def _mixed(seed: int) -> list[Event]:
    rng = random.Random(seed)
    return (
        browsers(rng, count=20, seconds=900)
        + customers_readers(rng, count=10, seconds=900)
        + steady(300, 200, 15.0, rng, client_ip="203.0.113.66", response_bytes=50_000)
    )


@pytest.mark.parametrize("index", [0, 1])
def test_same_findings_on_replay(index: int) -> None:
    events = _mixed(9)
    first = run(_detectors()[index], events)
    second = run(_detectors()[index], events)
    assert first and first == second


@pytest.mark.parametrize("index", [0, 1])
def test_state_is_bounded(index: int) -> None:
    detector = _detectors()[index]
    detector.reconfigure(type(detector.params)(max_entities=500, max_routes=50))
    engine = DetectionEngine([detector], lambda f: None, allowed_lateness_s=0)
    for i in range(50_000):
        engine.process(
            ev(i * 0.01, client_ip=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
               route=f"/r{i % 997}", user=f"u{i}" if i % 2 else "")
        )  # fmt: skip
        if i % 5_000 == 0:
            assert detector.tracked() <= 500 + 50 + 100
    engine.finish()
    assert len(detector.clients) <= 500 and len(detector.routes) <= 50  # type: ignore[attr-defined]


@pytest.mark.parametrize("index", [0, 1])
def test_tolerates_empty_fields(index: int) -> None:
    events = [
        Event(request_id=f"e{i}", ts=T0 + i * 0.01, client_ip="", method="", path="", route="",
              status=0)
        for i in range(2_000)
    ] + [
        ev(30 + i * 0.01, route="", path="", user_agent="", response_bytes=0, status=0)
        for i in range(2_000)
    ]  # fmt: skip
    run(_detectors()[index], events)


def test_octave_histogram_quantile_and_decay() -> None:
    h = OctaveHistogram(cap=100)
    for _ in range(150):
        h.add(1_000)
    assert h.total < 100 and h.quantile(0.9) == 1_024.0
    assert OctaveHistogram().quantile(0.9) == 0.0
    h.add(-5)  # tolerated as 0
