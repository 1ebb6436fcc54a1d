"""Forensic search, export and read-only SQL through the API, as an analyst uses them."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import orjson

from tests.dashboard.conftest import ATTACKER, Dashboard, session_csrf


def _window() -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "since": (now - timedelta(hours=1)).isoformat(),
        "until": (now + timedelta(minutes=1)).isoformat(),
    }


def test_search_pages_through_an_ips_events(dashboard: Dashboard) -> None:
    client = dashboard.login("vic")
    params = {**_window(), "ip": ATTACKER, "status": "4xx", "limit": "20"}
    first = client.get("/api/v1/events", params=params).json()
    assert len(first["rows"]) == 20 and first["next_cursor"]
    second = client.get("/api/v1/events", params={**params, "cursor": first["next_cursor"]}).json()
    assert len(second["rows"]) == 10 and second["next_cursor"] is None
    ids = [row["request_id"] for row in first["rows"] + second["rows"]]
    assert len(set(ids)) == 30
    assert {row["client_ip"] for row in first["rows"]} == {ATTACKER}
    cidr = client.get("/api/v1/events", params={**_window(), "ip": "203.0.113.0/24"}).json()
    assert len(cidr["rows"]) == 30
    none = client.get("/api/v1/events", params={**_window(), "ip": ATTACKER, "status": "200"})
    assert none.json()["rows"] == []


def test_search_refuses_bad_parameters_naming_them(dashboard: Dashboard) -> None:
    client = dashboard.login("vic")
    for params, field in (
        ({"ip": ATTACKER}, "since"),
        ({**_window(), "ip": "not-an-ip"}, "ip"),
        ({**_window(), "status": "7xx"}, "status"),
        ({**_window(), "method": "BREW"}, "method"),
        ({**_window(), "cursor": "garbage"}, "cursor"),
        ({**_window(), "nonsense": "1"}, "nonsense"),
    ):
        response = client.get("/api/v1/events", params=params)
        assert response.status_code == 422, (params, response.text)
        assert field in response.json()["error"], (field, response.json())


def test_export_as_csv_and_jsonl(dashboard: Dashboard) -> None:
    client = dashboard.login("vic")
    params = {**_window(), "ip": ATTACKER}
    as_csv = client.get("/api/v1/events/export.csv", params=params)
    assert as_csv.status_code == 200
    assert "attachment" in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(rows) == 30 and rows[0]["client_ip"] == ATTACKER
    as_jsonl = client.get("/api/v1/events/export.jsonl", params=params)
    lines = [orjson.loads(line) for line in as_jsonl.text.splitlines()]
    assert len(lines) == 30 and all(line["status"] == 401 for line in lines)


def test_findings_search(dashboard: Dashboard) -> None:
    client = dashboard.login("vic")
    found = client.get("/api/v1/findings", params={**_window(), "kind": "brute_force"}).json()
    assert [row["entity"] for row in found["rows"]] == [ATTACKER]


def test_analysts_run_read_only_sql(dashboard: Dashboard) -> None:
    client = dashboard.login("ana")
    headers = {"X-CSRF-Token": session_csrf(client)}
    done = client.post(
        "/api/v1/sql",
        json={"sql": "SELECT status, count() AS n FROM events GROUP BY status"},
        headers=headers,
    )
    assert done.status_code == 200, done.text
    assert done.json()["columns"] == ["status", "n"] and done.json()["rows"] == [[401, 30]]
    for sql in (
        "INSERT INTO events (request_id) VALUES ('x')",
        "SELECT * FROM system.users",
        "SELECT 1; DROP TABLE events",
        "SELECT * FROM file('/etc/passwd')",
    ):
        refused = client.post("/api/v1/sql", json={"sql": sql}, headers=headers)
        assert refused.status_code == 400, sql
        assert "Traceback" not in refused.text and refused.json()["error"]
    assert dashboard.store.count("events") == 30
    viewer = dashboard.login("vic")
    denied = viewer.post(
        "/api/v1/sql", json={"sql": "SELECT 1"}, headers={"X-CSRF-Token": session_csrf(viewer)}
    )
    assert denied.status_code == 403
    gw = client.app.state.gw  # type: ignore[attr-defined]
    gw.audit.flush()
    audited = dashboard.store.query(
        f"SELECT detail FROM {dashboard.store.database}.audit_log WHERE action = 'sql'"
    )
    assert ("SELECT status, count() AS n FROM events GROUP BY status",) in audited
