"""CredentialStuffing: leaked pairs tried over many accounts, from one IP, a network,
or a botnet whose sources all stay slow (a global surge over the failure baseline)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from detectors.engine import DetectionEngine
from detectors.stuffing import CredentialStuffing, CredentialStuffingParams
from gatewatch.event import Event
from gatewatch.finding import Finding, Severity
from tests.detectors.events import BASE_TS, make_event

LOGIN = "/api/v1/auth/login"
ATTACKER = "203.0.113.9"
WARM = 2400.0  # the global baseline has learnt 40 minutes of ordinary logins by then


def login(t: float, ip: str, user: str, status: int = 401, **fields: Any) -> Event:
    fields = {"method": "POST", "path": LOGIN, "route": LOGIN, **fields}
    return make_event(ts=BASE_TS + t, client_ip=ip, user=user, status=status, **fields)


def ordinary_logins(seed: int, start: float, end: float, per_minute: float) -> list[Event]:
    """Customers on their own addresses logging in; one in ten mistypes once or twice."""
    rng, events = random.Random(seed), []
    for n in range(int((end - start) / 60 * per_minute)):
        t, user = rng.uniform(start, end), f"customer{seed}-{n}"
        ip = f"198.{51 + n % 50}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        if rng.random() < 0.1:
            for _ in range(rng.randint(1, 2)):
                events.append(login(t, ip, user))
                t += rng.uniform(3, 15)
        events.append(login(t, ip, user, status=200))
    return events


def run(events: list[Event], **params: Any) -> list[Finding]:
    found: list[Finding] = []
    detector = CredentialStuffing(CredentialStuffingParams(**params))
    engine = DetectionEngine([detector], found.append, allowed_lateness_s=0, evidence_limit=None)
    for event in sorted(events, key=lambda e: e.ts):
        engine.process(event)
    engine.finish()
    return found


def final(events: list[Event], **params: Any) -> dict[tuple[str, str, str], Finding]:
    latest = {f.id: f for f in run(events, **params)}
    return {(f.subkind, f.entity_type.value, f.entity): f for f in latest.values()}


def test_one_ip_many_accounts_despite_rotating_user_agents() -> None:
    attack = [
        login(100 + i * 1.5, ATTACKER, f"leaked{i}", user_agent=f"Mozilla/5.0 (rotated {i})")
        for i in range(60)
    ]
    found = final(attack + ordinary_logins(1, 0, 600, 10))
    assert set(found) == {("", "ip", ATTACKER)}
    finding = found["", "ip", ATTACKER]
    assert finding.kind == "credential_stuffing" and finding.mitre == "T1110.004"
    assert set(finding.evidence) == {e.request_id for e in attack}
    assert finding.summary == f"{ATTACKER} failed 60 logins for 60 accounts in 88 s (0 successes)"
    assert finding.detected_ts == attack[14].ts  # 15 accounts in under 3 minutes


@pytest.mark.parametrize(
    ("make_ip", "network"),
    [
        (lambda i: f"203.0.113.{10 + i % 25}", "203.0.113.0/24"),
        (lambda i: f"2001:db8:7:{i % 25:x}::1", "2001:db8:7::/48"),
    ],
)
def test_a_network_rotating_addresses(make_ip: Any, network: str) -> None:
    attack = [login(i * 4.0, make_ip(i), f"leaked{i}") for i in range(50)]  # 2 per IP
    found = final(attack)
    assert set(found) == {("", "ip", network)}
    finding = found["", "ip", network]
    assert set(finding.evidence) == {e.request_id for e in attack}
    assert finding.summary.startswith(f"{network}: 25 IPs failed 50 logins for 50 accounts")


def test_a_network_shared_with_a_busy_nat() -> None:
    """The NAT's successes do not hide the rotating attacker, and its people logging
    in are no takeovers."""
    nat = [login(i * 2.0, "198.51.100.20", f"employee{i}", status=200) for i in range(900)]
    nat += [login(i * 20.0 + 1, "198.51.100.20", f"employee{i}") for i in range(90)]
    attack = [login(600 + i * 2.0, f"198.51.100.{100 + i % 20}", f"leaked{i}") for i in range(80)]
    found = final(nat + attack)
    attack_ids = {e.request_id for e in attack}
    assert set(found["", "ip", "198.51.100.0/24"].evidence) == attack_ids
    # The failures before the network's finding surge globally too: no NAT typo in it.
    assert set(found) <= {("", "ip", "198.51.100.0/24"), ("", "global", "global")}
    for finding in found.values():
        assert set(finding.evidence) <= attack_ids


def _botnet(start: float, sources: int = 300) -> list[Event]:
    """Each bot in its own network tries one or two leaked pairs, a minute apart."""
    rng = random.Random(5)
    events = []
    for b in range(sources):
        ip = f"{11 + b % 80}.{b}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        t = start + rng.uniform(0, 300)
        for k in range(1 + b % 2):
            events.append(login(t + 60 * k, ip, f"leaked{b}-{k}", user_agent=f"ua{rng.random()}"))
    return events


def test_a_botnet_is_a_global_surge() -> None:
    background = ordinary_logins(2, 0, WARM + 900, per_minute=20)
    attack = _botnet(WARM)
    found = final(background + attack)
    assert set(found) == {("", "global", "global")}
    finding = found["", "global", "global"]
    evidence = set(finding.evidence)
    attack_ids = {e.request_id for e in attack}
    assert len(evidence & attack_ids) >= 0.9 * len(attack_ids)
    assert len(evidence - attack_ids) <= 0.1 * len(evidence)  # few customers' typos
    assert "failed logins for" in finding.summary and "from" in finding.summary


def test_customers_who_mistype_during_a_surge_are_not_evidence() -> None:
    typos = [login(WARM + 60 + i * 20, f"192.0.2.{i}", f"customer-t{i}") for i in range(20)]
    fixed = [login(WARM + 70 + i * 20, f"192.0.2.{i}", f"customer-t{i}", 200) for i in range(20)]
    events = ordinary_logins(2, 0, WARM + 900, 20) + _botnet(WARM) + typos + fixed
    found = final(events)
    assert not {e.request_id for e in typos} & set(found["", "global", "global"].evidence)


def test_a_few_proxies_each_below_the_per_source_bar_surge_globally() -> None:
    """Eight proxies in eight networks, 18 leaked pairs each in six minutes: no
    source or network crosses its bar, the login failure rate does."""
    background = ordinary_logins(2, 0, 1_500, per_minute=20)
    attack = [
        login(900 + i * 2.5, f"{20 + i % 8}.61.207.{i % 8 + 10}", f"leaked{i}") for i in range(144)
    ]
    found = final(background + attack)
    assert set(found) == {("", "global", "global")}
    evidence, attack_ids = (
        set(found["", "global", "global"].evidence),
        {e.request_id for e in attack},
    )
    assert len(evidence & attack_ids) >= 0.9 * len(attack_ids)
    # A few customers' typos from the window before the surge came with it.
    assert len(evidence - attack_ids) <= 0.15 * len(evidence)


def test_no_global_finding_before_the_baseline_is_warm() -> None:
    found = final(ordinary_logins(2, 0, 900, per_minute=20) + _botnet(100))
    assert ("", "global", "global") not in found


@pytest.mark.parametrize(
    "scenario",
    [
        # A morning rush: four times the logins, the same share of typos.
        lambda: ordinary_logins(3, 0, WARM, 20) + ordinary_logins(4, WARM, WARM + 900, 80),
        # The login backend answers 401 to everyone: real people retry three to five times.
        lambda: (
            ordinary_logins(3, 0, WARM, 20)
            + [
                login(WARM + n * 3 + k * 5, f"198.60.{n}.7", f"customer-x{n}")
                for n in range(300)
                for k in range(random.Random(n).randint(3, 5))
            ]
        ),
    ],
)
def test_benign_surges_are_not_global_stuffing(scenario: Any) -> None:
    assert ("", "global", "global") not in final(scenario())


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
    """1500 app users over 40 addresses of one carrier /24, each mistyping 1 in 6."""
    rng, events = random.Random(seed), []
    for n in range(1500):
        t, user, ip = rng.uniform(0, 3600), f"app{n}", f"100.72.9.{rng.randrange(40)}"
        if rng.random() < 1 / 6:
            events.append(login(t, ip, user))
            t += rng.uniform(3, 15)
        events.append(login(t, ip, user, status=200))
    return events


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("scenario", [_corporate_nat, _mobile_cgnat])
def test_shared_addresses_are_not_stuffing(scenario: Any, seed: int) -> None:
    assert run(scenario(seed)) == []


def test_guessing_few_accounts_is_not_stuffing() -> None:
    assert run([login(i, ATTACKER, f"admin{i % 8}") for i in range(200)]) == []


def test_a_success_from_a_stuffing_source_is_a_takeover() -> None:
    attack = [login(i, ATTACKER, f"leaked{i}") for i in range(40)]
    success = login(41, ATTACKER, "Victim", status=200)
    found = final([*attack, success])
    takeover = found["account_takeover", "user", "victim"]
    assert takeover.kind == "credential_stuffing" and takeover.severity == Severity.CRITICAL
    assert success.request_id in takeover.evidence
    assert set(takeover.evidence) - {success.request_id} <= {e.request_id for e in attack}
    assert takeover.summary.startswith(f"'victim' logged in from {ATTACKER} right after 40 failed")


def test_a_success_from_a_bot_during_a_global_surge_is_a_takeover() -> None:
    bot = "77.1.2.3"
    tries = [login(WARM + 100 + i, bot, f"leaked-bot{i}") for i in range(3)]
    success = login(WARM + 110, bot, "lucky", status=200)
    events = ordinary_logins(2, 0, WARM + 900, 20) + _botnet(WARM) + tries + [success]
    found = final(events)
    assert ("", "global", "global") in found
    assert success.request_id in found["account_takeover", "user", "lucky"].evidence


def test_a_customer_succeeding_during_a_global_surge_is_no_takeover() -> None:
    events = ordinary_logins(2, 0, WARM + 900, 20) + _botnet(WARM)
    assert not [f for f in run(events) if f.subkind == "account_takeover"]


def test_same_findings_on_replay() -> None:
    events = ordinary_logins(2, 0, WARM + 900, 20) + _botnet(WARM)
    events += [login(WARM + i, ATTACKER, f"leaked{i}") for i in range(40)]
    assert run(events) == run(events)


def test_tolerates_empty_fields() -> None:
    empty = [Event(f"e{i}", BASE_TS + i, "", "", "", "", 0) for i in range(50)]
    odd = [login(100 + i, "", "", method="") for i in range(40)]
    odd += [login(200 + i, "not-an-ip", f"u{i}") for i in range(40)]
    found = final(empty + odd)
    assert set(found) == {("", "ip", "not-an-ip")}


def test_state_is_bounded() -> None:
    detector = CredentialStuffing(CredentialStuffingParams(max_entities=500))
    engine = DetectionEngine([detector], lambda f: None, allowed_lateness_s=0)
    for i in range(50_000):
        engine.process(login(i * 0.01, f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", f"u{i}"))
        if i % 5_000 == 0:
            assert detector.tracked() <= 2 * 500 + 1
    engine.finish()
    assert detector.tracked() == 0
