"""RawEvent -> Event: the one place where log values are typed, resolved and masked.

Every parser hands its fields here, so the rules are the same for every format:
timestamps to UTC epoch seconds, the client IP through the trusted-proxy chain, the
route template, the principal, and secrets fingerprinted before anything leaves.
A value that cannot be understood raises ``ParseError`` naming the field; the caller
dead-letters the line.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from gatewatch.errors import ParseError
from gatewatch.event import Event
from ingest.normalise.client_ip import ClientIpResolver
from ingest.normalise.principal import principal_from_authorization
from ingest.normalise.routes import RouteTemplater
from ingest.normalise.secrets import SecretMasker
from ingest.normalise.timestamps import parse_ts
from ingest.parsers.base import RawEvent

_TLS_NAMES = {
    "1.0": "TLSv1.0",
    "1": "TLSv1.0",
    "1.1": "TLSv1.1",
    "1.2": "TLSv1.2",
    "1.3": "TLSv1.3",
    "tlsv1": "TLSv1.0",
    "tlsv1.0": "TLSv1.0",
    "tlsv1.1": "TLSv1.1",
    "tlsv1.2": "TLSv1.2",
    "tlsv1.3": "TLSv1.3",
    "sslv3": "SSLv3",
    "ssl3": "SSLv3",
}
_MAX_TEXT = 2048
_PRINCIPALS_MAX = 8192
_SOURCE_TAGS_MAX = 10_000
# Distinct user agents and routes shared as one string each; a table is cleared when full.
_SHARED_MAX = 8192
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie"})
_NOTHING: frozenset[str] = frozenset()


class Normaliser:
    """Turns parser output into Events. One per pipeline; not thread-safe (it learns)."""

    def __init__(
        self,
        *,
        resolver: ClientIpResolver,
        routes: RouteTemplater,
        masker: SecretMasker,
        max_body_bytes: int = 4096,
        min_ts: float = 946_684_800.0,
        max_future_skew_s: float = 86_400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.resolver = resolver
        self.routes = routes
        self.masker = masker
        self.max_body_bytes = max_body_bytes
        self.min_ts = min_ts
        self.max_future_skew_s = max_future_skew_s
        self._clock = clock
        self._latest_allowed = clock() + max_future_skew_s
        self._source_tags: dict[str, str] = {}
        self._principals: dict[str, str] = {}
        # Each distinct agent and route as one string: thousands of requests carry the
        # same few hundred, so buffered events hold one copy, and every later dict or
        # hash table keyed by them finds the hash cached and compares by identity.
        self._agents: dict[str, str] = {}
        self._routes: dict[str, str] = {}

    def normalise(self, raw: RawEvent, source: str, position: int) -> Event:
        # Hot path (once per request): common value types are checked inline and the
        # helpers only run for the unusual ones, which also produce the error messages.
        get = raw.get
        ts = self._timestamp(get("ts"))
        client_ip = self.resolver.resolve(get("client_ip"), get("forwarded_for"), get("forwarded"))
        value = get("method")
        method = (value if type(value) is str else _text(value, "method")).upper() or "-"
        value = get("status")
        if type(value) is not int or not 0 <= value <= 999:
            value = _int(value, "status", 0, 999)
        status: int = value
        path, query, host, scheme = _split_target(get("path"), get("query"), status)
        value = get("host")
        if value:
            host = _text(value, "host").lower()
        value = get("scheme")
        if value:
            scheme = _text(value, "scheme").lower()
        query_key = ""
        if query:
            query, query_key = self.masker.query(query)

        user, api_key, headers = self._identity(raw, query_key)

        value = get("request_id")
        request_id = value if type(value) is str else _text(value, "request_id")
        if not request_id or request_id == "-":
            request_id = f"{self._source_tag(source)}-{position}"

        declared_route = get("route")
        if type(declared_route) is str and declared_route.startswith("/"):
            route = declared_route
        elif path.startswith("/"):
            route = self.routes.template(path)
        else:
            route = path[:64]  # "*", or a target the server already rejected
        shared = self._routes.get(route)
        route = _remember(self._routes, route, route, _SHARED_MAX) if shared is None else shared

        value = get("user_agent")
        user_agent = value if type(value) is str else _text(value, "user_agent")
        shared = self._agents.get(user_agent)
        if shared is None:  # as stored: cut to _MAX_TEXT, "-" as none
            stored = user_agent[:_MAX_TEXT] if user_agent != "-" else ""
            shared = _remember(self._agents, user_agent, stored, _SHARED_MAX)
        user_agent = shared
        latency = get("latency_ms")
        request_bytes = get("request_bytes")
        response_bytes = get("response_bytes")
        tls_version = get("tls_version")
        body = get("body")
        return Event(
            request_id,
            ts,
            client_ip,
            method,
            path,
            route,
            status,
            scheme,
            host,
            query,
            latency if type(latency) is float and latency >= 0 else _float(latency, "latency_ms"),
            request_bytes
            if type(request_bytes) is int and request_bytes >= 0
            else _int(request_bytes, "request_bytes", 0, 1 << 62),
            response_bytes
            if type(response_bytes) is int and response_bytes >= 0
            else _int(response_bytes, "response_bytes", 0, 1 << 62),
            user_agent,
            user[:256] if user != "-" else "",
            api_key[:256] if api_key != "-" else "",
            _tls(tls_version) if tls_version else "",
            self._body(body) if body else "",
            headers,
            source,
            position,
        )

    def _identity(self, raw: RawEvent, query_key: str) -> tuple[str, str, dict[str, str]]:
        """(user, api_key, masked headers): who sent the request, and with which key."""
        get = raw.get
        value = get("user")
        user = value if type(value) is str else _text(value, "user")
        value = get("api_key_id")
        api_key = value if type(value) is str else _text(value, "api_key_id")
        raw_key = get("api_key")
        if not api_key and raw_key is not None and raw_key != "":
            api_key = self.masker.fingerprint(_text(raw_key, "api_key"))
        api_key = api_key or query_key

        headers_in = get("headers")
        authorization = get("authorization")
        cookie = get("cookie")
        if isinstance(headers_in, dict) and headers_in:
            # Credentials the parser lifted out are masked once, below, not twice.
            skip = _CREDENTIAL_HEADERS if authorization or cookie else _NOTHING
            headers = self.masker.headers(headers_in, skip)
        else:
            headers = {}
        if authorization and type(authorization) is str:
            if not user:
                user = self._principal(authorization)
            headers["authorization"] = self.masker.authorization(authorization)
        if cookie and type(cookie) is str:
            headers["cookie"] = self.masker.cookie(cookie)
        forwarded_for = get("forwarded_for")
        if forwarded_for and type(forwarded_for) is str:
            headers.setdefault("x-forwarded-for", forwarded_for[:_MAX_TEXT])
        return user, api_key, headers

    def _principal(self, authorization: str) -> str:
        # A session sends the same token with every request; decoding it once is enough.
        known = self._principals.get(authorization)
        if known is None:
            known = principal_from_authorization(authorization)
            _remember(self._principals, authorization, known, _PRINCIPALS_MAX)
        return known

    def _timestamp(self, value: Any) -> float:
        if value is None or value == "":
            raise ParseError("missing timestamp")
        ts = parse_ts(value)
        if ts < self.min_ts:
            raise ParseError(f"ts: {ts:.0f} is before the earliest accepted time {self.min_ts:.0f}")
        if ts > self._latest_allowed:
            # Refresh the bound lazily: the wall clock only moves this limit forward.
            self._latest_allowed = self._clock() + self.max_future_skew_s
            if ts > self._latest_allowed:
                raise ParseError(
                    f"ts: {ts:.0f} is more than {self.max_future_skew_s:.0f} s in the future"
                )
        return ts

    def _body(self, body: Any) -> str:
        text = body if isinstance(body, str) else _text(body, "body")
        if len(text) > self.max_body_bytes:
            text = text[: self.max_body_bytes]
        return self.masker.text(text)

    def _source_tag(self, source: str) -> str:
        tag = self._source_tags.get(source)
        if tag is None:
            tag = hashlib.blake2b(
                source.encode("utf-8", "surrogatepass"), digest_size=4
            ).hexdigest()
            _remember(self._source_tags, source, tag, _SOURCE_TAGS_MAX)
        return tag


def _remember(table: dict[str, str], key: str, value: str, limit: int) -> str:
    """``value`` for ``key`` from now on, in a table cleared whenever it is full."""
    if len(table) >= limit:
        table.clear()
    table[key] = value
    return value


def _split_target(path_value: Any, query_value: Any, status: int) -> tuple[str, str, str, str]:
    """(path, query, host, scheme) from a logged target: origin-form or absolute URL.

    A request the server rejected as unreadable (status >= 400, no target logged: garbage
    or a TLS handshake on a plain port) is still an event, with an empty path: such
    bursts are exactly what the malformed-request detection looks for.
    """
    if path_value is None or path_value == "":
        if status >= 400:
            return "", "", "", ""
        raise ParseError("missing path")
    if not isinstance(path_value, str):
        raise ParseError(f"path: expected text, got {type(path_value).__name__}")
    target = path_value
    host = scheme = ""
    if not target.startswith("/"):
        if target.startswith(("http://", "https://")):
            parts = urlsplit(target)
            scheme, host = parts.scheme, parts.hostname or ""
            target = parts.path or "/"
            if parts.query:
                target += "?" + parts.query
        elif target != "*" and status < 400:
            raise ParseError(f"path: not a request target {target[:60]!r}")
    path, _, query = target.partition("?")
    if query_value is not None and query_value != "":
        query = _query_text(query_value)
    return path[: _MAX_TEXT * 4], query[: _MAX_TEXT * 4], host, scheme


def _query_text(value: Any) -> str:
    if isinstance(value, str):
        return value.removeprefix("?")
    if isinstance(value, dict):  # Kong logs the query string as an object
        parts = []
        for key, item in value.items():
            if item is True:
                parts.append(str(key))
            elif isinstance(item, list):
                parts.extend(f"{key}={v}" for v in item)
            else:
                parts.append(f"{key}={item}")
        return "&".join(parts)
    raise ParseError(f"query: expected text, got {type(value).__name__}")


def _text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return "" if value == "-" else value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ParseError(f"{name}: expected text, got {type(value).__name__}")


def _int(value: Any, name: str, low: int, high: int) -> int:
    if value is None or value in ("", "-"):
        return 0
    if isinstance(value, bool):
        raise ParseError(f"{name}: expected an integer, got a boolean")
    try:
        number = int(value)
    except (TypeError, ValueError):
        shown = value if isinstance(value, int | float | str) else type(value).__name__
        raise ParseError(f"{name}: expected an integer, got {str(shown)[:40]!r}") from None
    if not low <= number <= high:
        raise ParseError(f"{name}: {number} is out of range {low}..{high}")
    return number


def _float(value: Any, name: str) -> float:
    if value is None or value in ("", "-"):
        return 0.0
    if isinstance(value, bool):
        raise ParseError(f"{name}: expected a number, got a boolean")
    try:
        number = float(value)
    except (TypeError, ValueError):
        shown = value if isinstance(value, int | float | str) else type(value).__name__
        raise ParseError(f"{name}: expected a number, got {str(shown)[:40]!r}") from None
    if math.isnan(number) or number < 0 or math.isinf(number):
        raise ParseError(f"{name}: {number!r} is not a duration")
    return number


def _tls(value: Any) -> str:
    if not isinstance(value, str) or not value or value == "-":
        return ""
    return _TLS_NAMES.get(value.strip().lower().replace(" ", ""), value[:16])
