from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from gatewatch.errors import ParseError
from ingest.parsers.auto import AutoParser
from ingest.parsers.kong import KongParser
from tests.ingest.parsers.fields import assert_fields

FORMATS = Path(__file__).parents[2] / "fixtures" / "formats"
LINES = (FORMATS / "kong" / "file-log.jsonl").read_bytes().splitlines()

JWT = (
    "Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1LTEwNDIiLCJpc3MiOiJodHRwczovL2lk"
    "LmV4YW1wbGUuY29tIn0.c2lnbmF0dXJl"
)
SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.1 Safari/605.1.15"
)

# One entry per line of kong/file-log.jsonl, in order.
EXPECTED: list[dict[str, Any]] = [
    {  # Kong 3.8, key-auth consumer behind a load balancer, TLS, query string
        "ts": 1700000000123,
        "client_ip": "10.0.4.17",
        "forwarded_for": "198.51.100.23",
        "method": "GET",
        "scheme": "https",
        "host": "api.example.com",
        "path": "/v1/orders?status=open&page=2",
        "status": 200,
        "latency_ms": 41,
        "request_bytes": 412,
        "response_bytes": 2291,
        "user_agent": "billing-sync/2.4.1",
        "tls_version": "TLSv1.3",
        "request_id": "6b8e0d3a5f1c2e4d7a9b0c1d2e3f4a5b",
        "user": "billing-sync",
        "api_key": "k3y-7f9a2c41e0b84d5e",
        "api_key_id": "e2d4f6a8-1b3c-4d5e-8f70-9a1b2c3d4e5f",
        "headers": {
            "host": "api.example.com",
            "accept": "application/json",
            "user-agent": "billing-sync/2.4.1",
            "apikey": "k3y-7f9a2c41e0b84d5e",
            "x-forwarded-for": "198.51.100.23",
        },
    },
    {  # Kong 2.8 over plain HTTP, IPv6 client, anonymous, correlation-id header
        "ts": 1700000061482,
        "client_ip": "2001:db8:85a3::8a2e:370:7334",
        "method": "POST",
        "scheme": "http",
        "host": "api.example.com",
        "path": "/v1/auth/login",
        "status": 401,
        "latency_ms": 87,
        "request_bytes": 268,
        "response_bytes": 312,
        "user_agent": "python-requests/2.31.0",
        "request_id": "d1c6a0f2-5b3e-4f7a-9c8d-2e1f0a9b8c7d#12",
        "headers": {
            "host": "api.example.com",
            "content-type": "application/json",
            "content-length": "52",
            "user-agent": "python-requests/2.31.0",
            "kong-request-id": "d1c6a0f2-5b3e-4f7a-9c8d-2e1f0a9b8c7d#12",
        },
    },
    {  # Kong 3.4, JWT consumer known by custom_id, repeated headers logged as arrays
        "ts": 1700000122907,
        "client_ip": "10.0.4.18",
        "forwarded_for": "203.0.113.50, 10.0.4.17",
        "method": "GET",
        "scheme": "https",
        "host": "api.example.com",
        "path": "/v1/users/1042/orders?limit=50",
        "status": 200,
        "latency_ms": 129,
        "request_bytes": 1187,
        "response_bytes": 8803,
        "user_agent": SAFARI,
        "tls_version": "TLSv1.2",
        "user": "u-1042",
        "authorization": JWT,
        "cookie": "session=4f1e2d3c; theme=dark; consent=1",
        "api_key_id": "4e5f6a7b-8c9d-4e0f-1a2b-3c4d5e6f7a8b",
        "headers": {
            "host": "api.example.com",
            "user-agent": SAFARI,
            "authorization": JWT,
            "cookie": ["session=4f1e2d3c; theme=dark", "consent=1"],
            "x-forwarded-for": ["203.0.113.50", "10.0.4.17"],
        },
    },
    {  # no route matched: Kong answered itself, no consumer, a guessed x-api-key
        "ts": 1700000184016,
        "client_ip": "192.0.2.201",
        "method": "GET",
        "scheme": "https",
        "host": "203.0.113.10:8443",
        "path": "/.env",
        "status": 404,
        "latency_ms": 0,
        "request_bytes": 171,
        "response_bytes": 103,
        "tls_version": "TLSv1.3",
        "request_id": "a0b1c2d3e4f5061728394a5b6c7d8e9f",
        "api_key": "test",
        "headers": {"host": "203.0.113.10:8443", "x-api-key": "test", "accept": "*/*"},
    },
    {  # '-' placeholders, an empty username, the id only in the response header
        "ts": 1700000245551,
        "client_ip": "198.51.100.77",
        "method": "GET",
        "scheme": "https",
        "host": "api.example.com",
        "path": "/v1/search?q=select+comfort+pillow",
        "status": 200,
        "latency_ms": 23.5,
        "response_bytes": 5120,
        "request_id": "c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9",
        "user": "6f7a8b9c-0d1e-4f2a-3b4c-5d6e7f8a9b0c",
        "headers": {"host": "api.example.com", "user-agent": "-", "x-forwarded-for": "-"},
    },
]


def test_fixture_table_covers_every_line() -> None:
    assert len(LINES) == len(EXPECTED)


@pytest.mark.parametrize(("line", "expected"), list(zip(LINES, EXPECTED, strict=True)))
def test_fixture_lines(line: bytes, expected: dict[str, Any]) -> None:
    parser = KongParser()
    assert_fields(parser.parse(line), expected)
    assert parser.from_object(orjson.loads(line)) == parser.parse(line)


@pytest.mark.parametrize("line", LINES)
def test_auto_detection_reads_kong_lines_the_same(line: bytes) -> None:
    assert AutoParser().parse(line) == KongParser().parse(line)


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            {"request": {"url": "https://api.example.com:8443/v1/a?b=1"}, "response": {}},
            {"path": "https://api.example.com:8443/v1/a?b=1", "scheme": "https"},
            id="url-stands-in-for-a-missing-uri",
        ),
        pytest.param(
            {"request": {"uri": "/v1/a", "querystring": {"b": "1", "flag": True}}, "response": {}},
            {"path": "/v1/a", "query": {"b": "1", "flag": True}},
            id="querystring-object-when-the-target-has-no-query",
        ),
        pytest.param(
            {"request": {"uri": "/v1/a", "querystring": {}}, "response": {}},
            {"path": "/v1/a"},
            id="empty-querystring-left-out",
        ),
        pytest.param(
            {"request": {}, "response": {}, "consumer": {"id": "c-1", "custom_id": "-"}},
            {"user": "c-1"},
            id="consumer-id-last",
        ),
        pytest.param(
            {"request": {"headers": {"x-forwarded-for": ["198.51.100.1", 7]}}, "response": {}},
            {
                "forwarded_for": ["198.51.100.1", 7],
                "headers": {"x-forwarded-for": ["198.51.100.1", 7]},
            },
            id="odd-array-passed-through-raw",
        ),
        pytest.param(
            {"request": {"headers": "n/a", "tls": "n/a"}, "response": {}, "latencies": 3},
            {},
            id="wrong-shapes-ignored",
        ),
        pytest.param(
            {"request": {"method": 7, "size": "big"}, "response": {"status": "OK"}},
            {"method": 7, "request_bytes": "big", "status": "OK"},
            id="wrong-value-types-passed-through",
        ),
    ],
)
def test_from_object(obj: dict[str, Any], expected: dict[str, Any]) -> None:
    assert_fields(KongParser().from_object(obj), expected)


def test_header_bytes_that_are_not_utf8_do_not_cost_the_line() -> None:
    raw = KongParser().parse(LINES[1].replace(b"python-requests/2.31.0", b"python\xff/2"))
    assert raw["user_agent"] == "python\ufffd/2"
    assert raw["status"] == 401


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (LINES[0][:-40], "not JSON"),
        (b"", "not JSON"),
        (b"[" + LINES[0] + b"]", "not an object"),
        (b'{"started_at": 1700000000123, "response": {"status": 200}}', "missing field 'request'"),
        (b'{"request": {"method": "GET"}}', "missing field 'response'"),
        (b'{"request": "GET /", "response": {}}', "'request' is not an object"),
        (b'{"ts": "2023-11-14T22:13:20Z", "path": "/", "status": 200}', "missing field"),
        (b'203.0.113.7 - - [14/Nov/2023:22:13:20 +0000] "GET / HTTP/1.1" 200 2', "not JSON"),
    ],
)
def test_bad_input_raises_parse_error(line: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        KongParser().parse(line)
