"""A dashboard over a real embedded store with a few users, an alert and its actor's
requests; clients log in through the real login form."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from alerts.grouping import AlertManager
from alerts.model import Notice
from alerts.policy import AlertPolicy
from dashboard.app import create_app
from dashboard.auth.store import AuthStore, Role
from gatewatch.finding import EntityType, Finding, Severity
from gatewatch.settings import Settings, load_settings
from gatewatch.store.client import Store
from tests.detectors.events import make_event

PASSWORD = "correct horse battery staple"
ATTACKER = "203.0.113.9"


@dataclass
class Dashboard:
    app_client: TestClient
    users: AuthStore
    store: Store
    alert_id: str
    settings: Settings

    def login(self, name: str, password: str = PASSWORD) -> TestClient:
        """A fresh client with its own cookies, logged in as ``name``."""
        client = TestClient(self.app_client.app, base_url="http://127.0.0.1")
        page = client.get("/login")
        token = csrf_field(page.text)
        done = client.post(
            "/login",
            data={"username": name, "password": password, "csrf": token},
            follow_redirects=False,
        )
        assert done.status_code == 303, done.text
        return client


def csrf_field(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def session_csrf(client: TestClient) -> str:
    """The CSRF token of a logged-in client's session (from the page's logout form)."""
    return csrf_field(client.get("/").text)


def _seed(store: Store) -> str:
    now = time.time()
    events = [
        make_event(ts=now - 60 + i, client_ip=ATTACKER, path="/api/v1/auth/login",
                   route="/api/v1/auth/login", method="POST", status=401, user="alice")
        for i in range(30)
    ]  # fmt: skip
    store.insert_events(events)
    finding = Finding(
        id="f-dash000000000000001",
        kind="brute_force",
        severity=Severity.HIGH,
        score=1.0,
        entity_type=EntityType.IP,
        entity=ATTACKER,
        first_ts=now - 60,
        last_ts=now - 31,
        detected_ts=now - 50,
        summary=f"{ATTACKER} failed 30 logins for 1 account in 29 s",
        evidence=tuple(e.request_id for e in events),
        owasp="API2:2023",
        mitre="T1110.001",
        detector="brute_force",
    )
    store.insert_findings([finding])
    notices: list[Notice] = []
    AlertManager(AlertPolicy(), notices.append).on_finding(finding)
    alert = notices[0].alert
    store.insert_rows("alerts", [alert.to_row()])
    return alert.id


@pytest.fixture
def dashboard(store: Store, tmp_path: Path) -> Iterator[Dashboard]:
    settings = load_settings(
        None,
        data_dir=str(tmp_path / "data"),
        storage={"dsn": store.dsn, "database": store.database},
        dashboard={"login_max_failures": 3},
    )
    users = AuthStore(tmp_path / "auth.sqlite")
    for name, role in (("ada", Role.ADMIN), ("ana", Role.ANALYST), ("vic", Role.VIEWER)):
        users.add_user(name, PASSWORD, role)
    alert_id = _seed(store)
    app = create_app(settings, store, users=users)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield Dashboard(client, users, store, alert_id, settings)
