"""The Finding: what a detector concluded, with the evidence behind it (DESIGN.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class EntityType(StrEnum):
    IP = "ip"
    USER = "user"
    API_KEY = "api_key"
    ROUTE = "route"
    GLOBAL = "global"


KINDS: frozenset[str] = frozenset(
    {
        "brute_force",
        "credential_stuffing",
        "password_spraying",
        "bola",
        "endpoint_scanning",
        "user_enumeration",
        "injection",
        "malformed_request",
        "oversized_payload",
        "rate_anomaly",
        "data_exfiltration",
        "token_misuse",
        "insecure_transport",
        "anomaly",
    }
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One detection. Times are event time in epoch seconds.

    ``detected_ts`` is the event time of the event that raised the finding;
    ``evidence`` lists the request ids that contributed.
    """

    id: str
    kind: str
    severity: Severity
    score: float
    entity_type: EntityType
    entity: str
    first_ts: float
    last_ts: float
    detected_ts: float
    summary: str
    subkind: str = ""
    evidence: tuple[str, ...] = ()
    owasp: str = ""
    mitre: str = ""
    detector: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown finding kind {self.kind!r}")
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score must be within 0..1, got {self.score}")
