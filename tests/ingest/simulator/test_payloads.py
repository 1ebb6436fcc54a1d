"""The injection attack kind: its corpus, where payloads land, and what the log shows."""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter
from dataclasses import replace
from urllib.parse import unquote, unquote_plus

import orjson
import pytest

from gatewatch.event import Event
from gatewatch.settings import Settings
from gatewatch.wiring import build_pipeline
from ingest.simulator import catalogue
from ingest.simulator.attacks import ATTACKS, build_episodes, parse_kinds, plan
from ingest.simulator.attacks.base import EpisodeContext
from ingest.simulator.attacks.payloads import (
    CORPUS,
    FAMILIES,
    FORMS,
    SCANNER_AGENTS,
    Form,
    Injection,
    Payload,
)
from ingest.simulator.render import RENDERERS, render_canonical
from ingest.simulator.request import SimRequest
from ingest.simulator.traffic import SimulationConfig, generate, run
from ingest.sources.base import Record
from tests.ingest.simulator.conftest import quiet

CONFIG = SimulationConfig(seed=41, duration_s=3600.0)
QUIET = quiet(seed=42)
STATUSES = {200, 201, 202, 400, 401, 403, 404, 415, 500, 502, 503, 504}
_BY_VALUE = {p.value: p for family in CORPUS.values() for p in family if not p.operator}
_BY_OPERATOR = {p.operator: p for p in CORPUS["nosqli"] if p.operator}


def _canonical(requests: list[SimRequest]) -> list[bytes]:
    return [render_canonical(r) for r in requests]


@pytest.fixture(scope="module")
def episodes() -> dict[str, list[list[SimRequest]]]:
    """Three episodes of each variant in an hour's schedule, each run alone."""
    built = build_episodes(CONFIG, ["injection"], count=9)
    by_variant: dict[str, list[list[SimRequest]]] = {v: [] for v in Injection.variants}
    for episode in built:
        by_variant[episode.variant].append(list(run([episode])))
    return by_variant


def _all(episodes: dict[str, list[list[SimRequest]]]) -> list[SimRequest]:
    return [r for runs in episodes.values() for requests in runs for r in requests]


def _form(request: SimRequest) -> Form:
    (form,) = [
        f
        for f in FORMS
        if f.endpoint.route == request.route and f.endpoint.method == request.method
    ]
    return form


def _payloads(request: SimRequest) -> list[Payload]:
    """The corpus payloads ``request`` carries, wherever they are."""
    found: list[Payload] = []
    if request.headers.get("content-type") == "application/xml":
        return [_BY_VALUE[request.body]]
    if request.body:
        for value in orjson.loads(request.body).values():
            if isinstance(value, dict):
                ((operator, _),) = value.items()
                found.append(_BY_OPERATOR[operator])
            elif isinstance(value, str) and value in _BY_VALUE:
                found.append(_BY_VALUE[value])
    for pair in filter(None, request.query.split("&")):
        name, _, value = pair.partition("=")
        if operator := re.fullmatch(r"\w+\[(\$\w+)\]", name):
            found.append(_BY_OPERATOR[operator.group(1)])
        elif unquote_plus(value) in _BY_VALUE:
            found.append(_BY_VALUE[unquote_plus(value)])
    found += [_BY_VALUE[s] for s in map(unquote, request.path.split("/")) if s in _BY_VALUE]
    return found


# --- the corpus --------------------------------------------------------------------------


def test_corpus_has_every_class_with_8_to_16_payloads_each() -> None:
    assert tuple(CORPUS) == FAMILIES
    assert len(FAMILIES) == 10
    for family, payloads in CORPUS.items():
        assert 8 <= len(payloads) <= 16, family
        assert {p.family for p in payloads} == {family}
    values = [(p.value, p.operator) for family in CORPUS.values() for p in family]
    assert len(values) == len(set(values))  # a payload names its class unambiguously


def test_payload_encodings_are_consistent() -> None:
    for payloads in CORPUS.values():
        for payload in payloads:
            if payload.wire:
                assert unquote(payload.wire) == payload.value, payload
            if payload.operator:
                orjson.loads(payload.operand)
                assert payload.operator.startswith("$")
    assert all("<!ENTITY" in p.value or "XInclude" in p.value for p in CORPUS["xxe"])
    assert all("\r" in p.value or "\n" in p.value or "%0d" in p.value or "\u560a" in p.value
               for p in CORPUS["crlf"])  # fmt: skip


# --- every variant --------------------------------------------------------------------------


def test_every_request_is_labelled_and_inside_its_episode() -> None:
    built = build_episodes(CONFIG, ["injection"])
    assert [e.variant for e in sorted(built, key=lambda e: e.attack_id)] == list(Injection.variants)
    for episode in built:
        requests = list(run([episode]))
        assert len(requests) == episode.planned >= 5
        assert {(r.attack_id, r.actor) for r in requests} == {(episode.attack_id, "injection")}
        assert all(episode.start_ts <= r.ts <= episode.end_ts for r in requests)


def test_payloads_land_in_real_parameters_of_real_routes(
    episodes: dict[str, list[list[SimRequest]]],
) -> None:
    for request in _all(episodes):
        form = _form(request)
        template = re.sub(r"\{\w+\}", "[^/]+", form.endpoint.route)
        assert re.fullmatch(template, request.path), request.path
        queried = {pair.partition("=")[0].partition("[")[0] for pair in request.query.split("&")}
        assert queried - {""} <= {p.name for p in form.params if p.where == "query"}
        if request.body and request.headers["content-type"] == "application/json":
            assert set(orjson.loads(request.body)) == {
                p.name for p in form.params if p.where == "json"
            }
        assert len(_payloads(request)) <= 1, request  # one value at a time


def test_bodies_are_json_or_xml_as_their_content_type_says(
    episodes: dict[str, list[list[SimRequest]]],
) -> None:
    kinds: Counter[str] = Counter()
    for request in _all(episodes):
        if request.method in ("GET", "DELETE"):
            assert not request.body and not request.request_body_bytes
            continue
        assert request.request_body_bytes == len(request.body.encode()) > 0
        kind = request.headers["content-type"]
        kinds[kind] += 1
        if kind == "application/json":
            assert isinstance(orjson.loads(request.body), dict)
        else:
            assert kind == "application/xml" and request.body.startswith("<")
    assert kinds["application/json"] > 50 and kinds["application/xml"] >= 3


def test_statuses_are_a_plausible_mix(episodes: dict[str, list[list[SimRequest]]]) -> None:
    statuses = Counter(r.status for r in _all(episodes))
    assert set(statuses) <= STATUSES
    total = sum(statuses.values())
    for group in ((200, 201), (400, 404, 415), (500,)):
        assert sum(statuses[s] for s in group) >= 0.05 * total, (group, statuses)


def test_a_time_based_payload_sometimes_stalls_the_backend(
    episodes: dict[str, list[list[SimRequest]]],
) -> None:
    served = [r for r in _all(episodes) if r.status < 502]  # no gateway timeout either
    stalling = [r for r in served if any(p.delay_s for p in _payloads(r))]
    assert any(r.latency_ms > 900 for r in stalling)
    assert all(r.latency_ms < 900 for r in served if r not in stalling)


def test_scanner_fires_every_class_quickly_at_2_to_4_routes(
    episodes: dict[str, list[list[SimRequest]]],
) -> None:
    agents = {agent for agent, _ in SCANNER_AGENTS}
    for requests in episodes["scanner"]:
        assert 40 <= len(requests) <= 120
        assert len({r.client_ip for r in requests}) == 1
        assert {r.user_agent for r in requests} <= agents and len(
            {r.user_agent for r in requests}
        ) == 1
        assert 2 <= len({(r.method, r.route) for r in requests}) <= 4
        assert any(r.method in ("POST", "PUT") for r in requests)  # a JSON body field
        # With a token (a route needs one) it is that user everywhere, as a browser is.
        assert all(r.user for r in requests if "authorization" in r.headers and r.method == "GET")
        gaps = [b.ts - a.ts for a, b in itertools.pairwise(requests)]
        assert max(gaps) < 1.0
        carried = [_payloads(r) for r in requests]
        assert all(len(found) == 1 for found in carried)  # nothing but payloads
        assert {found[0].family for found in carried} == set(FAMILIES)


def test_scanner_replays_one_request_per_route(
    episodes: dict[str, list[list[SimRequest]]],
) -> None:
    kept: dict[tuple[str, str, str], set[str]] = {}
    for requests in episodes["scanner"]:
        for request in requests:
            for pair in filter(None, request.query.split("&")):
                name, _, value = pair.partition("=")
                if "[" not in name and unquote_plus(value) not in _BY_VALUE:
                    kept.setdefault((request.attack_id, request.route, name), set()).add(value)
    # Every value but the injected one is the captured request's.
    assert kept and all(len(values) == 1 for values in kept.values()), kept


def test_manual_is_a_browser_trying_a_few_payloads_slowly(
    episodes: dict[str, list[list[SimRequest]]],
) -> None:
    for requests in episodes["manual"]:
        assert len({r.client_ip for r in requests}) == 1
        assert requests[0].user_agent in catalogue.BROWSER_AGENTS
        assert all(r.headers["cookie"].startswith("sid=") for r in requests)
        carrying = [r for r in requests if _payloads(r)]
        ordinary = [r for r in requests if not _payloads(r)]
        assert 5 <= len(carrying) <= 15 and 2 <= len(ordinary) <= 5
        assert not _payloads(requests[0])  # it looks at the page first
        targets = set()
        for request in carrying:
            form = _form(request)
            targets |= {
                (form.endpoint.route, p.name) for p in form.params if _carries(request, p.name)
            }
        assert 1 <= len(targets) <= 2
        gaps = [b.ts - a.ts for a, b in itertools.pairwise(requests)]
        assert min(gaps) >= 1.0 and max(gaps) <= 60.0 and statistics.median(gaps) >= 3.0


def _carries(request: SimRequest, name: str) -> bool:
    """Whether the parameter ``name`` of ``request`` holds a payload."""
    for pair in request.query.split("&"):
        key, _, value = pair.partition("=")
        if key.partition("[")[0] == name and (key != name or unquote_plus(value) in _BY_VALUE):
            return True
    if request.body:
        value = orjson.loads(request.body).get(name)
        if isinstance(value, dict) or value in _BY_VALUE:
            return True
    template = _form(request).endpoint.route.split("/")
    return any(
        part == f"{{{name}}}" and unquote(segment) in _BY_VALUE
        for part, segment in zip(template, request.path.split("/"), strict=True)
    )


def test_json_api_sends_payloads_in_bodies_with_an_api_key(
    episodes: dict[str, list[list[SimRequest]]],
) -> None:
    for requests in episodes["json_api"]:
        assert 20 <= len(requests) <= 60
        assert len({r.headers["x-api-key"] for r in requests}) == 1
        assert {r.api_key for r in requests} == {requests[0].headers["x-api-key"]}
        assert len({r.user for r in requests}) == 1 and requests[0].user
        assert {r.method for r in requests} <= {"POST", "PUT"}
        assert all(r.route.startswith("/api/v1/partners/") and r.body for r in requests)
        assert {p.family for r in requests for p in _payloads(r)} == set(FAMILIES)
        assert not any(r.query for r in requests)


def test_nosql_operators_are_objects_in_json_and_brackets_in_queries(
    episodes: dict[str, list[list[SimRequest]]],
) -> None:
    in_json = in_query = 0
    for request in _all(episodes):
        if request.body and request.headers["content-type"] == "application/json":
            operators = [v for v in orjson.loads(request.body).values() if isinstance(v, dict)]
            assert all(next(iter(v)).startswith("$") for v in operators)
            in_json += len(operators)
        in_query += len(re.findall(r"\w\[\$\w+\]=", request.query))
    assert in_json and in_query


def test_descriptions_say_what_happened() -> None:
    built = build_episodes(CONFIG, ["injection"])
    text = {e.variant: e.description for e in built}
    assert re.fullmatch(
        r"\S+ fires \d+ injection payloads \(sqli, xss, cmdi, traversal, ssrf, ssti, nosqli, "
        r"xxe, crlf, ldap\) at [234] routes with \S+",
        text["scanner"],
    )
    assert re.fullmatch(
        r"\S+ tries \d+ injection payloads \([a-z, ]+\) by hand on .+ from a browser, "
        r"between \d ordinary requests",
        text["manual"],
    )
    assert re.fullmatch(
        r"[a-z-]+'s API key at \S+ sends \d+ injection payloads .+", text["json_api"]
    )
    for episode in built:
        count = re.search(r" (\d+) injection payloads", episode.description)
        assert count
        carrying = sum(bool(_payloads(r)) for r in run([Injection(episode.context)]))
        assert int(count.group(1)) == carrying


# --- the log --------------------------------------------------------------------------------


def test_every_line_parses_as_the_canonical_event(
    episodes: dict[str, list[list[SimRequest]]], settings: Settings
) -> None:
    pipeline = build_pipeline(settings, "canonical", for_storage=False)
    pipeline.normaliser.min_ts = 0
    for i, request in enumerate(_all(episodes)):
        line = render_canonical(request)
        assert ("body" in orjson.loads(line)) == bool(request.body)
        event = pipeline.process(Record("t", i, line, len(line)))
        assert isinstance(event, Event), (event, line)
        assert (event.method, event.path, event.status) == (
            request.method,
            request.path,
            request.status,
        )
        # The normaliser fingerprints what looks like a secret (``session=...``).
        assert event.query == request.query or "fp:" in event.query
        assert event.body == request.body or "fp:" in event.body


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_every_format_renders_an_injection_line(
    episodes: dict[str, list[list[SimRequest]]], name: str
) -> None:
    for request in _all(episodes):
        assert b"\n" not in RENDERERS[name](request)


# --- determinism and the rest of the run -------------------------------------------------------


def test_same_seed_same_bytes_and_another_seed_other_bytes() -> None:
    context = EpisodeContext("injection-1", "injection", 1, "scanner", 1000.0, 120.0, seed=5)
    first = _canonical(list(run([Injection(context)])))
    assert first == _canonical(list(run([Injection(context)])))
    assert first != _canonical(list(run([Injection(replace(context, seed=6))])))


def test_injection_leaves_the_benign_traffic_unchanged() -> None:
    benign = _canonical(list(generate(QUIET)))
    mixed = list(generate(QUIET, build_episodes(QUIET, ["injection"])))
    assert _canonical([r for r in mixed if not r.attack_id]) == benign
    assert {r.attack_id for r in mixed if r.attack_id} == {
        "injection-1",
        "injection-2",
        "injection-3",
    }
    assert all(b'"body"' not in line for line in benign)


def test_injection_is_a_surface_kind_in_all() -> None:
    assert "injection" in parse_kinds("all")
    assert ATTACKS["injection"].lane == "surface"
    assert Injection.accepted_kinds == ("injection", "malformed_request", "anomaly")
    # The surface lane stays sequential with injection in it, even in a short run.
    contexts = plan(["endpoint_scanning", "injection"], seed=1, start_ts=0.0, duration_s=120.0)
    contexts.sort(key=lambda c: c.start_ts)
    assert all(a.end_ts < b.start_ts for a, b in itertools.pairwise(contexts))
