"""Single sign-on through the real app and a real (test) OpenID Connect provider: the
browser's hops between them are followed by hand, so each one can be checked or
tampered with."""

from __future__ import annotations

import base64
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm

from dashboard.app import create_app
from dashboard.auth.store import Role
from dashboard.context import Context
from gatewatch.errors import ConfigError
from gatewatch.settings import load_settings
from gatewatch.store.client import Store
from tests.dashboard.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProvider, new_key, serve

ROLE_MAP = {"soc-admins": "admin", "soc-analysts": "analyst"}
MakeApp = Callable[..., TestClient]
Forge = Callable[[dict[str, Any]], str]


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with serve(OidcProvider()) as running:
        yield running


@pytest.fixture(scope="module")
def oidc_store(shared_store: Store) -> Iterator[Store]:
    """One database for the module: the apps here barely use it."""
    store = Store(shared_store.dsn, database="t_oidc")
    store.migrate()
    yield store
    store.command("DROP DATABASE IF EXISTS t_oidc")


@pytest.fixture
def make_app(provider: OidcProvider, oidc_store: Store, tmp_path: Path) -> MakeApp:
    """A factory of test clients, each of a new app (same data_dir, so same session
    secret) with ``[dashboard.oidc]`` at the provider, changed by the keyword
    arguments; ``sso=False``: without the section."""
    provider.reset()

    def make(*, sso: bool = True, **changes: Any) -> TestClient:
        section = {
            "issuer": provider.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "role_map": ROLE_MAP,
            **changes,
        }
        settings = load_settings(
            None,
            data_dir=str(tmp_path / "data"),
            storage={"dsn": oidc_store.dsn, "database": oidc_store.database},
            dashboard={"oidc": section} if sso else {},
        )
        return TestClient(create_app(settings, oidc_store), base_url="http://127.0.0.1")

    return make


def sso_login(client: TestClient, *, state: str | None = None) -> httpx2.Response:
    """Click "Log in with SSO", let the provider approve, and come back (with
    ``state`` instead of the provider's, if given)."""
    start = client.get("/login/oidc", follow_redirects=False)
    assert start.status_code == 303, start.text
    with httpx2.Client(trust_env=False) as browser:
        approved = browser.get(start.headers["location"])
    assert approved.status_code == 302, approved.text
    back = approved.headers["location"]
    if state is not None:
        back = _with_query(back, state=state)
    return client.get(back, follow_redirects=False)


def gw_of(client: TestClient) -> Context:
    gw: Context = client.app.state.gw  # type: ignore[attr-defined]
    return gw


def _with_query(url: str, **changes: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query)) | changes
    return parts._replace(query=urllib.parse.urlencode(query)).geturl()


def _unsigned(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def test_login_as_analyst_through_the_groups_claim(
    make_app: MakeApp, provider: OidcProvider, oidc_store: Store
) -> None:
    client = make_app()
    provider.claims = {"groups": ["staff", "soc-analysts"]}
    start = client.get("/login/oidc", follow_redirects=False)
    location = urllib.parse.urlsplit(start.headers["location"])
    asked = dict(urllib.parse.parse_qsl(location.query))
    assert location.path == "/authorize" and asked["code_challenge_method"] == "S256"
    assert {"state", "nonce", "code_challenge"} <= asked.keys()
    assert CLIENT_SECRET not in start.headers["location"]
    state_cookie = start.headers["set-cookie"]
    assert "gw_oidc=" in state_cookie and "HttpOnly" in state_cookie
    assert "SameSite=lax" in state_cookie and "Path=/login/oidc" in state_cookie

    done = sso_login(client)
    assert done.status_code == 200, done.text
    assert '<meta http-equiv="refresh" content="0; url=/">' in done.text
    cookies = done.headers.get_list("set-cookie")
    [session_cookie] = [c for c in cookies if c.startswith("gw_session=")]
    assert "HttpOnly" in session_cookie and "SameSite=strict" in session_cookie
    assert any(c.startswith('gw_oidc=""') for c in cookies)  # the state is spent
    session = gw_of(client).sessions.decode(client.cookies["gw_session"])
    assert session is not None
    assert (session.user, session.role, session.auth) == ("oscar", Role.ANALYST, "oidc")
    page = client.get("/")  # oscar is in no local user store
    assert page.status_code == 200 and "oscar (analyst)" in page.text

    gw_of(client).audit.flush()
    audited = oidc_store.query(
        "SELECT role, auth, path, status FROM t_oidc.audit_log "
        "WHERE principal = 'oscar' AND action = 'login'"
    )
    assert ("analyst", "oidc", "/login/oidc/callback", 200) in audited


@pytest.mark.parametrize(
    ("groups", "default_role", "role"),
    [
        ("soc-admins", "none", Role.ADMIN),  # one value, not a list
        (["soc-analysts", "soc-admins"], "none", Role.ADMIN),  # the highest wins
        (["staff"], "viewer", Role.VIEWER),
        (None, "viewer", Role.VIEWER),  # no groups claim at all
    ],
)
def test_the_highest_mapped_role_or_the_default(
    make_app: MakeApp, provider: OidcProvider, groups: Any, default_role: str, role: Role
) -> None:
    client = make_app(default_role=default_role)
    provider.claims = {"groups": groups}
    assert sso_login(client).status_code == 200
    session = gw_of(client).sessions.decode(client.cookies["gw_session"])
    assert session is not None and session.role == role


def test_no_mapped_role_and_default_none_is_refused(
    make_app: MakeApp, provider: OidcProvider, oidc_store: Store
) -> None:
    client = make_app()
    provider.claims = {"groups": ["staff"], "preferred_username": "norole"}
    refused = sso_login(client)
    assert refused.status_code == 403
    assert "Your account has no Gatewatch role" in refused.text
    assert "gw_session" not in client.cookies
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    gw_of(client).audit.flush()
    audited = oidc_store.query(
        "SELECT auth, status, detail FROM t_oidc.audit_log "
        "WHERE principal = 'norole' AND action = 'login_failed'"
    )
    assert audited == [("oidc", 403, "your account has no Gatewatch role")]


def test_a_tampered_or_missing_state_is_refused(make_app: MakeApp) -> None:
    client = make_app()
    tampered = sso_login(client, state="forged-by-someone-else")
    assert tampered.status_code == 400 and "state does not match" in tampered.text
    assert "gw_session" not in client.cookies
    # Another browser, without the state cookie, brings the callback URL.
    other = make_app()
    start = client.get("/login/oidc", follow_redirects=False)
    with httpx2.Client(trust_env=False) as browser:
        back = browser.get(start.headers["location"]).headers["location"]
    stolen = other.get(back, follow_redirects=False)
    assert stolen.status_code == 400 and "did not start here" in stolen.text
    assert "gw_session" not in other.cookies


def _other_key_same_kid(provider: OidcProvider) -> Forge:
    other = new_key()
    return lambda claims: jwt.encode(claims, other, "RS256", headers={"kid": provider.kid})


def _unpublished_key(_: OidcProvider) -> Forge:
    return lambda claims: jwt.encode(claims, new_key(), "RS256", headers={"kid": "unpublished"})


def _alg_none(_: OidcProvider) -> Forge:
    return _unsigned


def _hs256_keyed_with_the_client_secret(_: OidcProvider) -> Forge:
    return lambda claims: jwt.encode(claims, CLIENT_SECRET, "HS256")


@pytest.mark.parametrize(
    ("claims", "forge", "reason"),
    [
        ({"aud": "someone-else"}, None, "not meant for this client"),
        ({"aud": [CLIENT_ID, "someone-else"]}, None, "issued to another client"),
        ({"iss": "https://evil.example"}, None, "another issuer"),
        ({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, None, "has expired"),
        ({"iat": int(time.time()) + 3600}, None, "issued in the future"),
        ({"exp": None}, None, "lacks a required claim"),
        ({"nonce": "replayed-from-another-login"}, None, "nonce does not match"),
        ({}, _other_key_same_kid, "signature does not verify"),
        ({}, _unpublished_key, "key the provider does not publish"),
        ({}, _alg_none, "not RS256 or ES256"),
        ({}, _hs256_keyed_with_the_client_secret, "not RS256 or ES256"),
    ],
)
def test_id_tokens_that_do_not_prove_the_login_are_refused(
    make_app: MakeApp,
    provider: OidcProvider,
    claims: dict[str, Any],
    forge: Callable[[OidcProvider], Forge] | None,
    reason: str,
) -> None:
    client = make_app()
    provider.claims = {"groups": ["soc-admins"], **claims}
    provider.forge = None if forge is None else forge(provider)
    refused = sso_login(client)
    assert refused.status_code == 400, refused.text
    assert reason in refused.text
    assert "eyJ" not in refused.text  # no token on the page
    assert "gw_session" not in client.cookies


def test_an_es256_token_is_accepted(make_app: MakeApp, provider: OidcProvider) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    provider.extra_keys = [{**jwk, "kid": "ec-1", "use": "sig"}]
    provider.forge = lambda claims: jwt.encode(claims, key, "ES256", headers={"kid": "ec-1"})
    provider.claims = {"groups": ["soc-analysts"]}
    assert sso_login(make_app()).status_code == 200


def test_the_provider_enforces_the_pkce_verifier(make_app: MakeApp, provider: OidcProvider) -> None:
    client = make_app()
    start = client.get("/login/oidc", follow_redirects=False)
    with httpx2.Client(trust_env=False) as browser:
        back = browser.get(start.headers["location"]).headers["location"]
        code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(back).query))["code"]
        stolen = browser.post(
            f"{provider.issuer}/token",
            data={"grant_type": "authorization_code", "code": code, "code_verifier": "guess" * 9,
                  "redirect_uri": "http://127.0.0.1/login/oidc/callback"},
            auth=(CLIENT_ID, CLIENT_SECRET),
        )  # fmt: skip
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    # The code is spent: the rightful browser is refused too, and told why.
    late = client.get(back, follow_redirects=False)
    assert late.status_code == 400 and "refused the login (invalid_grant)" in late.text


def test_client_secret_post_when_basic_is_not_offered(
    make_app: MakeApp, provider: OidcProvider
) -> None:
    client = make_app()
    provider.auth_methods = ["client_secret_post"]
    provider.claims = {"groups": ["soc-analysts"]}
    assert sso_login(client).status_code == 200


def test_a_public_client_sends_no_secret(make_app: MakeApp, provider: OidcProvider) -> None:
    client = make_app(client_secret=None)
    provider.public = True
    provider.claims = {"groups": ["soc-analysts"]}
    assert sso_login(client).status_code == 200


def test_a_rotated_signing_key_is_fetched_once(make_app: MakeApp, provider: OidcProvider) -> None:
    client = make_app()
    provider.claims = {"groups": ["soc-analysts"]}
    assert sso_login(client).status_code == 200
    provider.rotate()
    assert sso_login(client).status_code == 200
    assert provider.requests.count("GET /jwks") == 2
    assert provider.requests.count("GET /.well-known/openid-configuration") == 1


def test_the_login_page_offers_sso_only_when_configured(make_app: MakeApp) -> None:
    client = make_app()
    assert 'href="/login/oidc">Log in with SSO</a>' in client.get("/login").text
    again = client.post("/login", data={"username": "ana", "password": "pw", "csrf": "forged"})
    assert again.status_code == 400 and "Log in with SSO" in again.text
    plain = make_app(sso=False)
    assert "Log in with SSO" not in plain.get("/login").text
    assert plain.get("/login/oidc", follow_redirects=False).status_code == 404


def test_an_oidc_session_ends_when_sso_is_turned_off(
    make_app: MakeApp, provider: OidcProvider
) -> None:
    client = make_app()
    provider.claims = {"groups": ["soc-analysts"]}
    assert sso_login(client).status_code == 200
    cookie = client.cookies["gw_session"]
    without_sso = make_app(sso=False)  # same data_dir: same session secret
    without_sso.cookies.set("gw_session", cookie)
    assert without_sso.get("/", follow_redirects=False).headers["location"] == "/login"


def test_an_unreachable_provider_is_a_clear_502(make_app: MakeApp) -> None:
    client = make_app(issuer="http://127.0.0.1:9")  # discard: nothing listens
    page = client.get("/login/oidc", follow_redirects=False)
    assert page.status_code == 502 and "discovery is unreachable" in page.text


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"issuer": "https://id.example.com"}, "dashboard.oidc.client_id"),
        ({"issuer": "https://id.example.com", "client_id": " "}, "dashboard.oidc.client_id"),
        ({"issuer": "http://id.example.com", "client_id": "gw"}, "dashboard.oidc.issuer"),
        ({"issuer": "https://id.example.com", "client_id": "gw", "scopes": ["email"]},
         "dashboard.oidc.scopes"),
        ({"issuer": "https://id.example.com", "client_id": "gw", "default_role": "admin"},
         "dashboard.oidc.default_role"),
    ],
)  # fmt: skip
def test_settings_errors_name_the_key(section: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(None, dashboard={"oidc": section})
    assert f"settings: {key}: " in str(raised.value)
