"""The HTML pages: a server-rendered shell per page, which the scripts in ``static/``
fill and keep fresh from the JSON API. A visitor without a login is sent to the login
page; every page view is audited as ``view_<page>``.

The pages hold no logic of their own beyond what is cheap to show at once (the open
alerts, an alert's header): what a page shows is what the API answers, so a browser
and a script see the same thing.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import Response

from dashboard.auth.store import Role
from dashboard.deps import Gw, Principal, client_ip, principal_of
from dashboard.forensics import FORENSIC_TABLES, HttpMethod
from dashboard.pages import render
from dashboard.routes import alerts
from gatewatch.finding import KINDS, Severity

router = APIRouter(include_in_schema=False)

# The API's alert id (``dashboard.routes.alerts``): checked here too, so that a
# malformed one gets the 404 page rather than a JSON validation error.
_ALERT_ID = re.compile(r"a-[0-9a-f]{20}")
# How far back the overview looks for open alerts: an open alert is updated while its
# actor is active, and closed once it goes quiet, so this only bounds the scan.
_OPEN_ALERT_HOURS = 24 * 30
_ACTOR_KINDS = {"ip": "IP address", "user": "User", "api_key": "API key"}


def visitor(request: Request) -> Principal:
    """The logged-in visitor of a page; anyone else is sent to the login page."""
    principal = principal_of(request)
    if principal is None:
        raise HTTPException(303, "log in first", headers={"Location": "/login"})
    return principal


Visitor = Annotated[Principal, Depends(visitor)]


def _page(
    request: Request,
    gw: Gw,
    who: Principal,
    page: str,
    values: dict[str, Any] | None = None,
    *,
    template: str = "",
    target: str = "",
    status: int = 200,
) -> Response:
    """Audit the view, then render ``template`` (``<page>.html`` by default) with what
    every page needs: the principal, the page's name (for the navigation) and whether
    the principal may triage and query (analysts and admins)."""
    gw.audit.record(
        principal=who.name, role=who.role.value, auth=who.auth, client_ip=client_ip(request),
        method=request.method, path=request.url.path, action=f"view_{page}", target=target,
        status=status,
    )  # fmt: skip
    context = {"principal": who, "page": page, "analyst": who.role.allows(Role.ANALYST)}
    return render(request, template or f"{page}.html", {**context, **(values or {})}, status=status)


def _problem(
    request: Request,
    gw: Gw,
    who: Principal,
    page: str,
    *,
    status: int,
    message: str,
    target: str = "",
) -> Response:
    """The error page (404, 403) for ``page``, audited like a view of it."""
    titles = {403: "Not allowed", 404: "Not found"}
    values = {"status": status, "title": titles.get(status, "Error"), "message": message}
    return _page(
        request, gw, who, page, values, template="error.html", target=target, status=status
    )


@router.get("/")
def overview(request: Request, who: Visitor, gw: Gw) -> Response:
    open_alerts = alerts.list_alerts(_=who, gw=gw, state="open", hours=_OPEN_ALERT_HOURS, limit=200)
    return _page(request, gw, who, "overview", {"alerts": open_alerts})


@router.get("/live")
def live(request: Request, who: Visitor, gw: Gw) -> Response:
    return _page(request, gw, who, "live")


@router.get("/alerts")
def alert_list(request: Request, who: Visitor, gw: Gw) -> Response:
    values = {"kinds": sorted(KINDS), "severities": [s.value for s in Severity]}
    return _page(request, gw, who, "alerts", values)


@router.get("/alerts/{alert_id}")
def alert_page(request: Request, who: Visitor, gw: Gw, alert_id: str) -> Response:
    if not _ALERT_ID.fullmatch(alert_id):
        return _problem(request, gw, who, "alert", status=404, message="That is not an alert id.")
    try:
        found = alerts.get_alert(alert_id, who, gw)
    except HTTPException as exc:
        if exc.status_code != 404:
            raise
        return _problem(
            request, gw, who, "alert", status=404, message=f"No alert {alert_id}.", target=alert_id
        )
    return _page(request, gw, who, "alert", {"alert": found}, target=alert_id)


@router.get("/actors/{kind}/{value:path}")
def actor_page(
    request: Request,
    who: Visitor,
    gw: Gw,
    kind: str,
    value: Annotated[str, Path(max_length=256)],
) -> Response:
    if kind not in _ACTOR_KINDS:
        message = "An actor is an IP address, a user or an API key."
        return _problem(request, gw, who, "actor", status=404, message=message)
    values = {"kind": kind, "kind_label": _ACTOR_KINDS[kind], "value": value}
    return _page(request, gw, who, "actor", values, target=f"{kind}:{value}")


@router.get("/routes")
def routes(request: Request, who: Visitor, gw: Gw) -> Response:
    return _page(request, gw, who, "routes")


@router.get("/search")
def search(request: Request, who: Visitor, gw: Gw) -> Response:
    values = {"kinds": sorted(KINDS), "methods": [m.value for m in HttpMethod]}
    return _page(request, gw, who, "search", values)


@router.get("/sql")
def sql(request: Request, who: Visitor, gw: Gw) -> Response:
    if not who.role.allows(Role.ANALYST):
        message = "SQL queries need the analyst role."
        return _problem(request, gw, who, "sql", status=403, message=message)
    return _page(request, gw, who, "sql", {"tables": sorted(FORENSIC_TABLES)})
