"""The Finding: what a detector concluded, with the evidence behind it (DESIGN.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson


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

    def to_json(self) -> bytes:
        """The finding as one JSON line (DESIGN.md field names; times in RFC 3339 UTC)."""
        return orjson.dumps(
            {
                "id": self.id,
                "kind": self.kind,
                "subkind": self.subkind,
                "severity": self.severity.value,
                "score": self.score,
                "entity_type": self.entity_type.value,
                "entity": self.entity,
                "first_ts": rfc3339(self.first_ts),
                "last_ts": rfc3339(self.last_ts),
                "detected_ts": rfc3339(self.detected_ts),
                "summary": self.summary,
                "evidence": self.evidence,
                "owasp": self.owasp,
                "mitre": self.mitre,
                "detector": self.detector,
                "extra": self.extra,
            }
        )


def rfc3339(ts: float) -> str:
    """Epoch seconds as RFC 3339 UTC with milliseconds.

    >>> rfc3339(1710230400.5)
    '2024-03-12T08:00:00.500Z'
    """
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
