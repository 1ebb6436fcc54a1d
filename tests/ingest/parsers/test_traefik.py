from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from gatewatch.errors import ParseError
from ingest.parsers.auto import AutoParser
from ingest.parsers.traefik import TraefikParser
from tests.ingest.parsers.fields import assert_fields

FORMATS = Path(__file__).parents[2] / "fixtures" / "formats"
LINES = (FORMATS / "traefik" / "access.json.log").read_bytes().splitlines()

BEARER = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjdXN0LTQ0NzEifQ.sig"

# One entry per line of traefik/access.json.log, in order.
EXPECTED: list[dict[str, Any]] = [
    {  # v3 over TLS behind a trusted proxy; request headers kept
        "ts": "2023-11-14T22:13:20.004511873Z",
        "client_ip": "10.0.3.12:48212",
        "forwarded_for": "198.51.100.23",
        "method": "GET",
        "scheme": "https",
        "host": "api.example.com",
        "path": "/v1/invoices?customer=4471&limit=20",
        "status": 200,
        "latency_ms": 12.873456,
        "request_bytes": 0,
        "response_bytes": 1873,
        "tls_version": "1.3",
        "user_agent": "invoice-client/3.1.0",
        "authorization": BEARER,
        "request_id": "0f3b6a1e-93c2-4d7e-8a5b-2c1d0e9f8a7b",
        "headers": {
            "Authorization": BEARER,
            "User-Agent": "invoice-client/3.1.0",
            "X-Forwarded-For": "198.51.100.23",
            "X-Request-Id": "0f3b6a1e-93c2-4d7e-8a5b-2c1d0e9f8a7b",
        },
    },
    {  # basic auth user, IPv6 peer, plain HTTP, headers dropped (Traefik's default)
        "ts": "2023-11-14T22:13:21.517730044Z",
        "client_ip": "[2001:db8::5]:51234",
        "user": "alice",
        "method": "POST",
        "scheme": "http",
        "host": "admin.example.com",
        "path": "/admin/cache/flush",
        "status": 204,
        "latency_ms": 3.021877,
        "request_bytes": 87,
        "response_bytes": 0,
    },
    {  # rate limited; Authorization and Cookie kept in "redact" mode
        "ts": "2023-11-14T22:13:23.880102931Z",
        "client_ip": "203.0.113.45:60112",
        "method": "POST",
        "scheme": "https",
        "host": "api.example.com",
        "path": "/v1/login",
        "status": 429,
        "latency_ms": 0.4123,
        "request_bytes": 64,
        "response_bytes": 57,
        "tls_version": "1.3",
        "user_agent": "python-requests/2.31.0",
        "api_key": "pk_live_51HqT2bK9a0",
        "headers": {
            "Content-Type": "application/json",
            "User-Agent": "python-requests/2.31.0",
            "X-Api-Key": "pk_live_51HqT2bK9a0",
        },
    },
    {  # no router matched: v2 line without RequestScheme or TLS fields
        "ts": "2023-11-14T22:13:25.11627359Z",
        "client_ip": "192.0.2.77:39950",
        "method": "GET",
        "host": "203.0.113.10",
        "path": "/wp-login.php",
        "status": 404,
        "latency_ms": 0.048211,
        "request_bytes": 0,
        "response_bytes": 19,
    },
    {  # X-Forwarded-For not logged as a header, but in ClientHost; StartUTC only
        "ts": "2023-11-14T22:13:26.440918112Z",
        "client_ip": "10.0.3.12:48990",
        "forwarded_for": "203.0.113.9, 10.0.3.5",
        "method": "GET",
        "scheme": "https",
        "host": "shop.example.com",
        "path": "/search?q=men%27s+shoes",
        "status": 200,
        "latency_ms": 27.719004,
        "request_bytes": 0,
        "response_bytes": 4411,
        "tls_version": "1.2",
        "cookie": "cart=9f2e1d; sid=77ab31c0",
        "headers": {"Cookie": "cart=9f2e1d; sid=77ab31c0"},
    },
]


def test_fixture_table_covers_every_line() -> None:
    assert len(LINES) == len(EXPECTED)


@pytest.mark.parametrize(("line", "expected"), list(zip(LINES, EXPECTED, strict=True)))
def test_fixture_lines(line: bytes, expected: dict[str, Any]) -> None:
    parser = TraefikParser()
    assert_fields(parser.parse(line), expected)
    assert parser.from_object(orjson.loads(line)) == parser.parse(line)


@pytest.mark.parametrize("line", LINES)
def test_auto_detection_reads_traefik_lines_the_same(line: bytes) -> None:
    assert AutoParser().parse(line) == TraefikParser().parse(line)


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            {"ClientHost": "192.0.2.8", "DownstreamStatus": 200},
            {"client_ip": "192.0.2.8", "status": 200},
            id="client-host-when-no-client-addr",
        ),
        pytest.param(
            {"ClientAddr": "192.0.2.8", "ClientHost": "192.0.2.8"},
            {"client_ip": "192.0.2.8"},
            id="client-addr-without-port",
        ),
        pytest.param(
            {"ClientAddr": "192.0.2.8:1", "OriginStatus": 502, "OriginContentSize": 11},
            {"client_ip": "192.0.2.8:1", "status": 502, "response_bytes": 11},
            id="origin-fields-when-downstream-ones-are-missing",
        ),
        pytest.param(
            {"RequestPath": "/", "StartLocal": "2023-11-14T23:13:20+01:00", "time": "x"},
            {"path": "/", "ts": "2023-11-14T23:13:20+01:00"},
            id="start-local-before-time",
        ),
        pytest.param(
            {"RequestPath": "/", "RequestAddr": "api.example.com:8443", "Duration": "2500000"},
            {"path": "/", "host": "api.example.com:8443", "latency_ms": 2.5},
            id="request-addr-and-a-quoted-duration",
        ),
        pytest.param(
            {"RequestPath": "/", "request_Apikey": "k-1", "request_Forwarded": "for=192.0.2.1"},
            {
                "path": "/",
                "api_key": "k-1",
                "forwarded": "for=192.0.2.1",
                "headers": {"Apikey": "k-1", "Forwarded": "for=192.0.2.1"},
            },
            id="apikey-and-forwarded-headers",
        ),
        pytest.param(
            {"RequestPath": 7, "DownstreamStatus": "OK", "ClientUsername": ["x"]},
            {"path": 7, "status": "OK", "user": ["x"]},
            id="wrong-value-types-passed-through",
        ),
    ],
)
def test_from_object(obj: dict[str, Any], expected: dict[str, Any]) -> None:
    assert_fields(TraefikParser().from_object(obj), expected)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (LINES[0][:-50], "not JSON"),
        (b"[" + LINES[0] + b"]", "not an object"),
        (b'{"level": "info", "msg": "Configuration loaded", "time": "2023-11-14T22:13:20Z"}',
         "not a Traefik access log"),
        (b'{"RequestPath": "/", "Duration": "1.5ms"}', "Duration: expected nanoseconds"),
        (b'{"RequestPath": "/", "Duration": true}', "Duration: expected nanoseconds"),
        (b'192.0.2.7 - - [14/Nov/2023:22:13:20 +0000] "GET / HTTP/1.1" 200 2 "-" "-" 1'
         b' "router@file" "http://10.0.0.2" 3ms', "not JSON"),
    ],
)  # fmt: skip
def test_bad_input_raises_parse_error(line: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        TraefikParser().parse(line)
