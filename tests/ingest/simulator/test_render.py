from __future__ import annotations

import re
from datetime import datetime

import orjson
import pytest

from ingest.simulator.render import (
    FORMATS,
    RENDERERS,
    backslash_escape,
    nginx_escape,
    render_apache,
    render_envoy,
    render_kong,
    render_nginx,
)
from ingest.simulator.request import SimRequest

QUOTED = r'"((?:[^"\\]|\\.)*)"'
CLF_TIME = r"\[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\]"
REQUEST_LINE = r'"([A-Z]+) (\S+) (HTTP/1\.1|HTTP/2\.0)"'
TEXT_FORMATS: dict[str, re.Pattern[str]] = {
    "envoy": re.compile(
        r"\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\] "
        r'"([A-Z]+) (\S+) (HTTP/1\.1|HTTP/2)" '
        r"(\d{3}) ([A-Z]+|-) (\d+) (\d+) (\d+) (\d+|-) "
        rf"{QUOTED} {QUOTED} "
        r'"([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})" '
        rf'{QUOTED} "(\S+)"'
    ),
    "nginx": re.compile(
        rf"(\S+) - (\S+) {CLF_TIME} {REQUEST_LINE} (\d{{3}}) (\d+) {QUOTED} {QUOTED}"
    ),
    "apache": re.compile(
        rf"(\S+) - (\S+) {CLF_TIME} {REQUEST_LINE} (\d{{3}}) (\d+|-) {QUOTED} {QUOTED}"
    ),
}
JSON_KEYS: dict[str, set[str]] = {
    "canonical": {
        "request_id", "ts", "client_ip", "method", "scheme", "host", "path", "query",
        "status", "latency_ms", "request_bytes", "response_bytes", "user_agent", "user",
        "api_key", "tls_version", "headers",
    },
    "kong": {
        "request", "response", "latencies", "client_ip", "started_at", "route", "service",
        "upstream_uri", "tries", "source", "workspace",
    },
    "envoy-json": {
        "start_time", "method", "path", "protocol", "response_code", "response_flags",
        "bytes_received", "bytes_sent", "duration", "x_forwarded_for", "user_agent",
        "request_id", "authority", "upstream_host", "downstream_remote_address",
    },
    "nginx-json": {
        "time_iso8601", "remote_addr", "remote_user", "request_method", "request_uri",
        "status", "body_bytes_sent", "request_length", "request_time", "http_user_agent",
        "http_referer", "http_x_forwarded_for", "request_id", "host", "scheme", "ssl_protocol",
        "http_authorization", "http_x_api_key",
    },
    "traefik": {
        "ClientAddr", "ClientHost", "ClientUsername", "DownstreamStatus",
        "DownstreamContentSize", "Duration", "RequestMethod", "RequestPath", "RequestHost",
        "RequestScheme", "RequestProtocol", "RequestContentSize", "StartUTC", "RouterName",
        "request_User-Agent",
    },
    "aws-apigw": {
        "requestId", "ip", "requestTime", "requestTimeEpoch", "httpMethod", "routeKey", "path",
        "status", "protocol", "responseLength", "userAgent", "domainName",
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def sample(traffic: list[SimRequest]) -> list[SimRequest]:
    """A few hundred requests with every actor, LB paths, IPv6, errors and bodies."""
    picked = traffic[::50]
    for wanted in (
        lambda r: r.api_key,
        lambda r: ":" in r.client_ip,
        lambda r: "," in r.headers.get("x-forwarded-for", ""),
        lambda r: r.status == 503,
        lambda r: r.status == 504,
        lambda r: r.status == 401,
        lambda r: r.method == "DELETE",
        lambda r: r.actor == "health-probe",
        lambda r: r.actor == "crawler",
    ):
        picked.append(next(r for r in traffic if wanted(r)))
    return picked


def test_the_registry_has_exactly_the_documented_formats() -> None:
    assert set(RENDERERS) == {
        "canonical", "kong", "envoy", "envoy-json", "nginx", "nginx-json", "apache", "traefik",
        "aws-apigw",
    }  # fmt: skip
    assert tuple(RENDERERS) == FORMATS


@pytest.mark.parametrize("name", FORMATS)
def test_lines_are_single_lines_of_bytes(name: str, sample: list[SimRequest]) -> None:
    for request in sample:
        line = RENDERERS[name](request)
        assert isinstance(line, bytes)
        assert b"\n" not in line
        assert b"\r" not in line


@pytest.mark.parametrize("name", sorted(TEXT_FORMATS))
def test_text_lines_match_their_format(name: str, sample: list[SimRequest]) -> None:
    for request in sample:
        line = RENDERERS[name](request).decode("ascii")
        assert TEXT_FORMATS[name].fullmatch(line), line


@pytest.mark.parametrize("name", sorted(JSON_KEYS))
def test_json_lines_parse_and_carry_their_keys(name: str, sample: list[SimRequest]) -> None:
    for request in sample:
        obj = orjson.loads(RENDERERS[name](request))
        assert JSON_KEYS[name] <= set(obj), JSON_KEYS[name] - set(obj)


def test_canonical_line_holds_the_request(sample: list[SimRequest]) -> None:
    for r in sample:
        obj = orjson.loads(RENDERERS["canonical"](r))
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", obj["ts"])
        ts = datetime.fromisoformat(obj["ts"]).timestamp()
        assert ts <= r.ts < ts + 0.001
        assert (obj["client_ip"], obj["status"], obj["path"]) == (r.client_ip, r.status, r.path)
        assert obj["headers"] == dict(r.headers)


def test_kong_logs_consumers_for_keys_and_raw_credentials(sample: list[SimRequest]) -> None:
    partner = next(r for r in sample if r.api_key)
    obj = orjson.loads(render_kong(partner))
    assert obj["consumer"]["username"] == partner.user
    assert obj["request"]["headers"]["x-api-key"] == partner.api_key
    assert obj["started_at"] == int(partner.ts * 1000)
    user = next(r for r in sample if "authorization" in r.headers)
    obj = orjson.loads(render_kong(user))
    assert "consumer" not in obj
    assert obj["request"]["headers"]["authorization"] == user.headers["authorization"]
    latencies = obj["latencies"]
    assert latencies["request"] == latencies["kong"] + latencies["proxy"]


def test_kong_querystring_is_decoded(traffic: list[SimRequest]) -> None:
    search = next(r for r in traffic if r.query.startswith("q=men%27s"))
    assert orjson.loads(render_kong(search))["request"]["querystring"]["q"] == "men's shoes"


def test_envoy_flags_requests_no_upstream_answered(sample: list[SimRequest]) -> None:
    unavailable = next(r for r in sample if r.status == 503)
    assert '" 503 UH ' in render_envoy(unavailable).decode()
    timed_out = next(r for r in sample if r.status == 504)
    assert '" 504 UT ' in render_envoy(timed_out).decode()


def test_envoy_forwarded_for_ends_with_the_peer(sample: list[SimRequest]) -> None:
    for r in sample:
        forwarded = orjson.loads(RENDERERS["envoy-json"](r))["x_forwarded_for"]
        assert forwarded.split(", ")[-1] == r.peer_ip


def test_aws_uses_route_templates_and_string_values(sample: list[SimRequest]) -> None:
    for r in sample:
        obj = orjson.loads(RENDERERS["aws-apigw"](r))
        assert obj["routeKey"] == f"{r.method} {r.route}"
        assert all(isinstance(value, str) for value in obj.values())
        assert re.fullmatch(r"[A-Za-z0-9+/]{15}=", obj["requestId"])


HOSTILE = 'Mozilla/5.0 "quoted"\n\\ café'


def test_text_formats_escape_quotes_and_control_characters(traffic: list[SimRequest]) -> None:
    request = traffic[0]._replace(user_agent=HOSTILE)
    nginx = render_nginx(request).decode("ascii")
    assert nginx.endswith('"Mozilla/5.0 \\x22quoted\\x22\\x0A\\x5C caf\\xC3\\xA9"')
    apache = render_apache(request).decode("ascii")
    assert apache.endswith('"Mozilla/5.0 \\"quoted\\"\\n\\\\ caf\\xc3\\xa9"')
    for name, pattern in TEXT_FORMATS.items():
        assert pattern.fullmatch(RENDERERS[name](request).decode("ascii")), name


@pytest.mark.parametrize(
    ("text", "nginx", "apache"),
    [
        ("plain /api/v1?q=a+b", "plain /api/v1?q=a+b", "plain /api/v1?q=a+b"),
        ('"', "\\x22", '\\"'),
        ("\\", "\\x5C", "\\\\"),
        ("\t\x7f", "\\x09\\x7F", "\\t\\x7f"),
    ],
)
def test_escapers(text: str, nginx: str, apache: str) -> None:
    assert nginx_escape(text) == nginx
    assert backslash_escape(text) == apache
