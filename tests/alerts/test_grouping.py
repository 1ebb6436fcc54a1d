"""AlertManager: risk opens alerts, one alert per actor across finding versions, few
notices (escalation always, updates after a cooldown), campaigns, closing, bounds."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from alerts.grouping import AlertManager
from alerts.model import Alert, AlertState, Notice, NoticeReason
from alerts.policy import AlertPolicy
from alerts.suppression import Suppression, Suppressions
from gatewatch.finding import EntityType, Finding, Severity

BASE_TS = 1_710_230_400.0  # 2024-03-12T08:00:00Z
ATTACKER = "203.0.113.9"
OPENED, ESCALATED, UPDATED, CLOSED = (
    NoticeReason.OPENED,
    NoticeReason.ESCALATED,
    NoticeReason.UPDATED,
    NoticeReason.CLOSED,
)
LOW, MEDIUM, HIGH, CRITICAL = Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL


def make_finding(
    fid: str = "f-1",
    kind: str = "credential_stuffing",
    severity: Severity = HIGH,
    *,
    t: float = 0.0,
    detected: float | None = None,
    entity: str = ATTACKER,
    entity_type: EntityType = EntityType.IP,
    score: float = 1.0,
    **fields: Any,
) -> Finding:
    """A finding version whose last evidence is ``t`` seconds after BASE_TS (detected
    at ``detected``, default ``t``: the first version)."""
    detected_ts = BASE_TS + (t if detected is None else detected)
    values: dict[str, Any] = {
        "first_ts": detected_ts - 60,
        "summary": f"{kind} from {entity}: 212 failed logins for 198 accounts in 240 s",
        "owasp": "API2:2023",
        "mitre": "T1110.004",
        "evidence": (f"{fid}-r1", f"{fid}-r2"),
        **fields,
    }
    return Finding(
        id=fid,
        kind=kind,
        severity=severity,
        score=score,
        entity_type=entity_type,
        entity=entity,
        last_ts=BASE_TS + t,
        detected_ts=detected_ts,
        **values,
    )


def version(finding: Finding, t: float, **changes: Any) -> Finding:
    """A later version of ``finding`` (same id and detected_ts), last evidence at ``t``."""
    return dataclasses.replace(finding, last_ts=BASE_TS + t, **changes)


class Recorder:
    """The notify callback: keeps every notice."""

    def __init__(self) -> None:
        self.notices: list[Notice] = []

    def __call__(self, notice: Notice) -> None:
        self.notices.append(notice)

    @property
    def reasons(self) -> list[NoticeReason]:
        return [notice.reason for notice in self.notices]


def manager(**policy: Any) -> tuple[AlertManager, Recorder]:
    """A manager whose alerts open on risk alone (and critical findings), unless the
    test sets ``alert_at_severity``: most tests here check the risk arithmetic."""
    policy.setdefault("alert_at_severity", CRITICAL)
    recorder = Recorder()
    return AlertManager(AlertPolicy(**policy), recorder), recorder


# --- opening -------------------------------------------------------------------------


def test_risk_below_the_threshold_opens_nothing_then_crossing_it_opens_one_alert() -> None:
    alerts, seen = manager(risk_threshold=45)  # a medium finding with score 1 adds 25
    alerts.on_finding(make_finding("f-scan", "endpoint_scanning", MEDIUM, t=0))
    assert seen.notices == []
    alerts.on_finding(make_finding("f-enum", "user_enumeration", MEDIUM, t=600))

    assert seen.reasons == [OPENED]
    alert = seen.notices[0].alert
    # 25 decayed over 600 s of a 3600 s half-life (22.3), plus 25
    assert alert.risk == pytest.approx(25 * 0.5 ** (600 / 3600) + 25)
    assert list(alert.findings) == ["f-scan", "f-enum"]  # what built the risk is in it
    assert alert.kinds == {"endpoint_scanning": 1, "user_enumeration": 1}
    assert alert.finding_count == 2
    assert alert.severity is MEDIUM
    assert alert.version == 1
    assert alert.state is AlertState.OPEN
    assert alert.opened_ts == BASE_TS + 600
    assert alert.id.startswith("a-") and len(alert.id) == 22
    assert seen.notices[0].trigger is not None and seen.notices[0].trigger.id == "f-enum"


def test_risk_that_decayed_in_between_does_not_reach_the_threshold() -> None:
    alerts, seen = manager()
    alerts.on_finding(make_finding("f-scan", "endpoint_scanning", MEDIUM, t=0))
    alerts.on_finding(make_finding("f-enum", "user_enumeration", MEDIUM, t=3 * 3600))
    assert seen.notices == []  # 25 / 8 + 25 < 50


def test_a_critical_finding_opens_an_alert_at_once() -> None:
    alerts, seen = manager(risk_threshold=1000)
    alerts.on_finding(make_finding("f-ato", severity=CRITICAL, score=0.1))
    assert seen.reasons == [OPENED]
    assert seen.notices[0].alert.severity is CRITICAL


def test_by_default_a_high_finding_alerts_at_once_and_a_medium_one_waits_for_risk() -> None:
    alerts, seen = manager(alert_at_severity=AlertPolicy().alert_at_severity)
    alerts.on_finding(make_finding("f-scan", "endpoint_scanning", MEDIUM, t=0))
    assert seen.notices == []  # 25 < 50: a lone scan is on the dashboard, nobody woken
    alerts.on_finding(make_finding("f-exfil", "data_exfiltration", HIGH, score=0.3, t=60))
    assert seen.reasons == [OPENED]
    assert set(seen.notices[0].alert.kinds) == {"data_exfiltration", "endpoint_scanning"}


def test_a_low_score_counts_at_least_half() -> None:
    alerts, seen = manager(risk_threshold=50)
    alerts.on_finding(make_finding("f-a", severity=HIGH, score=0.2))  # 50 * 0.5 = 25
    assert seen.notices == []
    alerts.on_finding(make_finding("f-b", severity=HIGH, score=0.5, t=0))  # + 25
    assert seen.reasons == [OPENED]


# --- one alert per actor across versions -----------------------------------------------


def test_thirty_versions_of_three_findings_make_one_alert_notified_on_changes_only() -> None:
    alerts, seen = manager()
    stuffing = make_finding("f-stuff", "credential_stuffing", HIGH, t=0)
    brute = make_finding("f-brute", "brute_force", HIGH, t=10)
    scan = make_finding("f-scan", "endpoint_scanning", MEDIUM, t=20)
    for f in (stuffing, brute, scan):
        alerts.on_finding(f)
    # 50: the stuffing alone reached the threshold; the other kinds joined after it
    assert seen.reasons == [OPENED, ESCALATED, ESCALATED]
    assert seen.notices[0].alert.kinds == {"credential_stuffing": 1}
    opened_id = seen.notices[0].alert.id
    del seen.notices[:]

    for round_ in range(1, 31):
        t = 20 + 60 * round_
        # round 10: the stuffing episode turns critical (its summary now a takeover)
        stuffing_severity = CRITICAL if round_ >= 10 else HIGH
        alerts.on_finding(version(stuffing, t, severity=stuffing_severity))
        alerts.on_finding(version(brute, t + 1))
        alerts.on_finding(version(scan, t + 2))

    assert seen.reasons == [ESCALATED]  # severity high -> critical, once
    escalated = seen.notices[0]
    assert escalated.trigger is not None and escalated.trigger.id == "f-stuff"
    assert escalated.alert.severity is CRITICAL
    [alert] = alerts.open_alerts()
    assert alert.id == opened_id
    assert alert.finding_count == 3
    assert alert.kinds == {"credential_stuffing": 1, "brute_force": 1, "endpoint_scanning": 1}
    assert alert.version == 1 + 2 + 90  # opened, 2 findings joined, 90 versions
    assert alert.last_ts == BASE_TS + 20 + 60 * 30 + 2
    assert alerts.stats.alerts_opened == 1
    assert alerts.stats.notices == {OPENED: 1, ESCALATED: 3}  # opened, 2 kinds, critical


def test_a_growing_score_adds_the_difference_and_can_open_the_alert() -> None:
    alerts, seen = manager()
    finding = make_finding("f-brute", "brute_force", HIGH, score=0.667)  # 33.35 points
    alerts.on_finding(finding)
    alerts.on_finding(version(finding, 60, score=0.6))  # worth less: no news
    assert seen.notices == []
    alerts.on_finding(version(finding, 120, score=1.0))  # its best version: 50
    assert seen.reasons == [OPENED]
    alert = seen.notices[0].alert
    assert alert.risk == pytest.approx(50.0)
    assert alert.finding_count == 1


def test_an_ongoing_episode_keeps_its_weight_and_versions_never_count_twice() -> None:
    alerts, _ = manager(risk_threshold=1000)
    finding = make_finding("f-brute", "brute_force", HIGH)
    alerts.on_finding(finding)
    for t in range(60, 3 * 3600, 60):
        alerts.on_finding(version(finding, t))
    alerts.on_finding(make_finding("f-crit", "bola", CRITICAL, t=3 * 3600))
    [alert] = alerts.open_alerts()
    assert alert.risk == pytest.approx(50 * 0.5 ** (60 / 3600) + 100)  # not 180 x 50
    alerts.on_finding(version(finding, 100))  # a late version: nothing to add
    assert alerts.open_alerts()[0].risk == pytest.approx(alert.risk)


def test_each_finding_id_adds_its_points_once_plus_a_severity_rise() -> None:
    alerts, seen = manager(risk_threshold=1000, half_life_s=1e9)  # no decay to speak of
    finding = make_finding("f-1", severity=MEDIUM)
    alerts.on_finding(finding)
    alerts.on_finding(make_finding("f-2", severity=MEDIUM))
    for t in range(60, 600, 60):
        alerts.on_finding(version(finding, t))
    alerts.on_finding(version(finding, 600, severity=HIGH))  # 25 -> 50: +25
    alerts.on_finding(version(finding, 660, severity=MEDIUM))  # back down: nothing
    alerts.on_finding(make_finding("f-crit", "bola", CRITICAL, t=700, entity_type=EntityType.IP))
    assert seen.notices[0].alert.risk == pytest.approx(25 + 25 + 25 + 100, rel=1e-6)


def test_updated_is_sent_for_new_findings_once_the_cooldown_passed() -> None:
    alerts, seen = manager(cooldown_s=900)
    alerts.on_finding(make_finding("f-1", t=0))  # opens (50)
    alerts.on_finding(make_finding("f-2", t=100))  # same kind, same severity: silent
    alerts.on_finding(make_finding("f-3", t=899))  # still within the cooldown
    alerts.on_finding(make_finding("f-4", t=900))  # 900 s after the last notice
    alerts.on_finding(make_finding("f-5", t=1000))  # cooldown restarted at 900
    alerts.on_finding(make_finding("f-6", "brute_force", t=1100))  # new kind: escalates
    alerts.on_finding(make_finding("f-7", t=1900))  # 800 s after the escalation
    alerts.on_finding(make_finding("f-8", t=2000))  # 900 s after it

    assert seen.reasons == [OPENED, UPDATED, ESCALATED, UPDATED]
    triggers = [n.trigger.id for n in seen.notices if n.trigger is not None]
    assert triggers == ["f-1", "f-4", "f-6", "f-8"]
    assert seen.notices[1].alert.finding_count == 4


def test_versions_of_known_findings_never_send_updated() -> None:
    alerts, seen = manager(cooldown_s=60)
    finding = make_finding("f-1", t=0)
    alerts.on_finding(finding)
    for t in range(60, 3000, 60):
        alerts.on_finding(version(finding, t))
    assert seen.reasons == [OPENED]


def test_an_alert_keeps_the_latest_versions_of_at_most_max_findings_with_exact_counts() -> None:
    alerts, _ = manager(max_findings=3)
    for i in range(10):
        alerts.on_finding(make_finding(f"f-{i}", t=i))
    alerts.on_finding(version(make_finding("f-0"), 20, summary="latest words"))
    [alert] = alerts.open_alerts()
    assert list(alert.findings) == ["f-8", "f-9", "f-0"]
    assert alert.findings["f-0"].summary == "latest words"
    assert alert.finding_count == 10
    assert alert.kinds == {"credential_stuffing": 10}
    assert alert.latest["credential_stuffing"].summary == "latest words"


# --- campaigns ------------------------------------------------------------------------


def takeover(user: str, *, t: float, source: str | None = ATTACKER, fid: str = "f-ato") -> Finding:
    extra = {"source_ip": source} if source else {}
    return make_finding(
        fid,
        "credential_stuffing",
        CRITICAL,
        t=t,
        entity=user,
        entity_type=EntityType.USER,
        subkind="account_takeover",
        summary=f"'{user}' logged in from {source} right after 212 failed logins",
        extra=extra,
    )


def test_a_takeover_joins_the_open_alert_of_its_source_address() -> None:
    alerts, seen = manager()
    alerts.on_finding(make_finding("f-stuff", t=0))
    alerts.on_finding(takeover("alice", t=120))
    alerts.on_finding(version(takeover("alice", t=120), 180))  # a later version: silent

    assert seen.reasons == [OPENED, ESCALATED]
    [alert] = alerts.open_alerts()
    assert (alert.actor_type, alert.actor) == (EntityType.IP, ATTACKER)
    assert alert.severity is CRITICAL
    assert alert.labels() == ["credential_stuffing", "account_takeover"]
    assert alert.kinds == {"credential_stuffing": 2}  # kinds stay finding kinds (routing)
    assert alert.title() == (f"[CRITICAL] credential_stuffing, account_takeover from ip {ATTACKER}")


@pytest.mark.parametrize(
    ("source", "label"),
    [
        (None, "the takeover names no source address"),
        ("198.51.100.77", "its source has no open alert"),
        ("not an address", "the source is not an address"),
    ],
)
def test_a_takeover_without_an_open_source_alert_is_the_users_alert(
    source: str | None, label: str
) -> None:
    alerts, seen = manager()
    alerts.on_finding(make_finding("f-stuff", t=0))
    alerts.on_finding(takeover("alice", t=120, source=source))
    assert seen.reasons == [OPENED, OPENED], label
    assert (seen.notices[1].alert.actor_type, seen.notices[1].alert.actor) == (
        EntityType.USER,
        "alice",
    )


def test_a_takeover_joins_the_open_alert_of_its_sources_network() -> None:
    alerts, _ = manager()
    alerts.on_finding(make_finding("f-spray", "password_spraying", t=0, entity="198.51.100.0/24"))
    alerts.on_finding(takeover("alice", t=120, source="198.51.100.77"))
    [alert] = alerts.open_alerts()
    assert (alert.actor_type, alert.actor) == (EntityType.IP, "198.51.100.0/24")
    assert set(alert.findings) == {"f-spray", "f-ato"}


def test_a_takeover_stays_in_the_users_alert_it_opened() -> None:
    alerts, seen = manager()
    alerts.on_finding(takeover("alice", t=0))  # no alert for the address yet
    alerts.on_finding(make_finding("f-stuff", t=30))  # the address's alert opens
    alerts.on_finding(version(takeover("alice", t=0), 60))
    assert seen.reasons == [OPENED, OPENED]
    user_alert = next(a for a in alerts.open_alerts() if a.actor == "alice")
    assert user_alert.version == 2  # the version updated the user's alert
    assert all("f-ato" not in a.findings for a in alerts.open_alerts() if a.actor == ATTACKER)


def test_a_finding_about_an_account_attacked_from_one_address_is_the_addresss() -> None:
    alerts, seen = manager(alert_at_severity=HIGH)
    guessing = make_finding(
        "f-user", t=0, entity="alice", entity_type=EntityType.USER,
        extra={"source_ip": ATTACKER},
    )  # fmt: skip
    alerts.on_finding(guessing)  # opens the address's alert, not alice's
    alerts.on_finding(make_finding("f-ip", t=20))  # the address's own finding joins it
    # A later version: more addresses joined in; the finding stays where it went.
    alerts.on_finding(version(guessing, 60, extra={"sources": 3}))
    [alert] = alerts.open_alerts()
    assert (alert.actor_type, alert.actor) == (EntityType.IP, ATTACKER)
    assert set(alert.findings) == {"f-user", "f-ip"}
    assert seen.reasons == [OPENED]


def test_a_finding_about_an_account_attacked_from_many_addresses_is_the_accounts() -> None:
    alerts, _ = manager(alert_at_severity=HIGH)
    alerts.on_finding(
        make_finding("f-user", t=0, entity="alice", entity_type=EntityType.USER,
                     extra={"sources": 40})
    )  # fmt: skip
    [alert] = alerts.open_alerts()
    assert (alert.actor_type, alert.actor) == (EntityType.USER, "alice")


def test_a_distributed_attack_becomes_one_campaign_alert_after_a_few_addresses() -> None:
    alerts, seen = manager(alert_at_severity=HIGH, campaign_after=3, campaign_window_s=900)
    for i in range(6):  # six proxies, one after the other
        alerts.on_finding(make_finding(f"f-{i}", entity=f"198.51.100.{i}", t=60 * i))
    alerts.on_finding(version(make_finding("f-4", entity="198.51.100.4", t=240), 600))
    alerts.on_finding(make_finding("f-scan", "endpoint_scanning", HIGH, t=400,
                                   entity="192.0.2.7"))  # fmt: skip
    actors = {(a.actor_type, a.actor): a for a in alerts.open_alerts()}
    assert set(actors) == {
        *((EntityType.IP, f"198.51.100.{i}") for i in range(3)),
        (EntityType.IP, "192.0.2.7"),  # another kind: its own alert
        (EntityType.GLOBAL, "campaign:credential_stuffing"),
    }
    assert seen.reasons == [OPENED] * 5  # the campaign's later addresses: no new alert
    campaign = actors[EntityType.GLOBAL, "campaign:credential_stuffing"]
    assert set(campaign.findings) == {"f-3", "f-4", "f-5"}


def test_addresses_far_apart_in_time_are_no_campaign() -> None:
    alerts, _ = manager(alert_at_severity=HIGH, campaign_after=3, campaign_window_s=900)
    for i in range(4):
        alerts.on_finding(make_finding(f"f-{i}", entity=f"198.51.100.{i}", t=400 * i))
    assert all(a.actor_type is EntityType.IP for a in alerts.open_alerts())
    quiet, _ = manager(alert_at_severity=HIGH, campaign_after=0)
    for i in range(5):
        quiet.on_finding(make_finding(f"f-{i}", entity=f"198.51.100.{i}", t=i))
    assert len(quiet.open_alerts()) == 5  # campaign_after = 0: never


# --- restart ---------------------------------------------------------------------------


def test_an_alert_resumed_after_a_restart_is_updated_not_repeated() -> None:
    before, seen_before = manager(cooldown_s=900)
    stuffing = make_finding("f-1", t=0)
    before.on_finding(stuffing)
    [stored] = before.open_alerts()  # as the store keeps it: a row and its findings
    restored = Alert.restored(stored.to_row(), list(stored.findings.values()))
    assert restored.to_row() == stored.to_row()

    after, seen = manager(cooldown_s=900, close_after_s=3600)
    after.resume([restored])
    after.on_finding(make_finding("f-2", t=300))  # the attack goes on: a new episode
    assert seen.reasons == []  # within the cooldown of the notice before the restart
    [alert] = after.open_alerts()
    assert alert.id == stored.id and alert.version == stored.version + 1
    assert set(alert.findings) == {"f-1", "f-2"} and alert.finding_count == 2
    after.on_finding(make_finding("f-3", "bola", t=400))  # a new kind still escalates
    after.advance(BASE_TS + 400 + 3600)
    assert seen.reasons == [ESCALATED, CLOSED]
    assert seen_before.reasons == [OPENED]


def test_a_silent_update_is_handed_to_on_change() -> None:
    changed: list[int] = []
    alerts = AlertManager(
        AlertPolicy(cooldown_s=900), Recorder(), on_change=lambda a: changed.append(a.version)
    )
    alerts.on_finding(make_finding("f-1", t=0))
    alerts.on_finding(make_finding("f-2", t=60))
    assert changed == [2]


# --- closing -------------------------------------------------------------------------


def test_an_alert_closes_after_quiet_and_the_next_finding_opens_a_new_one() -> None:
    alerts, seen = manager(close_after_s=3600)
    alerts.on_finding(make_finding("f-1", t=0))
    alerts.advance(BASE_TS + 3599)
    assert seen.reasons == [OPENED]
    alerts.advance(BASE_TS + 3600)
    assert seen.reasons == [OPENED, CLOSED]
    closed = seen.notices[1]
    assert closed.trigger is None
    assert closed.alert.state is AlertState.CLOSED
    assert closed.alert.version == 2
    assert alerts.open_alerts() == []

    alerts.on_finding(make_finding("f-2", t=4000))  # 25 left + 50
    assert seen.reasons == [OPENED, CLOSED, OPENED]
    reopened = seen.notices[2].alert
    assert reopened.id != closed.alert.id
    assert list(reopened.findings) == ["f-2"]
    assert reopened.finding_count == 1


def test_versions_keep_an_alert_open_while_the_attack_goes_on() -> None:
    alerts, seen = manager(close_after_s=600)
    finding = make_finding("f-1", t=0)
    alerts.on_finding(finding)
    for t in range(60, 7200, 60):
        alerts.advance(BASE_TS + t)
        alerts.on_finding(version(finding, t))
    assert seen.reasons == [OPENED]


def test_a_finding_after_a_quiet_spell_closes_the_old_alert_without_advance() -> None:
    alerts, seen = manager(close_after_s=600)
    alerts.on_finding(make_finding("f-1", t=0))
    alerts.on_finding(make_finding("f-2", t=700))
    assert seen.reasons == [OPENED, CLOSED, OPENED]


def test_a_stale_version_after_the_close_does_not_reopen() -> None:
    alerts, seen = manager(close_after_s=600)
    finding = make_finding("f-1", severity=CRITICAL, t=0)
    alerts.on_finding(finding)
    alerts.advance(BASE_TS + 700)
    alerts.on_finding(version(finding, 100))  # the detector's final emission, late
    assert seen.reasons == [OPENED, CLOSED]


def test_finish_closes_every_open_alert() -> None:
    alerts, seen = manager()
    alerts.on_finding(make_finding("f-1", entity="203.0.113.1", severity=CRITICAL))
    alerts.on_finding(make_finding("f-2", entity="203.0.113.2", severity=CRITICAL))
    alerts.finish()
    assert seen.reasons == [OPENED, OPENED, CLOSED, CLOSED]
    assert alerts.open_alerts() == []


def test_past_max_open_the_least_recently_updated_alert_closes_early() -> None:
    recorder = Recorder()
    alerts = AlertManager(AlertPolicy(campaign_after=0), recorder, max_open=2)
    for i in range(3):
        alerts.on_finding(make_finding(f"f-{i}", entity=f"203.0.113.{i}", severity=CRITICAL, t=i))
    assert recorder.reasons == [OPENED, OPENED, CLOSED, OPENED]
    assert recorder.notices[2].alert.actor == "203.0.113.0"
    assert [a.actor for a in alerts.open_alerts()] == ["203.0.113.1", "203.0.113.2"]


# --- what changes nothing ----------------------------------------------------------------


def test_suppressed_findings_are_counted_and_add_no_risk() -> None:
    now = [BASE_TS]
    rule = Suppression.create(
        reason="pentest", created_by="ana", duration_s=3600, now=BASE_TS, cidr="203.0.113.0/24"
    )
    suppressions = Suppressions([rule], clock=lambda: now[0])
    recorder = Recorder()
    alerts = AlertManager(AlertPolicy(), recorder, suppressions=suppressions)
    alerts.on_finding(make_finding("f-1", severity=CRITICAL))
    alerts.on_finding(make_finding("f-2", "brute_force", HIGH, t=10))
    assert recorder.notices == []
    assert (alerts.stats.suppressed, suppressions.suppressed) == (2, 2)
    assert alerts.tracked() == 0

    now[0] = BASE_TS + 3600  # the rule expired (wall clock)
    alerts.on_finding(make_finding("f-3", "bola", MEDIUM, t=20))
    assert recorder.notices == []  # 25: the suppressed findings added nothing
    alerts.on_finding(make_finding("f-4", "bola", MEDIUM, t=20))
    assert recorder.reasons == [OPENED]
    assert recorder.notices[0].alert.finding_count == 2


def test_findings_below_min_severity_are_ignored_and_counted() -> None:
    alerts, seen = manager(min_severity=MEDIUM, risk_threshold=10)
    alerts.on_finding(make_finding("f-1", "malformed_request", LOW))
    assert seen.notices == []
    assert alerts.stats.ignored == 1 and alerts.stats.findings == 1
    assert alerts.tracked() == 0
    alerts.on_finding(make_finding("f-2", "rate_anomaly", MEDIUM))
    assert seen.reasons == [OPENED]


# --- bounds and determinism --------------------------------------------------------------


def test_state_is_bounded_by_max_actors_and_dies_with_the_risk() -> None:
    recorder = Recorder()
    alerts = AlertManager(AlertPolicy(), recorder, max_actors=1000)
    for i in range(100_000):
        alerts.on_finding(
            make_finding(
                f"f-{i}",
                "malformed_request",
                LOW,
                entity=f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}",
                t=i / 100,
            )
        )
    assert recorder.notices == []
    assert alerts.tracked() == 1000
    alerts.advance(BASE_TS + 1000 + 8 * 3600)  # 10 points fade under 0.5 in 4.3 half-lives
    assert alerts.tracked() == 0


def test_state_fades_with_the_risk_at_the_default_cap_too() -> None:
    alerts, _ = manager()
    for i in range(2000):
        alerts.on_finding(make_finding(f"f-{i}", "malformed_request", LOW, entity=f"u{i}", t=i))
    assert alerts.tracked() == 2000
    alerts.advance(BASE_TS + 2000 + 5 * 3600)
    assert alerts.tracked() == 0


def scenario() -> list[Finding]:
    stuffing = make_finding("f-stuff", t=0)
    return [
        make_finding("f-scan", "endpoint_scanning", MEDIUM, t=0, entity="198.51.100.4"),
        stuffing,
        takeover("alice", t=90),
        *(version(stuffing, t) for t in range(60, 1200, 60)),
        make_finding("f-bola", "bola", HIGH, t=1300, entity="198.51.100.4"),
        make_finding("f-late", t=9000),
    ]


def run(findings: list[Finding]) -> list[tuple[str, str, int, str | None]]:
    alerts, seen = manager(close_after_s=1800)
    for finding in findings:
        alerts.advance(finding.detected_ts)
        alerts.on_finding(finding)
    alerts.finish()
    return [
        (n.alert.id, n.reason.value, n.alert.version, n.trigger.id if n.trigger else None)
        for n in seen.notices
    ]


def test_the_same_findings_give_the_same_alerts_and_notices() -> None:
    first, second = run(scenario()), run(scenario())
    assert first == second
    assert [reason for _, reason, _, _ in first] == [
        "opened",  # the stuffing from 203.0.113.9
        "escalated",  # alice's takeover joins it
        "opened",  # 198.51.100.4: scan + bola
        "closed",  # 203.0.113.9 quiet for 1800 s
        "closed",
        "opened",  # the late stuffing opens a new alert for 203.0.113.9
        "closed",
    ]
    assert len({alert_id for alert_id, *_ in first}) == 3


# --- the alert itself ---------------------------------------------------------------------


def test_the_row_is_flat_json_with_the_store_columns() -> None:
    alerts, seen = manager()
    alerts.on_finding(make_finding("f-1", extra={"route": "/api/v1/orders/{id}"}))
    alert = seen.notices[0].alert
    row = alert.to_row()
    assert list(row) == [
        "id", "version", "state", "actor_type", "actor", "severity", "risk", "opened_ts",
        "updated_ts", "first_ts", "last_ts", "kinds", "finding_ids", "finding_count",
        "title", "summary",
    ]  # fmt: skip
    assert orjson.loads(orjson.dumps(row)) == row
    assert row["state"] == "open" and row["severity"] == "high" and row["actor_type"] == "ip"
    assert row["finding_ids"] == ["f-1"]
    assert row["summary"].startswith("credential_stuffing: credential_stuffing from 203.0.113.9")
    assert alert.routes == {"/api/v1/orders/{id}"}


def test_a_snapshot_does_not_change_with_the_alert() -> None:
    alerts, seen = manager()
    alerts.on_finding(make_finding("f-1"))
    snapshot: Alert = seen.notices[0].alert
    alerts.on_finding(make_finding("f-2", "bola", CRITICAL, t=5))
    assert (snapshot.version, snapshot.finding_count, list(snapshot.findings)) == (1, 1, ["f-1"])
    assert snapshot.severity is HIGH
