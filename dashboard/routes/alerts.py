"""``/api/v1/alerts``: the alerts, one with its findings, triage trail and deliveries,
and triage itself: acknowledge, assign, comment, resolve, or mark a false positive
(which also adds a suppression for the alert's actor, with an expiry)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dashboard import queries
from dashboard.deps import Analyst, Gw, Viewer, client_ip
from dashboard.routes.suppressions import SuppressionIn, store_rule
from gatewatch.finding import KINDS

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

ALERT_ID = Annotated[str, Path(pattern=r"^a-[0-9a-f]{20}$", max_length=22)]
USER_NAME = r"^[A-Za-z0-9._@-]{1,64}$"


class TriageAction(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    ASSIGN = "assign"
    COMMENT = "comment"
    RESOLVE = "resolve"
    FALSE_POSITIVE = "false_positive"
    REOPEN = "reopen"


_STATUS = {
    TriageAction.ACKNOWLEDGE: "acknowledged",
    TriageAction.RESOLVE: "resolved",
    TriageAction.FALSE_POSITIVE: "false_positive",
    TriageAction.REOPEN: "new",
}


class TriageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: TriageAction
    assignee: str = Field(default="", max_length=64)
    comment: str = Field(default="", max_length=4000)
    suppress_hours: float = Field(
        default=24 * 7, gt=0, le=24 * 90, description="false_positive: suppression lifetime"
    )

    @model_validator(mode="after")
    def _needs(self) -> TriageIn:
        if self.action is TriageAction.ASSIGN and not self.assignee:
            raise ValueError("assignee: assign needs the analyst's user name")
        if self.action is TriageAction.COMMENT and not self.comment.strip():
            raise ValueError("comment: a comment needs text")
        return self


class TriageOut(BaseModel):
    ts: str
    action: str
    analyst: str
    assignee: str
    comment: str
    suppression_id: str


class AlertOut(BaseModel):
    id: str
    version: int
    state: str
    status: str  # triage: new, acknowledged, resolved, false_positive
    assignee: str
    severity: str
    actor_type: str
    actor: str
    risk: float
    title: str
    opened: str
    updated: str
    first_seen: str
    last_seen: str
    kinds: dict[str, int]
    finding_count: int


class FindingOut(BaseModel):
    id: str
    kind: str
    subkind: str
    severity: str
    entity_type: str
    entity: str
    summary: str
    first_seen: str
    last_seen: str
    detected: str
    evidence: int
    owasp: str
    mitre: str


def _finding(row: tuple[Any, ...]) -> FindingOut:
    fid, kind, sub, severity, etype, entity, summary, first, last, detected, n, owasp, mitre = row
    return FindingOut(
        id=fid, kind=kind, subkind=sub, severity=severity, entity_type=etype, entity=entity,
        summary=summary, first_seen=queries.iso(first), last_seen=queries.iso(last),
        detected=queries.iso(detected), evidence=n, owasp=owasp, mitre=mitre,
    )  # fmt: skip


class AlertDetail(AlertOut):
    summary: str
    finding_ids: list[str]
    findings: list[FindingOut]
    triage: list[TriageOut]
    deliveries: list[dict[str, Any]]


def _triage_state(rows: list[tuple[Any, ...]]) -> tuple[str, str]:
    """(status, assignee) from an alert's triage rows, oldest first."""
    status, assignee = "new", ""
    for _, action, _, who, *_ in rows:
        status = _STATUS.get(TriageAction(action), status)
        if action == TriageAction.ASSIGN:
            assignee = who
    return status, assignee


def _alert(row: tuple[Any, ...], triage: list[tuple[Any, ...]]) -> dict[str, Any]:
    (aid, version, state, severity, atype, actor, risk, title, opened, updated, first, last,
     kinds, count) = row[:14]  # fmt: skip
    status, assignee = _triage_state(triage)
    return {
        "id": aid,
        "version": version,
        "state": state,
        "status": status,
        "assignee": assignee,
        "severity": severity,
        "actor_type": atype,
        "actor": actor,
        "risk": round(float(risk), 1),
        "title": title,
        "opened": queries.iso(opened),
        "updated": queries.iso(updated),
        "first_seen": queries.iso(first),
        "last_seen": queries.iso(last),
        "kinds": dict(kinds),
        "finding_count": count,
    }


@router.get("", summary="alerts, most recently updated first")
def list_alerts(
    *,
    _: Viewer,
    gw: Gw,
    state: Literal["open", "closed"] | None = None,
    severity: Literal["low", "medium", "high", "critical"] | None = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    hours: Annotated[float, Query(gt=0, le=24 * 400)] = 24.0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlertOut]:
    if kind is not None and kind not in KINDS:
        raise HTTPException(422, f"kind: unknown finding kind {kind!r}")
    rows = gw.db.run(
        queries.alerts, seconds=int(hours * 3600), limit=limit, state=state,
        severity=severity, kind=kind,
    )  # fmt: skip
    triage = gw.db.run(queries.triage, [row[0] for row in rows])
    return [AlertOut(**_alert(row, triage.get(row[0], []))) for row in rows]


@router.get("/{alert_id}", summary="one alert: findings, triage trail, deliveries")
def get_alert(alert_id: ALERT_ID, _: Viewer, gw: Gw) -> AlertDetail:
    row = gw.db.run(queries.alert, alert_id)
    if row is None:
        raise HTTPException(404, f"no alert {alert_id}")
    trail = gw.db.run(queries.triage, [alert_id]).get(alert_id, [])
    deliveries = gw.db.run(queries.deliveries, alert_id)
    return AlertDetail(
        **_alert(row, trail),
        summary=row[14],
        finding_ids=list(row[15]),
        findings=[_finding(f) for f in gw.db.run(queries.findings_by_id, list(row[15]))],
        triage=[
            TriageOut(
                ts=queries.iso(ts), action=a, analyst=w, assignee=to, comment=c, suppression_id=s
            )
            for ts, a, w, to, c, s in trail
        ],
        deliveries=[
            {
                "ts": queries.iso(ts),
                "version": v,
                "channel": ch,
                "attempt": n,
                "ok": bool(ok),
                "error": err,
                "latency_ms": round(float(ms), 1),
                "digest": bool(dg),
            }
            for ts, v, ch, n, ok, err, ms, dg in deliveries
        ],
    )


@router.post("/{alert_id}/triage", status_code=201, summary="triage an alert")
def triage(alert_id: ALERT_ID, body: TriageIn, who: Analyst, gw: Gw, request: Request) -> TriageOut:
    found = gw.db.run(queries.alert, alert_id)
    if found is None:
        raise HTTPException(404, f"no alert {alert_id}")
    actor_type, actor, kinds = found[4], found[5], found[12]
    if body.action is TriageAction.ASSIGN and gw.users.get_user(body.assignee) is None:
        raise HTTPException(422, f"assignee: no user {body.assignee!r}")
    suppression_id = ""
    if body.action is TriageAction.FALSE_POSITIVE:
        rule = store_rule(
            gw,
            who,
            SuppressionIn(
                kind=next(iter(kinds)) if len(kinds) == 1 else "",
                entity="" if actor_type == "global" else actor,
                hours=body.suppress_hours,
                reason=body.comment.strip() or f"false positive (alert {alert_id})",
            ),
            request,
        )
        suppression_id = rule.id
    now = time.time()
    row = {
        "ts": now, "alert_id": alert_id, "action": body.action.value, "analyst": who.name,
        "assignee": body.assignee, "comment": body.comment, "suppression_id": suppression_id,
    }  # fmt: skip
    gw.db.insert_rows("alert_triage", [row])
    gw.audit.record(
        principal=who.name, role=who.role.value, auth=who.auth, client_ip=client_ip(request),
        method="POST", path=request.url.path, action=f"alert_{body.action.value}",
        target=alert_id, status=201,
    )  # fmt: skip
    return TriageOut(
        ts=queries.iso(datetime.fromtimestamp(now, UTC)),
        action=body.action.value,
        analyst=who.name,
        assignee=body.assignee,
        comment=body.comment,
        suppression_id=suppression_id,
    )
