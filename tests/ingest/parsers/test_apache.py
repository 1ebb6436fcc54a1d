from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gatewatch.errors import ParseError
from ingest.parsers.apache import ApacheCombinedParser

FORMATS = Path(__file__).parents[2] / "fixtures" / "formats"
LINES = (FORMATS / "apache" / "combined.log").read_bytes().splitlines()

SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.3 Safari/605.1.15"
)


def t(second: int) -> str:
    return f"12/Mar/2024:10:20:{second:02d} +0100"


# One entry per line of apache/combined.log, in order.
EXPECTED: list[dict[str, Any]] = [
    {
        "ts": t(1),
        "client_ip": "192.0.2.33",
        "method": "GET",
        "path": "/index.php?page=contact",
        "status": "200",
        "response_bytes": "7344",
        "headers": {"referer": "https://www.example.com/"},
        "user_agent": SAFARI,
    },
    {  # common log format, authenticated user
        "ts": t(2),
        "client_ip": "192.0.2.34",
        "user": "jdoe",
        "method": "GET",
        "path": "/private/report.pdf",
        "status": "200",
        "response_bytes": "120334",
    },
    {  # %b writes "-" for an empty body
        "ts": t(3),
        "client_ip": "192.0.2.33",
        "method": "GET",
        "path": "/css/site.css",
        "status": "304",
        "headers": {"referer": "https://www.example.com/index.php?page=contact"},
        "user_agent": SAFARI,
    },
    {  # Apache escapes quotes and backslashes with a backslash
        "ts": t(4),
        "client_ip": "203.0.113.80",
        "method": "GET",
        "path": '/search.php?q="+OR+1=1--+',
        "status": "200",
        "response_bytes": "512",
        "user_agent": 'Mozilla/5.0 "compatible" C:\\Tools\\scan.exe',
    },
    {  # request timed out before a request line: "-"
        "ts": t(5),
        "client_ip": "198.51.100.61",
        "status": "408",
    },
    {  # vhost_combined: "%v:%p %h ..."
        "ts": t(6),
        "host": "www.example.com:443",
        "client_ip": "192.0.2.35",
        "method": "POST",
        "path": "/wp-login.php",
        "status": "200",
        "response_bytes": "4532",
        "headers": {"referer": "https://www.example.com/wp-login.php"},
        "user_agent": (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:123.0) Gecko/20100101 Firefox/123.0"
        ),
    },
    {
        "ts": t(7),
        "client_ip": "2001:db8::1f",
        "method": "HEAD",
        "path": "/",
        "status": "200",
    },
    {  # combined + "%{X-Forwarded-For}i"
        "ts": t(8),
        "client_ip": "10.1.0.5",
        "forwarded_for": "192.0.2.140",
        "method": "GET",
        "path": "/api/status",
        "status": "200",
        "response_bytes": "17",
        "user_agent": "kube-probe/1.29",
    },
    {  # C escapes and \xhh for control characters
        "ts": t(9),
        "client_ip": "192.0.2.36",
        "method": "GET",
        "path": "/cgi-bin/test.cgi?a=1\n",
        "status": "404",
        "response_bytes": "196",
        "user_agent": "\x01\x02probe",
    },
    {  # a method outside the common set is still a method
        "ts": t(10),
        "client_ip": "192.0.2.37",
        "method": "PROPFIND",
        "path": "/webdav/",
        "status": "405",
        "response_bytes": "230",
        "user_agent": "Microsoft-WebDAV-MiniRedir/10.0.19045",
    },
    {  # HostnameLookups On: %h is a name; the normaliser decides what to do with it
        "ts": t(11),
        "client_ip": "crawler-192-0-2-50.search.example.net",
        "method": "GET",
        "path": "/robots.txt",
        "status": "200",
        "response_bytes": "68",
        "user_agent": "ExampleBot/2.1 (+https://search.example.net/bot)",
    },
    {  # method case kept as logged
        "ts": t(12),
        "client_ip": "192.0.2.38",
        "method": "get",
        "path": "/index.php",
        "status": "400",
        "response_bytes": "226",
    },
    {  # an unencoded space in the target
        "ts": t(13),
        "client_ip": "192.0.2.39",
        "method": "GET",
        "path": "/files/annual report.pdf",
        "status": "400",
        "response_bytes": "226",
        "user_agent": "Wget/1.21.4",
    },
]


def test_fixture_table_covers_every_line() -> None:
    assert len(LINES) == len(EXPECTED)


@pytest.mark.parametrize(
    ("line", "expected"),
    list(zip(LINES, EXPECTED, strict=True)),
    ids=[f"combined.log:{n}" for n in range(1, len(LINES) + 1)],
)
def test_lines(line: bytes, expected: dict[str, Any]) -> None:
    actual: dict[str, Any] = dict(ApacheCombinedParser().parse(line))
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        assert actual[key] == value, key


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "does not match"),
        (b"-", "does not match"),
        (b'{"remote_addr": "192.0.2.1", "status": 200}', "does not match"),
        (b'["192.0.2.1"]', "does not match"),
        (b"\x16\x03\x01\x00\xf1\x01\x00", "invalid UTF-8"),
        (b"\xff\xfe\xfd", "invalid UTF-8"),
        (LINES[0][:70], "does not match"),
        (b"[Tue Mar 12 10:20:01.123456 2024] [core:error] [pid 42] AH00126", "does not match"),
    ],
)
def test_bad_input_raises_parse_error(line: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        ApacheCombinedParser().parse(line)
