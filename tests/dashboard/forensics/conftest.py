"""One seeded database for the forensic tests: a few hundred events (IPv4 and IPv6
clients, ties on the timestamp, a replayed batch, formula-looking user agents) and
findings whose evidence points at some of them. Read-only tests share it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from gatewatch.event import Event
from gatewatch.finding import EntityType, Finding, Severity
from gatewatch.store.client import Store

# Recent enough to outlive the tables' retention TTL; whole seconds, so exact in ms.
BASE = float(int(time.time()) - 3 * 86_400)
SINCE = datetime.fromtimestamp(BASE, UTC)
UNTIL = SINCE + timedelta(hours=3)

IPS = ("198.51.100.7", "198.51.100.200", "203.0.113.9", "2001:db8::1", "2001:db8::ff", "10.9.8.7")
USERS = ("alice", "bob", "carol", "")
ROUTES = ("/api/v1/users/{id}", "/api/v1/auth/login", "/api/v1/orders/{id}")
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
STATUSES = (200, 201, 401, 403, 404, 500, 302)
AGENTS = ("curl/8.5", '=HYPERLINK("http://evil.example")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)")


@dataclass(frozen=True)
class Seeded:
    store: Store
    events: list[Event]  # every distinct stored event (replays collapse into these)
    findings: list[Finding]  # the latest version of each


def make_events() -> list[Event]:
    events = [
        Event(
            request_id=f"req-{i:04d}",
            ts=BASE + (i // 2) * 31,  # pairs share a timestamp
            client_ip=IPS[i % len(IPS)],
            method=METHODS[(i // 3) % len(METHODS)],
            path=f"/api/v1/users/{i}",
            route=ROUTES[i % len(ROUTES)],
            status=STATUSES[i % len(STATUSES)],
            latency_ms=1.5 * (i % 10),
            request_bytes=i,
            response_bytes=10 * i,
            user_agent=AGENTS[i % len(AGENTS)],
            user=USERS[i % len(USERS)],
            api_key=f"fp:{i % 3:016x}" if i % 5 else "",
            source="gateway.log",
            position=i,
        )
        for i in range(300)
    ]
    # Distinct events that tie on (ts, request_id): only the source tells them apart.
    events += [events[10]._replace(source=f"replica-{n}.log", position=1000 + n) for n in range(3)]
    # Just outside the window on each side (until is exclusive).
    events.append(events[0]._replace(request_id="req-early", ts=BASE - 0.001, position=5000))
    events.append(events[0]._replace(request_id="req-late", ts=UNTIL.timestamp(), position=5001))
    return events


def make_findings(events: list[Event]) -> list[Finding]:
    def finding(n: int, kind: str, evidence: list[Event], **fields: object) -> Finding:
        values: dict[str, object] = {
            "id": f"f-{n:04d}",
            "kind": kind,
            "severity": Severity.HIGH,
            "score": 0.9,
            "entity_type": EntityType.IP,
            "entity": evidence[0].client_ip,
            "first_ts": min(e.ts for e in evidence),
            "last_ts": max(e.ts for e in evidence),
            "detected_ts": max(e.ts for e in evidence),
            "summary": f"{kind} #{n}",
            "evidence": tuple(e.request_id for e in evidence),
        }
        values.update(fields)
        return Finding(**values)  # type: ignore[arg-type]

    in_window = events[:300]
    brute = [e for e in in_window if e.status == 401 and e.client_ip == IPS[2]]
    bola = [e for e in in_window if e.route == ROUTES[0] and e.user == "alice"][:12]
    findings = [
        finding(1, "brute_force", brute, severity=Severity.CRITICAL, score=1.0),
        finding(2, "bola", bola, entity_type=EntityType.USER, entity="alice"),
    ]
    for n in range(3, 40):
        evidence = [in_window[(n * 7) % 300]]
        findings.append(
            finding(
                n,
                ("endpoint_scanning", "user_enumeration", "injection")[n % 3],
                evidence,
                severity=(Severity.LOW, Severity.MEDIUM, Severity.HIGH)[n % 3],
                detected_ts=evidence[0].ts + (n % 4),  # some detected at the same ms
            )
        )
    return findings


@pytest.fixture(scope="session")
def seeded(shared_store: Store) -> Iterator[Seeded]:
    store = Store(shared_store.dsn, database="t_forensics")
    store.migrate()
    events = make_events()
    findings = make_findings(events)
    store.insert_events(events)
    store.insert_events(events[:40])  # a replay: the same lines again, collapsed by FINAL
    store.insert_findings([replace(findings[0], summary="an older version")])
    store.insert_findings(findings)  # newer versions win
    yield Seeded(store, events, findings)
    store.command("DROP DATABASE IF EXISTS t_forensics")
    store.close()
