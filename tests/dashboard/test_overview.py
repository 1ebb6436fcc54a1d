"""The overview API over a real store: continuous buckets, rates, failed auth, findings
per kind, top actors, open alerts, and refusals of bad windows.

The clock is fixed three days back, on an hour, so the buckets are known and the
fixture's own seed (stored "now") stays outside every window.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dashboard.routes.overview import clock
from gatewatch.finding import EntityType, Finding, Severity
from gatewatch.store.client import Store
from tests.dashboard.conftest import Dashboard
from tests.detectors.events import make_event

T = (int(time.time()) // 3600 - 72) * 3600  # "now" for the API: an hour boundary
ATTACKER, OTHER = "203.0.113.50", "198.51.100.60"


def at(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _finding(fid: str, kind: str, severity: Severity, entity_type: EntityType, entity: str,
             detected: float, evidence: int = 1) -> Finding:  # fmt: skip
    return Finding(
        id=fid, kind=kind, severity=severity, score=0.8, entity_type=entity_type,
        entity=entity, first_ts=detected - 30, last_ts=detected + evidence, detected_ts=detected,
        summary=f"{kind} by {entity}", evidence=tuple(f"r{i}" for i in range(evidence)),
    )  # fmt: skip


def _seed(store: Store) -> None:
    events = [make_event(ts=T - 600 + i, client_ip=OTHER) for i in range(30)]
    events += [
        make_event(ts=T - 120 + i, client_ip=ATTACKER, status=401 if i < 6 else 403 if i < 9
                   else 200)
        for i in range(12)
    ]  # fmt: skip
    events += [make_event(ts=T - 3600), make_event(ts=T - 3600.001), make_event(ts=T)]
    store.insert_events(events)
    findings = [
        _finding("f-ov1", "brute_force", Severity.MEDIUM, EntityType.IP, ATTACKER, T - 310),
        _finding("f-ov2", "brute_force", Severity.HIGH, EntityType.IP, ATTACKER, T - 100),
        _finding("f-ov3", "credential_stuffing", Severity.CRITICAL, EntityType.USER, "bob",
                 T - 100),
        _finding("f-ov4", "endpoint_scanning", Severity.LOW, EntityType.IP, OTHER, T - 500),
        _finding("f-ov5", "endpoint_scanning", Severity.HIGH, EntityType.IP, OTHER, T - 7200),
    ]  # fmt: skip
    store.insert_findings(findings)
    # A later version of f-ov2 (more evidence): still one finding.
    store.insert_findings([_finding("f-ov2", "brute_force", Severity.HIGH, EntityType.IP,
                                    ATTACKER, T - 100, evidence=5)])  # fmt: skip
    alert: dict[str, Any] = {"version": 1, "state": "open", "opened_ts": T, "updated_ts": T}
    store.insert_rows("alerts", [
        {**alert, "id": "a-crit", "severity": "critical"},
        {**alert, "id": "a-low", "severity": "low"},
        {**alert, "id": "a-gone", "severity": "medium"},
        {**alert, "id": "a-gone", "severity": "medium", "version": 2, "state": "closed"},
    ])  # fmt: skip


@pytest.fixture
def viewer(dashboard: Dashboard) -> TestClient:
    _seed(dashboard.store)
    app = cast(FastAPI, dashboard.app_client.app)
    app.dependency_overrides[clock] = lambda: datetime.fromtimestamp(T, UTC)
    return dashboard.login("vic")


def _values(series: list[dict[str, Any]]) -> dict[str, float]:
    return {point["t"]: point["value"] for point in series}


def test_an_hour_in_minutes_has_every_bucket_with_rates_and_failed_auth(
    viewer: TestClient,
) -> None:
    body = viewer.get("/api/v1/overview").json()
    assert body["window"] == {"since": at(T - 3600), "until": at(T), "bucket_s": 60}
    starts = [at(T - 3600 + 60 * i) for i in range(60)]
    for series in (body["events_per_s"], body["failed_auth_per_min"]):
        assert [p["t"] for p in series] == starts  # continuous, oldest first
    rate = _values(body["events_per_s"])
    expected = {at(T - 3600): 1 / 60, at(T - 600): 30 / 60, at(T - 120): 12 / 60}
    assert rate == pytest.approx({t: expected.get(t, 0.0) for t in starts})
    failed = _values(body["failed_auth_per_min"])
    assert failed == {t: 9.0 if t == at(T - 120) else 0.0 for t in starts}
    assert body["totals"] == {"events": 43, "failed_auth": 9, "findings": 4}


def test_findings_per_kind_are_counted_once_per_finding_in_their_bucket(
    viewer: TestClient,
) -> None:
    body = viewer.get("/api/v1/overview?minutes=30&bucket=5m").json()
    assert body["window"]["bucket_s"] == 300
    by_kind = {kind: _values(series) for kind, series in body["findings_by_kind"].items()}
    starts = [at(T - 1800 + 300 * i) for i in range(6)]
    assert set(by_kind) == {"brute_force", "credential_stuffing", "endpoint_scanning"}
    assert by_kind["brute_force"] == {t: 1 if t in (at(T - 300), at(T - 600)) else 0
                                      for t in starts}  # fmt: skip
    assert by_kind["credential_stuffing"] == {t: int(t == at(T - 300)) for t in starts}
    assert by_kind["endpoint_scanning"] == {t: int(t == at(T - 600)) for t in starts}
    rate = _values(body["events_per_s"])
    assert rate[at(T - 600)] == pytest.approx(30 / 300)
    assert rate[at(T - 300)] == pytest.approx(12 / 300)
    assert _values(body["failed_auth_per_min"])[at(T - 300)] == pytest.approx(9 * 60 / 300)


def test_top_actors_rank_by_findings_then_severity(viewer: TestClient) -> None:
    actors = viewer.get("/api/v1/overview").json()["top_actors"]
    assert actors == [
        {"entity_type": "ip", "entity": ATTACKER, "findings": 2, "worst_severity": "high",
         "last_seen": at(T - 95)},
        {"entity_type": "user", "entity": "bob", "findings": 1, "worst_severity": "critical",
         "last_seen": at(T - 99)},
        {"entity_type": "ip", "entity": OTHER, "findings": 1, "worst_severity": "low",
         "last_seen": at(T - 499)},
    ]  # fmt: skip


def test_open_alerts_count_the_latest_version_of_each(viewer: TestClient) -> None:
    # The fixture's own alert (high) is open too; "a-gone" was closed by its version 2.
    assert viewer.get("/api/v1/overview").json()["open_alerts"] == {
        "critical": 1, "high": 1, "medium": 0, "low": 1,
    }  # fmt: skip


def test_a_day_defaults_to_quarter_hours_and_the_filling_bucket_is_a_true_rate(
    dashboard: Dashboard, viewer: TestClient
) -> None:
    day = viewer.get("/api/v1/overview?minutes=1440").json()
    assert day["window"]["bucket_s"] == 900 and len(day["events_per_s"]) == 96
    assert day["totals"]["findings"] == 5
    dashboard.store.insert_events([make_event(ts=T + i / 2) for i in range(61)])
    app = cast(FastAPI, dashboard.app_client.app)
    app.dependency_overrides[clock] = lambda: datetime.fromtimestamp(T + 30.5, UTC)
    body = viewer.get("/api/v1/overview?minutes=5").json()
    assert body["window"] == {"since": at(T - 300), "until": at(T + 30.5), "bucket_s": 60}
    last = body["events_per_s"][-1]
    assert len(body["events_per_s"]) == 6
    assert last == {"t": at(T), "value": pytest.approx(62 / 30.5)}  # 61 + the one at T


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("minutes=4", "minutes"),
        ("minutes=1441", "minutes"),
        ("bucket=2m", "bucket"),
        ("minutes=1440&bucket=1m", "bucket"),  # 1440 points
    ],
)
def test_bad_windows_are_refused_naming_the_field(
    dashboard: Dashboard, query: str, field: str
) -> None:
    response = dashboard.login("vic").get(f"/api/v1/overview?{query}")
    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith(f"{field}:")


def test_the_overview_needs_a_login(dashboard: Dashboard) -> None:
    response = dashboard.app_client.get("/api/v1/overview")
    assert response.status_code == 401
    assert response.json() == {"error": "authentication required"}
