"""Format detection, line by line, for sources that mix formats or are not declared.

JSON lines (first byte ``{``) are decoded once and told apart by keys that only one
format writes, checked in this order:

============  ==============================================================
canonical     ``ts``, ``path`` and ``status``
kong          ``started_at``, ``request`` and ``response``
traefik       any of ``DownstreamStatus``, ``ClientHost``, ``StartUTC``
aws-apigw     ``requestId`` with any of ``httpMethod``, ``routeKey``,
              ``resourcePath``, ``requestTime``, ``requestTimeEpoch``
envoy         any of ``response_code``, ``downstream_remote_address``,
              ``response_flags``, ``start_time``
nginx         any of ``remote_addr``, ``time_iso8601``, ``time_local``,
              ``request_uri``, ``body_bytes_sent`` (or these with a ``$``)
============  ==============================================================

The object goes to the chosen parser's ``from_object`` when it has one
(``ingest.parsers.base.ObjectParser``), else the line goes to its ``parse``.

Text lines starting with ``[`` (or Emissary-ingress's ``ACCESS [``) are Envoy's default
format; other text lines must be combined or common log format (NGINX, Apache, and
anything else writing it, such as API Gateway's CLF template or Traefik's common
format, whose trailing fields are then ignored). A user's
``mapping:NAME`` format is never guessed: it has to be declared.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from gatewatch.errors import ParseError
from ingest.parsers.aws_apigw import AwsApiGatewayParser
from ingest.parsers.base import (
    ObjectParser,
    Parser,
    RawEvent,
    decode_text,
    load_json_object,
    load_lenient_json_object,
)
from ingest.parsers.canonical import CanonicalParser
from ingest.parsers.clf import match_combined
from ingest.parsers.envoy import EnvoyParser
from ingest.parsers.kong import KongParser
from ingest.parsers.nginx import MARKER_KEYS, NginxParser
from ingest.parsers.traefik import TraefikParser

_ObjectReader = Callable[[dict[str, Any], bytes], RawEvent]
_NGINX_MARKERS = MARKER_KEYS | {"$" + key for key in MARKER_KEYS}


class AutoParser:
    """Detects the format of each line and delegates to that format's parser.

    >>> parser = AutoParser()
    >>> parser.parse(b'{"ts": "2023-11-14T22:13:20Z", "client_ip": "192.0.2.1",'
    ...     b' "path": "/health", "status": 200}')["path"]
    '/health'
    >>> parser.parse(b'192.0.2.1 - - [14/Nov/2023:22:13:20 +0000] "GET /health HTTP/1.1"'
    ...     b' 200 2')["status"]
    '200'
    >>> parser.parse(b'{"message": "started"}')
    Traceback (most recent call last):
    ...
    gatewatch.errors.ParseError: unrecognised log format: JSON object with keys 'message'
    """

    name: ClassVar[str] = "auto"

    def __init__(self) -> None:
        self._canonical = _object_reader(CanonicalParser())
        self._kong = _object_reader(KongParser())
        self._traefik = _object_reader(TraefikParser())
        self._aws = _object_reader(AwsApiGatewayParser())
        self._envoy = _object_reader(EnvoyParser())
        self._nginx = NginxParser()
        self._envoy_text = EnvoyParser().parse

    def parse(self, line: bytes) -> RawEvent:
        first = line[:1]
        if first == b"{":
            return self._json(line)
        if first == b"[":
            return self._envoy_text(line)
        if first in (b" ", b"\t"):
            return self.parse(line.lstrip())
        if not first:
            raise ParseError("empty line")
        if first == b"A" and line.startswith(b"ACCESS ["):
            return self._envoy_text(line)
        raw = match_combined(decode_text(line))
        if raw is None:
            raise ParseError(
                "unrecognised log format: text line is neither combined/common log format"
                " nor Envoy's default"
            )
        return raw

    def _json(self, line: bytes) -> RawEvent:
        try:
            obj = load_json_object(line)
        except ParseError as exc:
            # NGINX's escape=json writes bytes that are not UTF-8 as they came; such a
            # line is still NGINX's, and parsed as ``--format nginx`` would parse it.
            try:
                lenient = load_lenient_json_object(line)
            except ParseError:
                raise exc from None
            if _NGINX_MARKERS.isdisjoint(lenient):
                raise exc from None
            return self._nginx.from_object(lenient)
        if "ts" in obj and "path" in obj and "status" in obj:
            return self._canonical(obj, line)
        if "started_at" in obj and "request" in obj and "response" in obj:
            return self._kong(obj, line)
        if "DownstreamStatus" in obj or "ClientHost" in obj or "StartUTC" in obj:
            return self._traefik(obj, line)
        if "requestId" in obj and (
            "httpMethod" in obj
            or "routeKey" in obj
            or "resourcePath" in obj
            or "requestTime" in obj
            or "requestTimeEpoch" in obj
        ):
            return self._aws(obj, line)
        if (
            "response_code" in obj
            or "downstream_remote_address" in obj
            or "response_flags" in obj
            or "start_time" in obj
        ):
            return self._envoy(obj, line)
        if not _NGINX_MARKERS.isdisjoint(obj):
            return self._nginx.from_object(obj)
        keys = ", ".join(repr(key[:40]) for key in list(obj)[:5])
        more = ", ..." if len(obj) > 5 else ""
        raise ParseError(f"unrecognised log format: JSON object with keys {keys or 'none'}{more}")


def _object_reader(parser: Parser) -> _ObjectReader:
    """How to hand a decoded line to ``parser``: its object, or the line again."""
    if isinstance(parser, ObjectParser):
        from_object = parser.from_object
        return lambda obj, _line: from_object(obj)
    parse = parser.parse
    return lambda _obj, line: parse(line)
