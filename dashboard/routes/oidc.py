"""Logging in with single sign-on (OpenID Connect) when ``[dashboard.oidc]`` names an
issuer: ``/login/oidc`` sends the browser to the provider, which sends it back to
``/login/oidc/callback`` with a code; the code becomes a validated ID token, the
token's claims a user and a role, and those a session like a password login's.

OIDC users are not in the local user store: the session carries the role the
provider's claims gave at login (``auth="oidc"``) and ends after ``session_hours``.

The state cookie is SameSite=Lax, scoped to ``/login/oidc``: the provider's redirect
back is a cross-site navigation, on which a Strict cookie would not be sent. For the
same reason the callback answers with a page that moves on to ``/`` itself rather than
a redirect: the Strict session cookie is then sent on that same-site navigation.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dashboard.auth.oidc import (
    STATE_MAX_AGE_S,
    LoginState,
    OidcClient,
    OidcError,
    StateSigner,
)
from dashboard.deps import Gw, client_ip, context, same_token
from dashboard.metrics import LOGINS
from dashboard.pages import render
from dashboard.routes.session import set_session_cookie

log = logging.getLogger(__name__)

router = APIRouter(tags=["session"], include_in_schema=False)

STATE_COOKIE = "gw_oidc"
_START = "/login/oidc"
_CALLBACK = "/login/oidc/callback"
_MAX_PARAM = 4096
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # OAuth error codes (RFC 6749 4.1.2.1)
_SIGNED_IN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0; url=/">
<title>Signed in · Gatewatch</title><link rel="stylesheet" href="/static/app.css"></head>
<body><main><p class="problem">Signed in. <a href="/">Continue to Gatewatch</a></p></main>
</body></html>
"""
_SETUP = threading.Lock()


@dataclass(frozen=True)
class Sso:
    """An app's relying party and state-cookie signer, made on first use."""

    client: OidcClient
    signer: StateSigner


def sso_of(request: Request) -> Sso | None:
    """The app's ``Sso``, or None when OIDC is not configured."""
    state = request.app.state
    with _SETUP:
        made: Sso | None = getattr(state, "oidc", None)
        if made is None:
            gw = context(request)
            if not gw.settings.dashboard.oidc.enabled:
                return None
            made = Sso(OidcClient(gw.settings.dashboard.oidc), StateSigner(gw.secret))
            state.oidc = made
    return made


SsoDep = Annotated[Sso | None, Depends(sso_of)]


@router.get(_START)
def start(request: Request, gw: Gw, sso: SsoDep) -> Response:
    """Send the browser to the provider's login, remembering this login in a cookie."""
    if sso is None:
        return _not_configured(request)
    login = LoginState.new()
    try:
        url = sso.client.authorization_url(login, _redirect_uri(request, gw))
    except OidcError as exc:
        return _failed(request, gw, exc)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        STATE_COOKIE,
        sso.signer.encode(login),
        max_age=STATE_MAX_AGE_S,
        path=_START,
        httponly=True,
        samesite="lax",
        secure=gw.settings.dashboard.https,
    )
    return response


@router.get(_CALLBACK, name="oidc_callback")
def callback(request: Request, gw: Gw, sso: SsoDep) -> Response:
    """Check the state, turn the code into an identity, and start a session."""
    if sso is None:
        return _not_configured(request)
    params = request.query_params
    login = sso.signer.decode(request.cookies.get(STATE_COOKIE, ""))
    state, code, error = (params.get(name, "")[:_MAX_PARAM] for name in ("state", "code", "error"))
    error = error if _ERROR_CODE.fullmatch(error) else "error" if error else ""
    try:
        if login is None:
            raise OidcError("the login expired or did not start here: please try again")
        if not same_token(login.state, state):
            raise OidcError("the login's state does not match this browser's: please try again")
        if error:
            raise OidcError(f"the identity provider refused the login ({error})")
        if not code:
            raise OidcError("the identity provider sent no authorization code")
        identity = sso.client.complete(code, login, _redirect_uri(request, gw))
    except OidcError as exc:
        return _failed(request, gw, exc)
    session = gw.sessions.issue(identity.user, identity.role, auth="oidc")
    LOGINS.labels("ok").inc()
    response = HTMLResponse(_SIGNED_IN)
    set_session_cookie(response, gw, session)
    response.delete_cookie(STATE_COOKIE, path=_START)
    gw.audit.record(
        principal=identity.user[:64], role=identity.role.value, auth="oidc",
        client_ip=client_ip(request), method="GET", path=_CALLBACK, action="login", status=200,
    )  # fmt: skip
    return response


def _redirect_uri(request: Request, gw: Gw) -> str:
    return gw.settings.dashboard.oidc.redirect_uri or str(request.url_for("oidc_callback"))


def _failed(request: Request, gw: Gw, exc: OidcError) -> Response:
    """The error page for a failed login (its state is spent), audited."""
    log.info("OIDC login failed (%s): %s", type(exc).__name__, exc)
    LOGINS.labels("failed").inc()
    gw.audit.record(
        principal=exc.user[:64], role="", auth="oidc", client_ip=client_ip(request),
        method="GET", path=request.url.path, action="login_failed", status=exc.status,
        detail=str(exc),
    )  # fmt: skip
    reason = str(exc)
    message = f"{reason[:1].upper()}{reason[1:]}."
    values = {"status": exc.status, "title": "Single sign-on failed", "message": message}
    response = render(request, "error.html", values, status=exc.status)
    response.delete_cookie(STATE_COOKIE, path=_START)
    return response


def _not_configured(request: Request) -> Response:
    message = "Single sign-on is not configured: log in with your user name and password."
    values = {"status": 404, "title": "No single sign-on", "message": message}
    return render(request, "error.html", values, status=404)
