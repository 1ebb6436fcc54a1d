from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from gatewatch.errors import ParseError
from ingest.parsers.auto import AutoParser
from ingest.parsers.aws_apigw import AwsApiGatewayParser
from tests.ingest.parsers.fields import assert_fields

FORMATS = Path(__file__).parents[2] / "fixtures" / "formats"
REST_LINES = (FORMATS / "aws-apigw" / "rest.log").read_bytes().splitlines()
HTTP_LINES = (FORMATS / "aws-apigw" / "http.log").read_bytes().splitlines()

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/119.0.0.0 Safari/537.36"
)

# One entry per line of aws-apigw/rest.log, in order. Every value stays a string.
REST_EXPECTED: list[dict[str, Any]] = [
    {  # the console's JSON example, verbatim keys: no path logged, the template stands in
        "request_id": "7c1f3a2e-5b9d-4e8f-a1c2-3d4e5f6a7b8c",
        "ts": "14/Nov/2023:22:13:20 +0000",
        "client_ip": "198.51.100.23",
        "method": "GET",
        "route": "/pets/{petId}",
        "path": "/pets/{petId}",
        "status": "200",
        "response_bytes": "49",
    },
    {  # IPv6, epoch ms, API key id, Lambda authorizer principal, the stage in the path
        "request_id": "0e9d8c7b-6a5f-4e3d-2c1b-0a9f8e7d6c5b",
        "ts": "1700000021517",
        "client_ip": "2001:db8:1f70::999:de8:7648:6e8",
        "method": "POST",
        "route": "/orders",
        "path": "/prod/orders",
        "status": "201",
        "response_bytes": "312",
        "latency_ms": "142",
        "host": "api.example.com",
        "user_agent": "orders-cli/1.8.0 (linux)",
        "api_key_id": "a1b2c3d4e5",
        "user": "partner-7731",
    },
    {  # Cognito sub claim; integrationLatency "-" as the backend was never called
        "request_id": "5f4e3d2c-1b0a-4f9e-8d7c-6b5a4f3e2d1c",
        "ts": "14/Nov/2023:22:13:23 +0000",
        "client_ip": "203.0.113.45",
        "method": "GET",
        "route": "/accounts/{accountId}/statements",
        "path": "/prod/accounts/88213/statements",
        "status": "403",
        "response_bytes": "60",
        "latency_ms": "6",
        "user_agent": CHROME,
        "user": "3f7a9c1e-2b4d-4f6a-8c0e-1a3b5c7d9e0f",
    },
    {  # no resource matched ("Missing Authentication Token"): neither route nor path
        "request_id": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
        "ts": "14/Nov/2023:22:13:25 +0000",
        "client_ip": "192.0.2.201",
        "method": "GET",
        "status": "403",
        "response_bytes": "42",
    },
    {  # IAM authorization: identity.user before identity.caller
        "request_id": "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a",
        "ts": "14/Nov/2023:22:13:27 +0000",
        "client_ip": "198.51.100.91",
        "method": "PUT",
        "route": "/pets/{petId}",
        "path": "/pets/{petId}",
        "status": "200",
        "response_bytes": "88",
        "user": "AIDAEXAMPLEUSERID",
    },
    {  # usage-plan key logged under the variable names, epoch as a number
        "request_id": "8b9c0d1e-2f3a-4b4c-5d6e-7f8a9b0c1d2e",
        "ts": 1700000029004,
        "client_ip": "198.51.100.140",
        "method": "GET",
        "route": "/quotes",
        "path": "/v1/quotes",
        "status": "429",
        "response_bytes": "29",
        "latency_ms": "1",
        "host": "quotes.example.com",
        "api_key": "Zt3v8QmW1kP6sR2yH9dL4nB7",
        "api_key_id": "k7m2p9x4q1",
    },
]

# One entry per line of aws-apigw/http.log, in order.
HTTP_EXPECTED: list[dict[str, Any]] = [
    {  # the HTTP API example: routeKey "METHOD /template"
        "request_id": "OZq1aFXnIAMEbKQ=",
        "ts": "14/Nov/2023:22:14:00 +0000",
        "client_ip": "198.51.100.23",
        "method": "GET",
        "route": "/pets/{id}",
        "path": "/pets/{id}",
        "status": "200",
        "response_bytes": "51",
    },
    {  # keys named after the variables; JWT sub claim; greedy proxy route
        "request_id": "OZq1dH4moAMEbNw=",
        "ts": 1700000042,
        "client_ip": "2001:db8:85a3::8a2e:370:7334",
        "method": "POST",
        "route": "/{proxy+}",
        "path": "/v2/cart/items",
        "status": "202",
        "response_bytes": "17",
        "latency_ms": "38",
        "host": "shop-api.example.com",
        "user_agent": "okhttp/4.12.0",
        "user": "c0ffee00-1234-4abc-9def-0123456789ab",
    },
    {  # the $default route declares no template
        "request_id": "OZq1gJ2cIAMEbPQ=",
        "ts": "14/Nov/2023:22:14:05 +0000",
        "client_ip": "203.0.113.77",
        "method": "GET",
        "path": "/admin/config.json",
        "status": "404",
        "response_bytes": "23",
        "latency_ms": "12",
        "user_agent": "Mozilla/5.0 zgrab/0.x",
    },
    {  # sourceIp spelling; a '-' principal is no user
        "request_id": "OZq1iKwPoAMEbSA=",
        "ts": "14/Nov/2023:22:14:07 +0000",
        "client_ip": "192.0.2.14",
        "method": "DELETE",
        "route": "/sessions/{sessionId}",
        "path": "/sessions/s-88f1",
        "status": "401",
        "response_bytes": "26",
        "latency_ms": "3",
    },
]


def test_fixture_tables_cover_every_line() -> None:
    assert len(REST_LINES) == len(REST_EXPECTED)
    assert len(HTTP_LINES) == len(HTTP_EXPECTED)


@pytest.mark.parametrize(
    ("line", "expected"),
    list(zip(REST_LINES, REST_EXPECTED, strict=True))
    + list(zip(HTTP_LINES, HTTP_EXPECTED, strict=True)),
)
def test_fixture_lines(line: bytes, expected: dict[str, Any]) -> None:
    parser = AwsApiGatewayParser()
    assert_fields(parser.parse(line), expected)
    assert parser.from_object(orjson.loads(line)) == parser.parse(line)


@pytest.mark.parametrize("line", [*REST_LINES, *HTTP_LINES])
def test_auto_detection_reads_api_gateway_lines_the_same(line: bytes) -> None:
    assert AutoParser().parse(line) == AwsApiGatewayParser().parse(line)


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            {"requestId": "r", "routeKey": "/pets"},
            {"request_id": "r", "route": "/pets", "path": "/pets"},
            id="route-key-without-method",
        ),
        pytest.param(
            {"requestId": "r", "routeKey": "GET pets", "httpMethod": "GET"},
            {"request_id": "r", "method": "GET"},
            id="route-key-without-a-template",
        ),
        pytest.param(
            {"requestId": "r", "resourcePath": "/a/{id}", "routeKey": "GET /b/{id}"},
            {"request_id": "r", "route": "/a/{id}", "path": "/a/{id}"},
            id="resource-path-first",
        ),
        pytest.param(
            {"requestId": "r", "requestTime": "t", "integrationLatency": "31"},
            {"request_id": "r", "ts": "t", "latency_ms": "31"},
            id="integration-latency-when-no-response-latency",
        ),
        pytest.param(
            {"requestId": "r", "requestTime": "t", "principalId": "p", "caller": "c"},
            {"request_id": "r", "ts": "t", "user": "p"},
            id="principal-before-caller",
        ),
        pytest.param(
            {"requestId": 5, "httpMethod": 6, "resourcePath": 7, "status": 200.0},
            {"request_id": 5, "method": 6, "status": 200.0},
            id="wrong-value-types-passed-through",
        ),
    ],
)
def test_from_object(obj: dict[str, Any], expected: dict[str, Any]) -> None:
    assert_fields(AwsApiGatewayParser().from_object(obj), expected)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (REST_LINES[0][:-20], "not JSON"),
        (b"[" + REST_LINES[0] + b"]", "not an object"),
        (b'{"ip": "192.0.2.1", "httpMethod": "GET", "status": "200"}', "missing field 'requestId'"),
        (
            b'{"requestId": "c6af9ac6", "level": "INFO", "message": "START"}',
            "none of httpMethod",
        ),
        (
            b'192.0.2.1 - - [14/Nov/2023:22:13:20 +0000] "GET /pets HTTP/1.1" 200 49 c6af9ac6',
            "not JSON",
        ),
    ],
)
def test_bad_input_raises_parse_error(line: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        AwsApiGatewayParser().parse(line)
