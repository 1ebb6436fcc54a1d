"""Logging in and out of the dashboard (HTML forms).

The login form is protected by a double-submit token (a short-lived cookie and a hidden
field); failed logins are throttled per account and per address, and lock the account
for a while after ``login_max_failures``. The session cookie is HttpOnly, SameSite
Strict, and Secure whenever browsers reach the dashboard over HTTPS.
"""

from __future__ import annotations

import secrets
import time
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from dashboard.auth.sessions import Session
from dashboard.deps import SESSION_COOKIE, Gw, client_ip, principal_of, same_token
from dashboard.metrics import LOGINS
from dashboard.pages import render

router = APIRouter(tags=["session"], include_in_schema=False)

LOGIN_CSRF_COOKIE = "gw_login_csrf"
_FIELD = 256


@router.get("/login")
def login_page(request: Request, gw: Gw) -> Response:
    token = secrets.token_urlsafe(24)
    sso = gw.settings.dashboard.oidc.enabled
    response = render(request, "login.html", {"csrf": token, "error": "", "sso": sso})
    _set_cookie(response, gw, LOGIN_CSRF_COOKIE, token, max_age=600)
    return response


@router.post("/login")
def login(
    request: Request,
    gw: Gw,
    username: Annotated[str, Form(max_length=_FIELD)],
    password: Annotated[str, Form(max_length=_FIELD)],
    csrf: Annotated[str, Form(max_length=_FIELD)],
) -> Response:
    ip = client_ip(request)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not same_token(expected, csrf):
        return _again(request, gw, "The form expired: please try again.", 400)
    now = time.time()
    wait = gw.limiter.check(username, ip, now)
    if wait > 0:
        LOGINS.labels("throttled").inc()
        _audit(gw, request, username, "login_throttled", 429)
        response = _again(request, gw, f"Too many attempts: try again in {wait:.0f} s.", 429)
        response.headers["Retry-After"] = str(max(1, round(wait)))
        return response
    user = gw.users.authenticate(username, password)
    if user is None:
        gw.limiter.failed(username, ip, now)
        LOGINS.labels("failed").inc()
        _audit(gw, request, username, "login_failed", 401)
        return _again(request, gw, "Wrong user name or password.", 401)
    gw.limiter.succeeded(username, ip, now)
    LOGINS.labels("ok").inc()
    session = gw.sessions.issue(user.name, user.role, now=now)  # lasts session_hours
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(response, gw, session)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    gw.audit.record(
        principal=user.name, role=user.role.value, auth="password", client_ip=ip,
        method="POST", path="/login", action="login", status=303,
    )  # fmt: skip
    return response


@router.post("/logout")
def logout(
    request: Request, gw: Gw, csrf: Annotated[str, Form(max_length=_FIELD)] = ""
) -> Response:
    principal = principal_of(request)
    response = RedirectResponse("/login", status_code=303)
    if principal is not None and principal.auth == "session":
        if not same_token(principal.csrf, csrf):
            return Response("missing or wrong CSRF token", status_code=403)
        gw.audit.record(
            principal=principal.name, role=principal.role.value, auth="session",
            client_ip=client_ip(request), method="POST", path="/logout", action="logout",
            status=303,
        )  # fmt: skip
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _again(request: Request, gw: Gw, error: str, status: int) -> Response:
    token = secrets.token_urlsafe(24)
    values = {"csrf": token, "error": error, "sso": gw.settings.dashboard.oidc.enabled}
    response = render(request, "login.html", values, status=status)
    _set_cookie(response, gw, LOGIN_CSRF_COOKIE, token, max_age=600)
    return response


def set_session_cookie(response: Response, gw: Gw, session: Session) -> None:
    """The login's session cookie (password or single sign-on): the same flags."""
    encoded = gw.sessions.encode(session)
    _set_cookie(
        response, gw, SESSION_COOKIE, encoded, max_age=int(session.expires_ts - session.issued_ts)
    )


def _set_cookie(response: Response, gw: Gw, name: str, value: str, *, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=gw.settings.dashboard.https,
    )


def _audit(gw: Gw, request: Request, username: str, action: str, status: int) -> None:
    gw.audit.record(
        principal=username[:64], role="", auth="password", client_ip=client_ip(request),
        method="POST", path="/login", action=action, status=status,
    )  # fmt: skip
