import random
import re
from typing import Any

import pytest

from detectors.base import Detector
from detectors.engine import DetectionEngine
from detectors.enumeration import (
    EndpointScanning,
    EndpointScanningParams,
    UserEnumeration,
    UserEnumerationParams,
)
from gatewatch.event import Event
from gatewatch.finding import EntityType, Finding
from tests.detectors.events import BASE_TS, make_event

ATTACKER = "203.0.113.66"
LOGIN, RESET, SIGNUP = "/api/v1/auth/login", "/api/v1/auth/password/reset", "/api/v1/auth/register"


def _ts(event: Event) -> float:
    return event.ts


def run(detector: Detector[Any], events: list[Event]) -> list[Finding]:
    found: list[Finding] = []
    engine = DetectionEngine([detector], found.append, allowed_lateness_s=0, evidence_limit=None)
    for event in sorted(events, key=_ts):
        engine.process(event)
    engine.finish()
    return found


def latest(found: list[Finding]) -> list[Finding]:
    return list({f.id: f for f in found}.values())


def scanning(events: list[Event], **params: Any) -> list[Finding]:
    return latest(run(EndpointScanning(EndpointScanningParams(**params)), events))


def enumeration(events: list[Event], **params: Any) -> list[Finding]:
    return latest(run(UserEnumeration(UserEnumerationParams(**params)), events))


def number(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    assert match, text
    return int(match.group(1))


# -- endpoint scanning ---------------------------------------------------------------


def shop(rng: random.Random, start: float = BASE_TS, clients: int = 40) -> list[Event]:
    """Ordinary clients on routes that exist, a few missing objects among them."""
    events = []
    for c in range(clients):
        t = start + rng.random() * 60
        for _ in range(30):
            t += rng.random() * 20
            n = rng.randrange(1_000, 9_999)
            path, route = rng.choice(
                [
                    (f"/api/v1/products/{n}", "/api/v1/products/{productId}"),
                    (f"/api/v1/orders/{n}", "/api/v1/orders/{orderId}"),
                    ("/api/v1/cart", "/api/v1/cart"),
                    ("/api/v1/search", "/api/v1/search"),
                ]
            )
            status = 404 if rng.random() < 0.03 else 200
            ip = f"198.51.100.{c}"
            events.append(make_event(ts=t, path=path, route=route, status=status, client_ip=ip))
    return events


WORDS = [f"{w}{i}" for w in ("admin", "debug", "internal", "old", "test", "v0") for i in range(10)]


def probe(ts: float, path: str, status: int = 404, route: str = "", **fields: Any) -> Event:
    return make_event(
        ts=ts, path=path, route=route or path, status=status, client_ip=ATTACKER, **fields
    )


def wordlist() -> list[Event]:
    return [probe(BASE_TS + 100 + i, f"/api/{w}") for i, w in enumerate(WORDS[:40])]


def known_probes() -> list[Event]:
    paths = ["/.env", "/.git/config", "/wp-admin/setup-config.php", "/api/.aws/credentials"]
    # Slow (one a minute), and one of them answered: still a scan.
    return [
        probe(BASE_TS + 100 + 60 * i, path, 200 if i == 0 else 404) for i, path in enumerate(paths)
    ]


def burst() -> list[Event]:
    """A burst of misses hidden among plenty of ordinary requests (low ratio)."""
    ordinary = [
        probe(BASE_TS + i, f"/api/v1/products/{i}", 200, "/api/v1/products/{productId}")
        for i in range(200)
    ]
    misses = [probe(BASE_TS + 150 + i * 0.1, f"/api/{WORDS[i % 12]}") for i in range(40)]
    return ordinary + misses


def methods() -> list[Event]:
    """Every method on routes that exist: 405s, counted per method and path."""
    routes = ["/api/v1/cart", "/api/v1/search"]
    verbs = ["PUT", "DELETE", "PATCH", "TRACE", "CONNECT", "PROPFIND", "MKCOL", "LOCK"]
    return [
        probe(BASE_TS + 400 + i, route, 405, route, method=v)
        for i, (route, v) in enumerate((r, v) for r in routes for v in verbs)
        for _ in range(2)
    ] + [probe(BASE_TS + 500 + i, f"/api/{w}") for i, w in enumerate(WORDS[:10])]


def collapsed() -> list[Event]:
    """Wordlist paths the templater collapsed into a route that also works for others,
    and a probe hidden behind a learned placeholder."""
    route = "/api/v1/{param}"
    legit = [
        make_event(ts=BASE_TS + i, path=f"/api/v1/thing{i % 5}", route=route, client_ip="10.1.1.1")
        for i in range(20)
    ]
    misses = [probe(BASE_TS + 100 + i, f"/api/v1/{w}", route=route) for i, w in enumerate(WORDS)]
    hidden = [
        probe(BASE_TS + 200 + i, f"/files/{name}", 200, "/files/{param}")
        for i, name in enumerate((".env", ".git", "wp-config.php"))
    ]
    return [*legit, *misses, *hidden]


@pytest.mark.parametrize(
    ("scenario", "subkind", "paths", "probes"),
    [
        (wordlist, "wordlist", 40, 0),
        (known_probes, "known_probes", 4, 4),
        (burst, "burst", 12, 0),
        (methods, "wordlist", 26, 0),
        # The episode keeps the subkind it opened with; the probes show in the summary.
        (collapsed, "wordlist", 63, 3),
    ],
)
def test_scanners_are_flagged(scenario: Any, subkind: str, paths: int, probes: int) -> None:
    events = scenario()
    hostile = [e for e in events if e.client_ip == ATTACKER and "products" not in e.route]
    found = run(EndpointScanning(EndpointScanningParams()), shop(random.Random(1)) + events)
    (finding,) = latest(found)
    assert finding.kind == "endpoint_scanning" and finding.subkind == subkind
    assert (finding.entity_type, finding.entity) == (EntityType.IP, ATTACKER)
    ids = [e.request_id for e in hostile]
    assert set(finding.evidence) <= set(ids) and ids[-1] in finding.evidence
    assert len(finding.evidence) >= min(len(ids), 32)  # the ring, then everything after
    assert number(r"requested (\d+) distinct", finding.summary) == paths
    assert number(r"(\d+) known scanner probes", finding.summary) == probes


def test_stale_app_crawlers_health_checks_and_missing_objects_are_not_scans() -> None:
    events = shop(random.Random(2))
    # A stale app version behind one NAT address: removed routes, over and over.
    removed = ["/api/v0/feed", "/api/v0/promo", "/api/v1/legacy/cart", "/api/v1/banner"]
    events += [
        make_event(
            ts=BASE_TS + i * 0.5,
            path=removed[i % 4],
            route=removed[i % 4],
            status=404,
            client_ip="192.0.2.1",
        )
        for i in range(1_000)
    ]
    # A crawler: the files every crawler asks for (missing here), dead links now and then.
    crawler = "66.249.66.1"
    known = ["/robots.txt", "/sitemap.xml", "/favicon.ico", "/apple-touch-icon-57x57.png"]
    for i, path in enumerate([*known, "/.well-known/security.txt"]):
        ts = BASE_TS + i
        events.append(make_event(ts=ts, path=path, route=path, status=404, client_ip=crawler))
    for i in range(800):
        dead = i % 25 == 0
        path = f"/blog/post-{i}" if dead else f"/api/v1/products/{i}"
        route = path if dead else "/api/v1/products/{productId}"
        ts = BASE_TS + 10 + i * 0.3
        status = 404 if dead else 200
        events.append(make_event(ts=ts, path=path, route=route, status=status, client_ip=crawler))
    # Health checks, one of them on a Spring actuator path.
    for i in range(200):
        for path in ("/healthz", "/actuator/health"):
            ts = BASE_TS + 10 * i
            events.append(make_event(ts=ts, path=path, route=path, client_ip="10.0.0.7"))
    # A user opening 40 orders that do not exist: a known route, BOLA's business.
    events += [
        make_event(
            ts=BASE_TS + 300 + i,
            path=f"/api/v1/orders/{90_000 + i}",
            route="/api/v1/orders/{orderId}",
            status=404,
            client_ip="192.0.2.50",
        )
        for i in range(40)
    ]
    assert scanning(events) == []


def test_allowlisted_scanner_is_ignored() -> None:
    events = shop(random.Random(3)) + wordlist() + known_probes()
    assert scanning(events, allow={"ips": ["203.0.113.0/24"]}) == []


def test_scanning_same_findings_on_replay() -> None:
    events = shop(random.Random(4)) + wordlist() + known_probes()
    detector = EndpointScanning(EndpointScanningParams())
    first, second = run(detector, events), run(EndpointScanning(EndpointScanningParams()), events)
    assert first == second and first


def test_scanning_state_is_bounded() -> None:
    detector = EndpointScanning(EndpointScanningParams(max_entities=500, max_routes=100))
    events = [
        make_event(
            ts=BASE_TS + i * 0.01,
            client_ip=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
            path=f"/p{i}",
            route=f"/p{i}",
            status=404 if i % 2 else 200,
        )
        for i in range(50_000)
    ]
    run(detector, events)
    assert detector.tracked() <= 500 and len(detector._successes) <= 100


# -- user enumeration ----------------------------------------------------------------


def attempt(ts: float, route: str, user: str, status: int, size: int = 80, **kw: Any) -> Event:
    fields: dict[str, Any] = {"client_ip": ATTACKER, "method": "POST", "response_bytes": size}
    fields.update(kw)
    return make_event(ts=ts, path=route, route=route, user=user, status=status, **fields)


def oracle(route: str, hit: int, miss: int, count: int = 30, **kw: Any) -> list[Event]:
    """``count`` usernames, one in three exists: ``hit`` for those, ``miss`` for others."""
    return [
        attempt(BASE_TS + 100 + i * 2, route, f"name{i}@example.com", hit if i % 3 else miss, **kw)
        for i in range(count)
    ]


def by_size() -> list[Event]:
    """Every answer 401, but an existing account's body is twice the size."""
    return [
        attempt(BASE_TS + 100 + i, LOGIN, f"user{i}", 401, 160 + i % 7 if i % 4 == 0 else 62)
        for i in range(40)
    ]


def rotating() -> list[Event]:
    """A proxy pool in one /24, each address asking a few times."""
    return [
        attempt(
            BASE_TS + 100 + i, RESET, f"u{i}", 404 if i % 3 else 200, client_ip=f"203.0.113.{i}"
        )
        for i in range(30)
    ]


def uniform_reset() -> list[Event]:
    return [attempt(BASE_TS + 100 + i, RESET, f"u{i}", 202, 40) for i in range(120)]


@pytest.mark.parametrize(
    ("scenario", "subkind", "entity", "users"),
    [
        (lambda: oracle(LOGIN, 401, 404), "login_oracle", ATTACKER, 30),
        (lambda: oracle(RESET, 200, 404), "reset_oracle", ATTACKER, 30),
        (lambda: oracle(SIGNUP, 201, 409), "signup_oracle", ATTACKER, 30),
        (by_size, "login_oracle", ATTACKER, 40),
        (rotating, "reset_oracle", "203.0.113.0/24", 30),
        (uniform_reset, "reset_probing", ATTACKER, 120),
    ],
)
def test_enumeration_is_flagged(scenario: Any, subkind: str, entity: str, users: int) -> None:
    hostile = scenario()
    found = run(UserEnumeration(UserEnumerationParams()), nat_logins() + hostile)
    (finding,) = latest(found)
    assert finding.kind == "user_enumeration" and finding.subkind == subkind
    assert (finding.entity_type, finding.entity) == (EntityType.IP, entity)
    ids = {e.request_id for e in hostile}
    assert set(finding.evidence) <= ids and hostile[-1].request_id in finding.evidence
    assert len(finding.evidence) >= min(len(hostile), 50)
    assert number(r"probed (\d+) distinct usernames", finding.summary) == users
    assert set(found[0].evidence) <= ids and len(found[0].evidence) >= 20


def nat_logins(ip: str = "192.0.2.1") -> list[Event]:
    """Three hundred employees behind one address; some mistype their password (401)
    or their username (404 on this API), then succeed."""
    rng = random.Random(5)
    events = []
    for u in range(300):
        t = BASE_TS + rng.random() * 500
        if rng.random() < 0.2:
            miss = 404 if rng.random() < 0.3 else 401
            events.append(attempt(t, LOGIN, f"emp{u}", miss, client_ip=ip))
            t += 5
        events.append(attempt(t, LOGIN, f"emp{u}", 200, 900, client_ip=ip))
    return events


def test_stuffing_nat_and_mobile_signups_are_not_enumeration() -> None:
    # Credential stuffing: every failure alike (401), a couple of hits.
    stuffing = [
        attempt(BASE_TS + i * 0.5, LOGIN, f"victim{i}", 200 if i in (17, 90) else 401, 62)
        for i in range(200)
    ]
    # A mobile carrier's /24: a launch-day burst of real sign-ups, a few already taken.
    signups = [
        attempt(
            BASE_TS + i * 3,
            SIGNUP,
            f"new{i}",
            409 if i % 25 == 0 else 201,
            client_ip=f"100.64.7.{i % 200}",
        )
        for i in range(150)
    ]
    # The same NAT asking for a few password resets.
    resets = [
        attempt(BASE_TS + i * 20, RESET, f"emp{i}", 404 if i % 2 else 200, client_ip="192.0.2.1")
        for i in range(8)
    ]
    assert enumeration(nat_logins() + stuffing + signups + resets) == []


def test_enumeration_same_findings_on_replay_and_allowlist() -> None:
    events = nat_logins() + oracle(LOGIN, 401, 404) + rotating()
    first = run(UserEnumeration(UserEnumerationParams()), events)
    second = run(UserEnumeration(UserEnumerationParams()), events)
    assert first == second and first
    assert enumeration(events, allow={"ips": ["203.0.113.0/24"]}) == []


def test_group_by_ip_sees_a_rotating_pool_as_many_small_sources() -> None:
    assert enumeration(rotating(), group_by="ip") == []


def test_enumeration_state_is_bounded() -> None:
    detector = UserEnumeration(UserEnumerationParams(max_entities=300, group_by="ip"))
    events = [
        attempt(BASE_TS + i * 0.01, LOGIN, f"u{i}", 401, client_ip=f"10.{i >> 8 & 255}.0.{i & 255}")
        for i in range(50_000)
    ]
    run(detector, events)
    assert detector.tracked() <= 300


@pytest.mark.parametrize("detector", [EndpointScanning, UserEnumeration])
def test_tolerates_empty_and_odd_fields(detector: Any) -> None:
    events = [
        Event(
            request_id=f"e{i}", ts=BASE_TS + i, client_ip="", method="", path="", route="", status=0
        )
        for i in range(50)
    ]
    events += [
        make_event(ts=BASE_TS + 100 + i, route=LOGIN, path=LOGIN, user=f"u{i}", status=s, **kw)
        for i, (s, kw) in enumerate(
            [(404, {"client_ip": ""}), (401, {"client_ip": "not-an-ip"}), (0, {}), (599, {})] * 10
        )
    ]
    events += [
        make_event(ts=BASE_TS + 200 + i, route="", path=f"/x{i}", status=404, client_ip="")
        for i in range(40)
    ]
    assert run(detector(detector.Params()), events) == []


def test_reconfigure_keeps_what_was_learnt_and_applies_new_limits() -> None:
    detector = EndpointScanning(EndpointScanningParams())
    engine = DetectionEngine([detector], lambda f: None, allowed_lateness_s=0)
    for event in sorted(shop(random.Random(6)), key=_ts):
        engine.process(event)
    learnt = dict(detector._successes)
    engine.reconfigure({"endpoint_scanning": EndpointScanningParams(max_entities=7, ttl_s=400)})
    assert detector._successes == learnt and detector.clients.max_entities == 7
    assert detector.clients.ttl_s == 400
