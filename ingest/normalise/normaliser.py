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

    def normalise(self, raw: RawEvent, source: str, position: int) -> Event:
        get = raw.get
        ts = self._timestamp(get("ts"))
        client_ip = self.resolver.resolve(get("client_ip"), get("forwarded_for"), get("forwarded"))
        method = _text(get("method"), "method").upper() or "-"
        path, query, host, scheme = _split_target(get("path"), get("query"))
        host = _text(get("host"), "host").lower() or host
        scheme = _text(get("scheme"), "scheme").lower() or scheme
        query, query_key = self.masker.query(query)

        user = _text(get("user"), "user")
        api_key = _text(get("api_key_id"), "api_key_id")
        raw_key = get("api_key")
        if not api_key and raw_key is not None and raw_key != "":
            api_key = self.masker.fingerprint(_text(raw_key, "api_key"))
        api_key = api_key or query_key

        headers_in = get("headers")
        headers = self.masker.headers(headers_in) if isinstance(headers_in, dict) else {}
        authorization = get("authorization")
        if isinstance(authorization, str) and authorization:
            if not user:
                user = principal_from_authorization(authorization)
            headers["authorization"] = self.masker.authorization(authorization)
        cookie = get("cookie")
        if isinstance(cookie, str) and cookie:
            headers["cookie"] = self.masker.cookie(cookie)
        forwarded_for = get("forwarded_for")
        if isinstance(forwarded_for, str) and forwarded_for:
            headers.setdefault("x-forwarded-for", forwarded_for[:_MAX_TEXT])

        request_id = _text(get("request_id"), "request_id")
        if not request_id:
            request_id = f"{self._source_tag(source)}-{position}"

        declared_route = get("route")
        if isinstance(declared_route, str) and declared_route.startswith("/"):
            route = declared_route
        else:
            route = self.routes.template(path)

        body = get("body")
        return Event(
            request_id=request_id,
            ts=ts,
            client_ip=client_ip,
            method=method,
            path=path,
            route=route,
            status=_int(get("status"), "status", 0, 999),
            scheme=scheme,
            host=host,
            query=query,
            latency_ms=_float(get("latency_ms"), "latency_ms"),
            request_bytes=_int(get("request_bytes"), "request_bytes", 0, 1 << 62),
            response_bytes=_int(get("response_bytes"), "response_bytes", 0, 1 << 62),
            user_agent=_text(get("user_agent"), "user_agent")[:_MAX_TEXT],
            user=user[:256],
            api_key=api_key[:256],
            tls_version=_tls(get("tls_version")),
            body=self._body(body) if body else "",
            headers=headers,
            source=source,
            position=position,
        )

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
            if len(self._source_tags) > 10_000:
                self._source_tags.clear()
            self._source_tags[source] = tag
        return tag


def _split_target(path_value: Any, query_value: Any) -> tuple[str, str, str, str]:
    """(path, query, host, scheme) from a logged target: origin-form or absolute URL."""
    if path_value is None or path_value == "":
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
        elif target != "*":
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
