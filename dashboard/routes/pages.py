"""The HTML pages. Unauthenticated visitors are sent to the login page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from dashboard import queries
from dashboard.deps import Gw, principal_of
from dashboard.pages import render

router = APIRouter(include_in_schema=False)


@router.get("/")
def overview(request: Request, gw: Gw) -> Response:
    principal = principal_of(request)
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    rows = gw.db.run(queries.open_alerts)
    alerts = [
        {"updated": f"{u:%Y-%m-%d %H:%M:%S}", "severity": s, "title": t, "findings": n,
         "risk": round(float(r), 1)}
        for u, s, t, n, r, _ in rows
    ]  # fmt: skip
    gw.audit.record(
        principal=principal.name, role=principal.role.value, auth=principal.auth,
        client_ip=request.client.host if request.client else "", method="GET", path="/",
        action="view_overview",
    )  # fmt: skip
    return render(request, "overview.html", {"principal": principal, "alerts": alerts})
