"""Dashboard users and API tokens in one SQLite file, shared by the server and the CLI.

Every method opens its own connection and short transaction (WAL mode), so
``gatewatch users`` can change users while the dashboard serves, and threads need no
lock. The file is created readable by its owner only. Passwords are stored as scrypt
hashes; of an API token only the SHA-256 of its secret is kept: the plaintext,
``gwt_<id>_<secret>``, is returned once by ``create_token``.

User names are unique regardless of case (``Ana`` logs in as ``ana``) and hold
``[A-Za-z0-9._@-]``, 1 to 64 of them.

>>> import tempfile
>>> from dashboard.auth.passwords import ScryptParams
>>> with tempfile.TemporaryDirectory() as tmp:
...     users = AuthStore(Path(tmp) / "auth.sqlite", hashing=ScryptParams(n=2**4))
...     ana = users.add_user("ana", "correct horse battery staple", Role.ANALYST)
...     secret, token = users.create_token(
...         "ana", scopes=frozenset({"read"}), expires_in_s=3600, label="grafana"
...     )
...     print(users.authenticate("Ana", "correct horse battery staple"))  # doctest: +ELLIPSIS
...     print(users.authenticate("ana", "wrong password"))
...     print(users.verify_token(secret).role, users.verify_token(secret[:-1] + "x"))
User(name='ana', role=<Role.ANALYST: 'analyst'>, disabled=False, created_ts=...)
None
viewer None
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from dashboard.auth.files import keep_private
from dashboard.auth.passwords import (
    DEFAULT_PARAMS,
    DUMMY_HASH,
    ScryptParams,
    check_password_policy,
    hash_password,
    needs_rehash,
    verify_password,
)

log = logging.getLogger(__name__)

TOKEN_PREFIX = "gwt_"  # noqa: S105 (a prefix, no secret)
MAX_TOKEN_LIFETIME_S = 365 * 86_400
MAX_LABEL_LENGTH = 100
_TOUCH_EVERY_S = 60.0  # last_used_ts is recorded at most this often per token
_TOUCH_TIMEOUT_S = 0.25  # recording it never waits longer than this for the write lock
_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
_TOKEN = re.compile(r"gwt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY COLLATE NOCASE,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'analyst', 'admin')),
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    secret_sha256 BLOB NOT NULL,
    scopes TEXT NOT NULL,
    label TEXT NOT NULL,
    created_ts REAL NOT NULL,
    expires_ts REAL NOT NULL,
    revoked_ts REAL,
    last_used_ts REAL
);
CREATE INDEX IF NOT EXISTS tokens_user ON tokens (user);
PRAGMA user_version = 1;
"""
_SELECT_USERS = "SELECT name, role, disabled, created_ts, password_hash FROM users"
_SELECT_TOKENS = (
    "SELECT t.id, t.user, t.scopes, t.label, t.created_ts, t.expires_ts, t.revoked_ts, "
    "t.last_used_ts, u.role FROM tokens t JOIN users u ON u.name = t.user"
)
_SELECT_FOR_VERIFY = (  # the columns of _SELECT_TOKENS, then what only verification needs
    "SELECT t.id, t.user, t.scopes, t.label, t.created_ts, t.expires_ts, t.revoked_ts, "
    "t.last_used_ts, u.role, t.secret_sha256, u.disabled "
    "FROM tokens t JOIN users u ON u.name = t.user WHERE t.id = ?"
)


class Role(StrEnum):
    """What a user may do, each role including the ones before it: a viewer reads, an
    analyst also triages, an admin also manages.

    >>> Role.ADMIN.allows(Role.ANALYST), Role.VIEWER.allows(Role.ANALYST)
    (True, False)
    """

    VIEWER = "viewer"
    ANALYST = "analyst"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, required: Role) -> bool:
        """Whether this role may do what ``required`` may."""
        return self.rank >= required.rank


# What an API token's scope lets it do at most, whatever its user's role.
SCOPE_ROLES: Mapping[str, Role] = {
    "read": Role.VIEWER,
    "triage": Role.ANALYST,
    "admin": Role.ADMIN,
}


def effective_role(user_role: Role, scopes: frozenset[str]) -> Role:
    """The role a token acts with: its highest scope's role, capped by its user's.

    >>> effective_role(Role.ADMIN, frozenset({"read", "triage"}))
    <Role.ANALYST: 'analyst'>
    >>> effective_role(Role.VIEWER, frozenset({"admin"}))
    <Role.VIEWER: 'viewer'>
    """
    granted = max((SCOPE_ROLES[scope] for scope in scopes), key=lambda role: role.rank)
    return min(granted, user_role, key=lambda role: role.rank)


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    disabled: bool
    created_ts: float
    password_hash: str = field(repr=False)


@dataclass(frozen=True)
class Token:
    """An API token, without its secret. ``role`` is what it may do now: the lower of
    its scopes' role and its user's current role."""

    id: str
    user: str
    scopes: frozenset[str]
    label: str
    created_ts: float
    expires_ts: float
    role: Role
    revoked_ts: float | None = None
    last_used_ts: float | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_ts is not None


class AuthStore:
    """Users and API tokens in the SQLite file at ``path`` (created if missing).

    ``hashing`` sets the scrypt cost of new password hashes; a login with a hash made
    at other parameters replaces it. Only tests should lower it."""

    def __init__(
        self,
        path: Path | str,
        *,
        hashing: ScryptParams = DEFAULT_PARAMS,
        busy_timeout_s: float = 5.0,
    ) -> None:
        self.path = Path(path)
        self.hashing = hashing
        self.busy_timeout_s = busy_timeout_s
        self._dummy_hash = (
            DUMMY_HASH
            if hashing == DEFAULT_PARAMS
            else hash_password(secrets.token_urlsafe(32), hashing)
        )
        _create_private(self.path)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode = WAL")
            db.executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"AuthStore({str(self.path)!r}, hashing={self.hashing!r})"

    # Users

    def add_user(self, name: str, password: str, role: Role = Role.VIEWER) -> User:
        """Add a user; ValueError for a bad name, a weak password or a taken name."""
        _check_name(name)
        check_password_policy(password)
        user = User(name, Role(role), False, time.time(), hash_password(password, self.hashing))
        try:
            with self._write() as db:
                db.execute(
                    "INSERT INTO users (name, role, disabled, created_ts, password_hash) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (user.name, user.role.value, 0, user.created_ts, user.password_hash),
                )
        except sqlite3.IntegrityError:
            raise ValueError(f"a user named {name!r} already exists") from None
        return user

    def set_password(self, name: str, password: str) -> None:
        check_password_policy(password)
        password_hash = hash_password(password, self.hashing)
        self._update(name, "UPDATE users SET password_hash = ? WHERE name = ?", password_hash)

    def set_role(self, name: str, role: Role) -> None:
        self._update(name, "UPDATE users SET role = ? WHERE name = ?", Role(role).value)

    def disable_user(self, name: str) -> None:
        """Refuse the user's logins, sessions and tokens until ``enable_user``."""
        self._update(name, "UPDATE users SET disabled = ? WHERE name = ?", 1)

    def enable_user(self, name: str) -> None:
        self._update(name, "UPDATE users SET disabled = ? WHERE name = ?", 0)

    def delete_user(self, name: str) -> None:
        """Delete the user and their API tokens."""
        with self._write() as db:
            _found(db.execute("DELETE FROM users WHERE name = ?", (name,)), name)

    def get_user(self, name: str) -> User | None:
        if not _NAME.fullmatch(name):
            return None
        with self._connect() as db:
            row = db.execute(_SELECT_USERS + " WHERE name = ?", (name,)).fetchone()
        return None if row is None else _user(row)

    def list_users(self) -> list[User]:
        with self._connect() as db:
            rows = db.execute(_SELECT_USERS + " ORDER BY name").fetchall()
        return [_user(row) for row in rows]

    def authenticate(self, name: str, password: str) -> User | None:
        """The user if the password is theirs and they are enabled, else None.

        Costs one password verification whether or not the user exists, so response
        times do not tell which names exist."""
        user = self.get_user(name)
        if user is None:
            verify_password(password, self._dummy_hash)
            return None
        if not verify_password(password, user.password_hash) or user.disabled:
            return None
        if needs_rehash(user.password_hash, self.hashing):
            user = self._rehash(user, password)
        return user

    # API tokens

    def create_token(
        self,
        user: str,
        *,
        scopes: frozenset[str],
        expires_in_s: float,
        label: str = "",
        now: float | None = None,
    ) -> tuple[str, Token]:
        """A new token acting as ``user`` within ``scopes``: the plaintext (shown to
        nobody again) and its record. ValueError for an unknown or disabled user, an
        unknown scope or one above the user's role, a lifetime not in (0, 365 days],
        or a label that is too long or not printable."""
        _check_token_request(scopes, expires_in_s, label)
        created = time.time() if now is None else now
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        with self._write() as db:
            row = db.execute(
                "SELECT name, role, disabled FROM users WHERE name = ?", (user,)
            ).fetchone()
            if row is None:
                raise ValueError(f"no user named {user!r}")
            name, role, disabled = row[0], Role(row[1]), bool(row[2])
            if disabled:
                raise ValueError(f"user {name!r} is disabled")
            wanted = effective_role(Role.ADMIN, scopes)
            if not role.allows(wanted):
                raise ValueError(
                    f"user {name!r} is a {role.value}: a token cannot have more "
                    f"({', '.join(sorted(scopes))} needs {wanted.value})"
                )
            token = Token(
                token_id,
                name,
                frozenset(scopes),
                label,
                created,
                created + expires_in_s,
                effective_role(role, scopes),
            )
            db.execute(
                "INSERT INTO tokens (id, user, secret_sha256, scopes, label, created_ts, "
                "expires_ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    token.id,
                    token.user,
                    _digest(secret),
                    ",".join(sorted(token.scopes)),
                    token.label,
                    token.created_ts,
                    token.expires_ts,
                ),
            )
        return f"{TOKEN_PREFIX}{token_id}_{secret}", token

    def verify_token(self, plaintext: str, now: float | None = None) -> Token | None:
        """The token ``plaintext`` names if its secret matches (in constant time), it
        has neither expired nor been revoked, and its user exists and is enabled; else
        None. Records when it was last used (best effort, at most once a minute)."""
        match = _TOKEN.fullmatch(plaintext) if len(plaintext) <= 64 else None
        if match is None:
            return None
        token_id, secret = match.groups()
        now = time.time() if now is None else now
        with self._connect() as db:
            row = db.execute(_SELECT_FOR_VERIFY, (token_id,)).fetchone()
        if row is None or not hmac.compare_digest(_digest(secret), row[-2]) or row[-1]:
            return None
        token = _token(row[:-2])
        if token.revoked or now >= token.expires_ts:
            return None
        if token.last_used_ts is None or now - token.last_used_ts >= _TOUCH_EVERY_S:
            self._touch(token.id, now)
            token = replace(token, last_used_ts=now)
        return token

    def revoke_token(self, token_id: str, now: float | None = None) -> None:
        """Revoke a token for good (ValueError if there is none with that id)."""
        revoked = time.time() if now is None else now
        with self._write() as db:
            cursor = db.execute(
                "UPDATE tokens SET revoked_ts = COALESCE(revoked_ts, ?) WHERE id = ?",
                (revoked, token_id),
            )
            if cursor.rowcount == 0:
                raise ValueError(f"no API token with id {token_id!r}")

    def list_tokens(self, user: str | None = None) -> list[Token]:
        """Tokens, all or ``user``'s, oldest first, with their current ``role``."""
        where, args = ("", ()) if user is None else (" WHERE u.name = ?", (user,))
        with self._connect() as db:
            rows = db.execute(_SELECT_TOKENS + where + " ORDER BY t.created_ts, t.id", args)
            return [_token(row) for row in rows]

    # Plumbing

    @contextmanager
    def _connect(self, timeout_s: float | None = None) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout_s if timeout_s is None else timeout_s,
            isolation_level=None,  # transactions are explicit: see _write
        )
        try:
            db.execute("PRAGMA foreign_keys = ON")
            yield db
        finally:
            db.close()

    @contextmanager
    def _write(self, timeout_s: float | None = None) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front: a read that later wants to write
        # could otherwise fail with SQLITE_BUSY against another process.
        with self._connect(timeout_s) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _update(self, name: str, sql: str, value: object) -> None:
        with self._write() as db:
            _found(db.execute(sql, (value, name)), name)

    def _rehash(self, user: User, password: str) -> User:
        fresh = replace(user, password_hash=hash_password(password, self.hashing))
        try:
            with self._write() as db:
                # Only if nobody changed the password meanwhile.
                db.execute(
                    "UPDATE users SET password_hash = ? WHERE name = ? AND password_hash = ?",
                    (fresh.password_hash, user.name, user.password_hash),
                )
        except sqlite3.OperationalError as exc:
            log.warning("could not upgrade the password hash of %s: %s", user.name, exc)
            return user
        return fresh

    def _touch(self, token_id: str, now: float) -> None:
        try:
            with self._write(_TOUCH_TIMEOUT_S) as db:
                db.execute("UPDATE tokens SET last_used_ts = ? WHERE id = ?", (now, token_id))
        except sqlite3.OperationalError as exc:  # busy: the next use records it
            log.debug("could not record the use of API token %s: %s", token_id, exc)


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"a user name has 1 to 64 of the characters A-Z a-z 0-9 . _ @ -, not {name!r}"
        )


def _check_token_request(scopes: frozenset[str], expires_in_s: float, label: str) -> None:
    if not scopes:
        raise ValueError("a token needs at least one scope: " + ", ".join(SCOPE_ROLES))
    unknown = sorted(set(scopes) - SCOPE_ROLES.keys())
    if unknown:
        raise ValueError(
            f"unknown scope {', '.join(unknown)}: the scopes are " + ", ".join(SCOPE_ROLES)
        )
    if not (math.isfinite(expires_in_s) and 0 < expires_in_s <= MAX_TOKEN_LIFETIME_S):
        raise ValueError(
            f"a token lives more than 0 s and at most {MAX_TOKEN_LIFETIME_S} s (365 days), "
            f"not {expires_in_s}"
        )
    if len(label) > MAX_LABEL_LENGTH or not label.isprintable():
        raise ValueError(f"a token label has at most {MAX_LABEL_LENGTH} printable characters")


def _create_private(path: Path) -> None:
    """Create ``path`` readable by its owner only (SQLite gives its -wal and -shm files
    the same mode); tighten an existing file that others could read."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    keep_private(path)


def _found(cursor: sqlite3.Cursor, name: str) -> None:
    if cursor.rowcount == 0:
        raise ValueError(f"no user named {name!r}")


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


def _user(row: Any) -> User:
    name, role, disabled, created_ts, password_hash = row
    return User(name, Role(role), bool(disabled), created_ts, password_hash)


def _token(row: Any) -> Token:
    token_id, user, scopes, label, created_ts, expires_ts, revoked_ts, last_used_ts, role = row
    token_scopes = frozenset(scopes.split(","))
    return Token(
        token_id,
        user,
        token_scopes,
        label,
        created_ts,
        expires_ts,
        effective_role(Role(role), token_scopes),
        revoked_ts,
        last_used_ts,
    )
