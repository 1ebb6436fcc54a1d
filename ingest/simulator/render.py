"""Renderers: one ``SimRequest`` in, one log line out (bytes, no newline), written the
way each gateway writes it, following its documentation.

Where the client address comes from differs by deployment, and the renderers show
both kinds. JSON gateway logs (Kong, Envoy, NGINX JSON, Traefik) record the socket
peer, which for a share of traffic is one of our load balancers (10.0.0.0/8), together
with the X-Forwarded-For header: a reader must trust that range to find the client.
Text formats without an X-Forwarded-For field (NGINX and Apache combined) come from
servers that already resolved it (NGINX ``realip``, Apache ``mod_remoteip``), so they
record the client. AWS API Gateway is the edge itself and records the client. Envoy's
default text format has no address field at all: its X-Forwarded-For, which Envoy
extends with the peer address, is the only record of the client.

Real gateways mask nothing: Authorization, Cookie and X-Api-Key values appear raw
wherever the format logs request headers. Text lines never contain raw control
characters or unescaped quotes: NGINX writes ``\\xHH``, Apache and Envoy lines use
backslash escapes (``\\"``).

>>> from ingest.simulator.traffic import SimulationConfig, generate
>>> request = next(generate(SimulationConfig(seed=3, count=1)))
>>> sorted(RENDERERS) == sorted(FORMATS)
True
>>> all(RENDERERS[name](request).count(b"\\n") == 0 for name in FORMATS)
True
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus

import orjson

from ingest.simulator.endpoints import SERVICES
from ingest.simulator.request import SimRequest

Renderer = Callable[[SimRequest], bytes]

_dumps = orjson.dumps
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@lru_cache(maxsize=512)
def _second(epoch: int) -> tuple[str, str, str]:
    """RFC 3339 (no zone), CLF and HTTP-date texts of one UTC second.

    >>> _second(1710230400)
    ('2024-03-12T08:00:00', '12/Mar/2024:08:00:00 +0000', 'Tue, 12 Mar 2024 08:00:00 GMT')
    """
    t = time.gmtime(epoch)
    hms = f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    month = _MONTHS[t.tm_mon - 1]
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{hms}",
        f"{t.tm_mday:02d}/{month}/{t.tm_year:04d}:{hms} +0000",
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {month} {t.tm_year:04d} {hms} GMT",
    )


def _iso_ms(ts: float) -> str:
    """RFC 3339 UTC text with milliseconds.

    >>> _iso_ms(1710230400.0456)
    '2024-03-12T08:00:00.045Z'
    """
    second, ms = divmod(int(ts * 1000), 1000)
    return f"{_second(second)[0]}.{ms:03d}Z"


def _clf(ts: float) -> str:
    return _second(int(ts))[1]


# --- escaping for text formats -------------------------------------------------------

_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f\x7f-\U0010ffff]')
_C_ESCAPES = {0x22: '\\"', 0x5C: "\\\\", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x08: "\\b"}
_C_ESCAPES.update({0x0B: "\\v", 0x0C: "\\f"})


def nginx_escape(text: str) -> str:
    r"""``text`` as NGINX's default log escaping writes it: ``"``, ``\``, control and
    non-ASCII bytes become ``\xHH``.

    >>> nginx_escape('say "hi" café')
    'say \\x22hi\\x22 caf\\xC3\\xA9'
    """
    if _NEEDS_ESCAPE.search(text) is None:
        return text
    return "".join(
        f"\\x{byte:02X}" if byte in (0x22, 0x5C) or byte < 0x20 or byte > 0x7E else chr(byte)
        for byte in text.encode("utf-8", "surrogateescape")
    )


def backslash_escape(text: str) -> str:
    r"""``text`` as Apache escapes log items: ``\"``, ``\\``, C escapes for control
    characters, ``\xhh`` for other control and non-ASCII bytes.

    >>> backslash_escape('say "hi"\n')
    'say \\"hi\\"\\n'
    """
    if _NEEDS_ESCAPE.search(text) is None:
        return text
    return "".join(
        _C_ESCAPES.get(byte) or (f"\\x{byte:02x}" if byte < 0x20 or byte > 0x7E else chr(byte))
        for byte in text.encode("utf-8", "surrogateescape")
    )


def _dash(text: str) -> str:
    return text or "-"


# --- canonical -----------------------------------------------------------------------


def render_canonical(r: SimRequest) -> bytes:
    """Gatewatch's canonical JSON event (DESIGN.md), ``ts`` RFC 3339 with ms and ``Z``;
    ``body`` only when the request carries its text."""
    event = {
        "request_id": r.request_id,
        "ts": _iso_ms(r.ts),
        "client_ip": r.client_ip,
        "method": r.method,
        "scheme": r.scheme,
        "host": r.host,
        "path": r.path,
        "query": r.query,
        "status": r.status,
        "latency_ms": r.latency_ms,
        "request_bytes": r.request_bytes,
        "response_bytes": r.response_bytes,
        "user_agent": r.user_agent,
        "user": r.user,
        "api_key": r.api_key,
        "tls_version": r.tls_version,
        "headers": r.headers,
    }
    if r.body:
        event["body"] = r.body
    return _dumps(event)


# --- Kong ----------------------------------------------------------------------------


def _stable_id(kind: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"gatewatch-sim:{kind}:{name}"))


_KONG_WORKSPACE = _stable_id("workspace", "default")
_KONG_ROUTE_PATHS = {
    "identity": ["/api/v1/auth"],
    "accounts": ["/api/v1/users"],
    "orders": ["/api/v1/orders", "~/api/v1/users/\\d+/orders$"],
    "catalog": ["/api/v1/products"],
    "search": ["/api/v1/search"],
    "cart": ["/api/v1/cart"],
    "partner-gateway": ["/api/v1/partners"],
    "web": ["/healthz", "/robots.txt"],
}
_KONG_SERVICES: dict[str, dict[str, Any]] = {
    name: {
        "id": _stable_id("service", name),
        "name": name,
        "host": f"{name}.shop.svc.cluster.local",
        "port": 8080,
        "protocol": "http",
        "path": "/",
        "retries": 5,
        "connect_timeout": 60000,
        "read_timeout": 60000,
        "write_timeout": 60000,
        "ws_id": _KONG_WORKSPACE,
    }
    for name in SERVICES
}
_KONG_ROUTES: dict[str, dict[str, Any]] = {
    name: {
        "id": _stable_id("route", name),
        "name": f"{name}-route",
        "paths": _KONG_ROUTE_PATHS[name],
        "protocols": ["http", "https"],
        "strip_path": False,
        "preserve_host": False,
        "service": {"id": _KONG_SERVICES[name]["id"]},
        "ws_id": _KONG_WORKSPACE,
    }
    for name in SERVICES
}
_CIPHERS = {
    "TLSv1.3": "TLS_AES_256_GCM_SHA384",
    "TLSv1.2": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLSv1.1": "ECDHE-RSA-AES128-SHA",
    "TLSv1.0": "ECDHE-RSA-AES128-SHA",
}
_KONG_TLS = {
    version: {"version": version, "cipher": cipher, "client_verify": "NONE"}
    for version, cipher in _CIPHERS.items()
}
# The same for every request of a service: serialised once, spliced into each line.
_KONG_ROUTE_JSON = {name: orjson.Fragment(_dumps(route)) for name, route in _KONG_ROUTES.items()}
_KONG_SERVICE_JSON = {
    name: orjson.Fragment(_dumps(service)) for name, service in _KONG_SERVICES.items()
}
_KONG_TLS_JSON = {version: orjson.Fragment(_dumps(tls)) for version, tls in _KONG_TLS.items()}


@lru_cache(maxsize=4096)
def _querystring(query: str) -> dict[str, Any]:
    """The query as Kong logs it: decoded values, lists for repeated keys, ``true``
    for a key without ``=``.

    >>> _querystring("q=men%27s+shoes&page=2&flag")
    {'q': "men's shoes", 'page': '2', 'flag': True}
    """
    args: dict[str, Any] = {}
    for part in query.split("&"):
        if not part:
            continue
        key, equals, value = part.partition("=")
        key = unquote_plus(key)
        decoded: str | bool = unquote_plus(value) if equals else True
        if key in args:
            previous = args[key]
            args[key] = [*previous, decoded] if isinstance(previous, list) else [previous, decoded]
        else:
            args[key] = decoded
    return args


@lru_cache(maxsize=1024)
def _kong_consumer(username: str) -> dict[str, Any]:
    return {"id": _stable_id("consumer", username), "username": username, "created_at": 1700000000}


@lru_cache(maxsize=256)
def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def render_kong(r: SimRequest) -> bytes:
    """Kong's log serializer JSON (file-log, http-log and friends), one object per line.

    ``client_ip`` is the socket peer; ``consumer`` appears when Kong authenticated the
    request (partners' API keys via key-auth; user JWTs are verified upstream).
    """
    started = int(r.ts * 1000)
    uri = r.uri
    kong_id = r.request_id.replace("-", "")
    headers = {"host": r.host, "user-agent": r.user_agent, "accept": "application/json"}
    headers.update(r.headers)
    if r.request_body_bytes:
        headers["content-length"] = str(r.request_body_bytes)
    port = ":8443" if r.scheme == "https" else ":8000"
    request: dict[str, Any] = {
        "id": kong_id,
        "method": r.method,
        "uri": uri,
        "url": f"{r.scheme}://{r.host}{port}{uri}",
        "size": r.request_bytes,
        "querystring": _querystring(r.query) if r.query else {},
        "headers": headers,
    }
    if r.tls_version:
        request["tls"] = _KONG_TLS_JSON[r.tls_version]
    total = round(r.latency_ms)
    answered = r.upstream_ms >= 0
    proxy = round(r.upstream_ms) if answered else -1
    kong = total - max(proxy, 0)
    obj: dict[str, Any] = {
        "request": request,
        "upstream_uri": uri,
        "response": {
            "status": r.status,
            "size": r.response_bytes + 320,
            "headers": {
                "content-type": "application/json",
                "content-length": str(r.response_bytes),
                "date": _second(started // 1000)[2],
                "connection": "keep-alive",
                "via": "1.1 kong/3.9.1",
                "x-kong-upstream-latency": str(max(proxy, 0)),
                "x-kong-proxy-latency": str(kong),
                "x-kong-request-id": kong_id,
            },
        },
        "latencies": {"request": total, "kong": kong, "proxy": proxy},
        "tries": [],
        "client_ip": r.peer_ip,
        "started_at": started,
        "source": "upstream" if answered else "kong",
        "route": _KONG_ROUTE_JSON[r.service],
        "service": _KONG_SERVICE_JSON[r.service],
        "workspace": _KONG_WORKSPACE,
        "workspace_name": "default",
    }
    if answered:
        ip, upstream_port = _host_port(r.upstream_host)
        obj["upstream_status"] = str(r.status)
        obj["tries"] = [
            {"ip": ip, "port": upstream_port, "balancer_latency": 0, "balancer_start": started}
        ]
    if r.api_key and r.user:
        consumer = _kong_consumer(r.user)
        obj["consumer"] = consumer
        obj["authenticated_entity"] = {"id": _stable_id("credential", r.api_key)}
    return _dumps(obj)


# --- Envoy ---------------------------------------------------------------------------


def _envoy_protocol(protocol: str) -> str:
    return "HTTP/2" if protocol == "HTTP/2.0" else protocol


def _envoy_outcome(r: SimRequest) -> tuple[str, str, str]:
    """``(RESPONSE_FLAGS, UPSTREAM_SERVICE_TIME, UPSTREAM_HOST)``, ``-`` when absent."""
    if r.upstream_ms < 0:
        return "UH", "-", "-"  # no healthy upstream
    if r.status == 504:
        return "UT", "-", r.upstream_host  # upstream request timeout
    return "-", str(round(r.upstream_ms)), r.upstream_host


def _envoy_forwarded_for(r: SimRequest) -> str:
    """X-Forwarded-For after Envoy (``use_remote_address``) appended the peer."""
    chain = r.headers.get("x-forwarded-for")
    return f"{chain}, {r.peer_ip}" if chain else r.peer_ip


def render_envoy(r: SimRequest) -> bytes:
    """Envoy's default access log format (text)."""
    flags, upstream_time, upstream_host = _envoy_outcome(r)
    uri = backslash_escape(_dash(r.uri))
    return (
        f"[{_iso_ms(r.ts)}] "
        f'"{r.method} {uri} {_envoy_protocol(r.protocol)}" '
        f"{r.status} {flags} {r.request_body_bytes} {r.response_bytes} "
        f"{round(r.latency_ms)} {upstream_time} "
        f'"{backslash_escape(_envoy_forwarded_for(r))}" '
        f'"{backslash_escape(_dash(r.user_agent))}" '
        f'"{r.request_id}" "{backslash_escape(r.host)}" "{upstream_host}"'
    ).encode()


def _socket_address(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def render_envoy_json(r: SimRequest) -> bytes:
    """Envoy JSON access log (``json_format`` with the default fields, as Istio ships
    it); absent values are ``null``."""
    flags, upstream_time, upstream_host = _envoy_outcome(r)
    return _dumps(
        {
            "start_time": _iso_ms(r.ts),
            "method": r.method,
            "path": r.uri,
            "protocol": _envoy_protocol(r.protocol),
            "response_code": r.status,
            "response_flags": flags,
            "bytes_received": r.request_body_bytes,
            "bytes_sent": r.response_bytes,
            "duration": round(r.latency_ms),
            "upstream_service_time": None if upstream_time == "-" else upstream_time,
            "x_forwarded_for": _envoy_forwarded_for(r),
            "user_agent": r.user_agent or None,
            "request_id": r.request_id,
            "authority": r.host,
            "upstream_host": None if upstream_host == "-" else upstream_host,
            "downstream_remote_address": _socket_address(r.peer_ip, r.client_port),
        }
    )


# --- NGINX and Apache ----------------------------------------------------------------


def render_nginx(r: SimRequest) -> bytes:
    """NGINX ``combined``, from a server with ``realip`` resolving X-Forwarded-For."""
    uri = nginx_escape(r.uri)
    referer = nginx_escape(r.headers.get("referer", "-"))
    return (
        f"{r.client_ip} - - [{_clf(r.ts)}] "
        f'"{r.method} {uri} {r.protocol}" {r.status} {r.response_bytes} '
        f'"{referer}" "{nginx_escape(_dash(r.user_agent))}"'
    ).encode()


def render_nginx_json(r: SimRequest) -> bytes:
    """NGINX ``log_format ... escape=json`` with keys named after the variables; every
    value is a string, as NGINX writes ``"$var"``, and empty when unset."""
    headers = r.headers
    get = headers.get
    second, ms = divmod(int(r.ts * 1000), 1000)
    return _dumps(
        {
            "time_iso8601": f"{_second(second)[0]}+00:00",
            "msec": f"{second}.{ms:03d}",
            "remote_addr": r.peer_ip,
            "remote_user": "",
            "request_method": r.method,
            "request_uri": r.uri,
            "status": str(r.status),
            "body_bytes_sent": str(r.response_bytes),
            "request_length": str(r.request_bytes),
            "request_time": f"{r.latency_ms / 1000:.3f}",
            "http_user_agent": r.user_agent,
            "http_referer": get("referer", ""),
            "http_x_forwarded_for": get("x-forwarded-for", ""),
            "http_authorization": get("authorization", ""),
            "http_x_api_key": get("x-api-key", ""),
            "http_cookie": get("cookie", ""),
            "request_id": r.request_id.replace("-", ""),
            "host": r.host,
            "scheme": r.scheme,
            "ssl_protocol": r.tls_version,
        }
    )


def render_apache(r: SimRequest) -> bytes:
    """Apache ``combined`` (``%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"``),
    with ``mod_remoteip`` resolving X-Forwarded-For; ``%b`` is ``-`` for no body."""
    uri = backslash_escape(r.uri)
    referer = backslash_escape(r.headers.get("referer", "-"))
    return (
        f"{r.client_ip} - - [{_clf(r.ts)}] "
        f'"{r.method} {uri} {r.protocol}" {r.status} {r.response_bytes or "-"} '
        f'"{referer}" "{backslash_escape(_dash(r.user_agent))}"'
    ).encode()


# --- Traefik -------------------------------------------------------------------------

_TRAEFIK_TLS = {"TLSv1.3": "1.3", "TLSv1.2": "1.2", "TLSv1.1": "1.1", "TLSv1.0": "1.0"}
_TRAEFIK_CIPHERS = {
    "TLSv1.3": "TLS_AES_128_GCM_SHA256",
    "TLSv1.2": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLSv1.1": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLSv1.0": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
}


@lru_cache(maxsize=64)
def _go_header(name: str) -> str:
    """Go's canonical header key: ``x-api-key`` -> ``X-Api-Key``."""
    return "-".join(part.capitalize() for part in name.split("-"))


def _rfc3339_nano(ts: float) -> str:
    """Go's ``time.RFC3339Nano``: trailing zeros of the fraction trimmed.

    >>> _rfc3339_nano(1710230400.25)
    '2024-03-12T08:00:00.25Z'
    """
    second, micro = divmod(int(ts * 1_000_000), 1_000_000)
    fraction = f".{micro:06d}".rstrip("0").rstrip(".")
    return f"{_second(second)[0]}{fraction}Z"


def render_traefik(r: SimRequest) -> bytes:
    """Traefik's JSON access log, with request headers kept (``fields.headers``)."""
    start = _rfc3339_nano(r.ts)
    duration = round(r.latency_ms * 1_000_000)
    origin = round(r.upstream_ms * 1_000_000) if r.upstream_ms >= 0 else 0
    obj: dict[str, Any] = {
        "ClientAddr": _socket_address(r.peer_ip, r.client_port),
        "ClientHost": r.peer_ip,
        "ClientPort": str(r.client_port),
        "ClientUsername": "-",
        "DownstreamContentSize": r.response_bytes,
        "DownstreamStatus": r.status,
        "Duration": duration,
        "OriginContentSize": r.response_bytes if origin else 0,
        "OriginDuration": origin,
        "OriginStatus": r.status if origin else 0,
        "Overhead": duration - origin,
        "RequestAddr": r.host,
        "RequestContentSize": r.request_body_bytes,
        "RequestHost": r.host,
        "RequestMethod": r.method,
        "RequestPath": r.uri,
        "RequestPort": "-",
        "RequestProtocol": r.protocol,
        "RequestScheme": r.scheme,
        "RetryAttempts": 0,
        "RouterName": f"websecure-{r.service}@file" if r.tls_version else f"web-{r.service}@file",
        "ServiceAddr": r.upstream_host,
        "ServiceName": f"{r.service}@file",
        "ServiceURL": f"http://{r.upstream_host}",
        "StartLocal": start,
        "StartUTC": start,
        "entryPointName": "websecure" if r.tls_version else "web",
        "level": "info",
        "msg": "",
        "request_User-Agent": r.user_agent,
        "time": f"{_second(int(r.ts + r.latency_ms / 1000))[0]}Z",
    }
    if r.tls_version:
        obj["TLSVersion"] = _TRAEFIK_TLS[r.tls_version]
        obj["TLSCipher"] = _TRAEFIK_CIPHERS[r.tls_version]
    for name, value in r.headers.items():
        obj[f"request_{_go_header(name)}"] = value
    return _dumps(obj)


# --- AWS API Gateway -----------------------------------------------------------------


def render_aws_apigw(r: SimRequest) -> bytes:
    """AWS API Gateway HTTP API access log (JSON, every ``$context`` value a string).

    ``requestId`` has API Gateway's 16-character shape; ``path`` has no query, as
    ``$context.path`` has none.
    """
    return _dumps(
        {
            "requestId": _aws_request_id(r.request_id),
            "ip": r.client_ip,
            "requestTime": _clf(r.ts),
            "requestTimeEpoch": str(int(r.ts * 1000)),
            "httpMethod": r.method,
            "routeKey": f"{r.method} {r.route}",
            "path": r.path,
            "status": str(r.status),
            "protocol": r.protocol,
            "responseLength": str(r.response_bytes),
            "integrationLatency": str(round(r.upstream_ms)) if r.upstream_ms >= 0 else "-",
            "responseLatency": str(round(r.latency_ms)),
            "userAgent": _dash(r.user_agent),
            "domainName": r.host,
        }
    )


def _aws_request_id(request_id: str) -> str:
    """16 characters of base64 from the request's UUID, like ``GQIVriFLIAMEMsA=``."""
    return base64.b64encode(bytes.fromhex(request_id.replace("-", "")[:22])).decode()


RENDERERS: dict[str, Renderer] = {
    "canonical": render_canonical,
    "kong": render_kong,
    "envoy": render_envoy,
    "envoy-json": render_envoy_json,
    "nginx": render_nginx,
    "nginx-json": render_nginx_json,
    "apache": render_apache,
    "traefik": render_traefik,
    "aws-apigw": render_aws_apigw,
}
"""Every output format of ``gatewatch simulate``, by name."""

FORMATS: tuple[str, ...] = tuple(RENDERERS)

INGEST_FORMAT: dict[str, str] = {
    "canonical": "canonical",
    "kong": "kong",
    "envoy": "envoy",
    "envoy-json": "envoy",
    "nginx": "nginx",
    "nginx-json": "nginx",
    "apache": "apache",
    "traefik": "traefik",
    "aws-apigw": "aws-apigw",
}
"""The ``gatewatch ingest --format`` that reads each output format."""
