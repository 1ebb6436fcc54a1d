import math
import pickle
import random
from pathlib import Path

import pytest

from detectors.anomaly.detector import AnomalyModel, AnomalyModelParams
from detectors.anomaly.features import FEATURES, Columns, busy_windows
from detectors.anomaly.keyspace import NOBODY, KeySpace
from detectors.engine import DetectionEngine
from gatewatch.errors import ConfigError
from gatewatch.event import Event
from gatewatch.finding import EntityType, Finding
from gatewatch.settings import load_settings
from tests.detectors.events import BASE_TS, make_event

PRODUCT = "/api/v1/products/{productId}"
CART = "/api/v1/cart"
ATTACKER = "203.0.113.66"
SOURCE = "kafka:access/0"


def crowd(rng: random.Random, seconds: float, *, ips: int = 16, start: float = 0.0) -> list[Event]:
    """Shoppers browsing products and updating carts, about one request a second each."""
    events = []
    for n in range(ips):
        ip = f"198.51.100.{n + 1}"
        agent = f"Mozilla/5.0 shopper-{n}"
        t = start + rng.random()
        while t < start + seconds:
            if rng.random() < 0.8:
                item = rng.randrange(1000, 1400)
                events.append(
                    make_event(
                        ts=BASE_TS + t, client_ip=ip, user_agent=agent,
                        path=f"/api/v1/products/{item}", route=PRODUCT,
                        status=404 if rng.random() < 0.02 else 200,
                        response_bytes=rng.randrange(1500, 4000), latency_ms=rng.uniform(5, 40),
                    )
                )  # fmt: skip
            else:
                events.append(
                    make_event(
                        ts=BASE_TS + t, client_ip=ip, user_agent=agent, method="POST", path=CART,
                        route=CART, status=200, request_bytes=rng.randrange(200, 600),
                        response_bytes=300, latency_ms=rng.uniform(10, 60),
                    )
                )  # fmt: skip
            t += rng.uniform(0.4, 1.6)
    return events


def scraper(rng: random.Random, start: float, seconds: float, rate: float = 25.0) -> list[Event]:
    events = []
    t = start
    while t < start + seconds:
        item = rng.randrange(1000, 90_000)
        events.append(
            make_event(
                ts=BASE_TS + t, client_ip=ATTACKER, user_agent="python-requests/2.31",
                path=f"/api/v1/products/{item}", route=PRODUCT,
                status=404 if rng.random() < 0.3 else 200, response_bytes=2500, latency_ms=12.0,
            )
        )  # fmt: skip
        t += 1.0 / rate
    return events


def in_order(events: list[Event]) -> list[Event]:
    ordered = sorted(events, key=lambda e: e.ts)
    return [e._replace(source=SOURCE, position=i) for i, e in enumerate(ordered)]


def run(detector: AnomalyModel, events: list[Event], *, finish: bool = True) -> list[Finding]:
    found: dict[str, Finding] = {}
    engine = DetectionEngine(
        [detector], lambda f: found.__setitem__(f.id, f), allowed_lateness_s=0, evidence_limit=None
    )
    for event in events:
        engine.process(event)
    if finish:
        engine.finish()
    return list(found.values())


@pytest.fixture(scope="module")
def traffic() -> list[Event]:
    rng = random.Random(8)
    return in_order(crowd(rng, 1500) + scraper(rng, 1200, 120))


def test_a_scraper_is_flagged_with_the_features_that_drove_it(traffic: list[Event]) -> None:
    found = run(AnomalyModel(AnomalyModelParams()), traffic)
    mine = [f for f in found if f.entity == ATTACKER]
    assert mine, "the scraper's windows were not flagged"
    finding = mine[0]
    assert finding.kind == "anomaly" and finding.entity_type is EntityType.IP
    assert finding.subkind == "ip_baseline"
    drivers = {d["feature"]: d for d in finding.extra["drivers"]}
    assert "requests" in drivers
    assert drivers["requests"]["observed"] > 5 * max(drivers["requests"]["baseline"], 1)
    assert "requests" in finding.summary and "usual" in finding.summary
    scraper_ids = {e.request_id for e in traffic if e.client_ip == ATTACKER}
    assert set(finding.evidence) <= scraper_ids
    # On the route, the evidence is the busiest client's requests: the scraper's.
    for route_finding in (f for f in found if f.entity_type is EntityType.ROUTE):
        assert set(route_finding.evidence) <= scraper_ids
    # The crowd, learnt as the baseline, is never an anomaly.
    assert not [f for f in found if f.entity_type is EntityType.IP and f.entity != ATTACKER]


def test_flagged_windows_are_not_learnt(traffic: list[Event]) -> None:
    """Twelve 10 s windows of scraping: each stays anomalous (not absorbed into the
    baseline after the first)."""
    detector = AnomalyModel(AnomalyModelParams())
    run(detector, traffic)
    assert detector.windows_flagged >= 10


def test_nothing_is_emitted_during_the_warm_up() -> None:
    rng = random.Random(3)
    events = in_order(crowd(rng, 200, ips=4) + scraper(rng, 60, 60))
    assert run(AnomalyModel(AnomalyModelParams()), events) == []


def test_a_route_receiving_huge_bodies_is_flagged_on_bytes_in() -> None:
    rng = random.Random(5)
    attack = [
        make_event(
            ts=BASE_TS + 1300 + 4 * i, client_ip=ATTACKER, method="POST", path=CART, route=CART,
            status=400, request_bytes=5_000_000 + i, response_bytes=120, latency_ms=2000.0,
        )
        for i in range(15)
    ]  # fmt: skip
    found = run(AnomalyModel(AnomalyModelParams()), in_order(crowd(rng, 1500) + attack))
    on_bytes = [f for f in found if any(d["feature"] == "bytes_in" for d in f.extra["drivers"])]
    assert on_bytes
    assert {f.entity for f in on_bytes} <= {CART, ATTACKER}
    # A route's window holds everyone's requests: its evidence is the huge bodies.
    attack_ids = {e.request_id for e in attack}
    assert all(set(f.evidence) <= attack_ids for f in on_bytes)


def test_a_burst_its_peers_find_ordinary_is_held_back_then_flagged_if_it_goes_on() -> None:
    """A quiet client suddenly as busy as the busiest of its peers: far above its own
    usual, ordinary among peers. Its first windows are held back (not learnt), and a
    third in a row flags it; a burst of two windows is neither flagged nor learnt."""
    rng = random.Random(12)
    busy_peers = [
        e._replace(client_ip=f"192.0.2.{n}")
        for n in range(1, 7)
        for e in scraper(rng, 0, 1800, rate=6.0)
    ]
    quiet = "198.51.100.99"

    def client(start: float, seconds: float, rate: float) -> list[Event]:
        return [e._replace(client_ip=quiet) for e in scraper(rng, start, seconds, rate=rate)]

    history = client(0, 1200, rate=0.5)
    short = AnomalyModel(AnomalyModelParams())
    found = run(short, in_order(busy_peers + history + client(1210, 20, rate=6.0)))
    assert not [f for f in found if f.entity == quiet]
    level = short.activity[("ip", 10.0)]
    _, usual, _ = level.deviations(short.clients["ip"].id(quiet), [0.0, 0.0, 0.0])
    assert math.expm1(usual[0]) < 10  # the two busy windows were not learnt

    long = AnomalyModel(AnomalyModelParams())
    found = run(long, in_order(busy_peers + history + client(1210, 60, rate=6.0)))
    mine = [f for f in found if f.entity == quiet]
    assert mine and "own baseline" in mine[0].summary


def test_one_big_upload_is_not_a_volume_anomaly() -> None:
    """A shopper posting one 5 MB review photo: busy by bytes, but a single request."""
    rng = random.Random(9)
    shopper = "198.51.100.3"  # one of the crowd
    photos = [
        make_event(
            ts=BASE_TS + 1300 + 200 * i, client_ip=shopper, user="u-3", method="POST",
            path="/api/v1/products/1200/reviews/photos",
            route="/api/v1/products/{id}/reviews/photos", request_bytes=5_000_000,
        )
        for i in range(2)
    ]  # fmt: skip
    found = run(AnomalyModel(AnomalyModelParams()), in_order(crowd(rng, 1800) + photos))
    assert not [f for f in found if f.entity in {shopper, "u-3"}]


def test_a_partner_key_pulling_far_more_from_a_new_address_is_flagged() -> None:
    """Exfiltration with a stolen key: the key's own history (a steady sync from one
    address) says 20 MB in 10 s from somewhere else is not it."""
    rng = random.Random(6)
    key = "fp:partnerkey0001"

    def partner(t: float, ip: str, size: int) -> Event:
        return make_event(
            ts=BASE_TS + t, client_ip=ip, api_key=key, user_agent="sync/1.0",
            path="/api/v1/partners/7/orders", route="/api/v1/partners/{id}/orders",
            response_bytes=size, latency_ms=30.0,
        )  # fmt: skip

    steady = [partner(i * 0.2, "192.0.2.50", rng.randrange(15_000, 25_000)) for i in range(6000)]
    pull = [partner(1300 + i * 0.25, "203.0.113.77", 2_000_000) for i in range(400)]
    found = run(AnomalyModel(AnomalyModelParams()), in_order(crowd(rng, 1450) + steady + pull))
    mine = [f for f in found if f.entity_type is EntityType.API_KEY]
    assert mine and all(f.entity == key for f in mine)
    drivers = {d["feature"] for f in mine for d in f.extra["drivers"]}
    assert "bytes_out" in drivers
    assert "own baseline" in mine[0].summary
    pull_ids = {e.request_id for e in pull}
    assert all(set(f.evidence) <= pull_ids for f in mine)


def test_a_restored_snapshot_carries_on_as_if_never_stopped(traffic: list[Event]) -> None:
    """Half the stream, a checkpoint (pickled, as stored), a new detector restoring it:
    the same findings as one detector over everything, and replayed records (at or
    before the checkpoint's position) are skipped, not learnt twice."""
    whole = run(AnomalyModel(AnomalyModelParams()), traffic)
    half = len(traffic) // 2
    first = AnomalyModel(AnomalyModelParams())
    run(first, traffic[:half], finish=False)
    state = pickle.loads(pickle.dumps(first.snapshot()))
    assert state["positions"] == {SOURCE: half - 1}

    second = AnomalyModel(AnomalyModelParams())
    assert second.restore(state)
    replayed = traffic[half - 200 : half]  # the consumer re-reads uncommitted records
    resumed = run(second, replayed + traffic[half:])
    assert second.skipped == 200
    assert [(f.entity, f.first_ts, f.summary) for f in resumed] == [
        (f.entity, f.first_ts, f.summary) for f in whole
    ]


def test_a_snapshot_of_other_windows_is_refused(traffic: list[Event]) -> None:
    first = AnomalyModel(AnomalyModelParams())
    run(first, traffic[:5000], finish=False)
    other = AnomalyModelParams(windows=({"size_s": 30, "min_requests": 8},))  # type: ignore[arg-type]
    assert not AnomalyModel(other).restore(first.snapshot() or {})
    # ... and so is one an earlier version of the detector wrote (another layout).
    older = {**first.snapshot(), "version": 6}
    fresh = AnomalyModel(AnomalyModelParams())
    assert not fresh.restore(older) and fresh.tracked() == 0
    assert fresh.restore(first.snapshot()) and fresh.tracked() == first.tracked()


def test_taking_over_a_partition_keeps_known_entities_and_adds_the_rest(
    traffic: list[Event],
) -> None:
    donor = AnomalyModel(AnomalyModelParams())
    run(donor, traffic[:8000], finish=False)
    state = pickle.loads(pickle.dumps(donor.snapshot()))  # as a checkpoint brings it
    taker = AnomalyModel(AnomalyModelParams())
    own = [e._replace(source="kafka:access/1") for e in traffic[8000:9000] if e.route != CART]
    run(taker, own, finish=False)
    known = taker.entities["route"].peek(PRODUCT)
    assert known is not None and donor.entities["ip"]
    assert taker.entities["route"].peek(CART) is None
    assert taker.restore(state, sources={SOURCE})
    assert taker.entities["route"].peek(PRODUCT) is known  # its own kept
    # A route only the donor knew comes with what its model learnt, into the taker's
    # shared forecasts (judged with its own routes from now on).
    theirs, adopted = donor.entities["route"].peek(CART), taker.entities["route"].peek(CART)
    assert theirs is not None and theirs.models and adopted is not None and adopted.models
    assert taker.route_forecasts is not None
    for model, forecasts, before in zip(
        adopted.models, taker.route_forecasts, theirs.models, strict=True
    ):
        assert model.series is not None and model.series.forecast is forecasts
        assert before.series is not None and model.series.seen == before.series.seen > 0
        assert model.windows == before.windows
    assert set(taker.entities["ip"].keys()) >= set(donor.entities["ip"].keys())
    assert taker.positions[SOURCE] == 7999
    # The partition's records up to the donor's position are not learnt twice.
    run(taker, traffic[7990:8010], finish=False)
    assert taker.skipped == 10


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            "windows = [{size_s = 10, min_requests = 5}, {size_s = 25, min_requests = 5}]",
            "anomaly_model.*not a multiple",
        ),
        (
            "windows = [{size_s = 60, min_requests = 5}, {size_s = 10, min_requests = 5}]",
            "shortest first",
        ),
        ('scopes = ["ip", "session"]', r"anomaly_model\.scopes"),
        ("model = {threshold_quantile = 1.5}", r"anomaly_model\.model\.threshold_quantile"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, table: str, message: str) -> None:
    config = tmp_path / "gatewatch.toml"
    config.write_text(f"[detection.detectors.anomaly_model]\n{table}\n")
    with pytest.raises(ConfigError, match=message):
        load_settings(config)


def test_window_features_in_model_space() -> None:
    events = [
        make_event(
            path=f"/api/v1/products/{i}", route=PRODUCT, status=404 if i < 3 else 200,
            request_bytes=10, response_bytes=1000, latency_ms=float(10 + i), user_agent="a",
        )
        for i in range(10)
    ]  # fmt: skip
    columns = Columns.of(events, lambda route: False)
    (window,), volumes = busy_windows(columns, "ip", min_requests=10, min_bytes=math.inf)
    assert busy_windows(columns, "ip", min_requests=11, min_bytes=math.inf)[0] == []
    assert volumes.keys.tolist() == [events[0].client_ip]
    assert volumes.values.tolist() == [[math.log1p(10), math.log1p(100), math.log1p(10_000)]]
    x = dict(zip(FEATURES, window.vector(set(window.agents), None), strict=True))
    assert x["status_404"] == pytest.approx(0.3) and x["error_4xx"] == pytest.approx(0.3)
    assert x["objects"] == pytest.approx(math.log1p(10))
    assert x["bytes_out"] == pytest.approx(math.log1p(10_000))
    assert x["latency_p50_ms"] == pytest.approx(math.log1p(14))
    assert x["new_agents"] == 0.0
    assert window.evidence == [e.request_id for e in events]


def test_distinct_counts_hold_for_many_clients_and_objects() -> None:
    """Distinct objects, routes and agents per client, whether there are few possible
    (client, value) pairs (marked in a matrix) or many (hashed): 120 clients, each
    reading 40 products of its own and 3 times the product list, with 2 agents."""
    events = [
        make_event(
            client_ip=f"203.0.113.{c}", route=PRODUCT, path=f"/api/v1/products/{c}-{i}",
            user_agent=f"agent {c % 7}" if i % 2 else "shared agent",
        )
        for c in range(120)
        for i in range(40)
    ] + [
        make_event(client_ip=f"203.0.113.{c}", user_agent="shared agent")
        for c in range(120)
        for _ in range(3)
    ]  # fmt: skip
    random.Random(5).shuffle(events)
    columns = Columns.of(events, lambda route: False)
    windows, _ = busy_windows(columns, "ip", min_requests=40, min_bytes=math.inf)
    assert len(windows) == 120
    for window in windows:
        assert (window.requests, window.objects, window.routes) == (43, 40, 2)
        c = int(window.key.rsplit(".", 1)[1])
        assert sorted(window.agents) == [f"agent {c % 7}", "shared agent"]
    # A route's window: its own route, every client's objects.
    (route,) = busy_windows(columns, "route", min_requests=4000, min_bytes=math.inf)[0]
    assert (route.key, route.routes, route.objects) == (PRODUCT, 1, 4800)
    # The same counts in a longer window joined from two halves.
    halves = (events[:2500], events[2500:])
    joined = Columns.concat([Columns.of(half, lambda route: False) for half in halves])
    again, _ = busy_windows(joined, "ip", min_requests=40, min_bytes=math.inf)
    assert [(w.key, w.objects, w.routes) for w in again] == [
        (w.key, w.objects, w.routes) for w in windows
    ]


def test_clients_named_once_are_joined_by_id_in_the_longer_windows() -> None:
    """The shortest windows' principals and addresses get ids (``KeySpace``); a longer
    window joins their ids, not their strings, and finds the same clients, with the
    same counts, as joining by name (nobody, "" or id 0, is never a client)."""
    events = [
        make_event(
            client_ip=f"203.0.113.{i % 30}", user=f"u{i % 7}" if i % 3 else "",
            path=f"/api/v1/products/{i % 11}", route=PRODUCT,
        )
        for i in range(900)
    ]  # fmt: skip
    thirds = (events[:300], events[300:600], events[600:])
    by_name = Columns.concat([Columns.of(part, lambda route: False) for part in thirds])
    space = KeySpace()
    parts = [Columns.of(part, lambda route: False) for part in thirds]
    for part in parts:
        for scope in ("ip", "principal"):
            part.ids[scope] = space.ids(part.codes(scope)[1])
    by_id = Columns.concat(parts)
    for scope in ("ip", "principal"):
        codes, uniques = by_id.codes(scope)
        assert space.names(by_id.ids[scope]).tolist() == uniques.tolist()
        name_codes, name_uniques = by_name.codes(scope)
        assert uniques[codes].tolist() == name_uniques[name_codes].tolist()
        windows, volumes = busy_windows(by_id, scope, min_requests=20, min_bytes=math.inf)
        expected, expected_volumes = busy_windows(
            by_name, scope, min_requests=20, min_bytes=math.inf
        )
        assert len(windows) == (30 if scope == "ip" else 7)
        assert sorted((w.key, w.requests, w.objects) for w in windows) == sorted(
            (w.key, w.requests, w.objects) for w in expected
        )
        assert all(space.id(w.key) == w.client for w in windows)
        assert volumes.ids is not None and NOBODY not in volumes.ids.tolist()
        assert space.names(volumes.ids).tolist() == volumes.keys.tolist()
        assert sorted(volumes.keys.tolist()) == sorted(expected_volumes.keys.tolist())


def test_equal_strings_held_as_separate_objects_are_one_entity() -> None:
    """Key columns are coded by object identity first (the normaliser shares most
    strings); a string parsed afresh on each line must still be one client, key and
    agent, in the order first seen."""
    ip, key, agent = "198.51.100.7", "k-42", "curl/8.5"
    fresh = [
        make_event(
            client_ip="".join(ip), api_key="".join(key), user_agent="".join(agent),
            path=f"/api/v1/products/{i % 3}", route=PRODUCT,
        )
        for i in range(12)
    ] + [make_event(client_ip="192.0.2.1", api_key="", user="ana")]  # fmt: skip
    assert len({id(e.client_ip) for e in fresh}) == 13  # each line its own objects
    columns = Columns.of(fresh, lambda route: False)
    assert columns.codes("ip")[0].tolist() == [0] * 12 + [1]
    assert columns.codes("ip")[1].tolist() == [ip, "192.0.2.1"]
    assert columns.codes("principal")[1].tolist() == [f"k:{key}", "u:ana"]
    (window,), _ = busy_windows(columns, "principal", min_requests=12, min_bytes=math.inf)
    assert (window.key, window.requests, window.objects) == (f"k:{key}", 12, 3)
    assert window.agents == [agent] and window.addresses == []
    (client,), _ = busy_windows(columns, "ip", min_requests=12, min_bytes=math.inf, addresses=True)
    assert client.key == ip and client.addresses == [ip]


def test_clients_are_forgotten_when_idle_or_too_many_but_not_while_a_window_holds_them() -> None:
    """Past ``max_entities`` the least recently seen principals and addresses go (at
    most the limit, plus those the open minute holds); idle for ``ttl_s`` they go
    too; a forgotten client's id is reused with a history of its own."""
    detector = AnomalyModel(AnomalyModelParams(max_entities=50, ttl_s=600))
    space, level = detector.clients["ip"], detector.activity[("ip", 10.0)]
    # 25 new addresses every 10 s for 5 minutes, one request each.
    crowd = [
        make_event(ts=BASE_TS + i * 0.4, client_ip=f"10.0.{i // 250}.{i % 250}", user="")
        for i in range(750)
    ]
    run(detector, crowd, finish=False)
    assert len(space) <= 50 + 6 * 25  # the limit, and what the open minute holds
    assert space.id("10.0.0.0") == -1 and space.id("10.0.2.200") >= 0  # 280 s: recent
    assert len(level) == len(space)  # a history for each client known, no more
    assert space.capacity <= 1 + 50 + 7 * 25  # 750 clients seen: the ids were reused
    # Idle for ttl_s: forgotten at the next pass (every 360 shortest windows).
    late = [
        make_event(ts=BASE_TS + 300 + 10 * i, client_ip="198.51.100.1", user="") for i in range(400)
    ]
    run(detector, late, finish=False)
    assert space.id("10.0.2.200") == -1 and len(space) == 1
    assert level.history(space.id("198.51.100.1")) == 399  # the last window is open
