"""``/healthz`` (no auth: for load balancers) and ``/metrics`` (Prometheus; public
unless ``dashboard.public_metrics`` is off, then viewers only)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dashboard.deps import Gw, principal_of
from dashboard.metrics import REGISTRY
from gatewatch.errors import StoreError

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="liveness and store reachability")
def healthz(gw: Gw) -> Response:
    try:
        gw.db.query("SELECT 1")
    except StoreError:
        return JSONResponse({"status": "store unreachable"}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
def metrics(request: Request, gw: Gw) -> Response:
    if not gw.settings.dashboard.public_metrics and principal_of(request) is None:
        raise HTTPException(401, "authentication required")
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
