"""Signed, stateless session cookies, each carrying its own CSRF token.

A cookie is ``base64url(JSON) "." base64url(HMAC-SHA256)``, the MAC keyed with a
server secret (``load_or_create_secret``) and computed over the first part as sent.
A session ends at its absolute expiry, and never later than ``max_age_s`` after it was
issued, so lowering ``max_age_s`` shortens sessions already handed out. Changing the
secret logs everyone out.

>>> codec = SessionCodec(b"k" * 32)
>>> session = codec.issue("ana", Role.ANALYST, now=1000.0)
>>> cookie = codec.encode(session)
>>> codec.decode(cookie, now=1001.0) == session
True
>>> tampered = cookie[:-1] + ("A" if cookie[-1] != "A" else "B")
>>> codec.decode(tampered, now=1001.0), codec.decode(cookie, now=1000.0 + 8 * 3600)
(None, None)
>>> csrf_matches(session, session.csrf), csrf_matches(session, None)
(True, False)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import orjson

from dashboard.auth.files import keep_private
from dashboard.auth.store import Role

log = logging.getLogger(__name__)

AuthMethod = Literal["password", "oidc"]
SECRET_BYTES = 32
MAX_COOKIE_BYTES = 4096
_VERSION = 1
_MAC_CONTEXT = b"gatewatch-session-v1."  # a MAC made for anything else never verifies
_CLOCK_SKEW_S = 60.0  # sessions issued this far in the future are still accepted
_AUTH_METHODS = frozenset(get_args(AuthMethod))
_ROLES = frozenset(role.value for role in Role)


@dataclass(frozen=True)
class Session:
    """Who is logged in, until when, and how. ``csrf`` must accompany every change a
    request makes with this session."""

    user: str
    role: Role
    issued_ts: float
    expires_ts: float
    csrf: str = field(repr=False)
    auth: AuthMethod = "password"


def new_csrf_token() -> str:
    """A fresh random CSRF token (32 characters, URL-safe)."""
    return secrets.token_urlsafe(24)


def csrf_matches(session: Session, submitted: str | None) -> bool:
    """Whether ``submitted`` is the session's CSRF token (constant time)."""
    if not submitted or not session.csrf:
        return False
    return hmac.compare_digest(
        session.csrf.encode("utf-8", "replace"), submitted.encode("utf-8", "replace")
    )


class SessionCodec:
    """Turns sessions into cookie values and back, refusing any value it did not sign
    or that has expired."""

    def __init__(self, secret: bytes, *, max_age_s: float = 8 * 3600) -> None:
        if len(secret) < SECRET_BYTES:
            raise ValueError(f"a session secret needs at least {SECRET_BYTES} bytes")
        if not (math.isfinite(max_age_s) and max_age_s > 0):
            raise ValueError(f"max_age_s must be a positive number of seconds, not {max_age_s}")
        self._secret = secret
        self.max_age_s = max_age_s

    def __repr__(self) -> str:
        return f"SessionCodec(max_age_s={self.max_age_s!r})"

    def issue(
        self, user: str, role: Role, *, auth: AuthMethod = "password", now: float | None = None
    ) -> Session:
        """A new session for ``user``, lasting ``max_age_s``, with a fresh CSRF token."""
        issued = time.time() if now is None else now
        return Session(user, role, issued, issued + self.max_age_s, new_csrf_token(), auth)

    def encode(self, session: Session) -> str:
        """The signed cookie value; ValueError if it would be over 4 KB."""
        if not session.expires_ts > session.issued_ts:
            raise ValueError("a session must expire after it is issued")
        payload = _b64(
            orjson.dumps(
                {
                    "v": _VERSION,
                    "u": session.user,
                    "r": session.role.value,
                    "i": session.issued_ts,
                    "e": session.expires_ts,
                    "c": session.csrf,
                    "a": session.auth,
                }
            )
        )
        value = f"{payload}.{self._sign(payload)}"
        if len(value) > MAX_COOKIE_BYTES:
            raise ValueError(f"a session cookie may have at most {MAX_COOKIE_BYTES} bytes")
        return value

    def decode(self, value: str, now: float | None = None) -> Session | None:
        """The session in ``value`` if this codec signed it and it has not expired;
        None for anything else (tampered, expired, malformed, oversize), never an
        exception."""
        if len(value) > MAX_COOKIE_BYTES or not value.isascii() or value.count(".") != 1:
            return None
        payload, signature = value.split(".")
        if not hmac.compare_digest(self._sign(payload).encode(), signature.encode()):
            return None
        try:
            session = _session_of(orjson.loads(_unb64(payload)))
        except ValueError:  # not base64 or not JSON: only from a leaked secret or a bug
            return None
        if session is None:
            return None
        now = time.time() if now is None else now
        ends = min(session.expires_ts, session.issued_ts + self.max_age_s)
        if not session.issued_ts - _CLOCK_SKEW_S <= now < ends:
            return None
        return session

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self._secret, _MAC_CONTEXT + payload.encode("ascii"), hashlib.sha256)
        return _b64(mac.digest())


def load_or_create_secret(path: Path) -> bytes:
    """The session secret in ``path``: 32 random bytes made on first use, in a file only
    its owner can read (tightened if others could). Safe when two processes start at
    once: both end up with the same secret."""
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(SECRET_BYTES)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(secret)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(draft, path)  # atomic, and never replaces a secret already there
        except FileExistsError:
            return _read_secret(path)
    finally:
        draft.unlink(missing_ok=True)
    return secret


def _read_secret(path: Path) -> bytes:
    secret = path.read_bytes()
    if len(secret) < SECRET_BYTES:
        raise ValueError(
            f"{path}: a session secret needs at least {SECRET_BYTES} bytes, this one has "
            f"{len(secret)}; delete the file to make a new one (which logs everyone out)"
        )
    keep_private(path)
    return secret


def _session_of(data: Any) -> Session | None:
    if not isinstance(data, dict) or data.get("v") != _VERSION:
        return None
    fields: list[Any] = [data.get(key) for key in "urieca"]
    user, role, issued, expires, csrf, auth = fields
    if not (
        isinstance(user, str)
        and role in _ROLES
        and _is_time(issued)
        and _is_time(expires)
        and isinstance(csrf, str)
        and auth in _AUTH_METHODS
    ):
        return None
    return Session(user, Role(role), float(issued), float(expires), csrf, auth)


def _is_time(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    # binascii.Error is a ValueError.
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
