"""The Core Rule Set through libmodsecurity: attacks in a rebuilt request match the
rules the WAF world trusts; ordinary API requests (and the simulator's benign traps)
match none."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.crs import RULES_DIR, SETUP_FILE, CrsEngine, CrsError

pytestmark = pytest.mark.skipif(
    not (RULES_DIR.is_dir() and SETUP_FILE.is_file()),
    reason="needs Debian's modsecurity-crs (make test installs it as root)",
)

HEADERS = (("Host", "api.example.com"), ("User-Agent", "Mozilla/5.0"), ("Accept", "*/*"))


@pytest.fixture(scope="module")
def crs() -> CrsEngine:
    return CrsEngine.load(paranoia_level=1)


@pytest.mark.parametrize(
    ("method", "uri", "body", "family"),
    [
        ("GET", "/api/v1/products?q=1'%20OR%20'1'='1", b"", 942),
        ("GET", "/api/v1/files?name=../../etc/passwd", b"", 930),
        ("GET", "/api/v1/search?q=<script>alert(1)</script>", b"", 941),
        ("GET", "/api/v1/ping?host=127.0.0.1;cat%20/etc/shadow", b"", 932),
        ("POST", "/api/v1/comments", b"text=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E", 941),
    ],
)
def test_attacks_match_their_rule_family(
    crs: CrsEngine, method: str, uri: str, body: bytes, family: int
) -> None:
    headers: tuple[tuple[str, str], ...] = HEADERS
    if body:
        headers = (*HEADERS, ("Content-Type", "application/x-www-form-urlencoded"),
                   ("Content-Length", str(len(body))))  # fmt: skip
    matches = crs.inspect(method, uri, headers, body, client_ip="203.0.113.9")
    assert family in {m.family for m in matches}, [(m.rule_id, m.message) for m in matches]
    assert all(m.rule_id not in (949110, 980130) for m in matches)


@pytest.mark.parametrize(
    "uri",
    [
        "/api/v1/products/12345?page=2&sort=price",
        "/api/v1/search?q=men%27s+shoes",
        "/api/v1/search?q=select+comfort+pillow",
        "/api/v1/orders/3f2a9c1e-7b1d-4e77-9a51-0c3e2a9b1d4e",
    ],
)
def test_ordinary_requests_match_nothing(crs: CrsEngine, uri: str) -> None:
    assert crs.inspect("GET", uri, HEADERS) == []


def test_crs_alone_flags_a_search_for_a_wget_tote_bag(crs: CrsEngine) -> None:
    """A known false positive of signatures alone (rule 932150 sees a Unix command):
    why the payload stage weighs a hit in a free-text search by its context."""
    matches = crs.inspect("GET", "/api/v1/search?q=wget+tote+bag", HEADERS)
    assert [m.rule_id for m in matches] == [932150]


def test_a_bad_rules_directory_or_level_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CrsError, match="modsecurity-crs"):
        CrsEngine.load(rules_dir=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="paranoia_level"):
        CrsEngine.load(paranoia_level=5)
