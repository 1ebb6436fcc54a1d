import random
import re
from typing import Any

import pytest

from detectors.bola import LEVELS, Bola, BolaParams
from detectors.engine import DetectionEngine
from gatewatch.event import Event
from gatewatch.finding import EntityType, Finding
from tests.detectors.events import BASE_TS, make_event

ORDER = "/api/v1/orders/{orderId}"
PRODUCT = "/api/v1/products/{productId}"


def run(events: list[Event], detector: Bola | None = None, **params: Any) -> list[Finding]:
    """Every emission; the last version of each finding wins in ``latest``."""
    found: list[Finding] = []
    detector = detector or Bola(BolaParams(**params))
    engine = DetectionEngine([detector], found.append, allowed_lateness_s=0, evidence_limit=None)
    for event in sorted(events, key=_ts):
        engine.process(event)
    engine.finish()
    return found


def _ts(event: Event) -> float:
    return event.ts


def latest(found: list[Finding]) -> list[Finding]:
    return list({f.id: f for f in found}.values())


def order(ts: float, object_id: int | str, user: str = "", **fields: Any) -> Event:
    return make_event(ts=ts, path=f"/api/v1/orders/{object_id}", route=ORDER, user=user, **fields)


def customers(rng: random.Random, count: int = 80, start: float = BASE_TS) -> list[Event]:
    """Users opening 1-5 of their own orders (ids scattered, as in a shared table)."""
    events = []
    for u in range(count):
        owned = [rng.randrange(1_000_000, 10_000_000) for _ in range(rng.randint(1, 5))]
        t = start + rng.random() * 1_500
        for _ in range(rng.randint(1, 8)):
            t += rng.random() * 30
            events.append(order(t, rng.choice(owned), f"user{u}", client_ip=f"192.0.2.{u}"))
    return events


def attack(
    ids: list[int], user: str, status: int | list[int] = 200, every_s: float = 0.5
) -> list[Event]:
    statuses = status if isinstance(status, list) else [status] * len(ids)
    start = BASE_TS + 1_000
    return [
        order(start + i * every_s, object_id, user, client_ip="203.0.113.66", status=s)
        for i, (object_id, s) in enumerate(zip(ids, statuses, strict=True))
    ]


def distinct_in(summary: str) -> int:
    match = re.search(r"touched (\d+) distinct ids", summary)
    assert match, summary
    return int(match.group(1))


rng_attacks = random.Random(7)
SCATTERED = rng_attacks.sample(range(1_000_000, 10_000_000), 60)


@pytest.mark.parametrize(
    ("ids", "status", "subkind", "at_least"),
    [
        # A walk through consecutive order ids on an API that answers every one (200).
        (list(range(4_000_000, 4_000_040)), 200, "sequential", 21),
        # The API is vulnerable and the ids are not sequential: volume against the norm.
        (SCATTERED, 200, "volume", 30),
        # Probing ids it does not own: the API refuses most of them.
        (SCATTERED[:20], [403] * 16 + [200] * 4, "denied", 10),
        # Walking backwards and skipping is still a walk.
        (list(range(9_000_300, 9_000_000, -3))[:40], 200, "sequential", 21),
    ],
)
def test_principal_reaching_into_many_objects_is_flagged(
    ids: list[int], status: int | list[int], subkind: str, at_least: int
) -> None:
    hostile = attack(ids, "mallory", status)
    found = run(customers(random.Random(1)) + hostile)
    (finding,) = latest(found)
    assert finding.kind == "bola" and finding.subkind == subkind
    assert finding.entity_type == EntityType.USER and finding.entity == "mallory"
    assert set(finding.evidence) == {e.request_id for e in hostile}
    assert distinct_in(finding.summary) == len(ids) and ORDER in finding.summary
    first = found[0]  # the first emission lists the requests that built it
    assert len(first.evidence) >= at_least
    assert set(first.evidence) <= {e.request_id for e in hostile}
    assert first.evidence[-1] == hostile[distinct_in(first.summary) - 1].request_id


@pytest.mark.parametrize(
    ("ids", "status", "subkind"),
    [
        (list(range(4_000_000, 4_002_000)), 200, "sequential"),
        (random.Random(12).sample(range(1_000_000, 10_000_000), 400), [403] * 360 + [200] * 40,
         "denied"),
    ],
)  # fmt: skip
def test_large_attacks_are_counted_past_the_exact_limit(
    ids: list[int], status: int | list[int], subkind: str
) -> None:
    hostile = attack(ids, "mallory", status, every_s=0.2)  # all in one 10-minute window
    (finding,) = latest(run(customers(random.Random(13)) + hostile))
    assert finding.subkind == subkind and finding.entity == "mallory"
    assert set(finding.evidence) <= {e.request_id for e in hostile}
    assert len(finding.evidence) > 0.95 * len(ids)
    # Past 64 ids the count is a 256-register sketch (~6.5% error), refreshed every 1/16.
    assert 0.8 * len(ids) <= distinct_in(finding.summary) <= 1.2 * len(ids)


def test_principal_falls_back_to_api_key_then_ip() -> None:
    walk = range(5_000_000, 5_000_030)
    keyed = [
        order(BASE_TS + 900 + i, n, api_key="fp:k1", client_ip="203.0.113.5")
        for i, n in enumerate(walk)
    ]
    found = latest(run(customers(random.Random(2)) + keyed))
    assert [(f.entity_type, f.entity) for f in found] == [(EntityType.API_KEY, "fp:k1")]


def test_a_route_serving_anonymous_clients_beside_users_is_public() -> None:
    """A catalogue that signed-in users and anonymous visitors both read: a price bot
    walking product ids in order is not reaching into anyone's objects."""
    rng = random.Random(4)
    events = []
    for v in range(120):
        t = BASE_TS + rng.random() * 1_500
        user = f"user{v}" if v % 3 else ""  # a third browse without signing in
        for _ in range(rng.randint(1, 6)):
            t += rng.random() * 20
            pid = rng.randrange(10_000, 90_000)
            events.append(
                make_event(
                    ts=t,
                    path=f"/api/v1/products/{pid}",
                    route=PRODUCT,
                    user=user,
                    client_ip=f"192.0.2.{v}",
                )
            )
    bot = [
        make_event(
            ts=BASE_TS + 1_600 + i,
            path=f"/api/v1/products/{50_000 + i}",
            route=PRODUCT,
            client_ip="35.190.147.176",
        )
        for i in range(60)
    ]
    assert latest(run(events + bot)) == []
    # Refusals still count there: a user probing ids answered 403.
    probe = [
        make_event(
            ts=BASE_TS + 1_700 + i,
            path=f"/api/v1/products/{60_000 + i}",
            route=PRODUCT,
            user="mallory",
            status=403,
        )
        for i in range(30)
    ]
    (finding,) = latest(run(events + bot + probe))
    assert (finding.entity, finding.subkind) == ("mallory", "denied")


def test_anonymous_walker_is_judged_once_the_route_is_known_private() -> None:
    # Logs without a principal: everyone is an address, including the customers.
    quiet = [e._replace(user="") for e in customers(random.Random(3), count=150)]
    walk = [order(BASE_TS + 1_600 + i, 7_000_000 + i, client_ip="203.0.113.9") for i in range(40)]
    (finding,) = latest(run(quiet + walk))
    assert (finding.entity_type, finding.entity) == (EntityType.IP, "203.0.113.9")
    # The same walk on a route nobody else has used yet is not judged by address,
    # nor on a busy route watched for less than a window (at start-up: is it public?).
    assert run(walk) == []
    early = [order(BASE_TS + 60 + i, 7_000_000 + i, client_ip="203.0.113.9") for i in range(40)]
    rng = random.Random(5)
    busy = [  # 300 customers, each opening an order of theirs in the first minute
        order(
            BASE_TS + rng.random() * 60,
            rng.randrange(1_000_000, 9_000_000),
            client_ip=f"192.0.{c // 250}.{c % 250}",
        )
        for c in range(300)
    ]
    assert [f for f in latest(run(busy + early)) if f.entity == "203.0.113.9"] == []


def catalogue(rng: random.Random, shoppers: int = 120, views: int = 40) -> list[Event]:
    """Shoppers (signed in or anonymous) browsing popular products, and a crawler
    walking the catalogue in order with small skips, meeting delisted (404) ones."""
    events = []
    for u in range(shoppers):
        user = f"shopper{u}" if u % 2 else ""
        t = BASE_TS + rng.random() * 1_200
        for _ in range(rng.randint(1, views)):
            t += rng.random() * 10
            product = 100_000 + int(20_000 * rng.random() ** 3)
            path = f"/api/v1/products/{product}"
            ip = f"198.51.100.{u}"
            events.append(make_event(ts=t, path=path, route=PRODUCT, user=user, client_ip=ip))
    cursor = 100_000
    for i in range(3_000):
        cursor += 1 + rng.randrange(3)
        status = 404 if rng.random() < 0.04 else 200
        events.append(
            make_event(
                ts=BASE_TS + 1_300 + i * 0.3,
                path=f"/api/v1/products/{cursor}",
                route=PRODUCT,
                client_ip="66.249.66.1",
                status=status,
            )
        )
    return events


@pytest.mark.parametrize(
    ("shoppers", "views"),
    [
        (120, 40),  # the median shopper opens many products: a catalogue
        (400, 8),  # few each, but the same popular ones: shared ids make it public
    ],
)
def test_public_catalogue_browsing_crawling_and_scraping_are_not_bola(
    shoppers: int, views: int
) -> None:
    events = catalogue(random.Random(5), shoppers, views)
    events += [
        make_event(
            ts=BASE_TS + 1_400 + i,
            path=f"/api/v1/products/{100_000 + i}",
            route=PRODUCT,
            user="collector",
        )
        for i in range(300)
    ]
    assert run(events) == []


def test_refusals_on_a_public_route_are_still_probing() -> None:
    # Unreleased products answer 403: someone walks them among public ones.
    hostile = [
        make_event(
            ts=BASE_TS + 1_500 + i,
            path=f"/api/v1/products/{130_000 + i}",
            route=PRODUCT,
            user="prober",
            status=403 if i % 4 else 200,
        )
        for i in range(60)
    ]
    (finding,) = latest(run(catalogue(random.Random(14)) + hostile))
    assert (finding.entity, finding.subkind) == ("prober", "denied")
    assert "answered 403" in finding.summary
    assert set(finding.evidence) <= {e.request_id for e in hostile if e.status == 403}


@pytest.mark.parametrize(
    "own",
    [
        # Their own 20 orders, scattered ids, opened in ascending order.
        sorted(random.Random(6).sample(range(1_000_000, 10_000_000), 20)),
        # Twenty orders placed in one batch: consecutive ids, opened one after another.
        list(range(3_000_000, 3_000_020)),
    ],
)
def test_user_paging_through_own_orders_is_not_flagged(own: list[int]) -> None:
    mine = [order(BASE_TS + 1_000 + 5 * i, n, "alice") for i, n in enumerate(own)]
    assert run(customers(random.Random(8)) + mine) == []


def test_allowlisted_admin_export_and_steady_partners_are_not_flagged() -> None:
    export = [order(BASE_TS + 1_000 + i * 0.1, 2_000_000 + i, "admin") for i in range(500)]
    partners = [
        make_event(
            ts=BASE_TS + i * 0.2,
            path=f"/api/v1/partners/{p}/inventory/{random.Random(i).randrange(8_000)}",
            route="/api/v1/partners/{partnerId}/inventory/{sku}",
            user=f"partner{p}",
            api_key=f"fp:p{p}",
        )
        for i in range(6_000)
        for p in (1, 2, 3)
        if i % 3 == p - 1
    ]
    events = customers(random.Random(9)) + export + partners
    assert run(events, allow={"users": ["admin"]}) == []


def test_flagged_principal_is_not_learnt_into_the_baseline() -> None:
    detector = Bola(BolaParams())
    engine = DetectionEngine([detector], lambda f: None, allowed_lateness_s=0)
    for event in sorted(customers(random.Random(10)) + attack(SCATTERED, "mallory"), key=_ts):
        engine.process(event)
    assert "mallory" in detector.episodes["user"]
    route = detector.routes.peek(ORDER)
    assert route is not None
    # Peers reached a handful of ids at most; the attacker's 60 were withdrawn.
    assert route.quantile(1.0, 0) <= 8
    assert route.reached[LEVELS.index(32)] == 0


def test_same_findings_on_replay() -> None:
    events = customers(random.Random(11)) + attack(list(range(6_000_000, 6_000_050)), "eve")
    first, second = run(events), run(events)
    assert first == second and first


def test_state_is_bounded() -> None:
    detector = Bola(BolaParams(max_entities=500, max_routes=4))
    events = [
        order(BASE_TS + i * 0.01, i, f"u{i}", client_ip=f"10.0.{i >> 8 & 255}.{i & 255}")
        for i in range(50_000)
    ]
    events += [
        make_event(ts=BASE_TS + 600, path=f"/r{i}/{i}", route=f"/r{i}/{{id}}", user="x")
        for i in range(50)
    ]
    run(events, detector)
    assert detector.tracked() <= 500 and len(detector.routes) <= 4


def test_tolerates_empty_and_odd_fields() -> None:
    events = [
        Event(
            request_id=f"e{i}", ts=BASE_TS + i, client_ip="", method="", path="", route="", status=0
        )
        for i in range(50)
    ]
    events += [
        order(BASE_TS + 100, "", ""),  # no id, no principal but an address
        make_event(ts=BASE_TS + 200, route=ORDER, path="/api/v1/orders", client_ip=""),
        make_event(ts=BASE_TS + 201, route=ORDER, path="", user="x"),
        make_event(ts=BASE_TS + 202, route="/{id}", path="/5", client_ip="", user=""),
    ]
    for i in range(50):
        events.append(order(BASE_TS + 300 + i, f"x{i}", "", client_ip="", status=0))
    assert run(events) == []
