"""Envoy access logs: the default text format, Istio's text format, and JSON.

Each line is read as JSON when its first non-space byte is ``{``, else as text.

Text: Envoy's default format string::

    [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%"
    %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
    %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
    "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"

also with Emissary-ingress's ``ACCESS`` prefix, and Istio's (1.8 and later), which adds
``%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%
"%UPSTREAM_TRANSPORT_FAILURE_REASON%"`` after the response flags and ``%UPSTREAM_CLUSTER%
%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%
%REQUESTED_SERVER_NAME% %ROUTE_NAME%`` at the end. Read: start time -> ``ts``; method,
path (with its query), response code -> ``status``; bytes received / sent ->
``request_bytes`` / ``response_bytes``; duration (ms) -> ``latency_ms``;
X-Forwarded-For -> ``forwarded_for``; user agent; X-Request-Id -> ``request_id``;
authority -> ``host``; and, in Istio's format, the downstream remote address ->
``client_ip``. Envoy's default format logs no peer address: without Istio's fields the
client comes from X-Forwarded-For alone. Values stay text, ``-`` leaves its key out (a
TCP proxy line, ``"- - -"``, has no method or path).

Envoy does not escape what it logs. A quote inside the client-controlled fields
(X-Forwarded-For, user agent, request id, authority) is kept as content unless it is
followed by `` "``, which is where the next field starts; the expression stays linear in
the line length however many quotes a client sends. Bytes that are not UTF-8 become
``\\xHH`` text in a text line and U+FFFD in a JSON line, so that one such byte in a
header does not hide the request.

JSON (``json_format``), with the key names of Envoy's and Istio's examples (the first
present of several wins): ``start_time`` -> ``ts``; ``downstream_remote_address``, else
``downstream_direct_remote_address`` -> ``client_ip``; ``x_forwarded_for`` ->
``forwarded_for``; ``method``; ``path``; ``response_code`` -> ``status``;
``bytes_received`` / ``bytes_sent`` -> ``request_bytes`` / ``response_bytes``;
``duration`` -> ``latency_ms``; ``user_agent``; ``request_id``; ``authority`` -> ``host``;
``downstream_tls_version`` -> ``tls_version``. An object with none of ``start_time``,
``response_code``, ``response_flags``, ``downstream_remote_address`` is not Envoy's.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, cast

from gatewatch.errors import ParseError
from ingest.parsers.base import RawEvent, load_lenient_json_object, pick_first

# A quoted field's content when the next field is quoted too: a quote belongs to the
# content unless `` "`` follows it, so every character has exactly one reading (runs
# of other characters are taken whole, which is what keeps this fast).
_QUOTED = r'([^"]*(?:"(?! ")[^"]*)*)'

DEFAULT_FORMAT: re.Pattern[str] = re.compile(
    r"(?:ACCESS )?"  # Emissary-ingress prefix
    r"\[([^\]]+)\] "  # 1 START_TIME
    r'"(\S+) (\S+) (\S+)" '  # 2 method, 3 path, 4 protocol
    r"(\d+|-) (\S+)"  # 5 RESPONSE_CODE, 6 RESPONSE_FLAGS
    r'(?: \S+ \S+ "[^"]*")?'  # Istio: code details, termination details, "failure"
    r" (\d+|-) (\d+|-) (\d+|-) \S+ "  # 7 BYTES_RECEIVED, 8 BYTES_SENT, 9 DURATION
    rf'"{_QUOTED}" "{_QUOTED}" "{_QUOTED}" "{_QUOTED}" '  # 10 XFF, 11 UA, 12 id, 13 authority
    r'"[^"]*"'  # UPSTREAM_HOST
    r"(?: \S+ \S+ \S+ (\S+) \S+ \S+)?"  # Istio: 14 DOWNSTREAM_REMOTE_ADDRESS among six
    r"\s*"
)

# RawEvent key -> the text format's group, in DEFAULT_FORMAT's numbering.
_TEXT_GROUPS: tuple[tuple[str, int], ...] = (
    ("method", 2),
    ("path", 3),
    ("status", 5),
    ("request_bytes", 7),
    ("response_bytes", 8),
    ("latency_ms", 9),
    ("forwarded_for", 10),
    ("user_agent", 11),
    ("request_id", 12),
    ("host", 13),
    ("client_ip", 14),
)

# RawEvent key -> json_format keys holding it, first present wins.
_JSON_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ts", ("start_time",)),
    ("client_ip", ("downstream_remote_address", "downstream_direct_remote_address")),
    ("forwarded_for", ("x_forwarded_for",)),
    ("method", ("method",)),
    ("path", ("path",)),
    ("status", ("response_code",)),
    ("request_bytes", ("bytes_received",)),
    ("response_bytes", ("bytes_sent",)),
    ("latency_ms", ("duration",)),
    ("user_agent", ("user_agent",)),
    ("request_id", ("request_id",)),
    ("host", ("authority",)),
    ("tls_version", ("downstream_tls_version",)),
)


class EnvoyParser:
    """Parses Envoy access log lines, text or JSON.

    >>> parser = EnvoyParser()
    >>> raw = parser.parse(b'[2023-11-14T22:13:20.125Z] "GET /v1/items?page=2 HTTP/1.1" 200 -'
    ...     b' 0 512 12 10 "198.51.100.23" "curl/8.4.0" "5f1c" "api.example.com"'
    ...     b' "10.0.0.7:8080"')
    >>> raw["ts"], raw["path"], raw["status"], raw["latency_ms"], raw["forwarded_for"]
    ('2023-11-14T22:13:20.125Z', '/v1/items?page=2', '200', '12', '198.51.100.23')
    >>> parser.parse(b'{"start_time": "2023-11-14T22:13:20.125Z", "response_code": 404,'
    ...     b' "downstream_remote_address": "198.51.100.23:41234", "path": "/.env"}')["status"]
    404
    """

    name: ClassVar[str] = "envoy"

    def parse(self, line: bytes) -> RawEvent:
        first = line[:1]
        if first in (b" ", b"\t"):
            line = line.lstrip()
            first = line[:1]
        if first == b"{":
            return self.from_object(load_lenient_json_object(line))
        match = DEFAULT_FORMAT.fullmatch(_decode(line))
        if match is None:
            raise ParseError("line does not match the Envoy default or Istio text format")
        groups = match.groups()
        fields: dict[str, Any] = {"ts": groups[0]}
        for key, index in _TEXT_GROUPS:
            value = groups[index - 1]
            if value and value != "-":
                fields[key] = value
        return cast("RawEvent", fields)

    def from_object(self, obj: dict[str, Any]) -> RawEvent:
        """The fields of an already decoded ``json_format`` line."""
        if (
            "start_time" not in obj
            and "response_code" not in obj
            and "response_flags" not in obj
            and "downstream_remote_address" not in obj
        ):
            raise ParseError(
                "not an Envoy access log: none of start_time, response_code,"
                " response_flags, downstream_remote_address"
            )
        fields: dict[str, Any] = {}
        pick_first(obj, _JSON_FIELDS, fields)
        return cast("RawEvent", fields)


def _decode(line: bytes) -> str:
    """The text of a line; bytes that are not UTF-8 become ``\\xHH`` text.

    Envoy writes header values as the client sent them, so one stray byte in a user
    agent must not cost the whole line (and hide the request from detection).

    >>> _decode(b'"curl/8\\xff"')
    '"curl/8\\\\xff"'
    """
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("utf-8", "backslashreplace")
