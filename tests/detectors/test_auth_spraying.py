"""PasswordSpraying: one or two passwords per account over many accounts, paced slowly
or in rounds, from one IP or one network."""

from __future__ import annotations

import random
from typing import Any

import pytest

from detectors.engine import DetectionEngine
from detectors.spraying import PasswordSpraying, PasswordSprayingParams
from gatewatch.event import Event
from gatewatch.finding import Finding, Severity
from tests.detectors.events import BASE_TS, make_event

LOGIN = "/api/v1/auth/login"
ATTACKER = "203.0.113.9"


def login(t: float, ip: str, user: str, status: int = 401, **fields: Any) -> Event:
    fields = {"method": "POST", "path": LOGIN, "route": LOGIN, **fields}
    return make_event(ts=BASE_TS + t, client_ip=ip, user=user, status=status, **fields)


def spray(ip: Any, accounts: int, gap_s: float, rounds: int = 1, pause_s: float = 0) -> list[Event]:
    """``rounds`` passes over the same accounts, ``gap_s`` apart, ``pause_s`` between."""
    round_s = accounts * gap_s + pause_s
    return [
        login(r * round_s + i * gap_s, ip(i) if callable(ip) else ip, f"staff{i}")
        for r in range(rounds)
        for i in range(accounts)
    ]


def run(events: list[Event], **params: Any) -> list[Finding]:
    found: list[Finding] = []
    detector = PasswordSpraying(PasswordSprayingParams(**params))
    engine = DetectionEngine([detector], found.append, allowed_lateness_s=0, evidence_limit=None)
    for event in sorted(events, key=lambda e: e.ts):
        engine.process(event)
    engine.finish()
    return found


def final(events: list[Event], **params: Any) -> dict[tuple[str, str, str], Finding]:
    latest = {f.id: f for f in run(events, **params)}
    return {(f.subkind, f.entity_type.value, f.entity): f for f in latest.values()}


def test_two_slow_rounds_from_one_ip() -> None:
    attack = spray(ATTACKER, accounts=40, gap_s=24, rounds=2, pause_s=240)
    found = final(attack)
    assert set(found) == {("", "ip", ATTACKER)}
    finding = found["", "ip", ATTACKER]
    assert finding.kind == "password_spraying" and finding.mitre == "T1110.003"
    assert set(finding.evidence) == {e.request_id for e in attack}
    assert finding.detected_ts == attack[19].ts  # the 20th account, 7.6 minutes in
    assert finding.summary == (
        f"{ATTACKER} failed 80 logins over 40 accounts in 36 min"
        " (2.0 per account, 1.1 accounts/min, 0 successes)"
    )


def test_fast_rounds_are_spraying_once_accounts_are_revisited() -> None:
    attack = spray(ATTACKER, accounts=30, gap_s=1, rounds=2, pause_s=300)
    (finding,) = final(attack).values()
    # Half the accounts revisited: 1.5 failures per account, the second password.
    assert finding.detected_ts == attack[44].ts
    assert set(finding.evidence) == {e.request_id for e in attack}


def test_a_network_rotating_addresses() -> None:
    attack = spray(lambda i: f"203.0.113.{i % 5 + 1}", accounts=30, gap_s=30)
    found = final(attack)
    assert set(found) == {("", "ip", "203.0.113.0/24")}  # 6 accounts per IP: below
    finding = found["", "ip", "203.0.113.0/24"]
    assert set(finding.evidence) == {e.request_id for e in attack}
    assert finding.summary.startswith("203.0.113.0/24 (5 IPs) failed 30 logins over 30 accounts")


def test_a_network_shared_with_a_busy_nat() -> None:
    nat = [login(i * 4.0, "203.0.113.200", f"employee{i}", status=200) for i in range(900)]
    nat += [login(i * 40.0 + 1, "203.0.113.200", f"employee{i}") for i in range(90)]
    attack = spray(lambda i: f"203.0.113.{i % 5 + 1}", accounts=30, gap_s=30)
    found = final(nat + attack)
    assert set(found) == {("", "ip", "203.0.113.0/24")}  # and no takeovers by NAT people
    evidence = set(found["", "ip", "203.0.113.0/24"].evidence)
    assert {e.request_id for e in attack} <= evidence
    # The NAT's first failure counts before its successes are known (only failing
    # addresses are tracked): one request at most.
    assert len(evidence) <= len(attack) + 1


def test_a_success_during_the_spray_is_a_critical_takeover() -> None:
    attack = spray(ATTACKER, accounts=30, gap_s=20)
    success = login(30 * 20 + 5, ATTACKER, "staff-lucky", status=200)
    found = final([*attack, success])
    takeover = found["account_takeover", "user", "staff-lucky"]
    assert takeover.kind == "password_spraying" and takeover.severity == Severity.CRITICAL
    assert success.request_id in takeover.evidence
    assert {e.request_id for e in attack} <= set(takeover.evidence)
    assert "during a spray from 203.0.113.9 over 30 accounts" in takeover.summary


def _corporate_nat(seed: int) -> list[Event]:
    rng, events = random.Random(seed), []
    for n in range(2000):
        t, user = rng.uniform(0, 3600), f"employee{n}"
        if rng.random() < 0.2:
            for _ in range(rng.randint(1, 4)):
                events.append(login(t, "198.51.100.20", user))
                t += rng.uniform(3, 15)
        events.append(login(t, "198.51.100.20", user, status=200))
    return events


def _mobile_cgnat(seed: int) -> list[Event]:
    rng, events = random.Random(seed), []
    for n in range(1500):
        t, user, ip = rng.uniform(0, 3600), f"app{n}", f"100.72.9.{rng.randrange(40)}"
        if rng.random() < 1 / 6:
            events.append(login(t, ip, user))
            t += rng.uniform(3, 15)
        events.append(login(t, ip, user, status=200))
    return events


def _guessing() -> list[Event]:
    """Brute force, not spraying: 25 accounts, 6 passwords each, one after the other.
    (Six passwords round-robin over the accounts *is* spraying until the third round.)"""
    return [login(i * 10, ATTACKER, f"staff{i // 6}") for i in range(150)]


def _fast_fresh_accounts() -> list[Event]:
    """Stuffing's shape: 200 accounts in 100 seconds, none revisited."""
    return [login(i * 0.5, ATTACKER, f"leaked{i}") for i in range(200)]


@pytest.mark.parametrize(
    "scenario",
    [
        lambda: _corporate_nat(1),
        lambda: _corporate_nat(2),
        lambda: _mobile_cgnat(1),
        _guessing,
        _fast_fresh_accounts,
        # A few people sharing one address, each failing once: too few accounts.
        lambda: spray(ATTACKER, accounts=12, gap_s=60),
    ],
)
def test_not_spraying(scenario: Any) -> None:
    assert run(scenario()) == []


def test_the_pace_limit_is_configurable() -> None:
    attack = spray(ATTACKER, accounts=40, gap_s=6)  # 10 accounts a minute, one round
    assert run(attack) == []
    assert ("", "ip", ATTACKER) in final(attack, max_accounts_per_minute=12)


def test_allowlisted_sources_are_ignored() -> None:
    attack = spray(ATTACKER, accounts=40, gap_s=24)
    assert run(attack, allow={"ips": ["203.0.113.0/24"]}) == []


def test_same_findings_on_replay() -> None:
    events = spray(ATTACKER, accounts=40, gap_s=24, rounds=2) + _corporate_nat(3)
    events.append(login(1000, ATTACKER, "staff-lucky", status=200))
    assert run(events) == run(events)


def test_tolerates_empty_fields() -> None:
    empty = [Event(f"e{i}", BASE_TS + i, "", "", "", "", 0) for i in range(50)]
    odd = [login(100 + i, "", f"u{i}", method="") for i in range(40)]
    odd += [login(200 + i * 30, "not-an-ip", f"u{i}") for i in range(30)]
    odd += [login(300 + i, "192.0.2.1", "") for i in range(40)]  # no account: no spray
    assert set(final(empty + odd)) == {("", "ip", "not-an-ip")}


def test_state_is_bounded() -> None:
    detector = PasswordSpraying(PasswordSprayingParams(max_entities=500))
    engine = DetectionEngine([detector], lambda f: None, allowed_lateness_s=0)
    for i in range(50_000):
        ip = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        engine.process(login(i * 0.01, ip, f"u{i}", status=401 if i % 3 else 200))
        if i % 5_000 == 0:
            assert detector.tracked() <= 2 * 500
    engine.finish()
    assert detector.tracked() == 0
