"""``/api/v1/routes``: the route inventory (API discovery): every route template the
gateway served in the window, with its methods, traffic, error rates, how much of it
came without credentials, whether it seems to require them, its clients and latency.

``auth_required`` is a heuristic read from anonymous traffic (requests with neither a
user nor an API key): a route that refuses (401 or 403) at least
``AUTH_REQUIRED_SHARE`` of its anonymous requests requires authentication; one that
serves more of them does not; one that no anonymous request reached is ``null``
(unknown). ``first_seen`` and ``last_seen`` are within the window.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from dashboard import overview_queries
from dashboard.deps import Gw, Viewer
from dashboard.overview_queries import ROUTE_COLUMNS, RouteSort
from dashboard.queries import iso
from dashboard.routes.overview import Now

router = APIRouter(prefix="/api/v1/routes", tags=["routes"])

AUTH_REQUIRED_SHARE = 0.9


class RouteOut(BaseModel):
    route: str
    methods: list[str]
    requests: int
    errors: int  # 5xx responses (the sort key "errors")
    error_rate: float  # share of 5xx responses
    client_error_rate: float  # share of 4xx responses
    unauthenticated: int  # requests with neither user nor API key
    unauthenticated_share: float
    auth_required: bool | None  # see the module docstring; None: no anonymous request
    distinct_clients: int  # client IP addresses
    first_seen: str
    last_seen: str
    p95_latency_ms: float


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def requires_auth(denied: int, anonymous: int) -> bool | None:
    """The ``auth_required`` heuristic: ``denied`` of the route's ``anonymous``
    requests were answered 401 or 403.

    >>> requires_auth(10, 10), requires_auth(1, 41), requires_auth(0, 0)
    (True, False, None)
    """
    return denied >= AUTH_REQUIRED_SHARE * anonymous if anonymous else None


def _route(row: tuple[Any, ...]) -> RouteOut:
    r = dict(zip(ROUTE_COLUMNS, row, strict=True))
    anonymous, requests = r["unauthenticated"], r["requests"]
    return RouteOut(
        route=r["route"],
        methods=list(r["methods"]),
        requests=requests,
        errors=r["errors"],
        error_rate=_share(r["errors"], requests),
        client_error_rate=_share(r["client_errors"], requests),
        unauthenticated=anonymous,
        unauthenticated_share=_share(anonymous, requests),
        auth_required=requires_auth(r["anonymous_denied"], anonymous),
        distinct_clients=r["distinct_clients"],
        first_seen=iso(r["first_seen"]),
        last_seen=iso(r["last_seen"]),
        p95_latency_ms=round(float(r["p95_latency_ms"]), 1),
    )


@router.get("", summary="the route inventory: every route served, busiest first")
def routes(
    _: Viewer,
    gw: Gw,
    now: Now,
    hours: Annotated[int, Query(ge=1, le=720)] = 24,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    sort: RouteSort = "requests",
) -> list[RouteOut]:
    since = now - timedelta(hours=hours)
    rows = gw.db.run(overview_queries.routes, since, now, sort=sort, limit=limit)
    return [_route(row) for row in rows]
