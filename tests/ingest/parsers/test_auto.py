from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from gatewatch.errors import ParseError
from ingest.parsers import FORMATS, auto
from ingest.parsers.auto import AutoParser
from ingest.parsers.base import RawEvent
from ingest.parsers.clf import parse_combined

FIXTURES = Path(__file__).parents[2] / "fixtures" / "formats"
NGINX_JSON = (FIXTURES / "nginx" / "json.log").read_bytes().splitlines()[0]
NGINX_TEXT = (FIXTURES / "nginx" / "combined.log").read_bytes().splitlines()[3]
APACHE_TEXT = (FIXTURES / "apache" / "combined.log").read_bytes().splitlines()[0]
APACHE_COMMON = (FIXTURES / "apache" / "combined.log").read_bytes().splitlines()[1]
CANONICAL = (FIXTURES / "canonical" / "events.jsonl").read_bytes().splitlines()[0]

# Small lines of the formats whose parsers live in their own modules, written from each
# format's documentation.
KONG = (
    b'{"request":{"method":"POST","uri":"/v1/login","url":"https://api.example.com/v1/login",'
    b'"size":312,"querystring":{},"headers":{"host":"api.example.com",'
    b'"user-agent":"python-requests/2.31.0"}},"response":{"status":401,"size":198,'
    b'"headers":{"content-type":"application/json"}},"latencies":{"kong":2,"proxy":31,'
    b'"request":34},"client_ip":"203.0.113.42","started_at":1710236400123,'
    b'"service":{"name":"auth"},"upstream_uri":"/v1/login"}'
)
ENVOY_JSON = (
    b'{"start_time":"2024-03-12T09:50:00.123Z","method":"GET","path":"/v1/items?limit=10",'
    b'"protocol":"HTTP/1.1","response_code":200,"response_flags":"-","bytes_received":0,'
    b'"bytes_sent":1289,"duration":12,"upstream_service_time":"10",'
    b'"x_forwarded_for":"203.0.113.42","user_agent":"curl/8.6.0",'
    b'"request_id":"b1c9a7e2-3f5d-4e8a-9b0c-1d2e3f4a5b6c","authority":"api.example.com",'
    b'"upstream_host":"10.0.7.3:8080","downstream_remote_address":"10.0.3.4:51234"}'
)
ENVOY_TEXT = (
    b'[2024-03-12T09:50:01.456Z] "POST /v1/orders HTTP/1.1" 201 - 312 88 41 39 "203.0.113.42"'
    b' "ExampleApp/5.2" "5e0c9b1a-7d2f-4c3e-8a9b-0f1e2d3c4b5a" "api.example.com"'
    b' "10.0.7.3:8080"'
)
TRAEFIK = (
    b'{"ClientAddr":"203.0.113.42:50412","ClientHost":"203.0.113.42","ClientPort":"50412",'
    b'"ClientUsername":"-","DownstreamContentSize":512,"DownstreamStatus":200,'
    b'"Duration":12450000,"OriginStatus":200,"RequestHost":"api.example.com",'
    b'"RequestMethod":"GET","RequestPath":"/v1/items/42","RequestProtocol":"HTTP/2.0",'
    b'"RequestScheme":"https","RouterName":"api@docker",'
    b'"StartUTC":"2024-03-12T09:50:02.789012345Z","TLSVersion":"1.3","level":"info"}'
)
AWS_HTTP = (
    b'{"requestId":"UqYkbg6ZoAMEb2A=","ip":"203.0.113.42",'
    b'"requestTime":"12/Mar/2024:09:50:03 +0000","httpMethod":"GET","routeKey":"GET /v1/items",'
    b'"status":"200","protocol":"HTTP/1.1","responseLength":"734"}'
)
AWS_REST = (
    b'{"requestId":"3c1e2f6a-8b7d-4e9c-a0f1-2b3c4d5e6f70","ip":"198.51.100.9","caller":"-",'
    b'"user":"-","requestTime":"12/Mar/2024:09:50:04 +0000","httpMethod":"POST",'
    b'"resourcePath":"/pets","status":"201","protocol":"HTTP/1.1","responseLength":"57"}'
)
AWS_RESOURCE = (
    b'{"requestId":"3c1e2f6a-8b7d-4e9c-a0f1-2b3c4d5e6f71","ip":"198.51.100.9",'
    b'"resourcePath":"/pets/{petId}","status":"200"}'
)
AWS_EPOCH = (
    b'{"requestId":"UqYkbg6ZoAMEb2B=","sourceIp":"203.0.113.42","requestTimeEpoch":1710236403,'
    b'"path":"/v1/items","statusCode":200}'
)

# (line, format name in FORMATS) for every format auto can tell apart.
SAMPLES: list[tuple[str, bytes, str]] = [
    ("canonical", CANONICAL, "canonical"),
    ("kong", KONG, "kong"),
    ("envoy-json", ENVOY_JSON, "envoy"),
    ("envoy-text", ENVOY_TEXT, "envoy"),
    ("envoy-text-emissary", b"ACCESS " + ENVOY_TEXT, "envoy"),
    ("traefik", TRAEFIK, "traefik"),
    ("aws-http-api", AWS_HTTP, "aws-apigw"),
    ("aws-rest-api", AWS_REST, "aws-apigw"),
    ("aws-epoch", AWS_EPOCH, "aws-apigw"),
    ("aws-resource-path", AWS_RESOURCE, "aws-apigw"),
    ("nginx-json", NGINX_JSON, "nginx"),
    ("nginx-json-dollar-keys", b'{"$remote_addr":"192.0.2.1","$status":200}', "nginx"),
    ("nginx-combined", NGINX_TEXT, "nginx"),
    ("apache-combined", APACHE_TEXT, "apache"),
    ("apache-common", APACHE_COMMON, "apache"),
]


def _fake(format_name: str, *, with_object: bool = True) -> type[Any]:
    """A stand-in parser that reports which format and which entry point was used."""

    class LineOnly:
        name: ClassVar[str] = format_name

        def parse(self, line: bytes) -> RawEvent:
            return {"request_id": f"{format_name}:line"}

    class WithObject(LineOnly):
        def from_object(self, obj: dict[str, Any]) -> RawEvent:
            return {"request_id": f"{format_name}:object"}

    return WithObject if with_object else LineOnly


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> AutoParser:
    """An AutoParser whose JSON parsers are stand-ins that name themselves."""
    for attribute, format_name in [
        ("CanonicalParser", "canonical"),
        ("KongParser", "kong"),
        ("EnvoyParser", "envoy"),
        ("TraefikParser", "traefik"),
        ("AwsApiGatewayParser", "aws-apigw"),
        ("NginxParser", "nginx"),
    ]:
        monkeypatch.setattr(auto, attribute, _fake(format_name))
    return AutoParser()


@pytest.mark.parametrize(
    ("line", "format_name"),
    [pytest.param(line, name, id=case) for case, line, name in SAMPLES],
)
def test_detects_the_format(routed: AutoParser, line: bytes, format_name: str) -> None:
    raw = routed.parse(line)
    if line.startswith(b"{"):
        # JSON is decoded once: the chosen parser gets the object, not the line.
        assert raw == {"request_id": f"{format_name}:object"}
    elif line.startswith((b"[", b"ACCESS [")):
        assert raw == {"request_id": f"{format_name}:line"}
    else:  # combined and common are one format for NGINX and Apache alike
        assert raw == parse_combined(line)


def test_parser_without_from_object_gets_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auto, "KongParser", _fake("kong", with_object=False))
    assert AutoParser().parse(KONG) == {"request_id": "kong:line"}


@pytest.mark.parametrize(
    ("line", "format_name"),
    [pytest.param(line, name, id=case) for case, line, name in SAMPLES],
)
def test_same_fields_as_the_format_parser(line: bytes, format_name: str) -> None:
    expected = FORMATS[format_name]().parse(line)
    assert AutoParser().parse(line) == expected


def test_nginx_json_with_bytes_not_utf8_is_still_nginx() -> None:
    line = b'{"remote_addr":"192.0.2.1","status":"200","http_user_agent":"x\xff"}'
    assert AutoParser().parse(line) == FORMATS["nginx"]().parse(line)
    assert AutoParser().parse(line)["user_agent"] == "x\ufffd"


def test_other_json_with_bytes_not_utf8_is_rejected() -> None:
    with pytest.raises(ParseError, match="not JSON"):
        AutoParser().parse(b'{"ts":1710236403000,"path":"/\xff","status":200}')


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "empty line"),
        (b"   ", "empty line"),
        (b"{", "not JSON"),
        (b'{"ts": 1710236403000, "path": "/v1/items", "sta', "not JSON"),
        (b'{"remote_addr": "192.0.2.1"}{', "not JSON"),
        (b'{"message": "worker started", "level": "info"}', "unrecognised log format: JSON"),
        (b"{}", "unrecognised log format: JSON object with keys none"),
        (b'"just a string"', "unrecognised log format: text"),
        (b"\x00\x01\x02\x03", "unrecognised log format: text"),
        (b"\xff\xfe\xfd", "invalid UTF-8 at byte 0"),
        (b"Mar 12 09:50:04 host sshd[42]: Failed password for root", "unrecognised log format"),
        (APACHE_TEXT[:80], "unrecognised log format: text"),
    ],
)
def test_bad_input_raises_parse_error(line: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        AutoParser().parse(line)


def test_json_array_goes_to_envoy_text_and_is_rejected() -> None:
    with pytest.raises(ParseError):
        AutoParser().parse(b'[{"ts": 1}]')


def test_unrecognised_json_hint_is_short() -> None:
    keys = ",".join(f'"k{i}{"x" * 60}": {i}' for i in range(20))
    with pytest.raises(ParseError) as caught:
        AutoParser().parse(b"{" + keys.encode() + b"}")
    assert caught.value.reason.endswith(", ...")
    assert len(caught.value.reason) < 300


def test_leading_whitespace_is_tolerated() -> None:
    assert AutoParser().parse(b"  " + CANONICAL) == AutoParser().parse(CANONICAL)
    assert AutoParser().parse(b"\t" + APACHE_TEXT) == parse_combined(APACHE_TEXT)
