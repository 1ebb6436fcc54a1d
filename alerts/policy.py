"""When findings become an alert: the risk threshold, its decay, cooldown and closing.

One frozen model, validated at load like a detector's params: the settings section
``[alerts]`` extends it with delivery options, so a typo or a negative half-life stops
start-up instead of flooding (or silencing) a SOC.
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gatewatch.finding import Finding, Severity

DEFAULT_POINTS: dict[Severity, float] = {
    Severity.LOW: 10.0,
    Severity.MEDIUM: 25.0,
    Severity.HIGH: 50.0,
    Severity.CRITICAL: 100.0,
}

Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class AlertPolicy(BaseModel):
    """Risk per actor opens an alert; cooldown and closing keep one alert per attack.

    >>> policy = AlertPolicy(severity_points={Severity.HIGH: 40})
    >>> policy.severity_points[Severity.LOW], policy.severity_points[Severity.HIGH]
    (10.0, 40.0)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    risk_threshold: float = Field(
        default=50.0,
        gt=0,
        allow_inf_nan=False,
        description="actor risk at which an alert opens (a critical finding opens one at once)",
    )
    half_life_s: Seconds = Field(
        default=3600.0, description="risk decays by half over this much event time"
    )
    severity_points: dict[Severity, float] = Field(
        default_factory=lambda: dict(DEFAULT_POINTS),
        description="risk points per finding: points[severity] * max(score, 0.5); "
        "severities left out keep their default",
    )
    alert_at_severity: Severity = Field(
        default=Severity.HIGH,
        description="a finding this severe or worse opens an alert at once; below it "
        "(a scan, an enumeration) the actor's risk must reach risk_threshold",
    )
    min_severity: Severity = Field(
        default=Severity.LOW,
        description="findings below this are ignored: no risk, no alert (still stored)",
    )
    cooldown_s: float = Field(
        default=900.0,
        ge=0,
        allow_inf_nan=False,
        description="an open alert notifies of new findings at most once per cooldown; "
        "an escalation (higher severity, new kind) always notifies",
    )
    close_after_s: Seconds = Field(
        default=3600.0,
        description="an alert with no finding for this long (event time) closes; the next "
        "finding opens a new one. Keep it above the detectors' episode quiet time",
    )
    campaign_after: int = Field(
        default=3,
        ge=0,
        le=1000,
        description="once this many addresses opened alerts of one kind within "
        "campaign_window_s, more addresses with findings of that kind join one campaign "
        "alert instead of opening their own (0: never)",
    )
    campaign_window_s: Seconds = Field(default=900.0, description="see campaign_after (event time)")
    max_findings: int = Field(
        default=50,
        ge=1,
        le=10_000,
        description="latest finding versions kept per alert (its counts stay exact)",
    )

    @field_validator("severity_points")
    @classmethod
    def _complete_points(cls, value: dict[Severity, float]) -> dict[Severity, float]:
        for severity, points in value.items():
            if not (math.isfinite(points) and points >= 0):
                raise ValueError(f"{severity.value}: points must be >= 0, got {points}")
        return {**DEFAULT_POINTS, **value}

    def points(self, finding: Finding) -> float:
        """The risk one finding adds: a confident finding counts fully, a doubtful one
        at least half (its severity already says how bad the kind is)."""
        return self.severity_points[finding.severity] * max(finding.score, 0.5)
