"""A small OpenID Connect provider for tests, on 127.0.0.1: discovery, a JWKS with an
RSA key made at start, an authorization endpoint that approves at once, and a token
endpoint that checks the client, the code, the redirect URI and the PKCE verifier
before it signs an ID token.

Tests change what the next ID tokens say with ``claims`` (a None value removes a
claim) or replace signing altogether with ``forge``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CLIENT_ID = "gatewatch"
CLIENT_SECRET = "provider-test-client-secret-0123456789"
AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class Grant:
    """What the authorization endpoint remembers about a code it issued."""

    client_id: str
    redirect_uri: str
    nonce: str
    challenge: str


@dataclass
class OidcProvider:
    """The provider; ``issuer`` is known once ``serve`` runs."""

    key: rsa.RSAPrivateKey = field(default_factory=new_key)
    kid: str = "key-1"
    issuer: str = ""
    claims: dict[str, Any] = field(default_factory=dict)
    forge: Callable[[dict[str, Any]], str] | None = None
    auth_methods: list[str] = field(default_factory=lambda: list(AUTH_METHODS))
    public: bool = False  # the client has no secret (and PKCE is all it has)
    extra_keys: list[dict[str, Any]] = field(default_factory=list)  # published too
    codes: dict[str, Grant] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)  # "METHOD path" of each request

    def reset(self) -> None:
        self.claims, self.forge, self.auth_methods = {}, None, list(AUTH_METHODS)
        self.public = False
        self.extra_keys = []
        self.codes.clear()
        self.requests.clear()

    def rotate(self) -> None:
        """A new signing key under a new key id; the old one is no longer published."""
        self.key, self.kid = new_key(), f"key-{secrets.token_hex(4)}"

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": self.auth_methods,
        }

    def jwks(self) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        assert isinstance(jwk, dict)
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}, *self.extra_keys]}

    def id_token(self, grant: Grant) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": grant.client_id,
            "sub": "248289761001",
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
            "preferred_username": "oscar",
            "email": "oscar@example.com",
        }
        claims |= self.claims
        claims = {name: value for name, value in claims.items() if value is not None}
        if self.forge is not None:
            return self.forge(claims)
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """Approve at once: back to redirect_uri with a code and the state."""
        if (
            query.get("response_type") != "code"
            or query.get("client_id") != CLIENT_ID
            or query.get("code_challenge_method") != "S256"
            or not query.get("code_challenge")
            or "openid" not in query.get("scope", "").split()
        ):
            return 400, {}, b"bad authorization request"
        code = secrets.token_urlsafe(24)
        self.codes[code] = Grant(
            CLIENT_ID, query["redirect_uri"], query.get("nonce", ""), query["code_challenge"]
        )
        back = urllib.parse.urlencode({"code": code, "state": query.get("state", "")})
        return 302, {"Location": f"{query['redirect_uri']}?{back}"}, b""

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        """Check the client, then the code (spent either way), its redirect URI and the
        PKCE verifier; answer with an ID token."""
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if authorization.startswith("Basic "):
            pair = base64.b64decode(authorization.removeprefix("Basic ")).decode()
            client_id, _, secret = (urllib.parse.unquote_plus(p) for p in pair.partition(":"))
        if client_id != CLIENT_ID or not (
            (self.public and not secret) or hmac.compare_digest(secret, CLIENT_SECRET)
        ):
            return 401, {"error": "invalid_client"}
        grant = self.codes.pop(form.get("code", ""), None)
        if (
            form.get("grant_type") != "authorization_code"
            or grant is None
            or grant.redirect_uri != form.get("redirect_uri")
        ):
            return 400, {"error": "invalid_grant"}
        if s256(form.get("code_verifier", "")) != grant.challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verifier"}
        return 200, {"access_token": "at", "token_type": "Bearer", "id_token": self.id_token(grant)}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        provider = self.server.provider
        url = urllib.parse.urlsplit(self.path)
        provider.requests.append(f"GET {url.path}")
        if url.path == "/.well-known/openid-configuration":
            self._json(200, provider.discovery())
        elif url.path == "/jwks":
            self._json(200, provider.jwks())
        elif url.path == "/authorize":
            status, headers, body = provider.authorize(dict(urllib.parse.parse_qsl(url.query)))
            self._send(status, headers, body)
        else:
            self._send(404, {}, b"not found")

    def do_POST(self) -> None:
        provider = self.server.provider
        provider.requests.append(f"POST {self.path}")
        if self.path != "/token":
            self._send(404, {}, b"not found")
            return
        length = int(self.headers.get("Content-Length", "0"))
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        status, answer = provider.token(form, self.headers.get("Authorization", ""))
        self._json(status, answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet tests

    def _json(self, status: int, data: dict[str, Any]) -> None:
        self._send(status, {"Content-Type": "application/json"}, orjson.dumps(data))

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, provider: OidcProvider) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.provider = provider


@contextmanager
def serve(provider: OidcProvider) -> Iterator[OidcProvider]:
    """Run ``provider`` on a free port of 127.0.0.1 until the block ends."""
    server = _Server(provider)
    provider.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="oidc-provider", daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
