"""Password hashing, verification of malformed encodings, rehash decisions, policy."""

from __future__ import annotations

import base64

import pytest

from dashboard.auth.passwords import (
    DEFAULT_PARAMS,
    DUMMY_HASH,
    ScryptParams,
    check_password_policy,
    hash_password,
    needs_rehash,
    verify_password,
)

FAST = ScryptParams(n=2**4)
PASSWORD = "correct horse battery staple"


def test_the_default_hash_names_its_parameters_and_salts_every_hash() -> None:
    encoded = hash_password(PASSWORD)
    scheme, n, r, p, salt, key = encoded.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt + "==")) == 16
    assert len(base64.b64decode(key + "==")) == 32
    assert verify_password(PASSWORD, encoded)
    assert not needs_rehash(encoded)
    assert hash_password(PASSWORD, FAST) != hash_password(PASSWORD, FAST)


@pytest.mark.parametrize(
    "attempt",
    [
        "",
        "correct horse battery stapl",
        "correct horse battery staple ",
        "Correct horse battery staple",
        PASSWORD * 2,
    ],
)
def test_only_the_exact_password_verifies(attempt: str) -> None:
    encoded = hash_password(PASSWORD, FAST)
    assert verify_password(PASSWORD, encoded)
    assert not verify_password(attempt, encoded)


def test_unicode_passwords_verify_however_they_are_composed() -> None:
    encoded = hash_password("caf\u00e9 au lait, s'il vous pla\u00eet", FAST)
    assert verify_password("cafe\u0301 au lait, s'il vous plai\u0302t", encoded)


_GOOD = hash_password(PASSWORD, FAST)
_SALT, _KEY = _GOOD.split("$")[4:]


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "scrypt",
        "$$$$$",
        f"bcrypt$16$8$1${_SALT}${_KEY}",
        f"scrypt$16$8$1${_SALT}",
        f"scrypt$16$8$1${_SALT}${_KEY}$extra",
        f"scrypt$sixteen$8$1${_SALT}${_KEY}",
        f"scrypt$-16$8$1${_SALT}${_KEY}",
        f"scrypt$15$8$1${_SALT}${_KEY}",  # not a power of two
        f"scrypt$1$8$1${_SALT}${_KEY}",
        f"scrypt$16$0$1${_SALT}${_KEY}",
        f"scrypt$16$8$0${_SALT}${_KEY}",
        f"scrypt$1073741824$8$1${_SALT}${_KEY}",  # would take a terabyte
        f"scrypt$1048576$32$16${_SALT}${_KEY}",  # allowed values, but over the memory cap
        f"scrypt$16$8$1$not*base64${_KEY}",
        f"scrypt$16$8$1${_SALT}$\u00e9t\u00e9",
        f"scrypt$16$8$1$AAAA${_KEY}",  # a 3-byte salt
        f"scrypt$16$8$1${_SALT}$AAAAAAAA",  # a 6-byte key
        f"scrypt$\u0661\u0666$8$1${_SALT}${_KEY}",  # Arabic-Indic digits
    ],
)
def test_malformed_encodings_never_verify_nor_raise(encoded: str) -> None:
    assert verify_password(PASSWORD, encoded) is False
    assert needs_rehash(encoded, FAST)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (FAST, False),
        (ScryptParams(n=2**5), True),
        (ScryptParams(n=2**4, r=4), True),
        (ScryptParams(n=2**4, p=2), True),
        (DEFAULT_PARAMS, True),
    ],
)
def test_needs_rehash_when_the_parameters_differ(params: ScryptParams, expected: bool) -> None:
    assert needs_rehash(_GOOD, params) is expected


def test_the_dummy_hash_costs_what_a_real_one_costs_and_matches_nothing() -> None:
    assert not needs_rehash(DUMMY_HASH)
    assert not verify_password("", DUMMY_HASH)


@pytest.mark.parametrize(
    ("n", "r", "p"), [(1, 8, 1), (3, 8, 1), (2**21, 8, 1), (16, 0, 1), (16, 33, 1), (16, 8, 17)]
)
def test_unsafe_or_impossible_parameters_are_refused(n: int, r: int, p: int) -> None:
    with pytest.raises(ValueError, match="scrypt"):
        ScryptParams(n, r, p)


@pytest.mark.parametrize(
    "password",
    [PASSWORD, "x" * 11 + "y", "\u00e9" * 11 + "!", "z" * 255 + "Z", "  leading spaces  "],
)
def test_policy_accepts(password: str) -> None:
    check_password_policy(password)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("", "at least 12 characters, this one has 0"),
        ("hunter2-abc", "at least 12 characters, this one has 11"),
        ("a" * 257, "at most 256 characters, this one has 257"),
        ("a" * 12, "must not repeat one character"),
        (" " * 40, "must not repeat one character"),
    ],
)
def test_policy_refuses_with_a_reason_that_never_echoes_the_password(
    password: str, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem) as refused:
        check_password_policy(password)
    if password.strip():
        assert password not in str(refused.value)
