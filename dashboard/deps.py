"""Who is asking, and may they: shared checks as FastAPI dependencies.

A request is authenticated by the session cookie (a browser, after logging in) or by
an ``Authorization: Bearer gwt_...`` API token. A cookie-authenticated request that
changes something must also carry the session's CSRF token (header ``X-CSRF-Token``
or form field ``csrf``); a token-authenticated one cannot be forged by another site.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from dashboard.auth.store import Role
from dashboard.context import Context

SESSION_COOKIE = "gw_session"
CSRF_HEADER = "X-CSRF-Token"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    auth: str  # "session" or "token"
    csrf: str = ""  # the session's CSRF token (sessions only)


def context(request: Request) -> Context:
    gw: Context = request.app.state.gw
    return gw


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def principal_of(request: Request) -> Principal | None:
    """The authenticated caller, or None."""
    gw = context(request)
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value:
            return None
        token = gw.users.verify_token(value.strip())
        if token is None:
            return None
        return Principal(token.user, token.role, "token")
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    session = gw.sessions.decode(cookie)
    if session is None:
        return None
    if session.auth == "oidc":
        # Not a local user: the role came from the identity provider at login.
        if not gw.settings.dashboard.oidc.enabled:
            return None  # single sign-on turned off since
        return Principal(session.user, session.role, "session", session.csrf)
    user = gw.users.get_user(session.user)
    if user is None or user.disabled:
        return None  # removed or disabled since logging in
    role = session.role if user.role.allows(session.role) else user.role
    return Principal(session.user, role, "session", session.csrf)


def authenticated(request: Request) -> Principal:
    principal = principal_of(request)
    if principal is None:
        raise HTTPException(401, "authentication required", {"WWW-Authenticate": "Bearer"})
    if principal.auth == "session" and request.method in _UNSAFE:
        submitted = request.headers.get(CSRF_HEADER)
        if not same_token(principal.csrf, submitted):
            raise HTTPException(403, "missing or wrong CSRF token (X-CSRF-Token header)")
    request.state.principal = principal
    return principal


def same_token(expected: str, submitted: str | None) -> bool:
    """Constant-time comparison of a CSRF token; False for none or an empty one (and
    for any text, ASCII or not)."""
    if not expected or submitted is None:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())


def require(role: Role) -> Callable[..., Principal]:
    """A dependency: the caller, who must hold ``role`` or a higher one."""

    def check(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        if not principal.role.allows(role):
            raise HTTPException(403, f"this needs the {role.value} role")
        return principal

    return check


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Analyst = Annotated[Principal, Depends(require(Role.ANALYST))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Gw = Annotated[Context, Depends(context)]
