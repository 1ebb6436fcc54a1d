"""What every request handler reaches through ``request.app.state.gw``."""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.audit import AuditLog
from dashboard.auth.limits import LoginLimiter
from dashboard.auth.sessions import SessionCodec
from dashboard.auth.store import AuthStore
from dashboard.db import Database
from gatewatch.settings import Settings


@dataclass(frozen=True)
class Context:
    settings: Settings
    db: Database
    users: AuthStore
    sessions: SessionCodec
    limiter: LoginLimiter
    audit: AuditLog
    secret: bytes  # signs session cookies (and the OIDC login state, in its own context)


SESSION_KEY_FILE = "dashboard-session.key"  # in data_dir: kept across restarts


def auth_store(settings: Settings) -> AuthStore:
    """The users and API tokens, in ``DATA_DIR/dashboard-auth.sqlite`` (shared by the
    server and ``gatewatch users``)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return AuthStore(settings.data_dir / "dashboard-auth.sqlite")
