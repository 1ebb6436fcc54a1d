from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from gatewatch.errors import ParseError
from ingest.parsers.nginx import NginxParser
from tests.ingest.parsers.fields import assert_fields

FORMATS = Path(__file__).parents[2] / "fixtures" / "formats"
COMBINED_LINES = (FORMATS / "nginx" / "combined.log").read_bytes().splitlines()
JSON_LINES = (FORMATS / "nginx" / "json.log").read_bytes().splitlines()

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/122.0.0.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0"


def t(second: int, zone: str = "+0000", hour: int = 9) -> str:
    return f"12/Mar/2024:{hour:02d}:15:{second:02d} {zone}"


# One entry per line of nginx/combined.log, in order.
COMBINED_EXPECTED: list[dict[str, Any]] = [
    {
        "ts": t(2),
        "client_ip": "203.0.113.42",
        "method": "GET",
        "path": "/api/v2/orders?status=open&page=3",
        "status": "200",
        "response_bytes": "4821",
        "headers": {"referer": "https://shop.example.com/account/orders"},
        "user_agent": CHROME,
    },
    {
        "ts": t(3),
        "client_ip": "198.51.100.9",
        "user": "svc-reporting",
        "method": "POST",
        "path": "/api/v2/reports/export",
        "status": "202",
        "response_bytes": "61",
        "user_agent": "python-requests/2.31.0",
    },
    {
        "ts": t(4),
        "client_ip": "2001:db8:85a3::8a2e:370:7334",
        "method": "GET",
        "path": "/api/v2/users/1043/avatar",
        "status": "404",
        "response_bytes": "0",
        "user_agent": "okhttp/4.12.0",
    },
    {  # the stock "main" format: combined + "$http_x_forwarded_for"
        "ts": t(5),
        "client_ip": "10.0.4.12",
        "forwarded_for": "192.0.2.77, 10.0.4.1",
        "method": "POST",
        "path": "/api/v2/auth/login",
        "status": "401",
        "response_bytes": "38",
        "user_agent": FIREFOX,
    },
    {  # connection closed before a request: "" request line
        "ts": t(6),
        "client_ip": "192.0.2.201",
        "status": "400",
        "response_bytes": "0",
    },
    {  # a TLS ClientHello sent to a plain-HTTP port
        "ts": t(7),
        "client_ip": "192.0.2.202",
        "status": "400",
        "response_bytes": "157",
    },
    {  # NGINX escapes a quote as \x22
        "ts": t(8),
        "client_ip": "198.51.100.23",
        "method": "GET",
        "path": '/api/v2/search?q="%3E%3Csvg/onload=alert(1)%3E',
        "status": "400",
        "response_bytes": "0",
        "user_agent": 'curl/8.6.0 "probe"',
    },
    {  # a Basic-auth user name with spaces
        "ts": t(9),
        "client_ip": "203.0.113.66",
        "user": "admin' OR '1'='1",
        "method": "GET",
        "path": "/admin/",
        "status": "401",
        "response_bytes": "179",
        "user_agent": "Mozilla/5.0",
    },
    {  # "-" forwarded-for, then request and upstream times (ignored)
        "ts": t(10),
        "client_ip": "192.0.2.14",
        "method": "PUT",
        "path": "/api/v2/carts/88a1",
        "status": "204",
        "response_bytes": "0",
        "user_agent": "Go-http-client/1.1",
    },
    {  # "$host $remote_addr - ..."
        "ts": t(11),
        "host": "api.example.com",
        "client_ip": "192.0.2.15",
        "method": "DELETE",
        "path": "/api/v2/sessions/current",
        "status": "204",
        "response_bytes": "0",
        "user_agent": "ExampleApp/5.2 (iOS 17.3)",
    },
    {  # bytes >= 0x80 are escaped as \xXX
        "ts": t(12),
        "client_ip": "198.51.100.4",
        "method": "GET",
        "path": "/api/v2/catalog?lang=ru",
        "status": "200",
        "response_bytes": "1311",
        "user_agent": "Клиент/1.0",
    },
    {  # a proxy probe: the target is kept as logged, the normaliser judges it
        "ts": t(13),
        "client_ip": "192.0.2.99",
        "method": "CONNECT",
        "path": "www.example.org:443",
        "status": "400",
        "response_bytes": "157",
    },
    {  # HTTP/0.9 style request line, local time zone kept as logged
        "ts": t(14, "-0500", hour=4),
        "client_ip": "192.0.2.98",
        "method": "GET",
        "path": "/",
        "status": "400",
        "response_bytes": "157",
    },
]

# One entry per line of nginx/json.log, in order.
JSON_EXPECTED: list[dict[str, Any]] = [
    {  # msec wins over time_iso8601; request_uri and request_method over $request
        "ts": "1710234961.204",
        "client_ip": "203.0.113.42",
        "method": "GET",
        "path": "/api/v2/orders/5512?expand=items",
        "status": "200",
        "response_bytes": "2210",
        "request_bytes": "412",
        "latency_ms": 37.0,
        "user_agent": "ExampleApp/5.2 (Android 14)",
        "request_id": "7f3c2a9be0d14c55a1f0e6b2c9d8a731",
        "host": "api.example.com",
        "scheme": "https",
        "tls_version": "TLSv1.3",
        "authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1LTEwNDMifQ.c2lnbmF0dXJl",
    },
    {  # keys written with "$", numbers unquoted
        "ts": "12/Mar/2024:09:16:02 +0000",
        "client_ip": "10.0.4.12",
        "forwarded_for": "192.0.2.77, 10.0.4.1",
        "method": "POST",
        "path": "/api/v2/auth/login",
        "status": 401,
        "response_bytes": 38,
        "latency_ms": 125.0,
        "user_agent": FIREFOX,
        "cookie": "session=4b1f0c9e2d; theme=dark",
    },
    {  # $uri has no query: $args becomes the query
        "ts": "2024-03-12T10:16:03+01:00",
        "client_ip": "198.51.100.9",
        "method": "GET",
        "path": "/api/v2/products",
        "query": "category=shoes&sort=price",
        "status": "200",
        "response_bytes": "15877",
        "host": "shop.example.com",
        "api_key": "ak_live_51HxQ2eZvKYlo2C0a9",
        "headers": {"referer": "https://shop.example.com/"},
    },
    {
        "ts": "1710234964.950",
        "client_ip": "2001:db8::44",
        "method": "POST",
        "path": "/api/v2/graphql",
        "status": "200",
        "body": '{"query":"{ viewer { id } }"}',
        "headers": {"content-type": "application/json"},
        "user_agent": 'Apollo/3.9 "beta" café',
        "latency_ms": 5.0,
        "api_key": "k-93f1",
    },
    {  # no request line at all
        "ts": "2024-03-12T09:16:05+00:00",
        "client_ip": "192.0.2.201",
        "status": "400",
        "response_bytes": "0",
        "latency_ms": 0.0,
    },
    {  # request_uri (the original target) wins over the path in $request
        "ts": "2024-03-12T09:16:06+00:00",
        "client_ip": "10.0.4.13",
        "forwarded": "for=192.0.2.60;proto=https",
        "user": "monitor",
        "method": "GET",
        "path": "/healthz",
        "status": "200",
    },
]


def test_fixture_tables_cover_every_line() -> None:
    assert len(COMBINED_LINES) == len(COMBINED_EXPECTED)
    assert len(JSON_LINES) == len(JSON_EXPECTED)


@pytest.mark.parametrize(
    ("line", "expected"),
    list(zip(COMBINED_LINES, COMBINED_EXPECTED, strict=True)),
    ids=[f"combined.log:{n}" for n in range(1, len(COMBINED_LINES) + 1)],
)
def test_combined_lines(line: bytes, expected: dict[str, Any]) -> None:
    assert_fields(NginxParser().parse(line), expected)


@pytest.mark.parametrize(
    ("line", "expected"),
    list(zip(JSON_LINES, JSON_EXPECTED, strict=True)),
    ids=[f"json.log:{n}" for n in range(1, len(JSON_LINES) + 1)],
)
def test_json_lines(line: bytes, expected: dict[str, Any]) -> None:
    parser = NginxParser()
    assert_fields(parser.parse(line), expected)
    assert parser.from_object(orjson.loads(line)) == parser.parse(line)


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            {"remote_addr": "192.0.2.1", "request": "GET /a?b=1 HTTP/1.1", "status": "200"},
            {"client_ip": "192.0.2.1", "method": "GET", "path": "/a?b=1", "status": "200"},
            id="request-line-only",
        ),
        pytest.param(
            {"remote_addr": "192.0.2.1", "request": "\u0016\u0003\u0001", "status": "400"},
            {"client_ip": "192.0.2.1", "status": "400"},
            id="garbage-request-line",
        ),
        pytest.param(
            {"remote_addr": "192.0.2.1", "uri": "/a", "query_string": "x=1", "status": 200},
            {"client_ip": "192.0.2.1", "path": "/a", "query": "x=1", "status": 200},
            id="uri-with-query-string",
        ),
        pytest.param(
            {"remote_addr": "192.0.2.1", "args": "x=1", "status": 200},
            {"client_ip": "192.0.2.1", "status": 200},
            id="args-without-a-path-dropped",
        ),
        pytest.param(
            {"remote_addr": "192.0.2.1", "request_method": "PATCH", "request": "GET /r HTTP/1.1"},
            {"client_ip": "192.0.2.1", "method": "PATCH", "path": "/r"},
            id="request-method-wins",
        ),
        pytest.param(
            {"time_local": "12/Mar/2024:09:16:02 +0000", "time_iso8601": "2024-03-12T09:16:02Z"},
            {"ts": "2024-03-12T09:16:02Z"},
            id="iso-time-before-local-time",
        ),
        pytest.param(
            {"host": "", "http_host": "api.example.com:8443", "bytes_sent": 100},
            {"host": "api.example.com:8443", "response_bytes": 100},
            id="fallbacks-for-empty-values",
        ),
        pytest.param(
            {"remote_addr": "-", "remote_user": "-", "status": "-", "request_time": "-"},
            {},
            id="placeholders-are-absent",
        ),
        pytest.param(
            {"remote_addr": None, "http_user_agent": None, "http_referer": None},
            {},
            id="nulls-are-absent",
        ),
        pytest.param(
            {"$remote_addr": "192.0.2.1", "$msec": 1710234961.204},
            {"client_ip": "192.0.2.1", "ts": 1710234961.204},
            id="dollar-keys",
        ),
    ],
)
def test_from_object(obj: dict[str, Any], expected: dict[str, Any]) -> None:
    assert_fields(NginxParser().from_object(obj), expected)


def test_json_bytes_not_utf8_are_replaced_not_fatal() -> None:
    # escape=json writes bytes >= 0x80 unchanged: a client controls them.
    line = b'{"remote_addr": "192.0.2.1", "status": "200", "http_user_agent": "evil\xff\xfe"}'
    raw = NginxParser().parse(line)
    assert raw["user_agent"] == "evil\ufffd\ufffd"
    assert raw["client_ip"] == "192.0.2.1"


def test_leading_whitespace_is_tolerated() -> None:
    parser = NginxParser()
    assert parser.parse(b'  {"remote_addr": "192.0.2.1"}') == {"client_ip": "192.0.2.1"}
    assert parser.parse(b"\t" + COMBINED_LINES[1]) == parser.parse(COMBINED_LINES[1])


@pytest.mark.parametrize(
    ("seconds", "ms"),
    [("0.001", 1.0), ("1.250", 1250.0), (2, 2000.0), (0.5, 500.0)],
)
def test_request_time_seconds_become_milliseconds(seconds: Any, ms: float) -> None:
    raw = NginxParser().from_object({"request_time": seconds})
    assert raw["latency_ms"] == pytest.approx(ms)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "does not match"),
        (b"{", "not JSON"),
        (b'{"remote_addr": "192.0.2.1", "status": "2', "not JSON"),
        (b'{"remote_addr": "192.0.2.1"} trailing', "not JSON"),
        (b'["192.0.2.1", "GET"]', "does not match"),
        (b"{}[]", "not JSON"),
        (b"\x00\x01\x02\xff", "invalid UTF-8"),
        (b"\xc3\x28 - - [12/Mar/2024:09:15:02 +0000]", "invalid UTF-8"),
        (b"not a log line", "does not match"),
        (COMBINED_LINES[0][:60], "does not match"),
        (b'{"request_time": "fast"}', "request_time"),
        (b'{"request_time": true}', "request_time"),
        (b'{"request_time": {"s": 1}}', "request_time"),
    ],
)
def test_bad_input_raises_parse_error(line: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        NginxParser().parse(line)
