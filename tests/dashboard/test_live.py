"""The live feed: a finding and an alert version stored while a browser listens reach
it as Server-Sent Events within about a second."""

from __future__ import annotations

import threading
import time

import orjson

from gatewatch.finding import EntityType, Finding, Severity
from tests.dashboard.conftest import Dashboard


def _finding(now: float) -> Finding:
    return Finding(
        id="f-live0000000000000001", kind="endpoint_scanning", severity=Severity.MEDIUM,
        score=0.9, entity_type=EntityType.IP, entity="198.51.100.77", first_ts=now - 5,
        last_ts=now, detected_ts=now, summary="198.51.100.77 requested 40 missing paths",
        evidence=("r1",), owasp="API9:2023", mitre="T1595.003", detector="endpoint_scanning",
    )  # fmt: skip


def test_a_stored_finding_is_pushed_to_the_live_feed(dashboard: Dashboard) -> None:
    client = dashboard.login("vic")
    store = dashboard.store
    stored_at: list[float] = []

    def store_later() -> None:
        time.sleep(1.0)
        stored_at.append(time.monotonic())
        store.insert_findings([_finding(time.time())])

    threading.Thread(target=store_later, daemon=True).start()
    events: list[tuple[str, dict[str, object]]] = []
    with client.stream("GET", "/api/v1/live") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((kind, orjson.loads(line.removeprefix("data: "))))
                break
    arrived = time.monotonic()
    [(kind, data)] = events
    assert kind == "finding"
    assert data["id"] == "f-live0000000000000001" and data["entity"] == "198.51.100.77"
    assert arrived - stored_at[0] < 2.0


def test_the_live_feed_needs_a_login(dashboard: Dashboard) -> None:
    assert dashboard.app_client.get("/api/v1/live").status_code == 401
