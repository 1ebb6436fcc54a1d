from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from gatewatch.errors import ParseError
from ingest.parsers.base import ObjectParser
from ingest.parsers.mapping import MappingParser

FORMATS = Path(__file__).parents[2] / "fixtures" / "formats"
LINES = (FORMATS / "mapping" / "app.jsonl").read_bytes().splitlines()

# An ECS-like application log.
FIELDS = {
    "ts": "@timestamp",
    "request_id": "trace.id",
    "client_ip": "client.ip",
    "forwarded_for": "http.request.headers.x-forwarded-for",
    "method": "http.request.method",
    "host": "url.domain",
    "path": "url.path",
    "query": "url.query",
    "status": "http.response.status_code",
    "response_bytes": "http.response.body.bytes",
    "latency_ms": "event.duration_ms",
    "user_agent": "user_agent.original",
    "user": "user.name",
    "authorization": "http.request.headers.authorization",
    "api_key": "api_key",
}

# One entry per line of mapping/app.jsonl, in order.
EXPECTED: list[dict[str, Any]] = [
    {
        "ts": "2024-03-12T09:40:00.511Z",
        "request_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "client_ip": "203.0.113.42",
        "method": "POST",
        "host": "api.example.com",
        "path": "/v1/orders",
        "query": "dry_run=false",
        "status": 201,
        "response_bytes": 88,
        "latency_ms": 41.7,
        "user_agent": "ExampleApp/5.2",
        "user": "u-42",
        "authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1LTQyIn0.c2ln",
    },
    {  # a logger that writes flattened dotted keys
        "ts": "2024-03-12T09:40:01Z",
        "client_ip": "198.51.100.9",
        "method": "POST",
        "path": "/v1/login",
        "status": 401,
        "user": "bob@example.com",
    },
    {  # only a forwarded-for; "" and "-" are absent
        "ts": 1710236402123,
        "forwarded_for": "192.0.2.80, 10.0.0.2",
        "method": "GET",
        "path": "/v1/items",
        "status": 200,
        "api_key": "ak_live_7Hs2",
    },
]


def test_fixture_table_covers_every_line() -> None:
    assert len(LINES) == len(EXPECTED)


@pytest.mark.parametrize(
    ("line", "expected"),
    list(zip(LINES, EXPECTED, strict=True)),
    ids=[f"app.jsonl:{n}" for n in range(1, len(LINES) + 1)],
)
def test_lines(line: bytes, expected: dict[str, Any]) -> None:
    parser = MappingParser(FIELDS)
    actual: dict[str, Any] = dict(parser.parse(line))
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        assert actual[key] == value, key
    assert parser.from_object(orjson.loads(line)) == actual


MINIMAL = {"ts": "t", "client_ip": "peer.ip", "path": "req.path", "status": "res.status"}


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        (
            {"peer": {"ip": "192.0.2.1"}, "req": {"path": "/a"}, "res": {"status": 200}},
            "missing field 'ts' (mapped from 't')",
        ),
        (
            {"t": 1, "peer": {"ip": "192.0.2.1"}, "res": {"status": 200}},
            "missing field 'path' (mapped from 'req.path')",
        ),
        (
            {"t": 1, "peer": {"ip": "192.0.2.1"}, "req": {"path": "/a"}, "res": "200 OK"},
            "missing field 'status' (mapped from 'res.status')",
        ),
        (
            {"t": 1, "peer": {"ip": "-"}, "req": {"path": "/a"}, "res": {"status": 200}},
            "missing field 'client_ip' (mapped from 'peer.ip')",
        ),
        (
            {"t": "", "peer": ["192.0.2.1"], "req": {"path": "/a"}, "res": {"status": 200}},
            "missing field 'ts'",
        ),
    ],
)
def test_missing_essential_field_is_named(obj: dict[str, Any], reason: str) -> None:
    with pytest.raises(ParseError, match=re.escape(reason)):
        MappingParser(MINIMAL).from_object(obj)


def test_client_from_either_address_field() -> None:
    parser = MappingParser({**MINIMAL, "forwarded_for": "xff"})
    base = {"t": 1, "req": {"path": "/a"}, "res": {"status": 200}}
    assert parser.from_object({**base, "xff": "192.0.2.9"})["forwarded_for"] == "192.0.2.9"
    with pytest.raises(ParseError, match=r"'client_ip' \(mapped from 'peer.ip' or 'xff'\)"):
        parser.from_object(base)


def test_nested_value_wins_over_flattened_key() -> None:
    parser = MappingParser(MINIMAL)
    obj = {"t": 1, "peer.ip": "192.0.2.2", "peer": {"ip": "192.0.2.1"}}
    raw = parser.from_object({**obj, "req": {"path": "/a"}, "res": {"status": 200}})
    assert raw["client_ip"] == "192.0.2.1"


def test_values_are_not_coerced() -> None:
    raw = MappingParser(MINIMAL).from_object(
        {
            "t": "1710236402",
            "peer": {"ip": "192.0.2.1"},
            "req": {"path": "/a"},
            "res": {"status": "201"},
        }
    )
    assert raw["ts"] == "1710236402"
    assert raw["status"] == "201"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({**MINIMAL, "colour": "c"}, "unknown field"),
        ({"client_ip": "a", "path": "b", "status": "c"}, "'ts'|ts"),
        ({"ts": "a", "path": "b", "status": "c"}, "client_ip"),
        ({**MINIMAL, "user": "a..b"}, "not a dotted path"),
        ({**MINIMAL, "user": ""}, "not a dotted path"),
    ],
)
def test_bad_mapping_is_rejected_at_construction(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MappingParser(fields)


def test_params_kept_and_shown() -> None:
    parser = MappingParser(MINIMAL)
    assert parser.fields == MINIMAL
    assert repr(parser) == f"MappingParser(fields={MINIMAL!r})"
    assert isinstance(parser, ObjectParser)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "not JSON"),
        (b'{"t": 1, "peer": {"ip": "192.0.2.1"', "not JSON"),
        (b'[{"t": 1}]', "not an object"),
        (b"\x00\x01\x02", "not JSON"),
        (b'{"t": "\xff"}', "not JSON"),
        (b"plain text", "not JSON"),
    ],
)
def test_bad_input_raises_parse_error(line: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        MappingParser(MINIMAL).parse(line)
