"""Kong Gateway's log serializer JSON, as file-log, http-log, kafka-log and kin write it.

Every Kong logging plugin writes the object built by ``kong.log.serialize()``, one JSON
object per request (``http-log`` batches post a JSON array of them; a line read here is
one object)::

    {"request": {"method": "GET", "uri": "/v1/orders?page=2", "size": 182,
                 "url": "https://api.example.com:8443/v1/orders?page=2",
                 "querystring": {"page": "2"}, "headers": {"host": "api.example.com"},
                 "id": "0b1f...", "tls": {"version": "TLSv1.3", "cipher": "..."}},
     "response": {"status": 200, "size": 934, "headers": {"x-kong-request-id": "0b1f..."}},
     "latencies": {"request": 41, "kong": 3, "proxy": 38}, "client_ip": "203.0.113.7",
     "started_at": 1700000000123, "consumer": {"id": "...", "username": "billing"},
     "authenticated_entity": {"id": "<credential id>", "consumer_id": "..."},
     "route": {...}, "service": {...}, "upstream_uri": "/orders?page=2"}

Read, and where they go:

* ``started_at`` (epoch milliseconds) -> ``ts``; ``client_ip`` (the peer) -> ``client_ip``
* ``request.method``; ``request.uri``, the target the client sent with its query ->
  ``path`` (``request.url`` when ``uri`` is missing); the scheme of ``request.url`` ->
  ``scheme``; ``request.querystring`` (an object) -> ``query`` only when the target
  carries no ``?`` of its own, since the raw query is the more faithful record
* ``request.size`` -> ``request_bytes``; ``response.status`` -> ``status``;
  ``response.size`` -> ``response_bytes``; ``latencies.request`` (ms) -> ``latency_ms``
* ``request.tls.version`` -> ``tls_version``
* ``request_id``: ``request.id`` (Kong 3.5+), else the request's ``x-request-id`` or
  ``kong-request-id`` header (correlation-id plugin), else the response's
  ``x-kong-request-id`` header
* ``request.headers``: ``host``, ``user-agent``, ``x-forwarded-for``, ``forwarded``,
  ``authorization``, ``cookie`` and ``apikey`` / ``x-api-key`` (key-auth's default key
  names; logged unless ``hide_credentials`` is set) go to their keys; the whole object
  goes to ``headers`` as well, where the normaliser masks the credential headers
* ``consumer.username``, else ``consumer.custom_id``, else ``consumer.id`` -> ``user``;
  ``authenticated_entity.id``, the id of the credential that authenticated the request
  (a key-auth key, a JWT or basic-auth credential) -> ``api_key_id``

Not read: ``upstream_uri`` (what Kong sent upstream, after ``strip_path``), and
``route.paths``, which are prefixes or regexes, not route templates.

Kong logs a request header sent more than once as an array of values; a lifted header
is joined as HTTP joins repeated fields (``", "``; ``"; "`` for cookies). Kong's JSON
encoder writes string bytes as they came, so a client can make a line invalid UTF-8
with one byte in a header: such bytes become U+FFFD instead of costing the line.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from gatewatch.errors import ParseError
from ingest.parsers.base import ABSENT, RawEvent, load_lenient_json_object

# (object, field) -> RawEvent key, for fields copied as they are.
_TOP_FIELDS: tuple[tuple[str, str], ...] = (("started_at", "ts"), ("client_ip", "client_ip"))
_REQUEST_FIELDS: tuple[tuple[str, str], ...] = (("method", "method"), ("size", "request_bytes"))
_RESPONSE_FIELDS: tuple[tuple[str, str], ...] = (("status", "status"), ("size", "response_bytes"))
_LATENCY_FIELDS: tuple[tuple[str, str], ...] = (("request", "latency_ms"),)
_TLS_FIELDS: tuple[tuple[str, str], ...] = (("version", "tls_version"),)
# Request headers (lower case, as Kong logs them) -> RawEvent key, first present wins.
_HEADER_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("host", ("host",)),
    ("user_agent", ("user-agent",)),
    ("forwarded_for", ("x-forwarded-for",)),
    ("forwarded", ("forwarded",)),
    ("authorization", ("authorization",)),
    ("cookie", ("cookie",)),
    ("api_key", ("apikey", "x-api-key")),
)
_REQUEST_ID_HEADERS: tuple[str, ...] = ("x-request-id", "kong-request-id")
_CONSUMER_NAMES: tuple[str, ...] = ("username", "custom_id", "id")


class KongParser:
    """Parses Kong log serializer lines.

    >>> raw = KongParser().parse(b'{"started_at": 1700000000123, "client_ip": "203.0.113.7",'
    ...     b' "request": {"method": "GET", "uri": "/v1/orders?page=2", "size": 182},'
    ...     b' "response": {"status": 200, "size": 934}, "latencies": {"request": 41},'
    ...     b' "consumer": {"id": "8a7c", "username": "billing"}}')
    >>> raw["ts"], raw["path"], raw["status"], raw["latency_ms"], raw["user"]
    (1700000000123, '/v1/orders?page=2', 200, 41, 'billing')
    """

    name: ClassVar[str] = "kong"

    def parse(self, line: bytes) -> RawEvent:
        return self.from_object(load_lenient_json_object(line))

    def from_object(self, obj: dict[str, Any]) -> RawEvent:
        """The fields of an already decoded Kong line (see the module docstring)."""
        request = _object(obj, "request")
        response = _object(obj, "response")
        fields: dict[str, Any] = {}
        _copy(obj, _TOP_FIELDS, fields)
        _copy(request, _REQUEST_FIELDS, fields)
        _copy(response, _RESPONSE_FIELDS, fields)
        latencies = obj.get("latencies")
        if isinstance(latencies, dict):
            _copy(latencies, _LATENCY_FIELDS, fields)
        tls = request.get("tls")
        if isinstance(tls, dict):
            _copy(tls, _TLS_FIELDS, fields)
        _target(request, fields)

        headers = request.get("headers")
        if isinstance(headers, dict):
            if headers:
                fields["headers"] = headers
                _lift_headers(headers, fields)
        else:
            headers = {}
        request_id = request.get("id")
        if request_id in ABSENT:
            request_id = _request_id_header(headers, response)
        if request_id not in ABSENT:
            fields["request_id"] = request_id

        consumer = obj.get("consumer")
        if isinstance(consumer, dict):
            for name in _CONSUMER_NAMES:
                value = consumer.get(name)
                if value not in ABSENT:
                    fields["user"] = value
                    break
        entity = obj.get("authenticated_entity")
        if isinstance(entity, dict):
            value = entity.get("id")
            if value not in ABSENT:
                fields["api_key_id"] = value
        return cast("RawEvent", fields)


def _copy(
    source: dict[str, Any], pairs: tuple[tuple[str, str], ...], fields: dict[str, Any]
) -> None:
    for name, key in pairs:
        value = source.get(name)
        if value not in ABSENT:
            fields[key] = value


def _target(request: dict[str, Any], fields: dict[str, Any]) -> None:
    """``path``, ``query`` and ``scheme`` from ``request.uri``, ``url`` and ``querystring``."""
    url = request.get("url")
    target = request.get("uri")
    if target in ABSENT:
        target = url
    if target not in ABSENT:
        fields["path"] = target
        if not (isinstance(target, str) and "?" in target):
            query = request.get("querystring")
            if query:
                fields["query"] = query
    if isinstance(url, str):
        scheme, sep, _ = url.partition("://")
        if sep and scheme:
            fields["scheme"] = scheme


def _lift_headers(headers: dict[str, Any], fields: dict[str, Any]) -> None:
    for key, names in _HEADER_FIELDS:
        for header in names:
            value = headers.get(header)
            if value not in ABSENT:
                fields[key] = _joined(value, key) if type(value) is list else value
                break


def _object(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    if isinstance(value, dict):
        return value
    if value is None:
        raise ParseError(f"not a Kong log line: missing field {key!r}")
    raise ParseError(f"not a Kong log line: field {key!r} is not an object")


def _joined(values: list[Any], key: str) -> Any:
    """One value for a header Kong logged as an array (it was sent more than once)."""
    if not all(isinstance(value, str) for value in values):
        return values
    return ("; " if key == "cookie" else ", ").join(values)


def _request_id_header(headers: dict[str, Any], response: dict[str, Any]) -> Any:
    for header in _REQUEST_ID_HEADERS:
        value = headers.get(header)
        if value not in ABSENT:
            return value
    response_headers = response.get("headers")
    if isinstance(response_headers, dict):
        return response_headers.get("x-kong-request-id")
    return None
