"""Forensic search over a real embedded store: every filter returns exactly the
matching events, keyset paging walks them all once, bad input names its field."""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from dashboard.forensics.search import (
    EventSearch,
    FindingSearch,
    Page,
    search_events,
    search_findings,
)
from gatewatch.event import Event
from gatewatch.finding import EntityType, Severity
from gatewatch.store.client import Store
from tests.dashboard.forensics.conftest import IPS, SINCE, UNTIL, Seeded

ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def in_window(seeded: Seeded) -> list[Event]:
    return [e for e in seeded.events if SINCE.timestamp() <= e.ts < UNTIL.timestamp()]


def identity(row: dict[str, Any]) -> tuple[str, int]:
    return row["source"], row["position"]


def walk(store: Store, q: EventSearch) -> list[dict[str, Any]]:
    """Every row of a search, page after page."""
    rows: list[dict[str, Any]] = []
    page = search_events(store, q)
    while True:
        assert len(page.rows) <= q.limit
        rows += page.rows
        if page.next_cursor is None:
            return rows
        page = search_events(store, q.model_copy(update={"cursor": page.next_cursor}))


def search(**filters: Any) -> EventSearch:
    return EventSearch(**{"since": SINCE, "until": UNTIL, "limit": 1000, **filters})


def test_paging_walks_every_event_once_newest_first(seeded: Seeded) -> None:
    rows = walk(seeded.store, search().model_copy(update={"limit": 17}))
    expected = {(e.source, e.position) for e in in_window(seeded)}
    assert len(rows) == len(expected) == 303  # replays collapsed, ties kept apart
    assert {identity(r) for r in rows} == expected
    assert_newest_first([(r["ts"], r["request_id"], r["source"], r["position"]) for r in rows])


def assert_newest_first(keys: list[tuple[Any, ...]]) -> None:
    """Times descending; ties in ascending order of the rest of the key."""
    for before, after in itertools.pairwise(keys):
        assert before[0] > after[0] or (before[0] == after[0] and before[1:] < after[1:])


FILTERS: list[tuple[dict[str, Any], Callable[[Event], bool]]] = [
    ({"user": "alice"}, lambda e: e.user == "alice"),
    ({"api_key": "fp:0000000000000002"}, lambda e: e.api_key == "fp:0000000000000002"),
    ({"route": "/api/v1/auth/login"}, lambda e: e.route == "/api/v1/auth/login"),
    ({"status": 401}, lambda e: e.status == 401),
    ({"status": "404"}, lambda e: e.status == 404),
    ({"status": "4xx"}, lambda e: 400 <= e.status < 500),
    ({"status": "2XX"}, lambda e: 200 <= e.status < 300),
    ({"method": "patch"}, lambda e: e.method == "PATCH"),
    ({"ip": "198.51.100.7"}, lambda e: e.client_ip == "198.51.100.7"),
    ({"ip": "198.51.100.0/24"}, lambda e: e.client_ip.startswith("198.51.100.")),
    ({"ip": "198.51.100.128/25"}, lambda e: e.client_ip == "198.51.100.200"),
    ({"ip": "10.0.0.0/8"}, lambda e: e.client_ip == "10.9.8.7"),
    ({"ip": "2001:db8::/64"}, lambda e: ":" in e.client_ip),
    ({"ip": "2001:db8::ff"}, lambda e: e.client_ip == "2001:db8::ff"),
    ({"ip": "192.0.2.0/24"}, lambda e: False),
    (
        {"user": "bob", "status": "4xx", "method": "GET"},
        lambda e: e.user == "bob" and 400 <= e.status < 500 and e.method == "GET",
    ),
]


@pytest.mark.parametrize(("filters", "matches"), FILTERS, ids=[str(f[0]) for f in FILTERS])
def test_each_filter_returns_exactly_the_matching_events(
    seeded: Seeded, filters: dict[str, Any], matches: Callable[[Event], bool]
) -> None:
    rows = walk(seeded.store, search(**filters).model_copy(update={"limit": 50}))
    expected = {(e.source, e.position) for e in in_window(seeded) if matches(e)}
    assert len(rows) == len(expected)
    assert {identity(r) for r in rows} == expected


@pytest.mark.parametrize("kind", ["brute_force", "bola", "injection", "token_misuse"])
def test_kind_lists_the_evidence_of_findings_of_that_kind(seeded: Seeded, kind: str) -> None:
    evidence = {rid for f in seeded.findings if f.kind == kind for rid in f.evidence}
    rows = search_events(seeded.store, search(kind=kind)).rows
    expected = {(e.source, e.position) for e in in_window(seeded) if e.request_id in evidence}
    assert {identity(r) for r in rows} == expected
    assert bool(rows) == (kind != "token_misuse")


def test_since_is_inclusive_and_until_exclusive(seeded: Seeded) -> None:
    first = min(e.ts for e in in_window(seeded))
    assert first == SINCE.timestamp()
    ids = {r["request_id"] for r in walk(seeded.store, search())}
    assert "req-0000" in ids
    assert not {"req-early", "req-late"} & ids
    wider = EventSearch(since=SINCE - timedelta(seconds=1), until=UNTIL + timedelta(seconds=1))
    assert {"req-early", "req-late"} <= {r["request_id"] for r in walk(seeded.store, wider)}


def test_rows_are_json_with_utc_timestamps_and_readable_addresses(seeded: Seeded) -> None:
    page = search_events(seeded.store, search(ip="2001:db8::/32", limit=3))
    assert len(page.rows) == 3 and page.next_cursor is not None
    row = page.rows[0]
    assert ISO_Z.fullmatch(row["ts"])
    assert ipaddress.ip_address(row["client_ip"]).version == 6
    assert set(row) >= {"request_id", "method", "path", "route", "status", "user", "api_key"}
    assert orjson.loads(orjson.dumps(page.rows)) == page.rows
    v4 = search_events(seeded.store, search(ip="203.0.113.9", limit=1)).rows[0]
    assert v4["client_ip"] == "203.0.113.9"  # not ::ffff:203.0.113.9


BAD_INPUT: list[tuple[dict[str, Any], str]] = [
    ({"ip": "10.0.0.0/7"}, "ip"),
    ({"ip": "::/31"}, "ip"),
    ({"ip": "not-an-ip"}, "ip"),
    ({"ip": "10.0.0.1; DROP TABLE events"}, "ip"),
    ({"status": 99}, "status"),
    ({"status": 600}, "status"),
    ({"status": "6xx"}, "status"),
    ({"status": "4x"}, "status"),
    ({"status": True}, "status"),
    ({"method": "BREW"}, "method"),
    ({"kind": "not_a_kind"}, "kind"),
    ({"user": "x" * 257}, "user"),
    ({"user": ""}, "user"),
    ({"route": "/a\x00b"}, "route"),
    ({"api_key": "fp:1\n2"}, "api_key"),
    ({"limit": 0}, "limit"),
    ({"limit": 1001}, "limit"),
    ({"cursor": "not a cursor"}, "cursor"),
    ({"cursor": "WzEsMl0"}, "cursor"),  # [1,2]: the shape of a finding cursor
    ({"since": "2024-03-12T08:00:00"}, "since"),  # no time zone
    ({"until": SINCE - timedelta(seconds=1)}, "until"),
    ({"until": SINCE + timedelta(days=31, seconds=1)}, "until"),
    ({"path": "/x"}, "path"),  # unknown fields are refused
]


@pytest.mark.parametrize(("override", "field"), BAD_INPUT, ids=[b[1] for b in BAD_INPUT])
def test_bad_input_is_refused_naming_the_field(override: dict[str, Any], field: str) -> None:
    values: dict[str, Any] = {"since": SINCE, "until": UNTIL, **override}
    with pytest.raises(ValidationError) as caught:
        EventSearch(**values)
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


def walk_findings(store: Store, q: FindingSearch) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    page: Page | None = None
    while page is None or page.next_cursor is not None:
        cursor = page.next_cursor if page is not None else None
        page = search_findings(store, q.model_copy(update={"cursor": cursor}))
        rows += page.rows
    return rows


def findings_search(**filters: Any) -> FindingSearch:
    return FindingSearch(since=SINCE, until=UNTIL, **filters)


def test_finding_paging_walks_the_latest_version_of_each_once(seeded: Seeded) -> None:
    rows = walk_findings(seeded.store, findings_search(limit=4))
    assert sorted(r["id"] for r in rows) == sorted(f.id for f in seeded.findings)
    first = next(r for r in rows if r["id"] == "f-0001")
    assert first["summary"] == "brute_force #1"  # not the older version
    assert first["evidence_count"] == len(seeded.findings[0].evidence)
    assert all(ISO_Z.fullmatch(r[c]) for r in rows for c in ("detected_ts", "first_ts"))
    assert_newest_first([(r["detected_ts"], r["id"]) for r in rows])


@pytest.mark.parametrize(
    "filters",
    [
        {"kind": "injection"},
        {"severity": "low"},
        {"entity_type": "user"},
        {"entity": IPS[2]},
        {"kind": "brute_force", "severity": Severity.CRITICAL, "entity_type": EntityType.IP},
    ],
)
def test_finding_filters_return_exactly_the_matching_findings(
    seeded: Seeded, filters: dict[str, Any]
) -> None:
    rows = walk_findings(seeded.store, findings_search(limit=7, **filters))
    expected = {
        f.id
        for f in seeded.findings
        if all(str(getattr(f, name)) == str(value) for name, value in filters.items())
    }
    assert expected and {r["id"] for r in rows} == expected


def test_finding_search_refuses_bad_input_naming_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        findings_search(severity="urgent", cursor="WzEsIngiLCJ5Iiw0XQ")
    assert {error["loc"] for error in caught.value.errors()} == {("severity",), ("cursor",)}
