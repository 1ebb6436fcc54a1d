from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest

from gatewatch.errors import ParseError
from ingest.parsers.clf import (
    COMBINED,
    COMBINED_ESCAPED,
    parse_combined,
    split_request_line,
    unescape,
)

TS = "14/Nov/2023:22:13:20 +0000"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            f'192.0.2.1 - - [{TS}] "GET /a?b=1 HTTP/1.1" 200 12',
            {
                "ts": TS,
                "client_ip": "192.0.2.1",
                "method": "GET",
                "path": "/a?b=1",
                "status": "200",
                "response_bytes": "12",
            },
            id="common",
        ),
        pytest.param(
            f'192.0.2.1 - - [{TS}] "GET / HTTP/1.1" 200 12 "https://example.com/" "curl/8"',
            {
                "ts": TS,
                "client_ip": "192.0.2.1",
                "method": "GET",
                "path": "/",
                "status": "200",
                "response_bytes": "12",
                "headers": {"referer": "https://example.com/"},
                "user_agent": "curl/8",
            },
            id="combined",
        ),
        pytest.param(
            f'192.0.2.1 - - [{TS}] "GET / HTTP/1.1" 200 12 - "curl/8" 7 "router@file" 3ms',
            {
                "ts": TS,
                "client_ip": "192.0.2.1",
                "method": "GET",
                "path": "/",
                "status": "200",
                "response_bytes": "12",
                "user_agent": "curl/8",
            },
            id="bare-referer-and-trailing-fields",
        ),
        pytest.param(
            f'10.0.0.2 - - [{TS}] "GET / HTTP/1.1" 200 0 "-" "curl/8" "198.51.100.1" 0.010',
            {
                "ts": TS,
                "client_ip": "10.0.0.2",
                "method": "GET",
                "path": "/",
                "status": "200",
                "response_bytes": "0",
                "user_agent": "curl/8",
                "forwarded_for": "198.51.100.1",
            },
            id="x-forwarded-for-then-request-time",
        ),
        pytest.param(
            f'::1 - - [{TS}] "-" - - "-" "-"',
            {"ts": TS, "client_ip": "::1"},
            id="placeholders-everywhere",
        ),
        pytest.param(
            f'fe80::1%eth0 - john smith [{TS}] "OPTIONS * HTTP/1.1" 200 0',
            {
                "ts": TS,
                "client_ip": "fe80::1%eth0",
                "user": "john smith",
                "method": "OPTIONS",
                "path": "*",
                "status": "200",
                "response_bytes": "0",
            },
            id="ipv6-zone-user-with-space",
        ),
        pytest.param(
            f'192.0.2.1 - x [aaa [b] [{TS}] "GET /x HTTP/1.1" 401 1',
            {
                "ts": TS,
                "client_ip": "192.0.2.1",
                "user": "x [aaa [b]",
                "method": "GET",
                "path": "/x",
                "status": "401",
                "response_bytes": "1",
            },
            id="user-with-brackets-cannot-shift-the-time",
        ),
        pytest.param(
            f'192.0.2.1 - "" [{TS}] "GET /x HTTP/1.1" 401 1',
            {
                "ts": TS,
                "client_ip": "192.0.2.1",
                "method": "GET",
                "path": "/x",
                "status": "401",
                "response_bytes": "1",
            },
            id="apache-empty-user",
        ),
        pytest.param(
            f'api.example.com:8443 192.0.2.1 - - [{TS}] "GET /x HTTP/1.1" 200 1',
            {
                "ts": TS,
                "host": "api.example.com:8443",
                "client_ip": "192.0.2.1",
                "method": "GET",
                "path": "/x",
                "status": "200",
                "response_bytes": "1",
            },
            id="vhost-prefix",
        ),
        pytest.param(
            f'192.0.2.1 - - [{TS}] "GET /\\"x\\" HTTP/1.1" 200 1 "-" "a \\"b\\" \\\\"',
            {
                "ts": TS,
                "client_ip": "192.0.2.1",
                "method": "GET",
                "path": '/"x"',
                "status": "200",
                "response_bytes": "1",
                "user_agent": 'a "b" \\',
            },
            id="apache-escaped-quotes-and-backslash-before-closing-quote",
        ),
        pytest.param(
            f'192.0.2.1 - - [{TS}] "GET /\\x22x\\x22 HTTP/1.1" 200 1 "-" "\\xE2\\x9C\\x93 \\xFF"',
            {
                "ts": TS,
                "client_ip": "192.0.2.1",
                "method": "GET",
                "path": '/"x"',
                "status": "200",
                "response_bytes": "1",
                "user_agent": "✓ \\xff",
            },
            id="nginx-hex-escapes-non-utf8-kept-as-text",
        ),
        pytest.param(
            f'192.0.2.1 - - [{TS}] "\\x16\\x03\\x01\\x00" 400 157 "-" "-"',
            {"ts": TS, "client_ip": "192.0.2.1", "status": "400", "response_bytes": "157"},
            id="tls-handshake-request-line",
        ),
    ],
)
def test_fields(line: str, expected: dict[str, Any]) -> None:
    actual: dict[str, Any] = dict(parse_combined(line.encode()))
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        assert actual[key] == value, key


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"   ",
        b"\x00\x01\x02\x03",
        b"\xff\xfe192.0.2.1 - - [x]",
        b'{"ts": 1}',
        b'[2024-03-12T09:15:02.000Z] "GET / HTTP/1.1" 200 - 0 0 1 - "-" "-" "-" "-" "-"',
        f'192.0.2.1 - - [{TS}] "GET / HTTP/1.1" 200'.encode(),  # truncated: no size
        f'192.0.2.1 - - [{TS}] "GET / HTTP/1.1 200 12'.encode(),  # unterminated quote
        f'192.0.2.1 - - [{TS}] "GET / HTTP/1.1" OK 12'.encode(),  # status not a number
        f'192.0.2.1 ident - [{TS}] "GET / HTTP/1.1" 200 12'.encode(),  # identd value
        f'192.0.2.1 - - {TS} "GET / HTTP/1.1" 200 12'.encode(),  # time without brackets
    ],
)
def test_not_combined(line: bytes) -> None:
    with pytest.raises(ParseError):
        parse_combined(line)


@pytest.mark.parametrize(
    "line",
    [
        b"192.0.2.1 - " + b"a [b] " * 5000 + f'[{TS}] "GET / HTTP/1.1" 200 1'.encode(),
        b"192.0.2.1 - " + b"x [" * 20000,
        b"192.0.2.1 - " + b" " * 60000,
        f'192.0.2.1 - - [{TS}] "'.encode() + b'\\" ' * 20000,
    ],
    ids=["many-brackets", "open-brackets", "spaces", "escaped-quotes"],
)
def test_hostile_long_lines_take_linear_time(line: bytes) -> None:
    started = time.perf_counter()
    with contextlib.suppress(ParseError):
        parse_combined(line)
    assert time.perf_counter() - started < 0.5


def test_invalid_utf8_names_the_byte() -> None:
    with pytest.raises(ParseError, match="invalid UTF-8 at byte 0"):
        parse_combined(b"\xc0\xaf - - [x]")


def test_fast_and_escape_aware_patterns_agree_without_escaped_quotes() -> None:
    line = (
        f'api.example.com 2001:db8::2 - a b [{TS}] "GET /p?q=\\x22 HTTP/1.1" 200 5 '
        '"https://r.example/" "UA \\\\ x" "192.0.2.9" 1.0'
    )
    fast, escaped = COMBINED.match(line), COMBINED_ESCAPED.match(line)
    assert fast is not None and escaped is not None
    assert fast.groups() == escaped.groups()


@pytest.mark.parametrize(
    ("request_line", "expected"),
    [
        ("GET /a HTTP/1.1", ("GET", "/a")),
        ("POST /v1/login?next=/home HTTP/2.0", ("POST", "/v1/login?next=/home")),
        ("GET /", ("GET", "/")),
        ("GET /a b HTTP/1.1", ("GET", "/a b")),
        ("GET http://example.com/x HTTP/1.1", ("GET", "http://example.com/x")),
        ("CONNECT example.com:443 HTTP/1.1", ("CONNECT", "example.com:443")),
        ("M-SEARCH * HTTP/1.1", ("M-SEARCH", "*")),
        ("get /lower HTTP/1.1", ("get", "/lower")),
        ("", None),
        ("-", None),
        ("GET", None),
        ("GET ", None),
        ("GET  /double-space HTTP/1.1", None),
        ("\x16\x03\x01 \x00", None),
        ("<script> /x HTTP/1.1", None),
        ("A" * 40 + " /x HTTP/1.1", None),
    ],
)
def test_split_request_line(request_line: str, expected: tuple[str, str] | None) -> None:
    assert split_request_line(request_line) == expected


@pytest.mark.parametrize(
    ("logged", "expected"),
    [
        ("plain", "plain"),
        ('\\"q\\"', '"q"'),
        ("C:\\\\dir", "C:\\dir"),
        ("a\\nb\\tc", "a\nb\tc"),
        ("\\x41\\x2f", "A/"),
        ("\\xd0\\x96", "Ж"),
        ("\\xc0\\xaf", "\\xc0\\xaf"),
        ("\\q", "\\q"),
        ("\\xZZ", "\\xZZ"),
        ("end\\", "end\\"),
    ],
)
def test_unescape(logged: str, expected: str) -> None:
    assert unescape(logged) == expected
