"""NGINX access logs: the ``combined`` text format, and JSON from ``escape=json``.

Text lines are NGINX ``combined`` (optionally followed by ``"$http_x_forwarded_for"``,
as in the stock ``main`` format), read by ``ingest.parsers.clf``.

JSON lines come from a ``log_format NAME escape=json '{...}'`` whose keys are named
after the NGINX variables they hold, with or without the ``$`` (a ``$status`` or
``$remote_addr`` key says the object's keys carry it)::

    {"time_iso8601": "2023-11-14T22:13:20+00:00", "remote_addr": "198.51.100.23",
     "request": "GET /v1/items?page=2 HTTP/1.1", "status": "200", "request_time": "0.012"}

Recognised keys, and where they go (the first present of several wins):

* ``ts``: ``msec`` (epoch seconds with milliseconds), ``time_iso8601``, ``time_local``
* ``client_ip``: ``remote_addr``; ``forwarded_for``: ``http_x_forwarded_for``;
  ``forwarded``: ``http_forwarded``; ``user``: ``remote_user``
* ``method``: ``request_method``, else the method of ``request``
* ``path``: ``request_uri`` (the original target, with its query), else the target of
  ``request``, else ``uri`` (decoded and possibly rewritten) with ``args`` or
  ``query_string`` as ``query``
* ``status``; ``response_bytes``: ``body_bytes_sent``, ``bytes_sent``;
  ``request_bytes``: ``request_length``; ``latency_ms``: ``request_time`` (seconds,
  converted: the one unit change, because ``latency_ms`` is defined in milliseconds)
* ``request_id``, ``scheme``; ``host``: ``host``, ``http_host``;
  ``tls_version``: ``ssl_protocol``; ``user_agent``: ``http_user_agent``
* credentials: ``http_authorization``, ``http_cookie``, ``http_x_api_key`` or
  ``http_apikey`` -> ``authorization``, ``cookie``, ``api_key``
* ``body``: ``request_body``; ``headers``: ``http_referer`` -> ``referer``,
  ``content_type`` -> ``content-type``

Other keys are ignored. Values stay as logged (quoted numbers stay strings).
``escape=json`` escapes quotes, backslashes and control characters but writes bytes
>= 0x80 unchanged, so a client can put bytes that are not UTF-8 into a logged header:
such bytes become U+FFFD instead of costing the whole line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, cast

from gatewatch.errors import ParseError
from ingest.parsers.base import (
    RawEvent,
    absent,
    load_lenient_json_object,
    pick_first,
)
from ingest.parsers.clf import parse_combined, split_request_line

# NGINX variable -> RawEvent key, where one variable is the only source.
_SINGLE: tuple[tuple[str, str], ...] = (
    ("remote_addr", "client_ip"),
    ("http_x_forwarded_for", "forwarded_for"),
    ("http_forwarded", "forwarded"),
    ("remote_user", "user"),
    ("status", "status"),
    ("request_length", "request_bytes"),
    ("request_id", "request_id"),
    ("scheme", "scheme"),
    ("ssl_protocol", "tls_version"),
    ("http_user_agent", "user_agent"),
    ("http_authorization", "authorization"),
    ("http_cookie", "cookie"),
    ("request_body", "body"),
)
# RawEvent key -> NGINX variables that may hold it, most precise first.
_FIRST_OF: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ts", ("msec", "time_iso8601", "time_local")),
    ("response_bytes", ("body_bytes_sent", "bytes_sent")),
    ("host", ("host", "http_host")),
    ("api_key", ("http_x_api_key", "http_apikey")),
)
_HEADERS: tuple[tuple[str, str], ...] = (
    ("http_referer", "referer"),
    ("content_type", "content-type"),
)
# Keys that mark an object as NGINX's (used by the auto parser as well).
MARKER_KEYS: frozenset[str] = frozenset(
    ("remote_addr", "time_iso8601", "time_local", "request_uri", "body_bytes_sent")
)


class NginxParser:
    """Parses NGINX ``combined`` text lines and ``escape=json`` JSON lines.

    >>> parser = NginxParser()
    >>> raw = parser.parse(b'{"msec": "1700000000.125", "remote_addr": "198.51.100.23",'
    ...     b' "request": "GET /v1/items HTTP/1.1", "status": 200, "request_time": "0.012"}')
    >>> raw["ts"], raw["method"], raw["path"], raw["status"], raw["latency_ms"]
    ('1700000000.125', 'GET', '/v1/items', 200, 12.0)
    >>> parser.parse(b'198.51.100.23 - - [14/Nov/2023:22:13:20 +0000] "GET / HTTP/1.1"'
    ...     b' 304 0 "-" "curl/8.4.0"')["ts"]
    '14/Nov/2023:22:13:20 +0000'
    """

    name: ClassVar[str] = "nginx"

    def parse(self, line: bytes) -> RawEvent:
        first = line[:1]
        if first == b"{":
            return self.from_object(load_lenient_json_object(line))
        if first in (b" ", b"\t"):
            return self.parse(line.lstrip())
        return parse_combined(line)

    def from_object(self, obj: dict[str, Any]) -> RawEvent:
        """The fields of an already decoded JSON line (see the module docstring)."""
        if "$status" in obj or "$remote_addr" in obj:
            obj = {key.removeprefix("$"): value for key, value in obj.items()}
        get = obj.get
        fields: dict[str, Any] = {}
        for name, key in _SINGLE:
            value = get(name)
            if value is not None and value not in ("", "-"):
                fields[key] = value
        pick_first(obj, _FIRST_OF, fields)

        method = get("request_method")
        path = get("request_uri")
        if method is None or method in ("", "-") or path is None or path in ("", "-"):
            method, path, query = _request_target(get, method, path)
            if query is not None:
                fields["query"] = query
        if method is not None:
            fields["method"] = method
        if path is not None:
            fields["path"] = path

        request_time = get("request_time")
        if request_time is not None and request_time not in ("", "-"):
            fields["latency_ms"] = _milliseconds(request_time)

        for name, header in _HEADERS:
            value = get(name)
            if value is not None and value not in ("", "-"):
                fields.setdefault("headers", {})[header] = value
        return cast("RawEvent", fields)


def _request_target(get: Callable[[str], Any], method: Any, path: Any) -> tuple[Any, Any, Any]:
    """``(method, path, query)`` when ``request_method`` or ``request_uri`` is not logged.

    The request line fills the gaps; failing that the path is ``$uri``, which has no
    query, so ``$args`` (or ``$query_string``) is the query. ``None`` means absent.
    """
    method = None if absent(method) else method
    path = None if absent(path) else path
    request = get("request")
    target = split_request_line(request) if isinstance(request, str) else None
    if target is not None:
        method = method or target[0]
        path = path or target[1]
    query = None
    if path is None:
        path = None if absent(uri := get("uri")) else uri
        query = get("args")
        if absent(query):
            query = get("query_string")
        if path is None or absent(query):
            query = None
    return method, path, query


def _milliseconds(seconds: Any) -> float:
    if isinstance(seconds, bool):
        raise ParseError("request_time: expected seconds, got a boolean")
    try:
        return float(seconds) * 1000.0
    except (TypeError, ValueError):
        shown = seconds if isinstance(seconds, str | int | float) else type(seconds).__name__
        raise ParseError(f"request_time: expected seconds, got {str(shown)[:40]!r}") from None
