"""The dashboard's JSON API and pages through real HTTP handling: authentication,
roles, CSRF, triage, suppressions, actors, bad input, audit."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.dashboard.conftest import ATTACKER, PASSWORD, Dashboard, csrf_field, session_csrf


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/alerts"),
        ("GET", "/api/v1/alerts/a-00000000000000000000"),
        ("POST", "/api/v1/alerts/a-00000000000000000000/triage"),
        ("GET", "/api/v1/suppressions"),
        ("POST", "/api/v1/suppressions"),
        ("GET", f"/api/v1/actors/ip/{ATTACKER}"),
    ],
)
def test_nothing_but_health_metrics_and_login_without_auth(
    dashboard: Dashboard, method: str, path: str
) -> None:
    client = dashboard.app_client
    response = client.request(method, path, json={})
    assert response.status_code == 401
    assert response.json() == {"error": "authentication required"}
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/metrics").status_code == 200
    assert client.get("/login").status_code == 200


def test_every_response_carries_the_security_headers(dashboard: Dashboard) -> None:
    for path in ("/login", "/healthz", "/api/v1/alerts", "/static/app.css"):
        headers = dashboard.app_client.get(path).headers
        csp = headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "script-src 'self'" in csp, path
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert "strict-transport-security" not in headers  # plain HTTP on 127.0.0.1


def test_login_sets_a_strict_http_only_session_and_shows_the_alert(dashboard: Dashboard) -> None:
    client = TestClient(dashboard.app_client.app, base_url="http://127.0.0.1")
    token = csrf_field(client.get("/login").text)
    response = client.post(
        "/login",
        data={"username": "ana", "password": PASSWORD, "csrf": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "gw_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = client.get("/")
    assert page.status_code == 200
    assert f"brute_force from ip {ATTACKER}" in page.text
    assert "ana (analyst)" in page.text


def test_a_wrong_password_or_a_forged_form_does_not_log_in(dashboard: Dashboard) -> None:
    client = TestClient(dashboard.app_client.app, base_url="http://127.0.0.1")
    token = csrf_field(client.get("/login").text)
    wrong = client.post("/login", data={"username": "ana", "password": "nope", "csrf": token})
    assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
    forged = TestClient(dashboard.app_client.app, base_url="http://127.0.0.1")
    response = forged.post("/login", data={"username": "ana", "password": PASSWORD, "csrf": "x"})
    assert response.status_code == 400
    odd = forged.post("/login", data={"username": "ana", "password": PASSWORD, "csrf": "ü"})
    assert odd.status_code == 400
    assert "gw_session" not in response.headers.get("set-cookie", "")


def test_repeated_failures_lock_the_account_even_for_the_right_password(
    dashboard: Dashboard,
) -> None:
    client = TestClient(dashboard.app_client.app, base_url="http://127.0.0.1")
    for _ in range(3):
        token = csrf_field(client.get("/login").text)
        client.post("/login", data={"username": "vic", "password": "guess", "csrf": token})
    token = csrf_field(client.get("/login").text)
    locked = client.post("/login", data={"username": "vic", "password": PASSWORD, "csrf": token})
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0


def test_changes_need_the_session_csrf_token(dashboard: Dashboard) -> None:
    client = dashboard.login("ana")
    path = f"/api/v1/alerts/{dashboard.alert_id}/triage"
    refused = client.post(path, json={"action": "acknowledge"})
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    odd = client.post(path, json={"action": "acknowledge"}, headers={b"X-CSRF-Token": b"\xe9\xff"})
    assert odd.status_code == 403
    headers = {"X-CSRF-Token": session_csrf(client)}
    assert client.post(path, json={"action": "acknowledge"}, headers=headers).status_code == 201


def test_triage_acknowledge_assign_comment_resolve(dashboard: Dashboard) -> None:
    client = dashboard.login("ana")
    headers = {"X-CSRF-Token": session_csrf(client)}
    path = f"/api/v1/alerts/{dashboard.alert_id}/triage"
    for body in (
        {"action": "acknowledge"},
        {"action": "assign", "assignee": "ada"},
        {"action": "comment", "comment": "blocked at the WAF"},
    ):
        assert client.post(path, json=body, headers=headers).status_code == 201, body
    [listed] = client.get("/api/v1/alerts").json()
    assert listed["status"] == "acknowledged" and listed["assignee"] == "ada"
    client.post(path, json={"action": "resolve"}, headers=headers)
    detail = client.get(f"/api/v1/alerts/{dashboard.alert_id}").json()
    assert detail["status"] == "resolved"
    [finding] = detail["findings"]
    assert finding["kind"] == "brute_force" and finding["entity"] == ATTACKER
    assert finding["evidence"] == 30 and finding["mitre"] == "T1110.001"
    assert [t["action"] for t in detail["triage"]] == [
        "acknowledge", "assign", "comment", "resolve",
    ]  # fmt: skip
    assert detail["triage"][2]["comment"] == "blocked at the WAF"
    assert detail["triage"][0]["analyst"] == "ana"


def test_a_false_positive_suppresses_the_actor_with_an_expiry(dashboard: Dashboard) -> None:
    client = dashboard.login("ana")
    headers = {"X-CSRF-Token": session_csrf(client)}
    done = client.post(
        f"/api/v1/alerts/{dashboard.alert_id}/triage",
        json={"action": "false_positive", "comment": "our load test", "suppress_hours": 48},
        headers=headers,
    )
    assert done.status_code == 201
    rule_id = done.json()["suppression_id"]
    [rule] = client.get("/api/v1/suppressions").json()
    assert rule["id"] == rule_id
    assert (rule["entity"], rule["kind"], rule["reason"]) == (
        ATTACKER,
        "brute_force",
        "our load test",
    )
    assert rule["created_by"] == "ana"
    assert 47.9 * 3600 < rule["expires_ts"] - rule["created_ts"] <= 48 * 3600
    removed = client.delete(f"/api/v1/suppressions/{rule_id}", headers=headers)
    assert removed.status_code == 204
    assert client.get("/api/v1/suppressions").json() == []


def test_roles_viewers_read_analysts_triage(dashboard: Dashboard) -> None:
    viewer = dashboard.login("vic")
    path = f"/api/v1/alerts/{dashboard.alert_id}/triage"
    assert viewer.get("/api/v1/alerts").status_code == 200
    refused = viewer.post(
        path, json={"action": "acknowledge"}, headers={"X-CSRF-Token": session_csrf(viewer)}
    )
    assert refused.status_code == 403 and "analyst" in refused.json()["error"]


def test_api_tokens_authenticate_and_are_capped_by_their_scope(dashboard: Dashboard) -> None:
    read_only, _ = dashboard.users.create_token(
        "ana", scopes=frozenset({"read"}), expires_in_s=3600, label="grafana"
    )
    triage, _ = dashboard.users.create_token(
        "ana", scopes=frozenset({"triage"}), expires_in_s=3600, label="soar"
    )
    client = dashboard.app_client
    path = f"/api/v1/alerts/{dashboard.alert_id}/triage"
    as_reader = {"Authorization": f"Bearer {read_only}"}
    assert client.get("/api/v1/alerts", headers=as_reader).status_code == 200
    assert client.post(path, json={"action": "acknowledge"}, headers=as_reader).status_code == 403
    as_soar = {"Authorization": f"Bearer {triage}"}  # no CSRF: a token is not a cookie
    assert client.post(path, json={"action": "acknowledge"}, headers=as_soar).status_code == 201
    wrong = {"Authorization": f"Bearer {triage[:-2]}xx"}
    assert client.get("/api/v1/alerts", headers=wrong).status_code == 401


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/alerts?limit=0", "limit"),
        ("/api/v1/alerts?state=pending", "state"),
        ("/api/v1/alerts?kind=sql_injection_maybe", "kind"),
        ("/api/v1/alerts/not-an-id", "alert_id"),
        ("/api/v1/actors/ip/not-an-address", "value"),
        ("/api/v1/actors/host/x", "kind"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(dashboard: Dashboard, path: str, field: str) -> None:
    response = dashboard.login("vic").get(path)
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]


def test_bad_triage_bodies_are_refused_with_a_message(dashboard: Dashboard) -> None:
    client = dashboard.login("ana")
    headers = {"X-CSRF-Token": session_csrf(client)}
    path = f"/api/v1/alerts/{dashboard.alert_id}/triage"
    for body, words in (
        ({"action": "assign"}, "assignee"),
        ({"action": "assign", "assignee": "nobody"}, "no user"),
        ({"action": "comment", "comment": "  "}, "comment"),
        ({"action": "delete"}, "action"),
        ({"action": "acknowledge", "extra": 1}, "extra"),
    ):
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 422, body
        assert words in response.json()["error"], (body, response.json())
    missing = client.post(
        "/api/v1/alerts/a-00000000000000000000/triage", json={"action": "acknowledge"},
        headers=headers,
    )  # fmt: skip
    assert missing.status_code == 404


def test_an_oversized_body_is_refused(dashboard: Dashboard) -> None:
    client = dashboard.login("ana")
    headers = {"X-CSRF-Token": session_csrf(client)}
    huge = {"action": "comment", "comment": "x" * (2 * 1024 * 1024)}
    response = client.post(
        f"/api/v1/alerts/{dashboard.alert_id}/triage", json=huge, headers=headers
    )
    assert response.status_code == 413


def test_the_actor_page_data_shows_what_the_ip_did(dashboard: Dashboard) -> None:
    actor = dashboard.login("vic").get(f"/api/v1/actors/ip/{ATTACKER}").json()
    assert len(actor["requests"]) == 30
    assert actor["status_mix"] == {"4xx": 30}
    assert actor["paths"] == [{"path": "/api/v1/auth/login", "requests": 30}]
    assert [f["kind"] for f in actor["findings"]] == ["brute_force"]


def test_views_queries_and_changes_are_audited(dashboard: Dashboard) -> None:
    client = dashboard.login("ana")
    client.post(
        f"/api/v1/alerts/{dashboard.alert_id}/triage",
        json={"action": "acknowledge"},
        headers={"X-CSRF-Token": session_csrf(client)},
    )
    gw = client.app.state.gw  # type: ignore[attr-defined]
    gw.audit.flush()
    rows = dashboard.store.query(
        f"SELECT principal, action, target FROM {dashboard.store.database}.audit_log ORDER BY ts"
    )
    actions = [(who, action) for who, action, _ in rows]
    assert ("ana", "login") in actions
    assert ("ana", "view_overview") in actions
    assert ("ana", "alert_acknowledge") in actions
    assert PASSWORD not in str(rows)


def test_the_openapi_schema_documents_the_api(dashboard: Dashboard) -> None:
    assert dashboard.app_client.get("/api/v1/openapi.json").status_code == 401
    schema = dashboard.login("vic").get("/api/v1/openapi.json").json()
    assert {"/api/v1/alerts", "/api/v1/alerts/{alert_id}/triage", "/api/v1/suppressions"} <= set(
        schema["paths"]
    )
