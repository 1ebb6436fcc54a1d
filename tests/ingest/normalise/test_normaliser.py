from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest

from gatewatch.errors import ParseError
from ingest.normalise.client_ip import ClientIpResolver
from ingest.normalise.normaliser import Normaliser
from ingest.normalise.routes import RouteTemplater
from ingest.normalise.secrets import Fingerprinter, SecretMasker
from ingest.parsers.base import RawEvent

NOW = 1_800_000_000.0
FP = Fingerprinter(b"salt")


def normaliser() -> Normaliser:
    return Normaliser(
        resolver=ClientIpResolver(["10.0.0.0/8"]),
        routes=RouteTemplater(),
        masker=SecretMasker(
            FP, ["api_key", "token", "password"], ["authorization", "cookie", "x-api-key"]
        ),
        max_body_bytes=32,
        clock=lambda: NOW,
    )


def raw(**fields: Any) -> RawEvent:
    base: dict[str, Any] = {
        "ts": "2027-01-15T08:00:00Z",
        "client_ip": "203.0.113.9",
        "method": "get",
        "path": "/api/v1/users/8812/orders/5?expand=items",
        "status": "200",
    }
    base.update(fields)
    return base  # type: ignore[return-value]


def test_minimal_event() -> None:
    event = normaliser().normalise(raw(), "access.log", 7)
    assert event.ts == datetime(2027, 1, 15, 8, tzinfo=UTC).timestamp()
    assert event.client_ip == "203.0.113.9"
    assert event.method == "GET"
    assert event.path == "/api/v1/users/8812/orders/5"
    assert event.query == "expand=items"
    assert event.route == "/api/v1/users/{id}/orders/{id}"
    assert event.status == 200
    assert (event.source, event.position) == ("access.log", 7)
    assert event.request_id.endswith("-7")  # derived: stable for the same source and line
    assert normaliser().normalise(raw(), "access.log", 7).request_id == event.request_id
    assert normaliser().normalise(raw(), "other.log", 7).request_id != event.request_id


def test_full_event_types_and_masking() -> None:
    jwt_body = base64.urlsafe_b64encode(b'{"sub":"user-31"}').rstrip(b"=").decode()
    event = normaliser().normalise(
        raw(
            request_id="abc-123",
            client_ip="10.0.0.2",
            forwarded_for="198.51.100.23, 10.0.0.9",
            scheme="HTTPS",
            host="API.Example.com",
            path="/v1/items",
            query="q=boots&api_key=sk_live_1",
            latency_ms="12.5",
            request_bytes=321,
            response_bytes="4567",
            user_agent="okhttp/4",
            authorization=f"Bearer eyJhbGciOiJIUzI1NiJ9.{jwt_body}.c2ln",
            cookie="sid=s3cr3t",
            tls_version="1.2",
            body='{"password": "hunter2", "padding": "xxxxxxxxxxxxxxxxxxxxxxxx"}',
            headers={"X-Api-Key": "k-raw", "Referer": "https://shop"},
        ),
        "kafka:logs/0",
        99,
    )
    assert event.request_id == "abc-123"
    assert event.client_ip == "198.51.100.23"
    assert (event.scheme, event.host) == ("https", "api.example.com")
    assert event.query == f"q=boots&api_key={FP('sk_live_1')}"
    assert event.api_key == FP("sk_live_1")  # the key sent in the URL
    assert event.latency_ms == 12.5
    assert (event.request_bytes, event.response_bytes) == (321, 4567)
    assert event.user == "user-31"  # JWT sub, unverified
    assert event.tls_version == "TLSv1.2"
    assert event.headers["authorization"].startswith("Bearer fp:")
    assert event.headers["cookie"] == f"sid={FP('s3cr3t')}"
    assert event.headers["x-api-key"] == FP("k-raw")
    assert event.headers["referer"] == "https://shop"
    assert event.headers["x-forwarded-for"] == "198.51.100.23, 10.0.0.9"
    assert "hunter2" not in event.body
    assert len(event.body) <= 32 + 16  # cut to max_body_bytes, then masked
    assert "sk_live_1" not in repr(event) and "s3cr3t" not in repr(event)


def test_gateway_key_id_and_declared_route_win() -> None:
    event = normaliser().normalise(
        raw(api_key_id="key-77", api_key="raw-secret", route="/pets/{petId}", path="/pets/42"),
        "s",
        1,
    )
    assert event.api_key == "key-77"
    assert event.route == "/pets/{petId}"


@pytest.mark.parametrize(
    ("path", "expected_path", "host"),
    [
        ("https://api.example.com/v1/x?y=1", "/v1/x", "api.example.com"),
        ("*", "*", ""),
    ],
)
def test_absolute_and_asterisk_targets(path: str, expected_path: str, host: str) -> None:
    event = normaliser().normalise(raw(path=path), "s", 1)
    assert event.path == expected_path
    assert event.host == host


def test_kong_style_query_object() -> None:
    event = normaliser().normalise(
        raw(path="/x", query={"a": "1", "flag": True, "b": ["2", "3"]}), "s", 1
    )
    assert event.query == "a=1&flag&b=2&b=3"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"ts": None}, "missing timestamp"),
        ({"ts": "2099-01-01T00:00:00Z"}, "in the future"),
        ({"ts": "1990-01-01T00:00:00Z"}, "before"),
        ({"client_ip": None}, "missing client IP"),
        ({"client_ip": "300.1.1.1"}, "client_ip"),
        ({"path": None}, "missing path"),
        ({"path": 42}, "path: expected text"),
        ({"path": "no-slash"}, "not a request target"),
        ({"status": "OK"}, "status: expected an integer"),
        ({"status": 1200}, "out of range"),
        ({"status": True}, "boolean"),
        ({"latency_ms": "slow"}, "latency_ms"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"response_bytes": -5}, "out of range"),
        ({"method": {"GET": 1}}, "method: expected text"),
        ({"user": ["a"]}, "user: expected text"),
    ],
)
def test_bad_values_name_the_field(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        normaliser().normalise(raw(**fields), "s", 1)


def test_future_bound_follows_the_clock() -> None:
    clock = [NOW]
    n = Normaliser(
        resolver=ClientIpResolver([]),
        routes=RouteTemplater(),
        masker=SecretMasker(FP, [], []),
        clock=lambda: clock[0],
        max_future_skew_s=60,
    )
    later = NOW + 3600
    with pytest.raises(ParseError):
        n.normalise(raw(ts=later), "s", 1)
    clock[0] = later
    assert n.normalise(raw(ts=later), "s", 1).ts == later


def test_agents_and_routes_are_shared_strings_and_agents_are_cut() -> None:
    n = normaliser()

    def event(agent: str, path: str) -> Any:
        # Fresh strings each time, as a parser makes them from each line.
        return n.normalise(raw(user_agent="".join(agent), path="".join(path)), "s", 1)

    first, second = event("curl/8.4", "/api/v1/users/1"), event("curl/8.4", "/api/v1/users/2")
    assert first.user_agent == "curl/8.4" and first.route == "/api/v1/users/{id}"
    assert second.user_agent is first.user_agent and second.route is first.route
    assert event("-", "/a").user_agent == ""
    long_agent = event("x" * 5000, "/a").user_agent
    assert len(long_agent) == 2048 and event("x" * 5000, "/a").user_agent is long_agent


def test_the_shared_string_tables_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ingest.normalise.normaliser._SHARED_MAX", 4)
    n = normaliser()
    agents = [n.normalise(raw(user_agent=f"agent/{i}"), "s", 1).user_agent for i in range(10)]
    assert agents == [f"agent/{i}" for i in range(10)]
    assert len(n._agents) <= 4
