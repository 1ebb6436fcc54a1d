"""``/api/v1/suppressions``: the rules that keep matching findings from alerting (the
same rules ``gatewatch alerts suppress`` manages). Viewers list; analysts add and
remove."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from alerts.suppression import Suppression
from dashboard.deps import Analyst, Gw, Principal, Viewer, client_ip
from gatewatch.finding import KINDS
from gatewatch.store.queries import active_suppressions, remove_suppression, save_suppression

router = APIRouter(prefix="/api/v1/suppressions", tags=["suppressions"])

RULE_ID = Annotated[str, Path(pattern=r"^s-[0-9a-f]{6,40}$", max_length=42)]


class SuppressionIn(BaseModel):
    """A new rule: at least one of kind, entity, route, cidr; all given must match."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(default="", max_length=64)
    entity: str = Field(default="", max_length=256)
    route: str = Field(default="", max_length=512)
    cidr: str = Field(default="", max_length=64)
    hours: float = Field(gt=0, le=24 * 365, description="expires after this many hours")
    reason: str = Field(min_length=1, max_length=1000)


class SuppressionOut(BaseModel):
    id: str
    kind: str
    entity: str
    route: str
    cidr: str
    reason: str
    created_by: str
    created_ts: float
    expires_ts: float


@router.get("", summary="active suppression rules")
def list_rules(_: Viewer, gw: Gw) -> list[SuppressionOut]:
    return [SuppressionOut(**row) for row in gw.db.run(active_suppressions)]


@router.post("", status_code=201, summary="add a suppression rule")
def add_rule(body: SuppressionIn, who: Analyst, gw: Gw, request: Request) -> SuppressionOut:
    if body.kind and body.kind not in KINDS:
        raise HTTPException(422, f"kind: unknown finding kind {body.kind!r}")
    rule = store_rule(gw, who, body, request)
    return SuppressionOut(**rule.to_row())


@router.delete("/{rule_id}", status_code=204, summary="remove a suppression rule")
def remove_rule(rule_id: RULE_ID, who: Analyst, gw: Gw, request: Request) -> None:
    if not gw.db.run(remove_suppression, rule_id):
        raise HTTPException(404, f"no active suppression rule {rule_id}")
    gw.audit.record(
        principal=who.name, role=who.role.value, auth=who.auth,
        client_ip=client_ip(request), method="DELETE", path=request.url.path,
        action="suppression_removed", target=rule_id, status=204,
    )  # fmt: skip


def store_rule(gw: Gw, who: Principal, body: SuppressionIn, request: Request) -> Suppression:
    """Validate, store and audit a rule (also used by triage's false positive)."""
    try:
        rule = Suppression.create(
            reason=body.reason,
            created_by=who.name,
            duration_s=body.hours * 3600,
            now=time.time(),
            kind=body.kind,
            entity=body.entity,
            route=body.route,
            cidr=body.cidr,
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    gw.db.run(save_suppression, rule.to_row())
    gw.audit.record(
        principal=who.name, role=who.role.value, auth=who.auth, client_ip=client_ip(request),
        method="POST",
        path=request.url.path, action="suppression_added", target=rule.id, status=201,
        detail=body.model_dump_json(),
    )  # fmt: skip
    return rule
