"""BruteForce: guessing one account's password, or one IP guessing a few accounts', and
the login that succeeds right after (account takeover)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from detectors.brute_force import BruteForce, BruteForceParams
from detectors.engine import DetectionEngine
from gatewatch.event import Event
from gatewatch.finding import Finding, Severity
from tests.detectors.events import BASE_TS, make_event

LOGIN = "/api/v1/auth/login"
ATTACKER = "203.0.113.9"


def login(t: float, ip: str, user: str, status: int = 401, **fields: Any) -> Event:
    fields = {"method": "POST", "path": LOGIN, "route": LOGIN, **fields}
    return make_event(ts=BASE_TS + t, client_ip=ip, user=user, status=status, **fields)


def browsing(seed: int, seconds: float, count: int) -> list[Event]:
    """Benign background: customers browsing products, a few 404s."""
    rng = random.Random(seed)
    return [
        make_event(
            ts=BASE_TS + rng.uniform(0, seconds),
            client_ip=f"198.51.100.{rng.randrange(200)}",
            path=f"/api/v1/products/{rng.randrange(5000)}",
            route="/api/v1/products/{productId}",
            status=rng.choice((200, 200, 200, 404)),
            user=f"customer{rng.randrange(300)}",
        )
        for _ in range(count)
    ]


def run(events: list[Event], **params: Any) -> list[Finding]:
    """Every finding version in emission order (the raw sink)."""
    found: list[Finding] = []
    detector = BruteForce(BruteForceParams(**params))
    engine = DetectionEngine([detector], found.append, allowed_lateness_s=0, evidence_limit=None)
    for event in sorted(events, key=lambda e: e.ts):
        engine.process(event)
    engine.finish()
    return found


def final(events: list[Event], **params: Any) -> dict[tuple[str, str, str], Finding]:
    """The last version of each finding, by (subkind, entity type, entity)."""
    latest = {f.id: f for f in run(events, **params)}
    return {(f.subkind, f.entity_type.value, f.entity): f for f in latest.values()}


def test_one_ip_guessing_one_account() -> None:
    attack = [login(10 + 2 * i, ATTACKER, "Alice", user_agent=f"bot/{i}") for i in range(30)]
    found = final(attack + browsing(1, 600, 2000))
    assert set(found) == {("", "user", "alice"), ("", "ip", ATTACKER)}
    by_user, by_ip = found["", "user", "alice"], found["", "ip", ATTACKER]
    ids = {e.request_id for e in attack}
    assert set(by_user.evidence) == ids and set(by_ip.evidence) == ids
    assert by_user.kind == by_ip.kind == "brute_force"
    assert by_user.summary == "'alice' failed 30 logins in 58 s from 1 IP (0 successes)"
    assert by_ip.summary == f"{ATTACKER} failed 30 logins for 1 account in 58 s (0 successes)"
    assert by_user.first_ts == BASE_TS + 10 and by_user.detected_ts == BASE_TS + 28
    assert by_user.severity == Severity.HIGH and by_user.owasp == "API2:2023"
    assert by_user.mitre == "T1110.001" and by_user.score == 1.0
    assert by_user.extra == {"source_ip": ATTACKER}  # alerting joins it to the attacker


def test_many_ips_guessing_one_account() -> None:
    attack = [login(5 * i, f"192.0.2.{i}", "admin") for i in range(40)]
    found = final(attack)
    assert set(found) == {("", "user", "admin")}  # no IP failed more than once
    assert set(found["", "user", "admin"].evidence) == {e.request_id for e in attack}
    assert "from 40 IPs" in found["", "user", "admin"].summary
    assert found["", "user", "admin"].extra == {"sources": 40}


def test_one_ip_guessing_a_few_accounts_each_below_the_account_threshold() -> None:
    attack = [login(3 * i, ATTACKER, f"user{i % 4}") for i in range(32)]  # 8 per account
    found = final(attack)
    assert set(found) == {("", "ip", ATTACKER)}
    assert found["", "ip", ATTACKER].summary.startswith(f"{ATTACKER} failed 32 logins for 4")


def test_success_right_after_the_burst_is_a_critical_takeover() -> None:
    attack = [login(i, ATTACKER, "bob") for i in range(15)]
    success = login(20, ATTACKER, "bob", status=200)
    found = final([*attack, success])
    takeover = found["account_takeover", "user", "bob"]
    assert takeover.kind == "brute_force" and takeover.severity == Severity.CRITICAL
    assert set(takeover.evidence) == {e.request_id for e in attack} | {success.request_id}
    assert (
        takeover.summary
        == f"'bob' logged in from {ATTACKER} right after 15 failed logins for it in 20 s"
    )
    assert takeover.detected_ts == success.ts


def test_success_from_an_ip_of_a_distributed_burst_is_a_takeover() -> None:
    attack = [login(i, f"192.0.2.{i % 12}", "carol") for i in range(24)]
    found = final([*attack, login(30, "192.0.2.5", "carol", status=200)])
    assert ("account_takeover", "user", "carol") in found


@pytest.mark.parametrize(
    "events",
    [
        # The owner logs in from home while someone else hammers the account.
        [*(login(i, ATTACKER, "dave") for i in range(15)), login(20, "198.51.100.4", "dave", 200)],
        # A success long after the burst has left the window.
        [*(login(i, ATTACKER, "erin") for i in range(15)), login(2000, ATTACKER, "erin", 200)],
        # The burst never was suspicious: three typos.
        [*(login(i * 5, ATTACKER, "frank") for i in range(3)), login(20, ATTACKER, "frank", 200)],
    ],
)
def test_successes_that_are_not_takeovers(events: list[Event]) -> None:
    assert not [f for f in run(events) if f.subkind == "account_takeover"]


def _typos(seed: int) -> list[Event]:
    """300 people, each on their own IP; one in five mistypes 2-4 times first."""
    rng, events = random.Random(seed), []
    for n in range(300):
        t, ip, user = rng.uniform(0, 3600), f"198.51.{n // 200}.{n % 200}", f"person{n}"
        if rng.random() < 0.2:
            for _ in range(rng.randint(2, 4)):
                events.append(login(t, ip, user))
                t += rng.uniform(2, 20)
        events.append(login(t, ip, user, status=200))
    return events


def _corporate_nat(seed: int) -> list[Event]:
    """2000 people behind one address over an hour; one in five mistypes 1-4 times."""
    rng, events = random.Random(seed), []
    for n in range(2000):
        t, user = rng.uniform(0, 3600), f"employee{n}"
        if rng.random() < 0.2:
            for _ in range(rng.randint(1, 4)):
                events.append(login(t, "198.51.100.20", user))
                t += rng.uniform(3, 15)
        events.append(login(t, "198.51.100.20", user, status=200))
    return events


def _busy_shared_account(seed: int) -> list[Event]:
    """A service account logging in 600 times an hour; one stale client fails a tenth."""
    rng = random.Random(seed)
    return [
        login(i * 6, f"10.1.0.{rng.randrange(8)}", "svc-reports", 401 if i % 10 == 0 else 200)
        for i in range(600)
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("scenario", [_typos, _corporate_nat, _busy_shared_account])
def test_benign_failures_are_not_brute_force(scenario: Any, seed: int) -> None:
    assert run(scenario(seed) + browsing(seed, 3600, 2000)) == []


def test_failure_statuses_are_configurable() -> None:
    attack = [login(i, ATTACKER, "grace", status=422) for i in range(12)]
    assert run(attack) == []
    found = final(attack, failure_statuses=frozenset({401, 422}))
    assert ("", "user", "grace") in found


def test_allowlisted_sources_are_ignored() -> None:
    attack = [login(i, "10.9.0.1", "loadtest") for i in range(50)]
    assert run(attack, allow={"ips": ["10.9.0.0/16"]}) == []


def test_one_finding_per_episode_and_a_new_one_after_quiet() -> None:
    first = [login(i, ATTACKER, "heidi") for i in range(20)]
    later = [login(5000 + i, ATTACKER, "heidi") for i in range(20)]
    versions = run(first + later, episode_quiet_s=600)
    user_ids = {f.id for f in versions if f.entity == "heidi"}
    assert len(user_ids) == 2


def test_same_findings_on_replay() -> None:
    events = (
        [login(2 * i, ATTACKER, "ivan") for i in range(40)]
        + [login(90, ATTACKER, "ivan", status=200)]
        + _corporate_nat(4)
    )
    assert run(events) == run(events)


def test_tolerates_empty_fields() -> None:
    empty = [Event(f"e{i}", BASE_TS + i, "", "", "", "", 0) for i in range(50)]
    no_user_no_ip = [login(100 + i, "", "", method="") for i in range(40)]
    no_user = [login(200 + i, ATTACKER, "") for i in range(40)]
    found = final(empty + no_user_no_ip + no_user)
    assert set(found) == {("", "ip", ATTACKER)}  # an IP failing with no username logged


def test_state_is_bounded() -> None:
    detector = BruteForce(BruteForceParams(max_entities=500))
    engine = DetectionEngine([detector], lambda f: None, allowed_lateness_s=0)
    for i in range(50_000):
        engine.process(login(i * 0.01, f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", f"u{i}"))
        if i % 5_000 == 0:
            assert detector.tracked() <= 2 * 500
    engine.finish()
    assert detector.tracked() == 0  # everything expired at the end of input
