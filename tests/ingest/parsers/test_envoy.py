from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from gatewatch.errors import ParseError
from ingest.parsers.auto import AutoParser
from ingest.parsers.envoy import EnvoyParser
from tests.ingest.parsers.fields import assert_fields

FORMATS = Path(__file__).parents[2] / "fixtures" / "formats"
DEFAULT_LINES = (FORMATS / "envoy" / "default.log").read_bytes().splitlines()
ISTIO_LINES = (FORMATS / "envoy" / "istio.log").read_bytes().splitlines()
JSON_LINES = (FORMATS / "envoy" / "json.log").read_bytes().splitlines()

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/119.0.0.0 Safari/537.36"
)

# One entry per line of envoy/default.log, in order. Text values stay text.
DEFAULT_EXPECTED: list[dict[str, Any]] = [
    {
        "ts": "2023-11-14T22:13:20.125Z",
        "forwarded_for": "198.51.100.23",
        "method": "GET",
        "path": "/v1/items?page=2&sort=price",
        "status": "200",
        "request_bytes": "0",
        "response_bytes": "5123",
        "latency_ms": "14",
        "user_agent": FIREFOX,
        "request_id": "3f6c8e2a-9b1d-4e7f-a0c5-6d2b8e1f4a93",
        "host": "api.example.com",
    },
    {  # HTTP/2, IPv6 client first in a two-hop X-Forwarded-For
        "ts": "2023-11-14T22:13:21.004Z",
        "forwarded_for": "2001:db8::1f, 10.0.0.9",
        "method": "POST",
        "path": "/v1/auth/login",
        "status": "401",
        "request_bytes": "61",
        "response_bytes": "38",
        "latency_ms": "9",
        "user_agent": "okhttp/4.12.0",
        "request_id": "b7d0c3e1-52a4-4f86-9e1b-0c7a2d5f8e63",
        "host": "api.example.com",
    },
    {  # NR: no route; no upstream, so no upstream service time
        "ts": "2023-11-14T22:13:22.871Z",
        "forwarded_for": "203.0.113.77",
        "method": "GET",
        "path": "/.git/config",
        "status": "404",
        "request_bytes": "0",
        "response_bytes": "0",
        "latency_ms": "0",
        "user_agent": "Mozilla/5.0 zgrab/0.x",
        "request_id": "e2a9f1c4-7b3d-4a60-8c5e-1d9f0b2a7c48",
        "host": "203.0.113.10",
    },
    {  # a TCP proxy connection: "- - -" and dashes everywhere
        "ts": "2023-11-14T22:13:25.310Z",
        "status": "0",
        "request_bytes": "517",
        "response_bytes": "3312",
        "latency_ms": "1204",
    },
    {  # quotes inside the user agent, unescaped as Envoy writes them
        "ts": "2023-11-14T22:13:26.550Z",
        "forwarded_for": "192.0.2.44",
        "method": "GET",
        "path": "/v1/products?id=1%27%20OR%201=1--",
        "status": "200",
        "request_bytes": "0",
        "response_bytes": "2048",
        "latency_ms": "31",
        "user_agent": 'Mozilla/5.0" OR "1"="1',
        "request_id": "9c1e4b7a-2f3d-4e5a-8b6c-0d7e1f2a3b4c",
        "host": "shop.example.com",
    },
    {  # Emissary-ingress's "ACCESS " prefix; upstream connect failure
        "ts": "2023-11-14T22:13:27.918Z",
        "method": "GET",
        "path": "/backend/health",
        "status": "503",
        "request_bytes": "0",
        "response_bytes": "91",
        "latency_ms": "1002",
        "user_agent": "kube-probe/1.28",
        "request_id": "5a6b7c8d-9e0f-4a1b-2c3d-4e5f6a7b8c9d",
        "host": "backend.default:8080",
    },
]

# One entry per line of envoy/istio.log, in order.
ISTIO_EXPECTED: list[dict[str, Any]] = [
    {
        "ts": "2023-11-14T22:14:02.317Z",
        "client_ip": "10.124.0.13:43612",
        "method": "GET",
        "path": "/api/v1/reviews/7",
        "status": "200",
        "request_bytes": "0",
        "response_bytes": "358",
        "latency_ms": "15",
        "user_agent": "Go-http-client/1.1",
        "request_id": "1c7f3a9e-0b42-9d6e-a815-3e2c4b6d8f10",
        "host": "reviews.bookinfo:9080",
    },
    {  # IPv6 downstream; a transport failure reason with spaces
        "ts": "2023-11-14T22:14:03.886Z",
        "client_ip": "[2001:db8:4::17]:50122",
        "forwarded_for": "198.51.100.60",
        "method": "POST",
        "path": "/api/v1/ratings",
        "status": "503",
        "request_bytes": "212",
        "response_bytes": "91",
        "latency_ms": "2",
        "user_agent": "grpc-python/1.59.0",
        "request_id": "8e4d2c0b-6a19-9f57-b3e1-d4c6a8b0f2e4",
        "host": "ratings.bookinfo:9080",
    },
    {
        "ts": "2023-11-14T22:14:05.041Z",
        "client_ip": "10.124.0.1:33482",
        "forwarded_for": "203.0.113.19,10.124.0.1",
        "method": "GET",
        "path": "/productpage?u=normal&lang=en",
        "status": "200",
        "request_bytes": "0",
        "response_bytes": "5183",
        "latency_ms": "41",
        "user_agent": CHROME,
        "request_id": "f0a2c4e6-8b1d-9d3f-a5c7-e9b1d3f5a7c9",
        "host": "bookinfo.example.com",
    },
]

# One entry per line of envoy/json.log, in order. JSON numbers stay numbers.
JSON_EXPECTED: list[dict[str, Any]] = [
    {  # Istio's JSON encoding, nulls for what is not set
        "ts": "2023-11-14T22:14:02.317Z",
        "client_ip": "10.124.0.13:43612",
        "method": "GET",
        "path": "/api/v1/reviews/7",
        "status": 200,
        "request_bytes": 0,
        "response_bytes": 358,
        "latency_ms": 15,
        "user_agent": "Go-http-client/1.1",
        "request_id": "1c7f3a9e-0b42-9d6e-a815-3e2c4b6d8f10",
        "host": "reviews.bookinfo:9080",
    },
    {  # IPv6 downstream, a query string, X-Forwarded-For
        "ts": "2023-11-14T22:14:07.552Z",
        "client_ip": "[2001:db8:4::17]:50122",
        "forwarded_for": "198.51.100.60",
        "method": "POST",
        "path": "/v1/auth/token?grant_type=password",
        "status": 400,
        "request_bytes": 74,
        "response_bytes": 41,
        "latency_ms": 48,
        "user_agent": "curl/8.4.0",
        "request_id": "4b6d8f0a-2c4e-9a6c-8e0a-2c4e6a8c0e2a",
        "host": "api.example.com",
    },
    {  # a request Envoy could not parse: '-' for method, path, id and agent
        "ts": "2023-11-14T22:14:09.003Z",
        "client_ip": "192.0.2.130:51643",
        "status": 400,
        "request_bytes": 0,
        "response_bytes": 11,
        "latency_ms": 0,
    },
    {  # a hand-written json_format with every value quoted, and the TLS version
        "ts": "2023-11-14T22:14:11.260Z",
        "client_ip": "10.0.1.4:60311",
        "forwarded_for": "203.0.113.88",
        "method": "GET",
        "path": "/v2/accounts/88213/statements",
        "status": "200",
        "request_bytes": "0",
        "response_bytes": "14022",
        "latency_ms": "87",
        "user_agent": "AccountsApp/5.2 (iPhone; iOS 17.1)",
        "request_id": "6e8a0c2e-4a6c-4e8a-9c0e-2a4c6e8a0c2e",
        "host": "accounts.example.com",
        "tls_version": "TLSv1.3",
    },
]


def test_fixture_tables_cover_every_line() -> None:
    assert len(DEFAULT_LINES) == len(DEFAULT_EXPECTED)
    assert len(ISTIO_LINES) == len(ISTIO_EXPECTED)
    assert len(JSON_LINES) == len(JSON_EXPECTED)


@pytest.mark.parametrize(
    ("line", "expected"),
    list(zip(DEFAULT_LINES, DEFAULT_EXPECTED, strict=True))
    + list(zip(ISTIO_LINES, ISTIO_EXPECTED, strict=True)),
)
def test_text_lines(line: bytes, expected: dict[str, Any]) -> None:
    assert_fields(EnvoyParser().parse(line), expected)


@pytest.mark.parametrize(("line", "expected"), list(zip(JSON_LINES, JSON_EXPECTED, strict=True)))
def test_json_lines(line: bytes, expected: dict[str, Any]) -> None:
    parser = EnvoyParser()
    assert_fields(parser.parse(line), expected)
    assert parser.from_object(orjson.loads(line)) == parser.parse(line)


@pytest.mark.parametrize(
    "line",
    [
        *(line for line in DEFAULT_LINES if line.startswith(b"[")),
        *ISTIO_LINES,
        *JSON_LINES,
    ],
)
def test_auto_detection_reads_envoy_lines_the_same(line: bytes) -> None:
    assert AutoParser().parse(line) == EnvoyParser().parse(line)


def test_format_is_chosen_by_first_non_space_byte() -> None:
    parser = EnvoyParser()
    assert parser.parse(b"  \t" + JSON_LINES[0]) == parser.parse(JSON_LINES[0])
    assert parser.parse(b" " + DEFAULT_LINES[0]) == parser.parse(DEFAULT_LINES[0])
    assert parser.parse(DEFAULT_LINES[0] + b"\n") == parser.parse(DEFAULT_LINES[0])


def test_json_direct_remote_address_when_no_remote_address() -> None:
    raw = EnvoyParser().from_object(
        {"start_time": "2023-11-14T22:14:11Z", "downstream_direct_remote_address": "192.0.2.9:1"}
    )
    assert raw == {"ts": "2023-11-14T22:14:11Z", "client_ip": "192.0.2.9:1"}


def test_bytes_that_are_not_utf8_do_not_cost_the_line() -> None:
    parser = EnvoyParser()
    text = parser.parse(DEFAULT_LINES[1].replace(b"okhttp/4.12.0", b"okhttp/4\xff\xc3"))
    assert text["user_agent"] == "okhttp/4\\xff\\xc3"
    assert text["path"] == "/v1/auth/login"
    obj = parser.parse(JSON_LINES[1].replace(b"curl/8.4.0", b"curl/8\xff"))
    assert obj["user_agent"] == "curl/8\ufffd"


def test_quotes_cannot_make_matching_slow() -> None:
    # Many quote-space-quote runs inside client-controlled fields: the expression must
    # stay linear (a backtracking one would take minutes on this line).
    hostile = b'" "' * 3000
    line = (
        b'[2023-11-14T22:13:20.125Z] "GET / HTTP/1.1" 200 - 0 1 1 1 "'
        + hostile
        + b'" "'
        + hostile
        + b'" "x" "y"'
    )
    start = time.perf_counter()
    with pytest.raises(ParseError):
        EnvoyParser().parse(line)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (JSON_LINES[0][:-30], "not JSON"),
        (b"[" + JSON_LINES[0] + b"]", "does not match"),
        (b" [1, 2]", "does not match"),
        (b'{"message": "upstream connect error"}', "not an Envoy access log"),
        (b'{"ts": "2023-11-14T22:13:20Z", "path": "/", "status": 200}', "not an Envoy"),
        (DEFAULT_LINES[0].replace(b'"api.example.com" ', b""), "does not match"),
        (DEFAULT_LINES[0] + b" trailing-junk", "does not match"),
        (DEFAULT_LINES[0].replace(b" 200 ", b" OK "), "does not match"),
        (b'203.0.113.7 - - [14/Nov/2023:22:13:20 +0000] "GET / HTTP/1.1" 200 2', "does not"),
        (b"", "does not match"),
        (b"[2023-11-14T22:13:20.125Z] \xff\xfe", "does not match"),
    ],
)
def test_bad_input_raises_parse_error(line: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        EnvoyParser().parse(line)
