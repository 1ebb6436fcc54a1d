from __future__ import annotations

import base64
import ipaddress
import itertools
import random
import uuid
from collections import defaultdict
from urllib.parse import parse_qs

import orjson
import pytest

from gatewatch.errors import ConfigError
from ingest.normalise.principal import principal_from_authorization
from ingest.simulator import endpoints
from ingest.simulator.actor import Actor, Client, Emitter, SimulationError, World
from ingest.simulator.render import render_canonical
from ingest.simulator.request import SimRequest
from ingest.simulator.traffic import SimulationConfig, build_actors, generate, run

from .conftest import RUN

ACTORS = {"web-user", "corporate-user", "mobile-user", "partner", "health-probe", "crawler"}
CGNAT = ipaddress.ip_network("100.64.0.0/10")
OURS = ipaddress.ip_network("10.0.0.0/8")


def canonical_bytes(config: SimulationConfig) -> bytes:
    return b"\n".join(render_canonical(r) for r in generate(config))


# --- determinism and time ------------------------------------------------------------


def test_same_seed_gives_byte_identical_traffic() -> None:
    config = SimulationConfig(seed=5, count=3000)
    assert canonical_bytes(config) == canonical_bytes(config)


def test_different_seed_gives_different_traffic() -> None:
    assert canonical_bytes(SimulationConfig(seed=5, count=500)) != canonical_bytes(
        SimulationConfig(seed=6, count=500)
    )


def test_global_rng_is_neither_used_nor_disturbed() -> None:
    random.seed(1234)
    expected = random.random()
    random.seed(1234)
    first = canonical_bytes(SimulationConfig(seed=5, count=300))
    assert random.random() == expected
    random.seed(99)
    assert canonical_bytes(SimulationConfig(seed=5, count=300)) == first


def test_timestamps_are_non_decreasing_and_inside_the_run(traffic: list[SimRequest]) -> None:
    stamps = [r.ts for r in traffic]
    assert stamps == sorted(stamps)
    assert RUN.start_ts <= stamps[0]
    assert stamps[-1] <= RUN.start_ts + 120.0


def test_count_stops_after_exactly_that_many() -> None:
    assert sum(1 for _ in generate(SimulationConfig(count=1234, duration_s=None))) == 1234


def test_default_rate_is_between_50_and_200_per_second(traffic: list[SimRequest]) -> None:
    assert 50 <= len(traffic) / 120.0 <= 200


def test_a_crowd_is_more_clients_at_their_usual_pace() -> None:
    """``crowded(5)``: about five times the requests, from about five times the
    addresses, each address about as busy as before (a busier API, not faster clients)."""
    base = SimulationConfig(seed=5, duration_s=60.0)
    one = list(generate(base))
    five = list(generate(base.crowded(5)))
    assert 4.0 <= len(five) / len(one) <= 6.0
    per_client = [len(t) / len({r.client_ip for r in t}) for t in (one, five)]
    assert 0.6 <= per_client[1] / per_client[0] <= 1.4
    with pytest.raises(ConfigError, match="crowd"):
        base.crowded(0)


def test_request_ids_are_unique_uuid4(traffic: list[SimRequest]) -> None:
    assert len({r.request_id for r in traffic}) == len(traffic)
    assert all(uuid.UUID(r.request_id).version == 4 for r in traffic[:500])


@pytest.mark.parametrize(
    ("field", "value"),
    [("lb_share", 1.5), ("web_session_rate", -1.0), ("health_interval_s", 0.0), ("host", "")],
)
def test_bad_config_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        SimulationConfig(**{field: value})  # type: ignore[arg-type]


# --- the actor model -----------------------------------------------------------------


class Beacon(Actor):
    """A labelled test actor with its own RNG: what an attack episode will look like."""

    def __init__(self, start_ts: float) -> None:
        super().__init__(start_ts)
        rng = random.Random("beacon")
        self.emitter = Emitter(rng, "beacon", server_error_rate=0.0, attack_id="test-1")
        self.client = Client("203.0.113.66", 40000, "curl/8.5.0", host="api.example.com")

    def step(self, now: float, world: World) -> SimRequest | None:
        self.next_ts = now + 0.5
        return self.emitter.emit(now, endpoints.LOGIN, self.client, "/api/v1/auth/login", 401)


def test_an_added_actor_leaves_the_rest_of_the_traffic_unchanged() -> None:
    config = SimulationConfig(seed=3, duration_s=30.0)
    baseline = [render_canonical(r) for r in generate(config)]
    mixed = list(run([*build_actors(config), Beacon(config.start_ts)], end_ts=config.end_ts))
    labelled = [r for r in mixed if r.attack_id]
    assert len(labelled) == 61
    assert {r.actor for r in labelled} == {"beacon"}
    assert [render_canonical(r) for r in mixed if not r.attack_id] == baseline


class Backwards(Actor):
    def step(self, now: float, world: World) -> SimRequest | None:
        self.next_ts = now - 1.0
        return None


def test_an_actor_scheduling_itself_in_the_past_is_an_error() -> None:
    with pytest.raises(SimulationError, match="Backwards"):
        list(run([Backwards(100.0)]))


# --- who is in the traffic -----------------------------------------------------------


def test_every_actor_type_is_present(traffic: list[SimRequest]) -> None:
    assert {r.actor for r in traffic} == ACTORS


def test_corporate_nat_puts_many_users_behind_one_address(traffic: list[SimRequest]) -> None:
    users: defaultdict[str, set[str]] = defaultdict(set)
    for r in traffic:
        if r.actor == "corporate-user" and r.user:
            users[r.client_ip].add(r.user)
    assert len(users) == RUN.corporate_sites
    assert min(len(u) for u in users.values()) >= 50


def test_mistyped_passwords_give_a_401_then_a_200_for_the_same_user(
    traffic: list[SimRequest],
) -> None:
    failed: dict[str, float] = {}
    recovered = set()
    for r in traffic:
        if r.path != "/api/v1/auth/login":
            continue
        assert "@" in r.user  # the attempted username
        if r.status == 401:
            failed.setdefault(r.user, r.ts)
        elif r.status == 200 and r.user in failed and r.ts > failed[r.user]:
            recovered.add(r.user)
    assert len(recovered) >= 10
    corporate = {r.user for r in traffic if r.actor == "corporate-user"}
    assert recovered & corporate


def test_mobile_users_come_from_cgnat_and_change_address(traffic: list[SimRequest]) -> None:
    mobile = [r for r in traffic if r.actor == "mobile-user"]
    assert all(ipaddress.ip_address(r.client_ip) in CGNAT for r in mobile)
    addresses: defaultdict[str, set[str]] = defaultdict(set)
    for r in mobile:
        if r.user.isdigit():
            addresses[r.user].add(r.client_ip)
    assert sum(len(a) > 1 for a in addresses.values()) >= 20


def test_partners_use_their_keys_at_a_steady_rate_from_few_addresses(
    traffic: list[SimRequest],
) -> None:
    by_key: defaultdict[str, list[SimRequest]] = defaultdict(list)
    for r in traffic:
        if r.actor == "partner":
            assert r.api_key.startswith("pk_live_")
            assert r.headers["x-api-key"] == r.api_key
            assert r.path.startswith("/api/v1/partners/")
            by_key[r.api_key].append(r)
    assert len(by_key) == RUN.partners
    assert sum(len(calls) for calls in by_key.values()) == pytest.approx(
        RUN.partner_rate * 120, rel=0.1
    )
    for calls in by_key.values():
        assert len({r.client_ip for r in calls}) <= 3
        assert len({r.user for r in calls}) == 1
        gaps = [b.ts - a.ts for a, b in itertools.pairwise(calls)]
        assert max(gaps) <= min(gaps) * 1.15 / 0.85 + 1e-6  # period x [0.85, 1.15]


def test_health_probes_hit_healthz_every_ten_seconds(traffic: list[SimRequest]) -> None:
    probes: defaultdict[str, list[float]] = defaultdict(list)
    for r in traffic:
        if r.actor == "health-probe":
            assert (r.method, r.path, r.status, r.scheme) == ("GET", "/healthz", 200, "http")
            assert r.user_agent == "kube-probe/1.29"
            assert ipaddress.ip_address(r.client_ip) in OURS
            probes[r.client_ip].append(r.ts)
    assert len(probes) == RUN.health_probes
    for stamps in probes.values():
        assert len(stamps) >= 11
        assert all(abs(b - a - 10.0) < 0.01 for a, b in itertools.pairwise(stamps))


def test_crawlers_announce_themselves_and_walk_the_catalogue(traffic: list[SimRequest]) -> None:
    crawls = [r for r in traffic if r.actor == "crawler"]
    agents = " ".join({r.user_agent for r in crawls})
    assert "Googlebot" in agents
    assert "bingbot" in agents
    assert not any(r.user or r.api_key or "authorization" in r.headers for r in crawls)
    products = {r.path for r in crawls if r.route == "/api/v1/products/{productId}"}
    assert len(products) >= 100
    assert any(r.status == 404 for r in crawls)


def test_some_clients_use_ipv6(traffic: list[SimRequest]) -> None:
    v6 = {r.client_ip for r in traffic if ":" in r.client_ip}
    assert len(v6) >= 3
    assert all(str(ipaddress.IPv6Address(ip)) == ip for ip in v6)  # compressed form


def test_load_balanced_requests_carry_the_client_in_x_forwarded_for(
    traffic: list[SimRequest],
) -> None:
    balanced = [r for r in traffic if r.peer_ip != r.client_ip]
    assert 0.15 <= len(balanced) / len(traffic) <= 0.35
    for r in balanced:
        assert ipaddress.ip_address(r.peer_ip) in OURS
        assert r.headers["x-forwarded-for"].split(", ")[-1] == r.client_ip
    # Corporate proxies prepend the workstation's private address.
    chains = [r.headers["x-forwarded-for"] for r in balanced if "," in r.headers["x-forwarded-for"]]
    assert chains
    assert all(ipaddress.ip_address(c.split(", ")[0]).is_private for c in chains)


def test_searches_include_the_benign_traps(traffic: list[SimRequest]) -> None:
    searched = {parse_qs(r.query)["q"][0] for r in traffic if r.path == "/api/v1/search"}
    traps = {
        "men's shoes",
        "select comfort pillow",
        "exec chair",
        "wget tote bag",
        "drop earrings",
        "union jack flag",
        "<3 gift",
    }
    assert traps <= searched


def test_users_read_their_own_objects(traffic: list[SimRequest]) -> None:
    orders: defaultdict[str, set[str]] = defaultdict(set)
    for r in traffic:
        if r.route.startswith("/api/v1/users/{userId}"):
            assert r.path.split("/")[4] == r.user
        if r.route == "/api/v1/orders/{orderId}":
            orders[r.user].add(r.path)
    assert max(len(paths) for paths in orders.values()) <= 13


def test_bearer_tokens_carry_the_user_as_sub(traffic: list[SimRequest]) -> None:
    authenticated = [r for r in traffic if "authorization" in r.headers]
    assert len(authenticated) > len(traffic) / 3
    for r in authenticated:
        assert principal_from_authorization(r.headers["authorization"]) == r.user
    token = authenticated[0].headers["authorization"].removeprefix("Bearer ")
    header, payload, signature = token.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == authenticated[0].user
    assert orjson.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["typ"] == "JWT"
    assert len(signature) == 86


def test_statuses_mix_success_with_occasional_errors(traffic: list[SimRequest]) -> None:
    statuses = [r.status for r in traffic]
    share = {kind: sum(s // 100 == kind for s in statuses) / len(statuses) for kind in (2, 4, 5)}
    assert share[2] > 0.95
    assert 0.002 < share[4] < 0.03
    assert 0.0005 < share[5] < 0.01
    assert {"PUT", "DELETE", "POST", "GET"} <= {r.method for r in traffic}
