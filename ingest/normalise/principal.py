"""Who made the request, read from credentials without verifying them.

Gatewatch never holds signing keys: a bearer JWT's ``sub`` claim is read (not
trusted) so requests can be attributed to a principal; a Basic credential gives its
user name. Verification is the gateway's job; attribution is ours.
"""

from __future__ import annotations

import base64
import binascii

import orjson


def jwt_subject(token: str) -> str:
    """The ``sub`` claim of a JWT (unverified), or "" when it is not a readable JWT.

    >>> payload = base64.urlsafe_b64encode(b'{"sub":"user-42"}').rstrip(b"=").decode()
    >>> jwt_subject(f"eyJhbGciOiJIUzI1NiJ9.{payload}.c2ln")
    'user-42'
    >>> jwt_subject("not-a-jwt")
    ''
    """
    parts = token.split(".")
    if len(parts) != 3 or len(parts[1]) > 8192:
        return ""
    segment = parts[1]
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError):
        return ""
    if not isinstance(claims, dict):
        return ""
    sub = claims.get("sub")
    return sub if isinstance(sub, str) and len(sub) <= 256 else ""


def basic_user(credentials: str) -> str:
    """The user name of a Basic credential, or "".

    >>> basic_user(base64.b64encode(b"alice:s3cret").decode())
    'alice'
    """
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ""
    user, colon, _ = decoded.partition(":")
    return user if colon and len(user) <= 256 else ""


def principal_from_authorization(value: str) -> str:
    """The principal an Authorization header names (JWT ``sub`` or Basic user), or "".

    >>> principal_from_authorization("Basic " + base64.b64encode(b"bob:pw").decode())
    'bob'
    """
    scheme, _, credentials = value.strip().partition(" ")
    scheme = scheme.lower()
    credentials = credentials.strip()
    if scheme == "bearer":
        return jwt_subject(credentials)
    if scheme == "basic":
        return basic_user(credentials)
    return ""
