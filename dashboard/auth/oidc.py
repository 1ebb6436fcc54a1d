"""Single sign-on with an OpenID Connect provider: the Authorization Code flow with
PKCE (RFC 7636, S256), for a confidential or a public client.

``OidcClient`` finds the provider from its issuer URL (``/.well-known/openid-
configuration``, cached for an hour), builds the authorization request, exchanges the
code at the token endpoint and validates the ID token: its signature against the
provider's JWKS (cached; fetched again once for an unknown key id), RS256 or ES256
only, its issuer, audience, expiry and issue time (60 s leeway) and its nonce.
``role_of`` and ``username_of`` turn the token's claims into a Gatewatch user.

What the browser carries from the first step to the second (state, nonce, PKCE
verifier) is a short-lived cookie signed by ``StateSigner``. No token and no secret is
ever logged or put in an error message.

>>> pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")  # RFC 7636, appendix B
'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'
>>> signer = StateSigner(b"k" * 32)
>>> login = LoginState.new(now=1000.0)
>>> signer.decode(signer.encode(login), now=1001.0) == login
True
>>> signer.decode(signer.encode(login), now=1000.0 + STATE_MAX_AGE_S) is None
True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import logging
import re
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
import orjson

from dashboard.auth.store import Role
from gatewatch.errors import GatewatchError
from gatewatch.settings import OidcSettings, secure_url

log = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "ES256")  # asymmetric only: never "none", never HS* (the secret)
LEEWAY_S = 60.0
STATE_MAX_AGE_S = 600
_DISCOVERY_TTL_S = 3600.0
_JWKS_TTL_S = 3600.0
_FORCED_JWKS_EVERY_S = 30.0  # an unknown key id fetches the JWKS again at most this often
_TIMEOUT_S = 10.0
_MAX_RESPONSE_BYTES = 1 << 20
_MAX_USERNAME = 128
_MAC_CONTEXT = b"gatewatch-oidc-state-v1."  # never valid as a session cookie's MAC
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat"]
_TOKEN_PROBLEMS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "the ID token has expired"),
    (jwt.ImmatureSignatureError, "the ID token was issued in the future"),
    (jwt.InvalidAudienceError, "the ID token is not meant for this client (aud)"),
    (jwt.InvalidIssuerError, "the ID token comes from another issuer (iss)"),
    (jwt.InvalidSignatureError, "the ID token's signature does not verify"),
    (jwt.InvalidAlgorithmError, "the ID token is signed with an algorithm not allowed"),
    (jwt.MissingRequiredClaimError, "the ID token lacks a required claim"),
)


class OidcError(GatewatchError):
    """Single sign-on failed. The message is safe to show (no token, no secret);
    ``status`` is the HTTP status to answer with; ``user`` is who it was, once known."""

    status = 400

    def __init__(self, message: str, *, user: str = "") -> None:
        self.user = user
        super().__init__(message)


class NoRoleError(OidcError):
    """The provider vouched for the user, but no claim maps to a Gatewatch role."""

    status = 403


class ProviderError(OidcError):
    """The provider could not be reached or answered something unusable; trying again
    later may help."""

    status = 502
    retriable = True


@dataclass(frozen=True)
class ProviderMetadata:
    """What discovery tells about the provider (only what the flow uses)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    token_auth_methods: tuple[str, ...] = ("client_secret_basic",)


@dataclass(frozen=True)
class LoginState:
    """One login in progress: ``state`` binds the callback to this browser, ``nonce``
    the ID token to this login, ``verifier`` the code to this client (PKCE)."""

    state: str
    nonce: str
    verifier: str = field(repr=False)
    issued_ts: float

    @classmethod
    def new(cls, now: float | None = None) -> LoginState:
        issued = time.time() if now is None else now
        return cls(
            secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48), issued
        )


@dataclass(frozen=True)
class Identity:
    """Who the provider says logged in, and the role their claims map to."""

    user: str
    role: Role


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE ``verifier``."""
    return _b64(hashlib.sha256(verifier.encode("ascii")).digest())


def role_of(
    claims: Mapping[str, Any], *, claim: str, role_map: Mapping[str, str], default: str
) -> Role | None:
    """The highest role ``role_map`` gives any value of ``claims[claim]`` (a string or
    a list of them); else ``default`` ("viewer", or "none": None).

    >>> role_map = {"soc-admins": "admin", "soc-analysts": "analyst"}
    >>> role_of({"groups": ["staff", "soc-analysts", "soc-admins"]}, claim="groups",
    ...         role_map=role_map, default="none")
    <Role.ADMIN: 'admin'>
    >>> role_of({"groups": "staff"}, claim="groups", role_map=role_map, default="none")
    >>> role_of({}, claim="groups", role_map=role_map, default="viewer")
    <Role.VIEWER: 'viewer'>
    """
    value = claims.get(claim)
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    roles = [Role(role_map[v]) for v in values if isinstance(v, str) and v in role_map]
    if roles:
        return max(roles, key=lambda role: role.rank)
    return Role.VIEWER if default == "viewer" else None


def username_of(claims: Mapping[str, Any], claim: str) -> str | None:
    """The first of ``claim``, ``email`` and ``sub`` that is a printable string of 1 to
    128 characters, or None.

    >>> username_of({"sub": "f81d4fae", "email": "ana@example.com"}, "preferred_username")
    'ana@example.com'
    """
    for name in (claim, "email", "sub"):
        value = claims.get(name)
        if isinstance(value, str) and 0 < len(value) <= _MAX_USERNAME and value.isprintable():
            return value
    return None


class StateSigner:
    """Turns a ``LoginState`` into a cookie value and back, refusing any value it did
    not sign or older than ``max_age_s``. ``secret`` may be the session secret: the MAC
    covers a context of its own, so neither kind of cookie passes for the other."""

    def __init__(self, secret: bytes, *, max_age_s: float = STATE_MAX_AGE_S) -> None:
        self._secret = secret
        self.max_age_s = max_age_s

    def __repr__(self) -> str:
        return f"StateSigner(max_age_s={self.max_age_s!r})"

    def encode(self, login: LoginState) -> str:
        payload = _b64(
            orjson.dumps(
                {"s": login.state, "n": login.nonce, "v": login.verifier, "i": login.issued_ts}
            )
        )
        return f"{payload}.{self._sign(payload)}"

    def decode(self, value: str, now: float | None = None) -> LoginState | None:
        """The login in ``value``, or None (tampered, expired or malformed)."""
        if len(value) > 1024 or not value.isascii() or value.count(".") != 1:
            return None
        payload, signature = value.split(".")
        if not hmac.compare_digest(self._sign(payload).encode(), signature.encode()):
            return None
        try:
            data = orjson.loads(_unb64(payload))
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        state, nonce, verifier, issued = (data.get(key) for key in "snvi")
        if not (
            isinstance(state, str)
            and isinstance(nonce, str)
            and isinstance(verifier, str)
            and isinstance(issued, float | int)
        ):
            return None
        now = time.time() if now is None else now
        if not issued - LEEWAY_S <= now < issued + self.max_age_s:
            return None
        return LoginState(state, nonce, verifier, float(issued))

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self._secret, _MAC_CONTEXT + payload.encode("ascii"), hashlib.sha256)
        return _b64(mac.digest())


class OidcClient:
    """The relying party for the provider ``settings`` names. Thread-safe: discovery
    and the JWKS are cached behind a lock and fetched with ``timeout_s``."""

    def __init__(self, settings: OidcSettings, *, timeout_s: float = _TIMEOUT_S) -> None:
        if not settings.issuer:
            raise ValueError("OIDC needs an issuer")
        self.settings = settings
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._metadata: tuple[float, ProviderMetadata] | None = None
        self._jwks: tuple[float, list[dict[str, Any]]] | None = None
        self._forced_jwks_ts = float("-inf")

    def __repr__(self) -> str:
        return f"OidcClient(issuer={self.settings.issuer!r}, client_id={self.settings.client_id!r})"

    @property
    def issuer(self) -> str:
        return self.settings.issuer or ""

    def metadata(self) -> ProviderMetadata:
        """The provider's endpoints, from discovery (cached)."""
        now = time.monotonic()
        with self._lock:
            cached = self._metadata
        if cached is not None and now - cached[0] < _DISCOVERY_TTL_S:
            return cached[1]
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        metadata = _metadata_of(self._fetch(url, "discovery"))
        if metadata.issuer != self.issuer:
            raise ProviderError(
                f"the discovery document names issuer {metadata.issuer!r}, "
                f"not the configured {self.issuer!r}"
            )
        with self._lock:
            self._metadata = (now, metadata)
        return metadata

    def authorization_url(self, login: LoginState, redirect_uri: str) -> str:
        """Where to send the browser to log in (response_type code, PKCE S256)."""
        endpoint = self.metadata().authorization_endpoint
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": self.settings.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(self.settings.scopes),
                "state": login.state,
                "nonce": login.nonce,
                "code_challenge": pkce_challenge(login.verifier),
                "code_challenge_method": "S256",
            }
        )
        return f"{endpoint}{'&' if urllib.parse.urlsplit(endpoint).query else '?'}{query}"

    def complete(self, code: str, login: LoginState, redirect_uri: str) -> Identity:
        """Exchange ``code``, validate the ID token and map its claims to a user."""
        claims = self.validate(self.exchange(code, login.verifier, redirect_uri), login.nonce)
        user = username_of(claims, self.settings.username_claim)
        if user is None:
            raise OidcError(
                f"the ID token names no user ({self.settings.username_claim}, email or sub)"
            )
        role = role_of(
            claims,
            claim=self.settings.role_claim,
            role_map=self.settings.role_map,
            default=self.settings.default_role,
        )
        if role is None:
            raise NoRoleError("your account has no Gatewatch role", user=user)
        return Identity(user, role)

    def exchange(self, code: str, verifier: str, redirect_uri: str) -> str:
        """The ID token the token endpoint gives for ``code`` and the PKCE
        ``verifier``; the client authenticates with client_secret_basic, or
        client_secret_post when that is all the provider supports."""
        metadata = self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        client_id, secret = self.settings.client_id, self.settings.client_secret
        if secret is None:
            form["client_id"] = client_id
        elif "client_secret_basic" in metadata.token_auth_methods:
            pair = f"{_form(client_id)}:{_form(secret.get_secret_value())}"  # RFC 6749 2.3.1
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        elif "client_secret_post" in metadata.token_auth_methods:
            form |= {"client_id": client_id, "client_secret": secret.get_secret_value()}
        else:
            raise ProviderError(
                "the provider supports neither client_secret_basic nor client_secret_post"
            )
        answer = self._fetch(metadata.token_endpoint, "token endpoint", form, headers)
        id_token = answer.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise ProviderError("the token endpoint returned no ID token")
        return id_token

    def validate(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The claims of ``id_token`` once it proves genuine, current, meant for this
        client and this login; OidcError saying why not otherwise."""
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise OidcError("the ID token is malformed") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise OidcError(f"the ID token is signed with {str(alg)[:16]!r}, not RS256 or ES256")
        kid = header.get("kid")
        key = self._key(kid if isinstance(kid, str) else None, alg)
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key.key,
                algorithms=[alg],
                audience=self.settings.client_id,
                issuer=self.issuer,
                leeway=LEEWAY_S,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            reason = next((text for kind, text in _TOKEN_PROBLEMS if isinstance(exc, kind)), "")
            raise OidcError(reason or "the ID token is invalid") from None
        said = claims.get("nonce")
        if not isinstance(said, str) or not hmac.compare_digest(said.encode(), nonce.encode()):
            raise OidcError("the ID token's nonce does not match this login")
        audience, party = claims["aud"], claims.get("azp")
        if ((isinstance(audience, list) and len(audience) > 1) or party is not None) and (
            party != self.settings.client_id
        ):
            raise OidcError("the ID token was issued to another client (azp)")
        return claims

    def _key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        """The provider's key ``kid``, the JWKS fetched again (at most every 30 s)
        when it does not have it: the provider may have rotated its keys."""
        now = time.monotonic()
        with self._lock:
            keys = self._jwks[1] if self._jwks and now - self._jwks[0] < _JWKS_TTL_S else None
        fetched = keys is None
        if keys is None:
            keys = self._load_jwks(now)
        jwk = _pick(keys, kid)
        if jwk is None and not fetched:
            with self._lock:
                refetch = now - self._forced_jwks_ts >= _FORCED_JWKS_EVERY_S
                if refetch:
                    self._forced_jwks_ts = now
            if refetch:
                jwk = _pick(self._load_jwks(now), kid)
        if jwk is None:
            raise OidcError("the ID token is signed with a key the provider does not publish")
        if jwk.get("alg", alg) != alg:
            raise OidcError("the ID token's algorithm is not its key's")
        try:
            return jwt.PyJWK(jwk, algorithm=alg)
        except jwt.PyJWTError:
            raise OidcError(f"the provider's key {kid!r} is not a valid {alg} key") from None

    def _load_jwks(self, now: float) -> list[dict[str, Any]]:
        document = self._fetch(self.metadata().jwks_uri, "JWKS")
        keys = document.get("keys")
        if not isinstance(keys, list):
            raise ProviderError("the provider's JWKS has no keys")
        usable = [k for k in keys if isinstance(k, dict) and k.get("use", "sig") == "sig"]
        with self._lock:
            self._jwks = (now, usable)
        return usable

    def _fetch(
        self,
        url: str,
        what: str,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The JSON object at ``url`` (POSTed ``form``, if any): ProviderError when
        unreachable or not JSON, OidcError with the provider's error code when it
        refuses (4xx)."""
        request = urllib.request.Request(  # noqa: S310 - https URLs only: settings, _metadata_of
            url,
            data=None if form is None else urllib.parse.urlencode(form).encode(),
            headers={"Accept": "application/json", **(headers or {})},
        )
        try:
            with _OPENER.open(request, timeout=self.timeout_s) as response:
                body = response.read(_MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise _refusal(exc, what) from None
        except (OSError, http.client.HTTPException) as exc:
            log.warning("OIDC %s unreachable: %s", what, exc)
            raise ProviderError(f"the identity provider's {what} is unreachable") from None
        if len(body) > _MAX_RESPONSE_BYTES:
            raise ProviderError(f"the provider's {what} answer is over 1 MiB")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise ProviderError(f"the provider's {what} answer is not a JSON object")
        return data


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect becomes an HTTPError: the provider's URLs are used as published."""

    max_redirections = 0


_OPENER = urllib.request.build_opener(_NoRedirects)


def _refusal(exc: urllib.error.HTTPError, what: str) -> OidcError:
    """The error for a 3xx, 4xx or 5xx answer: the provider's OAuth error code when
    it gave one (invalid_grant, invalid_client...), never its description."""
    code = ""
    try:
        data = orjson.loads(exc.read(65_536))
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            code = data["error"] if _ERROR_CODE.fullmatch(data["error"]) else ""
    except (OSError, orjson.JSONDecodeError):
        pass
    finally:
        exc.close()
    log.warning("OIDC %s answered HTTP %d %s", what, exc.code, code)
    if 400 <= exc.code < 500 and code:
        return OidcError(f"the identity provider refused the login ({code})")
    return ProviderError(f"the identity provider's {what} answered HTTP {exc.code}")


def _metadata_of(document: dict[str, Any]) -> ProviderMetadata:
    values = {}
    for name in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = document.get(name)
        if not isinstance(value, str) or not value:
            raise ProviderError(f"the provider's discovery document has no {name}")
        if not secure_url(re.split(r"[?#]", value, maxsplit=1)[0]):
            raise ProviderError(f"the provider's {name} is not an https URL")
        values[name] = value
    methods = document.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
    if not isinstance(methods, list):
        raise ProviderError("the provider's token_endpoint_auth_methods_supported is not a list")
    return ProviderMetadata(
        **values, token_auth_methods=tuple(m for m in methods if isinstance(m, str))
    )


def _pick(keys: list[dict[str, Any]], kid: str | None) -> dict[str, Any] | None:
    """The key named ``kid``; without a kid, the provider's only key."""
    if kid is None:
        return keys[0] if len(keys) == 1 else None
    return next((key for key in keys if key.get("kid") == kid), None)


def _form(text: str) -> str:
    return urllib.parse.quote_plus(text)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    # binascii.Error is a ValueError.
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
