"""Attack episodes, their schedule, and the benign traps."""

from __future__ import annotations

import ipaddress
import itertools
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import replace

import pytest

from gatewatch.event import Event
from gatewatch.settings import Settings
from gatewatch.wiring import build_pipeline
from ingest.simulator import endpoints
from ingest.simulator.attacks import ATTACKS, AttackEpisode, build_episodes, parse_kinds, plan
from ingest.simulator.attacks.base import EpisodeContext
from ingest.simulator.render import RENDERERS, render_canonical
from ingest.simulator.request import SimRequest
from ingest.simulator.traffic import SimulationConfig, build_actors, generate, run
from ingest.simulator.traps import TRAPS, build_traps
from ingest.sources.base import Record
from tests.ingest.simulator.conftest import quiet

CONFIG = SimulationConfig(seed=21, duration_s=900.0)
# A quieter benign crowd, for the tests that generate several runs.
QUIET = quiet()
TRAP_ACTORS = {"stale-app", "admin", "catalogue-browser", "signup", "uploader"}
FINDING_KINDS = {
    "brute_force", "credential_stuffing", "password_spraying", "bola", "endpoint_scanning",
    "user_enumeration", "injection", "malformed_request", "oversized_payload", "rate_anomaly",
    "data_exfiltration", "token_misuse", "insecure_transport", "anomaly",
}  # fmt: skip
LOGIN = endpoints.LOGIN.route


class Run:
    """Fifteen simulated minutes with every attack kind (one episode per variant) and
    every trap."""

    def __init__(self) -> None:
        self.episodes = build_episodes(CONFIG, ATTACKS)
        self.requests = list(generate(CONFIG, [*build_traps(CONFIG), *self.episodes]))
        self.by_attack: dict[str, list[SimRequest]] = defaultdict(list)
        for request in self.requests:
            if request.attack_id:
                self.by_attack[request.attack_id].append(request)

    def of(self, kind: str, variant: str = "default") -> list[SimRequest]:
        (episode,) = [e for e in self.episodes if e.kind == kind and e.variant == variant]
        return self.by_attack[episode.attack_id]


@pytest.fixture(scope="module")
def sim() -> Run:
    return Run()


def _fails(requests: list[SimRequest]) -> list[SimRequest]:
    return [r for r in requests if r.path == LOGIN and r.status in (401, 429)]


def _served(requests: list[SimRequest]) -> list[SimRequest]:
    """Requests the infrastructure did not turn into a 5xx."""
    return [r for r in requests if r.status < 500]


def _id(path: str) -> int:
    return int(path.rstrip("/").split("/")[4])


# --- every kind, every variant -----------------------------------------------------------


def test_every_kind_and_variant_makes_labelled_requests(sim: Run) -> None:
    seen = {(e.kind, e.variant) for e in sim.episodes}
    assert seen == {(kind, v) for kind, cls in ATTACKS.items() for v in cls.variants}
    for episode in sim.episodes:
        requests = sim.by_attack[episode.attack_id]
        assert len(requests) == episode.planned >= 5, episode.attack_id
        assert {r.actor for r in requests} == {episode.kind}
    assert set(sim.by_attack) == {e.attack_id for e in sim.episodes}


def test_attack_ids_are_kind_and_number_and_unique(sim: Run) -> None:
    ids = [e.attack_id for e in sim.episodes]
    assert len(ids) == len(set(ids))
    for episode in sim.episodes:
        kind, _, number = episode.attack_id.rpartition("-")
        assert kind == episode.kind and int(number) == episode.context.index


def test_accepted_kinds_are_finding_kinds() -> None:
    for name, cls in ATTACKS.items():
        assert cls.kind == name
        assert cls.accepted_kinds and set(cls.accepted_kinds) <= FINDING_KINDS
    assert ATTACKS["account_takeover"].accepted_kinds == ("brute_force", "credential_stuffing")
    assert ATTACKS["scraping"].accepted_kinds == ("rate_anomaly",)


def test_requests_stay_inside_their_episode(sim: Run) -> None:
    for episode in sim.episodes:
        stamps = [r.ts for r in sim.by_attack[episode.attack_id]]
        assert episode.start_ts <= min(stamps) and max(stamps) <= episode.end_ts


def test_benign_requests_are_never_labelled_and_attack_ones_always(sim: Run) -> None:
    kinds = set(ATTACKS)
    for request in sim.requests:
        assert bool(request.attack_id) == (request.actor in kinds)


# --- the shape of each attack --------------------------------------------------------------


def _brute_account(requests: list[SimRequest]) -> None:
    assert len({r.client_ip for r in requests}) == 1 and len({r.user for r in requests}) == 1
    assert len(_fails(requests)) >= 30 and not [r for r in requests if r.status == 200]


def _brute_ip(requests: list[SimRequest]) -> None:
    per_user = Counter(r.user for r in _fails(requests))
    assert len({r.client_ip for r in requests}) == 1
    assert 3 <= len(per_user) <= 7 and min(per_user.values()) >= 5


def _stuffing(requests: list[SimRequest]) -> None:
    logins = [r for r in requests if r.path == LOGIN]
    assert len({r.client_ip for r in logins}) >= 30
    assert len({r.user for r in logins}) == len(logins)  # each leaked pair once
    assert len({r.user_agent for r in logins}) > len(logins) / 2  # rotating agents
    assert sum(r.status == 200 for r in logins) / len(logins) < 0.05
    per_ip = Counter(r.client_ip for r in logins)
    assert statistics.median(per_ip.values()) <= 10  # low rate per source


def _spraying(requests: list[SimRequest], pool: bool) -> None:
    per_user = Counter(r.user for r in requests)
    assert len(per_user) >= 40 and max(per_user.values()) <= 2
    networks = {ipaddress.ip_network(f"{r.client_ip}/24", strict=False) for r in requests}
    assert len(networks) == 1
    assert (len({r.client_ip for r in requests}) > 1) == pool
    assert sum(r.status == 200 for r in requests) <= 2


def _takeover(requests: list[SimRequest]) -> None:
    logins = [r for r in requests if r.path == LOGIN]
    assert len(_fails(logins)) >= 10 and logins[-1].status == 200
    inside = requests[requests.index(logins[-1]) + 1 :]
    assert len(inside) >= 4 and {r.client_ip for r in inside} == {logins[-1].client_ip}
    assert all(r.headers.get("authorization", "").startswith("Bearer ") for r in inside)
    assert any(r.method == "PUT" for r in inside)


def _bola_denied(requests: list[SimRequest]) -> None:
    ids = [_id(r.path) for r in requests[1:]]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # a sequential walk
    refused = [r for r in _served(requests) if r.status in (403, 404)]
    assert len(refused) >= 0.9 * len(_served(requests)) - 2 and len(requests) >= 50


def _bola_vulnerable(requests: list[SimRequest]) -> None:
    ids = sorted({_id(r.path) for r in requests})
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert all(r.status == 200 for r in _served(requests)) and len(ids) >= 50
    assert len({r.user for r in requests}) == 1 and requests[0].user not in {str(i) for i in ids}


def _scanning(requests: list[SimRequest], wordlist: bool) -> None:
    assert len({r.path for r in requests}) >= 30 and len({r.client_ip for r in requests}) == 1
    assert sum(r.status == 404 for r in requests) >= 0.75 * len(requests)
    assert requests[-1].ts - requests[0].ts < 30  # a burst
    if wordlist:
        assert {"/.env", "/.git/config"} & {r.path for r in requests}


def _enumeration(requests: list[SimRequest], route: str) -> None:
    assert {r.path for r in requests} == {route}
    assert len({r.user for r in requests}) == len(requests) >= 50
    statuses = Counter(r.status for r in _served(requests))
    _, second = statuses.most_common(2)[1]
    assert second >= 0.05 * len(requests)


def _scraping(requests: list[SimRequest]) -> None:
    start = requests[0].ts
    per_10s = Counter(int((r.ts - start) // 10) for r in requests)
    assert max(per_10s.values()) >= 80  # 8 or more a second at its peak
    span = requests[-1].ts - start
    assert sum(r.ts < start + 0.1 * span for r in requests) <= 10  # it started like a visitor
    assert {r.path.split("/")[3] for r in requests} == {"products"}


def _exfiltration(requests: list[SimRequest]) -> None:
    sizes = [r.response_bytes for r in _served(requests)]
    assert statistics.median(sizes) >= 1_000_000 and sum(sizes) >= 50_000_000
    assert len({r.client_ip for r in requests}) == 1


def _oversized(requests: list[SimRequest]) -> None:
    assert all(r.request_body_bytes >= 1_500_000 for r in requests)
    assert len({r.path for r in requests}) == 1
    big = [r for r in _served(requests) if r.request_body_bytes > 10_000_000]
    assert all(r.status == 413 for r in big)


def _malformed(requests: list[SimRequest]) -> None:
    assert {r.status for r in _served(requests)} <= {400, 405, 501}
    assert {"TRACE", "PROPFIND"} & {r.method for r in requests}
    assert len(requests) >= 30


def _injection_scanner(requests: list[SimRequest]) -> None:
    assert len(requests) >= 40 and len({r.client_ip for r in requests}) == 1
    assert 2 <= len({(r.method, r.route) for r in requests}) <= 4
    assert requests[-1].ts - requests[0].ts < 45  # a burst
    assert any(r.body for r in requests) and any(r.query or "%" in r.path for r in requests)


def _injection_manual(requests: list[SimRequest]) -> None:
    assert 7 <= len(requests) <= 20 and len({r.client_ip for r in requests}) == 1
    assert all(r.headers["cookie"].startswith("sid=") for r in requests)
    assert requests[0].user_agent.startswith("Mozilla/5.0")


def _injection_json_api(requests: list[SimRequest]) -> None:
    assert len(requests) >= 20 and len({r.headers["x-api-key"] for r in requests}) == 1
    assert all(r.method in ("POST", "PUT") and r.body for r in requests)
    kinds = {r.headers["content-type"] for r in requests}
    assert kinds == {"application/json", "application/xml"}


def _spread(requests: list[SimRequest], header: str) -> None:
    assert len({r.headers[header] for r in requests}) == 1  # one credential
    assert len({r.client_ip for r in requests}) >= 20
    assert len({r.client_ip.split(".")[0] for r in requests}) >= 5  # many networks


def _key_in_query(requests: list[SimRequest]) -> None:
    assert all(r.query.startswith("api_key=pk_live_") for r in requests)
    assert len({r.query.split("&")[0] for r in requests}) == 1


def _plain_http(requests: list[SimRequest]) -> None:
    assert {(r.scheme, r.tls_version) for r in requests} == {("http", "")}
    assert requests[0].path == LOGIN and requests[0].user
    assert any("authorization" in r.headers for r in requests)


def _weak_tls(requests: list[SimRequest]) -> None:
    assert len({r.tls_version for r in requests}) == 1
    assert requests[0].tls_version in ("TLSv1.0", "TLSv1.1")


SHAPES: dict[tuple[str, str], Callable[[list[SimRequest]], None]] = {
    ("brute_force", "account"): _brute_account,
    ("brute_force", "ip"): _brute_ip,
    ("credential_stuffing", "default"): _stuffing,
    ("password_spraying", "single_ip"): lambda r: _spraying(r, pool=False),
    ("password_spraying", "pool"): lambda r: _spraying(r, pool=True),
    ("account_takeover", "guess"): _takeover,
    ("account_takeover", "stuffed"): _takeover,
    ("bola", "denied"): _bola_denied,
    ("bola", "vulnerable"): _bola_vulnerable,
    ("endpoint_scanning", "wordlist"): lambda r: _scanning(r, wordlist=True),
    ("endpoint_scanning", "api"): lambda r: _scanning(r, wordlist=False),
    ("user_enumeration", "reset"): lambda r: _enumeration(r, endpoints.PASSWORD_RESET.route),
    ("user_enumeration", "login"): lambda r: _enumeration(r, LOGIN),
    ("user_enumeration", "signup"): lambda r: _enumeration(r, endpoints.SIGNUP.route),
    ("scraping", "default"): _scraping,
    ("data_exfiltration", "export"): _exfiltration,
    ("data_exfiltration", "bulk"): _exfiltration,
    ("oversized_payload", "default"): _oversized,
    ("malformed_request", "default"): _malformed,
    ("injection", "scanner"): _injection_scanner,
    ("injection", "manual"): _injection_manual,
    ("injection", "json_api"): _injection_json_api,
    ("token_misuse", "api_key"): lambda r: _spread(r, "x-api-key"),
    ("token_misuse", "bearer"): lambda r: _spread(r, "authorization"),
    ("token_misuse", "query"): _key_in_query,
    ("insecure_transport", "plain_http"): _plain_http,
    ("insecure_transport", "weak_tls"): _weak_tls,
}


def test_every_variant_has_a_shape_test() -> None:
    assert set(SHAPES) == {(kind, v) for kind, cls in ATTACKS.items() for v in cls.variants}


@pytest.mark.parametrize(("kind", "variant"), sorted(SHAPES))
def test_attack_shape(sim: Run, kind: str, variant: str) -> None:
    SHAPES[kind, variant](sim.of(kind, variant))


def test_password_spraying_is_slow_in_a_long_run() -> None:
    config = SimulationConfig(seed=4, duration_s=7200.0)
    (episode,) = build_episodes(config, ["password_spraying"], count=1)
    requests = list(run([episode]))
    assert requests[-1].ts - requests[0].ts >= 20 * 60
    gaps = [b.ts - a.ts for a, b in itertools.pairwise(requests)]
    assert statistics.median(gaps) >= 5.0


# --- the schedule ----------------------------------------------------------------------------


@pytest.mark.parametrize("duration", [300.0, 900.0, 7200.0])
def test_schedule_warms_up_and_keeps_each_lane_sequential(duration: float) -> None:
    contexts = plan(ATTACKS, seed=3, start_ts=0.0, duration_s=duration, count=2)
    assert len(contexts) == 2 * len(ATTACKS)
    warmup = min(0.1 * duration, 300.0)
    assert all(warmup <= c.start_ts and c.end_ts <= duration for c in contexts)
    lanes: dict[str, list[EpisodeContext]] = defaultdict(list)
    for context in contexts:
        lanes[ATTACKS[context.kind].lane].append(context)
    for lane in lanes.values():
        lane.sort(key=lambda c: c.start_ts)
        for before, after in itertools.pairwise(lane):
            assert before.end_ts < after.start_ts


def test_schedule_is_deterministic_and_depends_on_the_seed() -> None:
    def starts(seed: int) -> list[tuple[str, float]]:
        return [
            (c.attack_id, c.start_ts)
            for c in plan(ATTACKS, seed=seed, start_ts=0.0, duration_s=3600.0)
        ]

    assert starts(1) == starts(1) and starts(1) != starts(2)


def test_episodes_cycle_through_variants() -> None:
    contexts = plan(["user_enumeration"], seed=1, start_ts=0.0, duration_s=3600.0, count=4)
    by_index = {c.index: c.variant for c in contexts}
    assert by_index == {1: "reset", 2: "login", 3: "signup", 4: "reset"}


def test_a_count_bounded_run_is_planned_over_its_estimated_length() -> None:
    config = SimulationConfig(seed=1, duration_s=None, count=30_000)
    episodes = build_episodes(config, ["bola"])
    assert all(e.end_ts <= config.start_ts + 300.0 for e in episodes)


def test_kinds_parse() -> None:
    assert parse_kinds("all") == tuple(ATTACKS)
    assert parse_kinds("bola,bola,scraping") == ("bola", "scraping")
    with pytest.raises(ValueError, match="unknown attack kind 'sqli'"):
        parse_kinds("sqli")
    with pytest.raises(ValueError, match="no attack kind"):
        parse_kinds(" , ")


# --- determinism and the benign traffic --------------------------------------------------------


def _canonical(requests: list[SimRequest]) -> list[bytes]:
    return [render_canonical(r) for r in requests]


def test_same_seed_gives_byte_identical_attacks() -> None:
    config = replace(QUIET, seed=8)

    def once() -> list[bytes]:
        actors = [*build_traps(config), *build_episodes(config, ATTACKS)]
        return _canonical(list(generate(config, actors)))

    first = once()
    assert first == once()
    other = replace(QUIET, seed=9)
    assert first != _canonical(list(generate(other, build_episodes(other, ATTACKS))))


def test_attacks_leave_the_benign_traffic_unchanged() -> None:
    config = replace(QUIET, seed=8)
    benign = _canonical(list(generate(config)))
    with_attacks = list(generate(config, build_episodes(config, ATTACKS)))
    assert _canonical([r for r in with_attacks if not r.attack_id]) == benign
    trapped = _canonical(list(generate(config, build_traps(config))))
    both = generate(config, [*build_traps(config), *build_episodes(config, ATTACKS)])
    assert _canonical([r for r in both if not r.attack_id]) == trapped


def test_an_episode_alone_is_the_same_as_in_the_crowd(sim: Run) -> None:
    episode = sim.episodes[0]
    alone = ATTACKS[episode.kind](episode.context)
    assert _canonical(list(run([alone]))) == _canonical(sim.by_attack[episode.attack_id])


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_every_format_renders_the_attacks(sim: Run, name: str) -> None:
    render = RENDERERS[name]
    for request in sim.requests:
        if not (request.attack_id or request.actor in TRAP_ACTORS):
            continue  # the base traffic has tests of its own
        line = render(request)
        assert b"\n" not in line


@pytest.mark.parametrize("name", ["canonical", "kong", "traefik"])
def test_weak_tls_reaches_the_event(sim: Run, name: str, settings: Settings) -> None:
    requests = sim.of("insecure_transport", "weak_tls")
    assert requests
    pipeline = build_pipeline(settings, name, for_storage=False)
    pipeline.normaliser.min_ts = 0
    for i, request in enumerate(requests):
        line = RENDERERS[name](request)
        event = pipeline.process(Record("t", i, line, len(line)))
        assert isinstance(event, Event), event
        assert event.tls_version == request.tls_version, (name, event.tls_version)


# --- benign traps ------------------------------------------------------------------------------


def test_every_trap_makes_requests(sim: Run) -> None:
    actors = Counter(r.actor for r in sim.requests)
    for name in TRAP_ACTORS:
        assert actors[name] > 0, name
    assert set(TRAPS) == {
        "stale_apps", "admin_exports", "catalogue_browsing", "signups", "media_uploads",
    }  # fmt: skip


def test_corporate_nat_hides_hundreds_of_users_some_mistyping(sim: Run) -> None:
    corporate = [r for r in sim.requests if r.actor == "corporate-user"]
    users_per_ip: dict[str, set[str]] = defaultdict(set)
    for r in corporate:
        if r.path == LOGIN:
            users_per_ip[r.client_ip].add(r.user)
    busiest = max(users_per_ip, key=lambda ip: len(users_per_ip[ip]))
    assert len(users_per_ip[busiest]) >= 100
    typos = [r for r in corporate if r.client_ip == busiest and r.path == LOGIN and r.status == 401]
    assert 0 < len(typos) < 0.3 * len(users_per_ip[busiest])


def test_stale_apps_repeat_a_few_removed_routes(sim: Run) -> None:
    stale = [r for r in sim.requests if r.actor == "stale-app" and r.status == 404]
    assert len(stale) >= 100
    assert len({r.route for r in stale}) <= len(endpoints.REMOVED)
    kiosk = Counter(r.client_ip for r in stale).most_common(1)[0]
    assert kiosk[1] >= 25  # one address polling a removed route all along


def test_admin_exports_are_large_and_legitimate(sim: Run) -> None:
    exports = [r for r in sim.requests if r.actor == "admin" and r.status == 200]
    assert exports and all(r.response_bytes >= 4_000_000 for r in exports)
    assert {r.route for r in exports} == {endpoints.ADMIN_EXPORT.route}


def test_catalogue_browsing_touches_many_product_ids(sim: Run) -> None:
    browsing = [r for r in sim.requests if r.actor == "catalogue-browser"]
    per_client: dict[str, set[str]] = defaultdict(set)
    for r in browsing:
        if r.route == endpoints.PRODUCT.route:
            per_client[r.client_ip].add(r.path)
    assert max(len(paths) for paths in per_client.values()) >= 300


def test_signups_answer_201_and_409_and_uploads_are_megabytes(sim: Run) -> None:
    signups = Counter(r.status for r in sim.requests if r.actor == "signup")
    assert signups[201] > 0
    uploads = [r for r in sim.requests if r.actor == "uploader"]
    assert all(r.request_body_bytes >= 400_000 for r in uploads)


def test_without_traps_the_base_traffic_is_exactly_the_old_one() -> None:
    config = SimulationConfig(seed=2, count=2000)
    assert _canonical(list(generate(config))) == _canonical(
        list(run(build_actors(config), count=2000))
    )


def test_episode_base_refuses_nothing_outside_the_run() -> None:
    context = EpisodeContext("bola-1", "bola", 1, "denied", 100.0, 30.0)
    episode: AttackEpisode = ATTACKS["bola"](context)
    requests = list(run([episode]))
    assert requests and all(100.0 <= r.ts <= 130.0 for r in requests)
