"""The alert: what one actor did, grouped from its findings, and the notices about it.

An alert is the unit a person acts on. Its findings arrive as versions (a detector
re-emits one finding id while the attack goes on), so the alert keeps the latest
version per finding id and counts distinct ids, never versions.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gatewatch.finding import EntityType, Finding, Severity

TAKEOVER = "account_takeover"

_RANK: dict[Severity, int] = {severity: rank for rank, severity in enumerate(Severity)}


def rank(severity: Severity) -> int:
    """Severities in order, for comparing them.

    >>> rank(Severity.LOW) < rank(Severity.CRITICAL)
    True
    """
    return _RANK[severity]


def label(finding: Finding) -> str:
    """What a finding is called in an alert: its kind, except an account takeover (a
    subkind of the login attacks), which changes what a responder does first.

    >>> from gatewatch.finding import EntityType as E
    >>> f = Finding("f-1", "brute_force", Severity.CRITICAL, 1.0, E.USER, "bob", 0, 0, 0,
    ...             "", subkind="account_takeover")
    >>> label(f)
    'account_takeover'
    """
    return TAKEOVER if finding.subkind == TAKEOVER else finding.kind


def source_ip(finding: Finding) -> str | None:
    """The client address a finding about a user or key names in ``extra["source_ip"]``
    (normalised), or None. An account takeover carries it: the campaign it belongs to
    is the source's.

    >>> from gatewatch.finding import EntityType as E
    >>> f = Finding("f-1", "brute_force", Severity.CRITICAL, 1.0, E.USER, "bob", 0, 0, 0,
    ...             "", extra={"source_ip": "2001:DB8::1"})
    >>> source_ip(f)
    '2001:db8::1'
    """
    value = finding.extra.get("source_ip")
    if not isinstance(value, str) or not value:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def alert_id(actor_type: EntityType, actor: str, opened_ts: float) -> str:
    """A stable id: replaying the same findings opens alerts with the same ids.

    >>> alert_id(EntityType.IP, "203.0.113.9", 1710230400.0)
    'a-723c8a5f583cd6dd7c76'
    """
    text = f"{actor_type.value}\x1f{actor}\x1f{opened_ts:.3f}"
    return "a-" + hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


class AlertState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class NoticeReason(StrEnum):
    OPENED = "opened"
    ESCALATED = "escalated"
    UPDATED = "updated"
    CLOSED = "closed"


@dataclass(slots=True)
class Alert:
    """One actor's alert. Times are event time in epoch seconds."""

    id: str
    actor_type: EntityType
    actor: str
    severity: Severity
    risk: float
    opened_ts: float
    updated_ts: float
    first_ts: float
    last_ts: float
    version: int
    state: AlertState
    findings: dict[str, Finding]  # latest version per id, least recently updated first
    finding_count: int
    kinds: dict[str, int]
    routes: set[str]
    # label -> latest version of the finding last updated with it: one summary per
    # label even when the finding itself was dropped from ``findings``.
    latest: dict[str, Finding] = field(default_factory=dict)

    @classmethod
    def empty(cls, actor_type: EntityType, actor: str) -> Alert:
        """An alert not yet opened: it collects the findings that build the risk."""
        return cls(
            id="",
            actor_type=actor_type,
            actor=actor,
            severity=Severity.LOW,
            risk=0.0,
            opened_ts=0.0,
            updated_ts=float("-inf"),
            first_ts=float("inf"),
            last_ts=float("-inf"),
            version=0,
            state=AlertState.OPEN,
            findings={},
            finding_count=0,
            kinds={},
            routes=set(),
        )

    @classmethod
    def restored(cls, row: dict[str, Any], findings: list[Finding]) -> Alert:
        """An open alert as stored in the ``alerts`` table (``to_row``; times in epoch
        seconds), with the stored versions of its findings, to carry on after a restart.
        """
        kept = sorted(findings, key=lambda f: f.last_ts)
        alert = cls(
            id=row["id"],
            actor_type=EntityType(row["actor_type"]),
            actor=row["actor"],
            severity=Severity(row["severity"]),
            risk=float(row["risk"]),
            opened_ts=row["opened_ts"],
            updated_ts=row["updated_ts"],
            first_ts=row["first_ts"],
            last_ts=row["last_ts"],
            version=int(row["version"]),
            state=AlertState.OPEN,
            findings={f.id: f for f in kept},
            finding_count=int(row["finding_count"]),
            kinds={str(k): int(v) for k, v in row["kinds"].items()},
            routes=set(),
        )
        for finding in kept:
            alert.latest[label(finding)] = finding
            route = finding.extra.get("route")
            if isinstance(route, str) and route:
                alert.routes.add(route)
        return alert

    def absorb(self, finding: Finding, *, new: bool, ts: float, max_findings: int) -> bool:
        """Take in a finding version (``new``: its id is new to this alert); True when
        that escalates the alert: a higher severity, or a kind it did not have."""
        name = label(finding)
        rises = rank(finding.severity) > rank(self.severity)
        escalates = rises or name not in self.latest
        if rises:
            self.severity = finding.severity
        findings = self.findings
        findings.pop(finding.id, None)  # re-inserted last: the oldest is dropped first
        findings[finding.id] = finding
        while len(findings) > max_findings:
            del findings[next(iter(findings))]
        self.latest[name] = finding  # an existing label keeps its place: join order
        if new:
            self.finding_count += 1
            self.kinds[finding.kind] = self.kinds.get(finding.kind, 0) + 1
        route = finding.extra.get("route")
        if isinstance(route, str) and route:
            self.routes.add(route)
        self.first_ts = min(self.first_ts, finding.first_ts)
        self.last_ts = max(self.last_ts, finding.last_ts)
        self.updated_ts = max(self.updated_ts, ts)
        return escalates

    def labels(self) -> list[str]:
        """Its kinds (and ``account_takeover``), in the order they joined."""
        return list(self.latest)

    def title(self) -> str:
        """E.g. ``[HIGH] credential_stuffing, brute_force from ip 203.0.113.9``."""
        kinds = ", ".join(self.labels())
        if self.actor_type is EntityType.GLOBAL:
            who = "many addresses" if self.actor.startswith("campaign:") else "all traffic"
            return f"[{self.severity.value.upper()}] {kinds} across {who}"
        return f"[{self.severity.value.upper()}] {kinds} from {self.actor_type.value} {self.actor}"

    def snapshot(self) -> Alert:
        """A copy safe to hand to another thread: later updates do not show in it
        (findings are frozen; only the containers are copied)."""
        return Alert(
            id=self.id,
            actor_type=self.actor_type,
            actor=self.actor,
            severity=self.severity,
            risk=self.risk,
            opened_ts=self.opened_ts,
            updated_ts=self.updated_ts,
            first_ts=self.first_ts,
            last_ts=self.last_ts,
            version=self.version,
            state=self.state,
            findings=dict(self.findings),
            finding_count=self.finding_count,
            kinds=dict(self.kinds),
            routes=set(self.routes),
            latest=dict(self.latest),
        )

    def to_row(self) -> dict[str, Any]:
        """One row of the ``alerts`` table (one per version; the newest wins). Flat and
        JSON-able; times in epoch seconds."""
        return {
            "id": self.id,
            "version": self.version,
            "state": self.state.value,
            "actor_type": self.actor_type.value,
            "actor": self.actor,
            "severity": self.severity.value,
            "risk": round(self.risk, 3),
            "opened_ts": self.opened_ts,
            "updated_ts": self.updated_ts,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "kinds": dict(self.kinds),
            "finding_ids": list(self.findings),
            "finding_count": self.finding_count,
            "title": self.title(),
            "summary": "\n".join(f"{name}: {f.summary}" for name, f in self.latest.items()),
        }


@dataclass(frozen=True, slots=True)
class Notice:
    """Something a person should hear about an alert; ``trigger`` is the finding that
    caused it (None when the alert closed)."""

    alert: Alert  # a snapshot
    reason: NoticeReason
    trigger: Finding | None
