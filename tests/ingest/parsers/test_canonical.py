from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from gatewatch.errors import ParseError
from ingest.parsers.base import ObjectParser
from ingest.parsers.canonical import CanonicalParser

FORMATS = Path(__file__).parents[2] / "fixtures" / "formats"
LINES = (FORMATS / "canonical" / "events.jsonl").read_bytes().splitlines()

# One entry per line of canonical/events.jsonl, in order.
EXPECTED: list[dict[str, Any]] = [
    {  # forwarding and credential headers are also lifted to their own keys
        "request_id": "req-01HRX5T4Z8",
        "ts": "2024-03-12T09:30:00.125Z",
        "client_ip": "203.0.113.42",
        "method": "POST",
        "scheme": "https",
        "host": "api.example.com",
        "path": "/v1/login",
        "status": 401,
        "latency_ms": 84.2,
        "request_bytes": 96,
        "response_bytes": 41,
        "user_agent": "Mozilla/5.0",
        "user": "alice@example.com",
        "tls_version": "TLSv1.3",
        "headers": {
            "x-forwarded-for": "203.0.113.42",
            "authorization": "Basic YWxpY2U6aHVudGVyMg==",
            "content-type": "application/json",
        },
        "forwarded_for": "203.0.113.42",
        "authorization": "Basic YWxpY2U6aHVudGVyMg==",
    },
    {  # epoch milliseconds
        "ts": 1710235801000,
        "client_ip": "198.51.100.9",
        "method": "GET",
        "path": "/v1/items/42",
        "query": "fields=name,price",
        "status": 200,
    },
    {
        "request_id": "req-01HRX5T4Z9",
        "ts": "2024-03-12T10:30:02+01:00",
        "client_ip": "2001:db8::9",
        "method": "PUT",
        "path": "/v1/profile",
        "status": 200,
        "api_key": "ak_test_9f8e7d",
        "body": '{"bio":"hi"}',
        "headers": {"cookie": "sid=77aa", "forwarded": "for=192.0.2.4"},
        "cookie": "sid=77aa",
        "forwarded": "for=192.0.2.4",
    },
    {  # nulls are absent; unknown keys ignored
        "ts": "2024-03-12T09:30:03Z",
        "client_ip": "192.0.2.50",
        "path": "/health",
        "status": 200,
    },
]


def test_fixture_table_covers_every_line() -> None:
    assert len(LINES) == len(EXPECTED)


@pytest.mark.parametrize(
    ("line", "expected"),
    list(zip(LINES, EXPECTED, strict=True)),
    ids=[f"events.jsonl:{n}" for n in range(1, len(LINES) + 1)],
)
def test_lines(line: bytes, expected: dict[str, Any]) -> None:
    parser = CanonicalParser()
    actual: dict[str, Any] = dict(parser.parse(line))
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        assert actual[key] == value, key
    assert parser.from_object(orjson.loads(line)) == actual


def test_is_an_object_parser() -> None:
    assert isinstance(CanonicalParser(), ObjectParser)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "not JSON"),
        (b'{"ts": 1710235801000, "path": "/v1', "not JSON"),
        (b'[{"ts": 1710235801000}]', "not an object"),
        (b'"a string"', "not an object"),
        (b"\x00\x01\x02\x03", "not JSON"),
        (b'{"path": "/\xff\xfe"}', "not JSON"),
        (b'192.0.2.1 - - [12/Mar/2024:10:20:01 +0100] "GET / HTTP/1.1" 200 1', "not JSON"),
    ],
)
def test_bad_input_raises_parse_error(line: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        CanonicalParser().parse(line)


def test_fields_outside_the_canonical_event_are_not_read() -> None:
    # A line that carries extra fields must not smuggle in RawEvent-only keys (a
    # declared route, a raw authorization value) that the canonical event does not have.
    line = (
        b'{"ts": 1710235801000, "client_ip": "203.0.113.9", "method": "GET", "path": "/a/1",'
        b' "status": 200, "route": "/spoofed", "authorization": "Bearer x", "extra": 1}'
    )
    raw = CanonicalParser().parse(line)
    assert "route" not in raw and "authorization" not in raw and "extra" not in raw
    assert raw["path"] == "/a/1"
