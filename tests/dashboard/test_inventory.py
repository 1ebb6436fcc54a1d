"""The route inventory over a real store: per-route traffic, error rates, anonymous
traffic and the auth_required heuristic, clients, latency, sort orders, bad input.

The clock is fixed three days back, so the fixture's own seed (stored "now") is
outside the window.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dashboard.routes.overview import clock
from gatewatch.event import Event
from gatewatch.store.client import Store
from tests.dashboard.conftest import Dashboard
from tests.detectors.events import make_event

T = (int(time.time()) // 3600 - 72) * 3600  # "now" for the API
ORDERS, CATALOGUE, ADMIN = "/api/v1/orders/{id}", "/api/v1/catalogue", "/api/v1/admin/{id}"


def at(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _seed(store: Store) -> None:
    def ev(route: str, t: float, **fields: Any) -> Event:
        return make_event(route=route, path=route.replace("{id}", "7"), ts=T - t, **fields)

    events = [
        # Orders: anonymous callers are refused, alice is served (2 failures, 3 misses).
        *(ev(ORDERS, 7000 + i, client_ip=f"192.0.2.{i % 3}", status=401) for i in range(10)),
        *(ev(ORDERS, 5000 + i, client_ip="192.0.2.0", user="alice", method="POST",
             status=500 if i < 2 else 404 if i < 5 else 200, latency_ms=5.0) for i in range(20)),
        # The catalogue is public: served to anyone, one stray 401.
        *(ev(CATALOGUE, 1000 + i, client_ip=f"198.51.100.{i}", status=200) for i in range(40)),
        ev(CATALOGUE, 500, client_ip="198.51.100.99", status=401),
        *(ev(CATALOGUE, 400 + i, client_ip="198.51.100.1", api_key="fp:k1") for i in range(5)),
        # Admin: API keys only, mostly failing.
        *(ev(ADMIN, 100 - i, client_ip="10.1.1.1", api_key="fp:k2", status=200 if i == 0
             else 503, latency_ms=10.0 * (i + 1)) for i in range(4)),
        # Outside the 24 h window: just before it, and at its (open) end.
        ev(ADMIN, 86_400.001, status=500), ev(ADMIN, 0, status=500),
    ]  # fmt: skip
    store.insert_events(events)


@pytest.fixture
def viewer(dashboard: Dashboard) -> TestClient:
    _seed(dashboard.store)
    app = cast(FastAPI, dashboard.app_client.app)
    app.dependency_overrides[clock] = lambda: datetime.fromtimestamp(T, UTC)
    return dashboard.login("vic")


def _by_route(client: TestClient, query: str = "") -> dict[str, dict[str, Any]]:
    response = client.get(f"/api/v1/routes{query}")
    assert response.status_code == 200, response.text
    return {r["route"]: r for r in response.json()}


def test_a_route_refusing_anonymous_callers_requires_auth(viewer: TestClient) -> None:
    orders = _by_route(viewer)[ORDERS]
    assert orders == {
        "route": ORDERS,
        "methods": ["GET", "POST"],
        "requests": 30,
        "errors": 2,
        "error_rate": round(2 / 30, 4),
        "client_error_rate": round(13 / 30, 4),
        "unauthenticated": 10,
        "unauthenticated_share": round(10 / 30, 4),
        "auth_required": True,
        "distinct_clients": 3,  # alice's address also called anonymously
        "first_seen": at(T - 7009),
        "last_seen": at(T - 5000),
        "p95_latency_ms": 5.0,
    }


def test_a_public_catalogue_does_not_require_auth(viewer: TestClient) -> None:
    catalogue = _by_route(viewer)[CATALOGUE]
    assert catalogue["methods"] == ["GET"]
    assert (catalogue["requests"], catalogue["unauthenticated"]) == (46, 41)
    assert catalogue["unauthenticated_share"] == round(41 / 46, 4)
    assert catalogue["auth_required"] is False  # 1 of 41 anonymous calls refused
    assert catalogue["client_error_rate"] == round(1 / 46, 4)
    assert catalogue["error_rate"] == 0.0
    assert catalogue["distinct_clients"] == 41


def test_a_route_no_anonymous_caller_reached_is_unknown(viewer: TestClient) -> None:
    admin = _by_route(viewer)[ADMIN]
    assert (admin["requests"], admin["errors"], admin["error_rate"]) == (4, 3, 0.75)
    assert admin["unauthenticated"] == 0 and admin["auth_required"] is None
    assert admin["p95_latency_ms"] == 38.5  # 10, 20, 30, 40 ms, interpolated
    assert (admin["first_seen"], admin["last_seen"]) == (at(T - 100), at(T - 97))


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        ("", [CATALOGUE, ORDERS, ADMIN]),
        ("?sort=requests", [CATALOGUE, ORDERS, ADMIN]),
        ("?sort=errors", [ADMIN, ORDERS, CATALOGUE]),
        ("?sort=unauthenticated", [CATALOGUE, ORDERS, ADMIN]),
        ("?sort=errors&limit=2", [ADMIN, ORDERS]),
    ],
)
def test_routes_are_sorted_as_asked(viewer: TestClient, sort: str, order: list[str]) -> None:
    assert list(_by_route(viewer, sort)) == order


def test_the_window_is_in_hours(viewer: TestClient) -> None:
    # The orders were called 1.4 to 2 hours before now.
    assert list(_by_route(viewer, "?hours=1&sort=errors")) == [ADMIN, CATALOGUE]


@pytest.mark.parametrize(
    ("query", "field"),
    [("hours=0", "hours"), ("hours=721", "hours"), ("limit=1001", "limit"),
     ("sort=latency", "sort")],
)  # fmt: skip
def test_bad_input_is_refused_naming_the_field(
    dashboard: Dashboard, query: str, field: str
) -> None:
    response = dashboard.login("vic").get(f"/api/v1/routes?{query}")
    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith(f"{field}:")


def test_the_inventory_needs_a_login(dashboard: Dashboard) -> None:
    assert dashboard.app_client.get("/api/v1/routes").status_code == 401
