"""The shared auth-detector parts, and how brute force, stuffing and spraying tell the
same login failures apart (detectors/auth.py's table), run through one engine."""

from __future__ import annotations

import random
from typing import Any

import pytest
from pydantic import ValidationError

from detectors.auth import FAILED, NOT_LOGIN, SUCCEEDED, LoginParams, Logins, Networks
from detectors.base import Detector
from detectors.brute_force import BruteForce, BruteForceParams
from detectors.engine import DetectionEngine
from detectors.spraying import PasswordSpraying, PasswordSprayingParams
from detectors.stuffing import CredentialStuffing, CredentialStuffingParams
from gatewatch.event import Event
from gatewatch.finding import Finding
from tests.detectors.events import BASE_TS, make_event

LOGIN = "/api/v1/auth/login"


def login(t: float, ip: str, user: str, status: int = 401, **fields: Any) -> Event:
    fields = {"method": "POST", "path": LOGIN, "route": LOGIN, **fields}
    return make_event(ts=BASE_TS + t, client_ip=ip, user=user, status=status, **fields)


def run(events: list[Event]) -> list[Finding]:
    """Final version of every finding of the three detectors, default params."""
    found: dict[str, Finding] = {}
    detectors: list[Detector[Any]] = [
        BruteForce(BruteForceParams()),
        CredentialStuffing(CredentialStuffingParams()),
        PasswordSpraying(PasswordSprayingParams()),
    ]
    engine = DetectionEngine(
        detectors, lambda f: found.__setitem__(f.id, f), allowed_lateness_s=0, evidence_limit=None
    )
    for event in sorted(events, key=lambda e: e.ts):
        engine.process(event)
    engine.finish()
    return list(found.values())


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"status": 401}, FAILED),
        ({"status": 403}, FAILED),
        ({"status": 200}, SUCCEEDED),
        ({"status": 204, "method": "PUT"}, SUCCEEDED),
        ({"status": 200, "method": "GET"}, NOT_LOGIN),  # the login page, not a login
        ({"status": 401, "method": ""}, FAILED),  # the log has no method
        ({"status": 500}, NOT_LOGIN),
        ({"status": 429}, NOT_LOGIN),
        ({"status": 401, "route": "", "path": "/oauth/token"}, FAILED),  # no template: path
        ({"status": 401, "route": "/api/v1/orders/{orderId}"}, NOT_LOGIN),
        ({"status": 401, "route": "/api/v1/auth/password/reset"}, NOT_LOGIN),
        ({"status": 0, "route": "", "path": ""}, NOT_LOGIN),
    ],
)
def test_login_outcome(fields: dict[str, Any], expected: int) -> None:
    assert Logins(LoginParams()).outcome(login(0, "192.0.2.1", "alice", **fields)) == expected


def test_failure_statuses_are_configurable() -> None:
    logins = Logins(LoginParams(failure_statuses=frozenset({400, 422})))
    assert logins.outcome(login(0, "192.0.2.1", "a", status=422)) == FAILED
    assert logins.outcome(login(0, "192.0.2.1", "a", status=401)) == NOT_LOGIN


def test_empty_route_is_not_memoised_as_not_login() -> None:
    logins = Logins(LoginParams())
    assert logins.outcome(login(0, "", "", route="", path="")) == NOT_LOGIN
    assert "" not in logins.is_login  # the next empty route may have a login path
    assert logins.outcome(login(0, "", "", route="", path=LOGIN)) == FAILED


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("203.0.113.9", "203.0.113.0/24"),
        ("2001:db8:aa:bb::1", "2001:db8:aa::/48"),
        ("2001:db8::1", "2001:db8::/48"),
        ("::ffff:198.51.100.7", "198.51.100.0/24"),
        ("fe80::1%eth0", "fe80::/48"),
        ("not-an-ip", ""),
        ("1.2.3", ""),
    ],
)
def test_networks(ip: str, network: str) -> None:
    assert Networks()(ip) == network


def test_networks_other_prefixes() -> None:
    assert Networks(16, 64)("203.0.113.9") == "203.0.0.0/16"
    assert Networks(16, 64)("2001:db8:1:2:3::1") == "2001:db8:1:2::/64"


def test_ttl_shorter_than_two_windows_is_refused() -> None:
    with pytest.raises(ValidationError, match="ttl_s"):
        LoginParams(window_s=300, ttl_s=400)


def _fast_fresh_accounts() -> list[Event]:
    """Stuffing's shape: 80 accounts never seen again, 2 a second."""
    return [login(i * 0.5, "203.0.113.9", f"leaked{i}") for i in range(80)]


def _slow_one_per_account() -> list[Event]:
    """Spraying's shape: 45 accounts, one password each, 2 a minute."""
    return [login(i * 30.0, "203.0.113.9", f"staff{i}") for i in range(45)]


def _fast_rounds() -> list[Event]:
    """Ambiguous: two fast rounds over the same 40 accounts, 20 minutes apart."""
    return [
        login(start + i * 0.5, "203.0.113.9", f"staff{i}") for start in (0, 1200) for i in range(40)
    ]


def _guessing_few_accounts() -> list[Event]:
    """Brute force's shape: 3 accounts, 25 passwords each."""
    return [login(i * 2.0, "203.0.113.9", f"admin{i % 3}") for i in range(75)]


def _nat(seed: int = 7) -> list[Event]:
    """No attack: 400 people behind one address, 1 in 8 mistyping 1-4 times first."""
    rng, events = random.Random(seed), []
    for n in range(400):
        t, user = rng.uniform(0, 3600), f"employee{n}"
        if rng.random() < 0.125:
            for _ in range(rng.randint(1, 4)):
                events.append(login(t, "198.51.100.20", user))
                t += rng.uniform(3, 15)
        events.append(login(t, "198.51.100.20", user, status=200))
    return events


@pytest.mark.parametrize(
    ("scenario", "kinds"),
    [
        (_fast_fresh_accounts, {"credential_stuffing"}),
        (_slow_one_per_account, {"password_spraying"}),
        (_fast_rounds, {"credential_stuffing", "password_spraying"}),
        (_guessing_few_accounts, {"brute_force"}),
        (_nat, set()),
    ],
)
def test_the_shape_of_the_failures_picks_the_kind(scenario: Any, kinds: set[str]) -> None:
    found = run(scenario())
    assert {f.kind for f in found} == kinds, [f.summary for f in found]
    for finding in found:
        assert finding.entity_type != "user" or finding.kind == "brute_force"


@pytest.mark.parametrize(
    ("cls", "params", "events"),
    [
        (BruteForce, {"user_min_failures": 5}, [login(i, "192.0.2.1", "zoe") for i in range(5)]),
        (
            CredentialStuffing,
            {"ip_min_users": 5},
            [login(i, "192.0.2.1", f"u{i}") for i in range(5)],
        ),
        (
            PasswordSpraying,
            {"min_accounts": 5},
            [login(i * 60, "192.0.2.1", f"u{i}") for i in range(5)],
        ),
    ],
)
def test_reconfigure_keeps_what_was_learnt(cls: Any, params: dict[str, Any], events: Any) -> None:
    found: list[Finding] = []
    detector = cls(cls.Params())
    engine = DetectionEngine([detector], found.append, allowed_lateness_s=0, evidence_limit=None)
    for event in events[:-1]:
        engine.process(event)
    assert found == []
    engine.reconfigure({detector.label: cls.Params(**params)})
    engine.process(events[-1])
    engine.finish()
    assert found and set(found[-1].evidence) == {e.request_id for e in events}
