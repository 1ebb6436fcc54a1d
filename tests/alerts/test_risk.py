"""RiskBook: points per finding, exponential decay in event time, bounded size; and the
policy that sets its numbers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from alerts.policy import AlertPolicy
from alerts.risk import RiskBook
from gatewatch.finding import EntityType, Severity
from tests.alerts.test_grouping import make_finding

HOUR = 3600.0
IP = (EntityType.IP, "203.0.113.9")


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [(0.0, 80.0), (HOUR / 2, 80 / 2**0.5), (HOUR, 40.0), (2 * HOUR, 20.0), (10 * HOUR, 80 / 1024)],
)
def test_risk_halves_every_half_life(elapsed: float, expected: float) -> None:
    book = RiskBook(AlertPolicy(half_life_s=HOUR))
    book.add(IP, 80.0, ts=1000.0)
    assert book.risk(IP, 1000.0 + elapsed) == pytest.approx(expected)


def test_points_add_on_top_of_the_decayed_risk() -> None:
    book = RiskBook(AlertPolicy(half_life_s=HOUR))
    assert book.add(IP, 40.0, ts=0.0) == 40.0
    assert book.add(IP, 40.0, ts=HOUR) == pytest.approx(60.0)
    assert book.add(IP, 0.0, ts=2 * HOUR) == pytest.approx(30.0)


def test_a_late_finding_adds_its_points_decayed_to_the_latest_update() -> None:
    book = RiskBook(AlertPolicy(half_life_s=HOUR))
    book.add(IP, 40.0, ts=HOUR)
    assert book.add(IP, 40.0, ts=0.0) == pytest.approx(60.0)  # as if it came in order
    assert book.risk(IP, HOUR) == pytest.approx(60.0)


def test_an_unknown_actor_has_no_risk_and_risk_never_grows_back_in_time() -> None:
    book = RiskBook(AlertPolicy())
    assert book.risk(IP, 0.0) == 0.0
    book.add(IP, 10.0, ts=100.0)
    assert book.risk(IP, 50.0) == 10.0


def test_actors_whose_risk_faded_under_one_percent_of_the_threshold_are_forgotten() -> None:
    forgotten: list[tuple[EntityType, str]] = []
    book = RiskBook(AlertPolicy(risk_threshold=50, half_life_s=HOUR), on_forget=forgotten.append)
    book.add(IP, 10.0, ts=0.0)  # under 0.5 after log2(20) = 4.3 half-lives
    book.add((EntityType.USER, "alice"), 100.0, ts=0.0)  # after 7.6
    assert book.expire(4 * HOUR) == 0
    assert book.expire(5 * HOUR) == 1
    assert forgotten == [IP] and len(book) == 1
    assert book.expire(8 * HOUR) == 1
    assert len(book) == 0


def test_expire_runs_a_full_pass_at_most_once_per_quarter_half_life() -> None:
    book = RiskBook(AlertPolicy(half_life_s=HOUR))
    book.expire(0.0)
    book.add(IP, 0.1, ts=0.0)
    assert book.expire(HOUR / 8) == 0  # not due yet, though the actor is under the floor
    assert book.expire(HOUR / 4) == 1


def test_past_max_actors_the_least_recently_updated_is_evicted() -> None:
    forgotten: list[tuple[EntityType, str]] = []
    book = RiskBook(AlertPolicy(), max_actors=1000, on_forget=forgotten.append)
    for i in range(100_000):
        book.add((EntityType.IP, f"10.0.{i >> 8}.{i & 255}"), 10.0, ts=float(i))
    book.add((EntityType.IP, "10.0.0.0"), 10.0, ts=1e5)  # forgotten long ago: new again
    assert len(book) == 1000
    assert len(forgotten) == 99_001
    assert (EntityType.IP, "10.0.0.0") in book
    assert (EntityType.IP, "10.0.0.1") not in book
    assert (EntityType.IP, f"10.0.{99_999 >> 8}.{99_999 & 255}") in book


def test_max_actors_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_actors"):
        RiskBook(AlertPolicy(), max_actors=0)


# --- the policy ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "score", "points"),
    [
        (Severity.LOW, 1.0, 10.0),
        (Severity.MEDIUM, 0.8, 20.0),
        (Severity.HIGH, 0.2, 25.0),  # a doubtful finding counts half
        (Severity.CRITICAL, 0.5, 50.0),
    ],
)
def test_points_are_severity_points_times_the_score_at_least_half(
    severity: Severity, score: float, points: float
) -> None:
    finding = make_finding(severity=severity, score=score)
    assert AlertPolicy().points(finding) == pytest.approx(points)


def test_severity_points_left_out_keep_their_default() -> None:
    policy = AlertPolicy.model_validate({"severity_points": {"high": 60}})
    assert policy.severity_points == {
        Severity.LOW: 10.0,
        Severity.MEDIUM: 25.0,
        Severity.HIGH: 60.0,
        Severity.CRITICAL: 100.0,
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"risk_threshold": 0}, "risk_threshold"),
        ({"half_life_s": -1}, "half_life_s"),
        ({"half_life_s": float("inf")}, "half_life_s"),
        ({"cooldown_s": -1}, "cooldown_s"),
        ({"close_after_s": 0}, "close_after_s"),
        ({"max_findings": 0}, "max_findings"),
        ({"severity_points": {"high": -5}}, "high: points must be >= 0"),
        ({"severity_points": {"urgent": 5}}, "severity_points"),
        ({"min_severity": "urgent"}, "min_severity"),
        ({"risk_treshold": 10}, "risk_treshold"),  # a typo stops start-up
    ],
)
def test_a_bad_policy_is_rejected_naming_the_key(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AlertPolicy.model_validate(config)
