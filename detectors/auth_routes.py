"""Which routes are login, password-reset and sign-up endpoints.

Auth-attack and user-enumeration detectors only look at these, so the classification
is shared and configurable (``[detection.auth_routes]``). Matching is on the route
template's path segments, case-insensitive, so ``/api/v2/Auth/Login`` and
``/oauth/token`` both count without listing every API version.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

_LOGIN = ("login", "signin", "sign-in", "sign_in", "token", "authenticate", "session", "sessions")
_RESET = ("reset", "forgot", "recover", "recovery")
_SIGNUP = ("register", "registration", "signup", "sign-up", "sign_up")


class AuthRoutes(BaseModel):
    """Route-segment words that mark auth endpoints (the last one or two segments)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    login: frozenset[str] = Field(default=frozenset(_LOGIN))
    reset: frozenset[str] = Field(default=frozenset(_RESET))
    signup: frozenset[str] = Field(default=frozenset(_SIGNUP))

    def kind(self, route: str) -> str:
        """``"login"``, ``"reset"``, ``"signup"`` or ``""``.

        >>> routes = AuthRoutes()
        >>> routes.kind("/api/v1/auth/login"), routes.kind("/api/v1/auth/password/reset")
        ('login', 'reset')
        >>> routes.kind("/oauth/token"), routes.kind("/api/v1/users/{userId}")
        ('login', '')
        """
        tail = route.lower().rstrip("/").rsplit("/", 2)[-2:]
        for word in reversed(tail):
            if word in self.login:
                return "login"
            if word in self.reset:
                return "reset"
            if word in self.signup:
                return "signup"
        return ""


class AuthRouteCache:
    """``AuthRoutes.kind`` memoised per route (routes are templates: few distinct)."""

    __slots__ = ("_known", "routes")

    def __init__(self, routes: AuthRoutes | None = None) -> None:
        self.routes = routes or AuthRoutes()
        self._known: dict[str, str] = {}

    def kind(self, route: str) -> str:
        known = self._known.get(route)
        if known is None:
            known = self.routes.kind(route)
            if len(self._known) >= 16_384:
                self._known.clear()
            self._known[route] = known
        return known
