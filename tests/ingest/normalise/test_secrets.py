from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from ingest.normalise.principal import principal_from_authorization
from ingest.normalise.secrets import Fingerprinter, SecretMasker, load_or_create_salt

SECRET_VALUES = ["sk_live_51HxQ", "hunter2", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1LTEifQ.c2lnbmF0dXJl"]


@pytest.fixture
def masker() -> SecretMasker:
    return SecretMasker(
        Fingerprinter(b"salt"),
        ["api_key", "token", "access_token", "password"],
        ["authorization", "cookie", "x-api-key"],
    )


def test_fingerprints_are_stable_salted_and_opaque() -> None:
    a, b = Fingerprinter(b"one"), Fingerprinter(b"two")
    assert a("k") == a("k")
    assert a("k") != b("k")
    assert a("k") != a("K")
    assert "k" not in a("k")[3:]
    assert a(a("k")) == a("k")  # an existing fingerprint is not fingerprinted again
    with pytest.raises(ValueError, match="salt"):
        Fingerprinter(b"")


def test_query_secrets_masked_other_params_kept(masker: SecretMasker) -> None:
    masked, key = masker.query("q=shoes&api_key=sk_live_51HxQ&page=2&Access_Token=abc")
    assert "sk_live" not in masked and "abc" not in masked
    assert masked.startswith("q=shoes&api_key=fp:")
    assert "&page=2&Access_Token=fp:" in masked
    assert key == masker.fingerprint("sk_live_51HxQ")
    assert masker.query("q=shoes") == ("q=shoes", "")
    assert masker.query("") == ("", "")


def test_headers(masker: SecretMasker) -> None:
    headers = masker.headers(
        {
            "Authorization": "Bearer tok123",
            "Cookie": "sid=abc; theme=dark",
            "X-Api-Key": "k1",
            "User-Agent": "curl/8",
            "X-Many": ["a", "b"],
        }
    )
    assert headers["authorization"] == "Bearer " + masker.fingerprint("tok123")
    assert (
        headers["cookie"] == f"sid={masker.fingerprint('abc')}; theme={masker.fingerprint('dark')}"
    )
    assert headers["x-api-key"] == masker.fingerprint("k1")
    assert headers["user-agent"] == "curl/8"
    assert headers["x-many"] == "a, b"


@pytest.mark.parametrize(
    "text",
    [
        '{"request":{"headers":{"authorization":"Bearer sk_live_51HxQ"}}}',
        "GET /v1/items?api_key=sk_live_51HxQ HTTP/1.1",
        '{"username":"bob","password":"hunter2"}',
        "username=bob&password=hunter2",
        '"http_authorization": "Basic hunter2"',
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1LTEifQ.c2lnbmF0dXJl trailing",
        "Cookie: sid=hunter2",
    ],
)
def test_free_text_masking(masker: SecretMasker, text: str) -> None:
    masked = masker.text(text)
    for secret in SECRET_VALUES:
        assert secret not in masked
    assert "fp:" in masked


def test_salt_created_once_with_private_mode(tmp_path: Path) -> None:
    first = load_or_create_salt(tmp_path)
    assert load_or_create_salt(tmp_path) == first
    mode = (tmp_path / "fingerprint.salt").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def _jwt(claims: bytes) -> str:
    body = base64.urlsafe_b64encode(claims).rstrip(b"=").decode()
    return f"eyJhbGciOiJub25lIn0.{body}.sig"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer " + _jwt(b'{"sub":"user-7","iat":1}'), "user-7"),
        ("bearer " + _jwt(b'{"sub":"user-7"}'), "user-7"),
        ("Bearer " + _jwt(b'{"iss":"x"}'), ""),
        ("Bearer " + _jwt(b"[1,2]"), ""),
        ("Bearer " + _jwt(b'{"sub":42}'), ""),
        ("Bearer not.a-jwt", ""),
        ("Bearer opaque-token", ""),
        ("Basic " + base64.b64encode(b"alice:pw").decode(), "alice"),
        ("Basic !!!", ""),
        ("Digest username=x", ""),
        ("", ""),
    ],
)
def test_principal_from_authorization(header: str, expected: str) -> None:
    assert principal_from_authorization(header) == expected
