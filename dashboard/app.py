"""The dashboard application: ``create_app`` wires settings, the store, users and
sessions into FastAPI; ``gatewatch serve`` and ``make demo`` run it under uvicorn.

Nothing is reachable without authentication but ``/healthz``, ``/metrics`` (unless
``dashboard.public_metrics`` is off), the login page and the static assets.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from dashboard.audit import AuditLog
from dashboard.auth.limits import LoginLimiter
from dashboard.auth.sessions import SessionCodec, load_or_create_secret
from dashboard.auth.store import AuthStore
from dashboard.context import SESSION_KEY_FILE, Context, auth_store
from dashboard.db import Database
from dashboard.deps import Viewer
from dashboard.metrics import LATENCY, REQUESTS
from dashboard.pages import STATIC
from dashboard.routes import (
    actors,
    alerts,
    forensics,
    health,
    inventory,
    live,
    oidc,
    overview,
    pages,
    session,
    suppressions,
)
from dashboard.security import BodyLimit, SecurityHeaders, install_error_handlers
from gatewatch.settings import Settings
from gatewatch.store.client import Store

API_VERSION = "1"


def create_app(settings: Settings, store: Store, *, users: AuthStore | None = None) -> FastAPI:
    dash = settings.dashboard
    db = Database(store)
    audit = AuditLog(db)
    secret = load_or_create_secret(settings.data_dir / SESSION_KEY_FILE)
    gw = Context(
        settings=settings,
        db=db,
        users=users or auth_store(settings),
        sessions=SessionCodec(secret, max_age_s=dash.session_hours * 3600),
        limiter=LoginLimiter(max_failures=dash.login_max_failures, lockout_s=dash.login_lockout_s),
        audit=audit,
        secret=secret,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        audit.start()
        try:
            yield
        finally:
            audit.close()

    app = FastAPI(
        title="Gatewatch",
        version=API_VERSION,
        description="SOC dashboard and forensic API of Gatewatch. Authenticate with a "
        "session (log in at /login) or an API token: `Authorization: Bearer gwt_...`.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, to authenticated callers only
    )
    app.state.gw = gw
    install_error_handlers(app)
    for router in (health.router, session.router, oidc.router, pages.router, alerts.router,
                   overview.router, inventory.router,
                   suppressions.router, actors.router, live.router, forensics.router):  # fmt: skip
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/v1/openapi.json", include_in_schema=False)
    def openapi(_: Viewer) -> dict[str, Any]:
        return app.openapi()

    @app.middleware("http")
    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        LATENCY.labels(name).observe(time.perf_counter() - started)
        REQUESTS.labels(request.method, name, str(response.status_code)).inc()
        return response

    app.add_middleware(BodyLimit, max_bytes=dash.max_request_bytes)
    app.add_middleware(SecurityHeaders, hsts=dash.https)
    return app
