"""``/api/v1/actors/{kind}/{value}``: what one IP, user or API key did: its requests
(newest last), status mix, routes touched, first and last seen, and its findings."""

from __future__ import annotations

import ipaddress
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query

from dashboard.deps import Gw, Viewer
from gatewatch.store.queries import TimeRange, actor_activity, recent_findings

router = APIRouter(prefix="/api/v1/actors", tags=["actors"])

_REQUEST_FIELDS = (
    "ts", "client_ip", "method", "host", "path", "query", "status", "user", "api_key",
    "user_agent", "request_id",
)  # fmt: skip


@router.get("/{kind}/{value:path}", summary="an actor's requests and findings")
def actor(
    kind: Literal["ip", "user", "api_key"],
    value: Annotated[str, Path(min_length=1, max_length=256)],
    _: Viewer,
    gw: Gw,
    hours: Annotated[float, Query(ge=0.01, le=24 * 31)] = 24.0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    if kind == "ip":
        try:
            value = str(ipaddress.ip_address(value))
        except ValueError as exc:
            raise HTTPException(422, f"value: {value!r} is not an IP address") from exc
    until = datetime.now(UTC)
    window = TimeRange(until - timedelta(hours=hours), until)
    # The newest requests when there are more than ``limit``; shown oldest first.
    rows = gw.db.run(actor_activity, kind, value, window, limit=limit, newest_first=True)
    requests = [dict(zip(_REQUEST_FIELDS, row, strict=True)) for row in reversed(rows)]
    findings = gw.db.run(recent_findings, window, entity=value, limit=200)
    statuses = Counter(f"{r['status'] // 100}xx" for r in requests)
    paths = Counter(r["path"] for r in requests)
    return {
        "kind": kind,
        "value": value,
        "requests": requests,
        "truncated": len(requests) >= limit,
        "first_seen": requests[0]["ts"] if requests else None,
        "last_seen": requests[-1]["ts"] if requests else None,
        "status_mix": dict(statuses),
        "paths": [{"path": p, "requests": n} for p, n in paths.most_common(50)],
        "findings": [
            {
                "detected": str(f[0]),
                "kind": f[1],
                "subkind": f[2],
                "severity": f[3],
                "summary": f[8],
                "id": f[12],
            }
            for f in findings
        ],
    }
