"""Password hashing with scrypt, in a self-describing string, and the password policy.

An encoded hash names its parameters, so a stronger default later still verifies old
hashes, and ``needs_rehash`` says when to replace one after a successful login:
``scrypt$<n>$<r>$<p>$<salt>$<key>`` (salt and key in base64 without padding).

>>> fast = ScryptParams(n=2**4)  # tests only: the default costs about 50 ms
>>> encoded = hash_password("correct horse battery staple", fast)
>>> encoded.startswith("scrypt$16$8$1$")
True
>>> verify_password("correct horse battery staple", encoded)
True
>>> verify_password("Correct horse battery staple", encoded), verify_password("x", "junk")
(False, False)
>>> needs_rehash(encoded), needs_rehash(encoded, fast)
(True, False)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass

MIN_LENGTH = 12
MAX_LENGTH = 256
SALT_BYTES = 16
KEY_BYTES = 32
_MAXMEM = 64 * 1024 * 1024  # refuses encodings whose parameters would cost more memory
_MAX_N = 2**20


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost: ``n`` (CPU and memory, a power of two), block size ``r``,
    parallelism ``p``. Memory is about ``128 * n * r`` bytes (16 MiB by default)."""

    n: int = 2**14
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        if not (1 < self.n <= _MAX_N and self.n & (self.n - 1) == 0):
            raise ValueError(f"scrypt n must be a power of two in 2..{_MAX_N}, not {self.n}")
        if not (1 <= self.r <= 32 and 1 <= self.p <= 16):
            raise ValueError(f"scrypt r must be in 1..32 and p in 1..16, not {self.r}, {self.p}")


DEFAULT_PARAMS = ScryptParams()

# The hash of a random password nobody knows, at the default parameters: verifying
# against it when a user does not exist costs what verifying a real hash costs.
DUMMY_HASH = "scrypt$16384$8$1$L3A/hjsppEBhC4sfvN2hhA$aKO9dMYknpGHUr9oeAwP37rVd6VrNYdeJAvaSz/fsU8"


def hash_password(password: str, params: ScryptParams = DEFAULT_PARAMS) -> str:
    """The encoded scrypt hash of ``password`` with a fresh random salt.

    Does not apply the policy (``check_password_policy`` does)."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, params, KEY_BYTES)
    return "$".join(("scrypt", str(params.n), str(params.r), str(params.p), _b64(salt), _b64(key)))


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded``, compared in constant time; False for a
    malformed encoding, never an exception."""
    parsed = _parse(encoded)
    if parsed is None:
        return False
    params, salt, key = parsed
    try:
        candidate = _derive(password, salt, params, len(key))
    except (ValueError, MemoryError):  # unencodable text, or scrypt refused the cost
        return False
    return hmac.compare_digest(candidate, key)


def needs_rehash(encoded: str, params: ScryptParams = DEFAULT_PARAMS) -> bool:
    """Whether ``encoded`` was made with other parameters (or is malformed)."""
    parsed = _parse(encoded)
    return parsed is None or parsed[0] != params or len(parsed[2]) != KEY_BYTES


def check_password_policy(password: str) -> None:
    """Raise ValueError saying what is wrong with a new password (never echoing it).

    >>> check_password_policy("correct horse battery staple")
    >>> check_password_policy("hunter2")
    Traceback (most recent call last):
    ...
    ValueError: a password needs at least 12 characters, this one has 7
    """
    normal = _normalise(password)
    length = len(normal)
    if length < MIN_LENGTH:
        raise ValueError(
            f"a password needs at least {MIN_LENGTH} characters, this one has {length}"
        )
    if length > MAX_LENGTH:
        raise ValueError(
            f"a password may have at most {MAX_LENGTH} characters, this one has {length}"
        )
    if len(set(normal)) == 1:
        raise ValueError("a password must not repeat one character")


def _normalise(password: str) -> str:
    # NFKC, so the same password typed on another keyboard or OS hashes the same.
    return unicodedata.normalize("NFKC", password)


def _derive(password: str, salt: bytes, params: ScryptParams, length: int) -> bytes:
    return hashlib.scrypt(
        _normalise(password).encode("utf-8"),
        salt=salt,
        n=params.n,
        r=params.r,
        p=params.p,
        maxmem=_MAXMEM,
        dklen=length,
    )


def _parse(encoded: str) -> tuple[ScryptParams, bytes, bytes] | None:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return None
    try:
        params = ScryptParams(*(_int(part) for part in parts[1:4]))
        salt, key = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        return None
    if len(salt) < 8 or not 16 <= len(key) <= 64:
        return None
    return params, salt, key


def _int(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 8):
        raise ValueError(text)
    return int(text)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    # binascii.Error, and the error for non-ASCII text, are ValueErrors.
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
