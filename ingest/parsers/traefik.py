"""Traefik v2/v3 access logs in JSON (``accessLog.format: json``).

One flat JSON object per request; request headers appear as ``request_<Name>`` keys
(Go's canonical header case) when ``accessLog.fields.headers`` keeps them::

    {"ClientAddr": "198.51.100.4:52144", "ClientHost": "198.51.100.4",
     "ClientUsername": "-", "DownstreamStatus": 200, "DownstreamContentSize": 512,
     "Duration": 4123456, "RequestMethod": "GET", "RequestPath": "/v1/items?page=2",
     "RequestHost": "api.example.com", "RequestScheme": "https",
     "RequestContentSize": 0, "StartUTC": "2023-11-14T22:13:20.123456789Z",
     "TLSVersion": "1.3", "RouterName": "api@file", "request_User-Agent": "curl/8.4.0"}

Read, and where they go (the first present of several wins):

* ``ts``: ``StartUTC``, ``StartLocal``, else ``time`` (when the line was written, to
  the second)
* ``client_ip``: ``ClientAddr``, the TCP peer with its port (else ``ClientHost``)
* ``forwarded_for``: the ``request_X-Forwarded-For`` header, else ``ClientHost`` when it
  is not the peer: Traefik puts the X-Forwarded-For header there when one came in
* ``user``: ``ClientUsername`` (basic auth); ``method``: ``RequestMethod``;
  ``path``: ``RequestPath`` (with its query); ``host``: ``RequestHost``, else
  ``RequestAddr``; ``scheme``: ``RequestScheme``; ``tls_version``: ``TLSVersion``
* ``status``: ``DownstreamStatus``, else ``OriginStatus``; ``response_bytes``:
  ``DownstreamContentSize``, else ``OriginContentSize``; ``request_bytes``:
  ``RequestContentSize``
* ``latency_ms``: ``Duration``, logged in nanoseconds and converted (the one unit
  change: ``latency_ms`` is defined in milliseconds)
* headers: ``request_User-Agent``, ``request_Authorization``, ``request_Cookie``,
  ``request_X-Api-Key`` / ``request_Apikey``, ``request_Forwarded`` and
  ``request_X-Request-Id`` -> ``user_agent``, ``authorization``, ``cookie``,
  ``api_key``, ``forwarded``, ``request_id``; every ``request_*`` header also goes to
  ``headers`` (the normaliser masks credential headers there)

A header kept with ``redact`` is logged as ``REDACTED``: that is no value, and is left
out like ``-`` (one shared "REDACTED" key or token would merge every caller into one).
``RouterName`` is a router name, not a route template, and is not read.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from gatewatch.errors import ParseError
from ingest.parsers.base import ABSENT, RawEvent, load_json_object, pick_first

_REDACTED = "REDACTED"
_HEADER_PREFIX = "request_"
_PREFIX_LENGTH = len(_HEADER_PREFIX)

# Traefik key -> RawEvent key, for the keys read first (fallbacks come after).
_FIELDS: dict[str, str] = {
    "StartUTC": "ts",
    "ClientAddr": "client_ip",
    "ClientUsername": "user",
    "RequestMethod": "method",
    "RequestPath": "path",
    "RequestHost": "host",
    "RequestScheme": "scheme",
    "DownstreamStatus": "status",
    "RequestContentSize": "request_bytes",
    "DownstreamContentSize": "response_bytes",
    "TLSVersion": "tls_version",
}
# RawEvent key -> Traefik keys read only when the first choice is missing, in order.
_FALLBACKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ts", ("StartLocal", "time")),
    ("status", ("OriginStatus",)),
    ("host", ("RequestAddr",)),
    ("response_bytes", ("OriginContentSize",)),
)
# Logged request header (Go's canonical case) -> RawEvent key.
_HEADER_FIELDS: dict[str, str] = {
    "User-Agent": "user_agent",
    "X-Forwarded-For": "forwarded_for",
    "Forwarded": "forwarded",
    "Authorization": "authorization",
    "Cookie": "cookie",
    "X-Api-Key": "api_key",
    "X-Request-Id": "request_id",
}


class TraefikParser:
    """Parses Traefik JSON access log lines.

    >>> raw = TraefikParser().parse(b'{"ClientAddr": "198.51.100.4:52144",'
    ...     b' "ClientHost": "198.51.100.4", "DownstreamStatus": 404, "Duration": 1500000,'
    ...     b' "RequestMethod": "GET", "RequestPath": "/wp-login.php",'
    ...     b' "StartUTC": "2023-11-14T22:13:20.5Z"}')
    >>> raw["client_ip"], raw["status"], raw["latency_ms"], "forwarded_for" in raw
    ('198.51.100.4:52144', 404, 1.5, False)
    """

    name: ClassVar[str] = "traefik"

    def parse(self, line: bytes) -> RawEvent:
        return self.from_object(load_json_object(line))

    def from_object(self, obj: dict[str, Any]) -> RawEvent:
        """The fields of an already decoded Traefik line (see the module docstring)."""
        fields: dict[str, Any] = {}
        headers: dict[str, Any] | None = None
        field_of = _FIELDS.get
        # One pass over the line: a Traefik object has 25-45 keys, and header keys can
        # only be found by their prefix.
        for name, value in obj.items():
            key = field_of(name)
            if key is not None:
                if value not in ABSENT:
                    fields[key] = value
            elif name.startswith(_HEADER_PREFIX) and value != _REDACTED:
                header = name[_PREFIX_LENGTH:]
                if headers is None:
                    headers = fields["headers"] = {}
                headers[header] = value
                key = _HEADER_FIELDS.get(header)
                if key is not None and value not in ABSENT:
                    fields[key] = value

        pick_first(obj, _FALLBACKS, fields)
        get = obj.get
        if "api_key" not in fields and headers is not None:
            value = headers.get("Apikey")
            if value not in ABSENT:
                fields["api_key"] = value

        client_host = get("ClientHost")
        if client_host not in ABSENT:
            peer = fields.get("client_ip")
            if peer is None:
                fields["client_ip"] = client_host
            elif (
                "forwarded_for" not in fields
                and client_host != peer
                and client_host != _host_of(peer)
            ):
                fields["forwarded_for"] = client_host
        if "client_ip" not in fields and "status" not in fields and "path" not in fields:
            raise ParseError(
                "not a Traefik access log: none of DownstreamStatus, RequestPath, ClientAddr"
            )

        duration = get("Duration")
        if duration not in ABSENT:
            fields["latency_ms"] = _milliseconds(duration)
        return cast("RawEvent", fields)


def _host_of(address: Any) -> Any:
    """The host of ``host:port`` or ``[v6]:port``, as Traefik splits ClientAddr."""
    if not isinstance(address, str):
        return address
    host, sep, _port = address.rpartition(":")
    if not sep:
        return address
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _milliseconds(nanoseconds: Any) -> float:
    kind = type(nanoseconds)
    if kind is int or kind is float:
        return float(nanoseconds / 1e6)
    if kind is str and nanoseconds.isdigit():
        return int(nanoseconds) / 1e6
    shown = nanoseconds if kind is str else kind.__name__
    raise ParseError(f"Duration: expected nanoseconds, got {str(shown)[:40]!r}")
