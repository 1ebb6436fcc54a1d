"""Session cookies: round trip, tampering, expiry, malformed input; the secret file;
CSRF comparison."""

from __future__ import annotations

import base64
import stat
import threading
from pathlib import Path

import orjson
import pytest

from dashboard.auth.sessions import (
    MAX_COOKIE_BYTES,
    Session,
    SessionCodec,
    csrf_matches,
    load_or_create_secret,
)
from dashboard.auth.store import Role

SECRET = bytes(range(32))
T0 = 1_700_000_000.0
HOUR = 3600.0


@pytest.fixture
def codec() -> SessionCodec:
    return SessionCodec(SECRET, max_age_s=8 * HOUR)


@pytest.fixture
def session() -> Session:
    return Session("ana", Role.ANALYST, T0, T0 + 8 * HOUR, "csrf-token-of-ana", "password")


def _flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


def _signed(codec: SessionCodec, payload: bytes) -> str:
    """A cookie the codec signed around any payload: only a bug or a leaked key makes
    one, and it must still not crash decoding."""
    part = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"{part}.{codec._sign(part)}"


def test_a_session_survives_the_round_trip(codec: SessionCodec, session: Session) -> None:
    cookie = codec.encode(session)
    assert codec.decode(cookie, now=T0 + 1) == session
    assert all(c.isalnum() or c in "-_." for c in cookie)  # cookie-safe as it is
    assert "csrf" not in repr(session)
    oidc = Session("ana@corp", Role.VIEWER, T0, T0 + 60, "x", "oidc")
    assert codec.decode(codec.encode(oidc), now=T0) == oidc


def test_issue_makes_a_session_as_long_as_max_age_with_a_fresh_csrf_token(
    codec: SessionCodec,
) -> None:
    first, second = (codec.issue("ana", Role.ADMIN, now=T0) for _ in range(2))
    assert (first.user, first.role, first.auth) == ("ana", Role.ADMIN, "password")
    assert (first.issued_ts, first.expires_ts) == (T0, T0 + 8 * HOUR)
    assert len(first.csrf) >= 32 and first.csrf != second.csrf


def test_flipping_any_one_character_invalidates_the_cookie(
    codec: SessionCodec, session: Session
) -> None:
    cookie = codec.encode(session)
    for index in range(len(cookie)):
        assert codec.decode(_flip(cookie, index), now=T0 + 1) is None, index


def test_a_cookie_signed_with_another_secret_is_refused(session: Session) -> None:
    cookie = SessionCodec(b"x" * 32).encode(session)
    assert SessionCodec(SECRET).decode(cookie, now=T0 + 1) is None


@pytest.mark.parametrize(
    ("now", "valid"),
    [
        (T0 - 120, False),  # issued in the future, beyond clock skew
        (T0 - 30, True),  # within clock skew
        (T0, True),
        (T0 + 8 * HOUR - 0.001, True),
        (T0 + 8 * HOUR, False),
        (T0 + 30 * 86_400, False),
    ],
)
def test_sessions_expire(codec: SessionCodec, session: Session, now: float, valid: bool) -> None:
    assert (codec.decode(codec.encode(session), now=now) is not None) is valid


def test_a_shorter_max_age_shortens_sessions_already_issued(session: Session) -> None:
    cookie = SessionCodec(SECRET, max_age_s=8 * HOUR).encode(session)
    stricter = SessionCodec(SECRET, max_age_s=HOUR)
    assert stricter.decode(cookie, now=T0 + HOUR - 1) == session
    assert stricter.decode(cookie, now=T0 + HOUR) is None


def test_a_session_cannot_outlive_max_age_whatever_it_claims(codec: SessionCodec) -> None:
    forever = Session("ana", Role.ADMIN, T0, T0 + 365 * 86_400, "c", "password")
    cookie = codec.encode(forever)
    assert codec.decode(cookie, now=T0 + 8 * HOUR - 1) is not None
    assert codec.decode(cookie, now=T0 + 8 * HOUR) is None


_FIELDS = {"v": 1, "u": "ana", "r": "analyst", "i": T0, "e": T0 + HOUR, "c": "t", "a": "password"}


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"[]",
        b"null",
        orjson.dumps({**_FIELDS, "v": 2}),
        orjson.dumps({k: v for k, v in _FIELDS.items() if k != "u"}),
        orjson.dumps({**_FIELDS, "u": 7}),
        orjson.dumps({**_FIELDS, "r": "root"}),
        orjson.dumps({**_FIELDS, "i": "yesterday"}),
        orjson.dumps({**_FIELDS, "e": True}),
        orjson.dumps({**_FIELDS, "e": None}),
        orjson.dumps({**_FIELDS, "c": ["t"]}),
        orjson.dumps({**_FIELDS, "a": "magic-link"}),
        b'{"v": 1, "u": "ana", "r": "analyst", "i": 1e999, "e": 1e999, "c": "t", "a": "oidc"}',
    ],
)
def test_a_signed_but_malformed_payload_is_refused(codec: SessionCodec, payload: bytes) -> None:
    assert codec.decode(_signed(codec, payload), now=T0 + 1) is None


def test_the_valid_payload_of_those_cases_decodes(codec: SessionCodec) -> None:
    assert codec.decode(_signed(codec, orjson.dumps(_FIELDS)), now=T0 + 1) is not None


@pytest.mark.parametrize(
    "value",
    [
        "",
        ".",
        "abc",
        "abc.def",
        "a.b.c",
        "\u00e9t\u00e9.\u00e9t\u00e9",
        "=" * 10 + "." + "=" * 10,
        "A" * (MAX_COOKIE_BYTES + 1),
    ],
)
def test_garbage_is_refused_without_raising(codec: SessionCodec, value: str) -> None:
    assert codec.decode(value, now=T0) is None


def test_an_oversize_cookie_is_refused_even_when_signed(codec: SessionCodec) -> None:
    big = orjson.dumps({**_FIELDS, "u": "a" * 4000})
    assert codec.decode(_signed(codec, big), now=T0 + 1) is None


@pytest.mark.parametrize(
    ("session", "problem"),
    [
        (Session("a" * 4000, Role.VIEWER, T0, T0 + 1, "c"), "at most 4096 bytes"),
        (Session("ana", Role.VIEWER, T0, T0, "c"), "expire after"),
    ],
)
def test_encode_refuses_what_decode_would(
    codec: SessionCodec, session: Session, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        codec.encode(session)


@pytest.mark.parametrize(
    ("secret", "max_age_s"),
    [(b"short", HOUR), (b"", HOUR), (SECRET, 0.0), (SECRET, -1.0), (SECRET, float("nan"))],
)
def test_a_weak_secret_or_a_bad_max_age_is_refused(secret: bytes, max_age_s: float) -> None:
    with pytest.raises(ValueError, match=r"secret|max_age_s"):
        SessionCodec(secret, max_age_s=max_age_s)


def test_the_codec_repr_shows_no_secret() -> None:
    assert repr(SessionCodec(SECRET)) == "SessionCodec(max_age_s=28800)"


# The secret file


def test_the_secret_is_made_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "session.key"
    secret = load_or_create_secret(path)
    assert len(secret) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == secret
    assert [p.name for p in path.parent.iterdir()] == ["session.key"]  # no drafts left
    assert load_or_create_secret(tmp_path / "other.key") != secret


def test_processes_starting_together_agree_on_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "session.key"
    seen: list[bytes] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        seen.append(load_or_create_secret(path))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8 and set(seen) == {path.read_bytes()}


def test_a_truncated_secret_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "session.key"
    path.write_bytes(b"short")
    with pytest.raises(ValueError, match=r"session\.key.*at least 32 bytes"):
        load_or_create_secret(path)


def test_a_secret_readable_by_others_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "session.key"
    path.write_bytes(SECRET)
    path.chmod(0o644)
    assert load_or_create_secret(path) == SECRET
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# CSRF


@pytest.mark.parametrize(
    ("submitted", "matches"),
    [
        ("csrf-token-of-ana", True),
        ("csrf-token-of-an", False),
        ("csrf-token-of-ana ", False),
        ("CSRF-TOKEN-OF-ANA", False),
        ("", False),
        (None, False),
        ("csrf-token-of-an\u00e4", False),
        ("\udcff", False),  # a lone surrogate must not raise
    ],
)
def test_csrf_matches(session: Session, submitted: str | None, matches: bool) -> None:
    assert csrf_matches(session, submitted) is matches


def test_a_session_without_a_csrf_token_matches_nothing() -> None:
    empty = Session("ana", Role.VIEWER, T0, T0 + 1, "")
    assert not csrf_matches(empty, "")
