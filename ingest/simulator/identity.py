"""Identifiers and credentials drawn from a seeded ``random.Random``.

Everything here is a function of the generator's state, so a seed reproduces the same
request ids, tokens and keys. Tokens look real but are not signed by anything: the
JWT signature is random bytes, and the payload is genuine base64url JSON so that a
normaliser can read its ``sub`` claim.
"""

from __future__ import annotations

import base64
import random

import orjson

# The RFC 4122 variant digit (8, 9, a or b) for any random hex digit.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
_ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def b64url(data: bytes) -> str:
    """Unpadded base64url text, as JWTs use it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_JWT_HEADER = b64url(b'{"alg":"ES256","typ":"JWT","kid":"shop-2024-03"}')


def request_uuid(rng: random.Random) -> str:
    """A version 4 UUID in text form, from ``rng``.

    >>> import uuid
    >>> parsed = uuid.UUID(request_uuid(random.Random(1)))
    >>> parsed.version, parsed.variant == uuid.RFC_4122
    (4, True)
    """
    h = "%032x" % rng.getrandbits(128)  # noqa: UP031 - faster than format() here
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def token(rng: random.Random, length: int) -> str:
    """``length`` random alphanumeric characters, as API keys are written."""
    return "".join(rng.choices(_ALPHANUMERIC, k=length))


def session_id(rng: random.Random) -> str:
    """A random 32-character hex session id (cheaper than ``token``: one per session)."""
    return rng.randbytes(16).hex()


def issue_jwt(rng: random.Random, sub: str, issued_at: int, ttl_s: int = 3600) -> str:
    """A bearer token whose payload is readable JSON naming ``sub``.

    >>> jwt = issue_jwt(random.Random(7), "100042", 1710230400)
    >>> payload = jwt.split(".")[1]
    >>> orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]
    '100042'
    """
    claims = {
        "iss": "https://auth.example.com/",
        "sub": sub,
        "aud": "shop-api",
        "iat": issued_at,
        "exp": issued_at + ttl_s,
        "scope": "shop:read shop:write",
        "jti": session_id(rng),
    }
    return f"{_JWT_HEADER}.{b64url(orjson.dumps(claims))}.{b64url(rng.randbytes(64))}"
