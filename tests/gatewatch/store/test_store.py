from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from gatewatch.event import DeadLetter, Event
from gatewatch.finding import EntityType, Finding, Severity
from gatewatch.store.client import Store, _safe_dsn
from gatewatch.store.queries import (
    FINDING_COLUMNS,
    TimeRange,
    actor_activity,
    failed_auth_over_time,
    recent_findings,
    top_talkers,
)
from gatewatch.store.writer import BatchWriter

NOW = time.time()


def event(i: int, **fields: object) -> Event:
    base: dict[str, object] = {
        "request_id": f"r{i}",
        "ts": NOW - 600 + i,
        "client_ip": "198.51.100.7",
        "method": "GET",
        "path": f"/users/{i}",
        "route": "/users/{id}",
        "status": 200,
        "source": "test.log",
        "position": i,
    }
    base.update(fields)
    return Event(**base)  # type: ignore[arg-type]


def window() -> TimeRange:
    now = datetime.now(UTC)
    return TimeRange(now - timedelta(hours=1), now + timedelta(minutes=1))


def test_migrations_are_versioned_and_idempotent(store: Store) -> None:
    assert store.migrate() == []
    tables = {row[0] for row in store.query(f"SHOW TABLES FROM {store.database}")}
    assert {
        "events",
        "dead_letters",
        "findings",
        "alert_triage",
        "audit_log",
        "detector_checkpoints",
    } <= tables
    versions = store.query(f"SELECT version FROM {store.database}.schema_migrations")
    assert sorted(versions) == [(1,), (2,), (3,), (4,), (5,)]


def test_events_round_trip_every_column(store: Store) -> None:
    e = event(
        1,
        client_ip="2001:db8::7",
        scheme="https",
        host="api.example.com",
        query="q=1&api_key=fp:0123456789abcdef",
        status=401,
        latency_ms=12.5,
        request_bytes=321,
        response_bytes=4567,
        user_agent="curl/8.5",
        user="alice",
        api_key="fp:0123456789abcdef",
        tls_version="TLSv1.3",
        body='{"a":1}',
        headers={"referer": "https://x", "authorization": "Bearer fp:1"},
    )
    store.insert_events([e, event(2)])
    rows = store.query(
        f"SELECT toUnixTimestamp64Milli(ts), toString(client_ip), request_id, method, scheme, "
        f"host, path, route, query, status, latency_ms, request_bytes, response_bytes, "
        f"user_agent, user, api_key, tls_version, body, headers, source, position "
        f"FROM {store.database}.events ORDER BY position"
    )
    assert rows[0] == (
        round(e.ts * 1000),
        "2001:db8::7",
        "r1",
        "GET",
        "https",
        "api.example.com",
        "/users/1",
        "/users/{id}",
        "q=1&api_key=fp:0123456789abcdef",
        401,
        12.5,
        321,
        4567,
        "curl/8.5",
        "alice",
        "fp:0123456789abcdef",
        "TLSv1.3",
        '{"a":1}',
        {"referer": "https://x", "authorization": "Bearer fp:1"},
        "test.log",
        1,
    )
    assert rows[1][1] == "::ffff:198.51.100.7"  # IPv4 stored mapped into IPv6


def test_replayed_rows_collapse(store: Store) -> None:
    batch = [event(i) for i in range(100)]
    store.insert_events(batch)
    store.insert_events(batch[:50])  # an at-least-once replay
    assert store.count("events") == 100


def test_dead_letters_round_trip(store: Store) -> None:
    dead = DeadLetter(
        source="x.log",
        position=7,
        format="auto",
        reason="not JSON",
        raw="{trunc",
        raw_size=6,
        received_ts=NOW,
    )
    store.insert_dead_letters([dead, dead])
    assert store.count("dead_letters") == 1
    assert store.query(
        f"SELECT reason, raw, raw_size FROM {store.database}.dead_letters FINAL"
    ) == [("not JSON", "{trunc", 6)]


def test_batch_writer_bounds_by_rows_and_time(store: Store) -> None:
    clock = [0.0]
    writer = BatchWriter(store, max_rows=10, max_seconds=2.0, clock=lambda: clock[0])
    for i in range(25):
        writer.add_event(event(i))
    assert writer.events_written == 20 and writer.pending == 5
    clock[0] = 1.0
    writer.tick()
    assert writer.pending == 5
    clock[0] = 2.5
    writer.tick()
    assert writer.pending == 0 and writer.events_written == 25
    assert store.count("events") == 25


def test_batch_writer_takes_a_consumed_batch_at_once(store: Store) -> None:
    writer = BatchWriter(store, max_rows=10, max_seconds=60.0, clock=lambda: 0.0)
    writer.add_events([event(i) for i in range(4)])
    writer.add_events([])
    assert writer.pending == 4 and writer.events_written == 0
    writer.add_events([event(i) for i in range(4, 12)])
    assert writer.pending == 0 and writer.events_written == 12
    assert store.count("events") == 12


def test_forensic_queries(store: Store) -> None:
    events = [
        event(i, client_ip="198.51.100.7", user="alice", status=401 if i % 3 == 0 else 200)
        for i in range(30)
    ] + [
        event(100 + i, client_ip="203.0.113.9", api_key="fp:feedfacefeedface", route="/orders/{id}")
        for i in range(5)
    ]
    store.insert_events(events)
    by_ip = actor_activity(store, "ip", "198.51.100.7", window())
    assert len(by_ip) == 30 and by_ip[0][1] == "198.51.100.7"
    assert [row[10] for row in by_ip] == [f"r{i}" for i in range(30)]  # oldest first
    assert len(actor_activity(store, "user", "alice", window(), limit=7)) == 7
    by_key = actor_activity(store, "api_key", "fp:feedfacefeedface", window())
    assert {row[1] for row in by_key} == {"203.0.113.9"}
    talkers = top_talkers(store, window())
    assert ("/users/{id}", "198.51.100.7", 30, 10) in talkers
    assert ("/orders/{id}", "203.0.113.9", 5, 0) in talkers
    failed = failed_auth_over_time(store, window(), bucket="1h")
    assert sum(row[1] for row in failed) == 10
    with pytest.raises(ValueError, match="bucket"):
        failed_auth_over_time(store, window(), bucket="7s")


def test_query_parameters_are_bound_not_spliced(store: Store) -> None:
    store.insert_events([event(1, user="alice")])
    assert actor_activity(store, "user", "x' OR 1=1 --", window()) == []
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6"):
        actor_activity(store, "ip", "1.1.1.1' OR 1=1", window())


def test_retention_follows_configuration(store: Store) -> None:
    shorter = Store(store.dsn, database=store.database, retention_days=7)
    shorter.migrate()
    ddl = store.query(
        "SELECT create_table_query FROM system.tables WHERE database = %(d)s AND name = 'events'",
        {"d": store.database},
    )[0][0]
    assert "toIntervalDay(7)" in ddl


def test_passwords_are_hidden_in_dsn_messages() -> None:
    assert _safe_dsn("https://gw:s3cret@ch.example:8443/") == "https://gw:***@ch.example:8443/"


def _finding(summary: str, now: float, last_ts: float, evidence: tuple[str, ...]) -> Finding:
    return Finding(
        id="f-1",
        kind="brute_force",
        severity=Severity.HIGH,
        score=0.9,
        entity_type=EntityType.IP,
        entity="203.0.113.9",
        first_ts=now - 60,
        last_ts=last_ts,
        detected_ts=now - 30,
        summary=summary,
        evidence=evidence,
        owasp="API2:2023",
        mitre="T1110.001",
        extra={"failures": 42},
    )


def test_finding_updates_replace_the_earlier_version(store: Store) -> None:
    now = time.time()
    writer = BatchWriter(store, max_rows=100, max_seconds=60)
    writer.add_finding(_finding("12 failures", now, now - 20, ("a", "b")))
    writer.flush()
    writer.add_finding(_finding("42 failures", now, now - 5, ("a", "b", "c")))
    writer.flush()
    assert writer.findings_written == 2
    rows = recent_findings(store, window())
    assert len(rows) == 1
    row = dict(zip(FINDING_COLUMNS, rows[0], strict=True))
    assert row["summary"] == "42 failures" and row["evidence_count"] == 3
    assert row["kind"] == "brute_force" and row["entity"] == "203.0.113.9"
    assert recent_findings(store, window(), kind="bola") == []
    assert len(recent_findings(store, window(), entity="203.0.113.9")) == 1
