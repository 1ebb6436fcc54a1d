"""The parser contract: one log line in, a ``RawEvent`` out, or a ``ParseError``.

A parser only *reads* its format: it maps the format's own field names onto the
``RawEvent`` keys below and leaves values as the log wrote them (strings, numbers,
epoch or text timestamps). Type coercion, time zones, client-IP resolution, route
templates and secret masking happen once, in ``ingest.normalise.Normaliser``.

A parser raises ``ParseError`` with a short, storable reason ("not JSON", "missing
field 'status'", "line does not match the Envoy default format") when the line is
not of its format; it never logs, never returns partial garbage and never raises
anything else on bad input.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, TypedDict, runtime_checkable

import orjson

from gatewatch.errors import ParseError


class RawEvent(TypedDict, total=False):
    """Fields as a log line carries them, under canonical names.

    ``ts``: RFC 3339 text, CLF text (``10/Oct/2000:13:55:36 -0700``) or an epoch number
    (seconds, milliseconds, microseconds or nanoseconds; told apart by magnitude).
    ``client_ip``: the peer address the gateway saw (may carry a port).
    ``forwarded_for`` / ``forwarded``: X-Forwarded-For / Forwarded header values.
    ``path``: the request path, possibly still with ``?query``.
    ``api_key``: a raw API key (a secret: it will be fingerprinted).
    ``api_key_id``: a gateway's identifier for the key (not a secret).
    ``authorization``, ``cookie``: raw header values (secrets: fingerprinted; a bearer
    JWT's ``sub`` becomes the user when no user is logged).
    ``headers``: other logged request headers (any case; normalised to lower case).
    ``route``: a route template the gateway itself declares (``/pets/{petId}``).
    """

    request_id: Any
    ts: Any
    client_ip: Any
    forwarded_for: Any
    forwarded: Any
    method: Any
    scheme: Any
    host: Any
    path: Any
    query: Any
    status: Any
    latency_ms: Any
    request_bytes: Any
    response_bytes: Any
    user_agent: Any
    user: Any
    api_key: Any
    api_key_id: Any
    authorization: Any
    cookie: Any
    tls_version: Any
    body: Any
    headers: Any
    route: Any


class Parser(Protocol):
    """Reads one log format. Instances are cheap, stateless and thread-safe."""

    name: ClassVar[str]

    def parse(self, line: bytes) -> RawEvent:
        """Return the fields of ``line`` or raise ``ParseError``."""
        ...


@runtime_checkable
class ObjectParser(Parser, Protocol):
    """A JSON format's parser that can also read an object already decoded.

    ``AutoParser`` decodes a JSON line once to tell the formats apart, then hands the
    object to the chosen parser's ``from_object``; formats without it get the line
    again through ``parse``. For a JSON line, ``parse(line)`` and
    ``from_object(load_json_object(line))`` return the same fields.
    """

    def from_object(self, obj: dict[str, Any]) -> RawEvent:
        """Return the fields of a decoded JSON line or raise ``ParseError``."""
        ...


def load_json_object(line: bytes | str) -> dict[str, Any]:
    """Decode a JSON object line, or raise ``ParseError`` with a storable reason.

    >>> load_json_object(b'{"a": 1}')
    {'a': 1}
    >>> load_json_object(b'[1]')
    Traceback (most recent call last):
    ...
    gatewatch.errors.ParseError: JSON value is not an object
    """
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ParseError("JSON value is not an object")
    return value


def decode_text(line: bytes) -> str:
    """Decode a text log line as UTF-8, or raise ``ParseError`` naming the bad byte."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"invalid UTF-8 at byte {exc.start}") from None


def dig(obj: Any, dotted: str) -> Any:
    """Follow a dotted path through nested objects; ``None`` when any step is missing.

    >>> dig({"request": {"headers": {"host": "api"}}}, "request.headers.host")
    'api'
    >>> dig({"request": None}, "request.headers.host") is None
    True
    """
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
        if obj is None:
            return None
    return obj


def absent(value: Any) -> bool:
    """True for the placeholders logs write for "no value": None, "", "-"."""
    return value is None or value in ("", "-")


ABSENT: tuple[None, str, str] = (None, "", "-")
"""What logs write for "no value" (``absent`` as a tuple test that costs no call)."""


def pick_first(
    obj: dict[str, Any], table: tuple[tuple[str, tuple[str, ...]], ...], into: dict[str, Any]
) -> None:
    """For each ``(key, names)`` of ``table``, copy the first present ``obj[name]`` to
    ``into[key]``, unless ``into`` already has ``key``. Formats spell one field several
    ways (AWS's examples, Envoy's json_format, NGINX variables); the table lists them
    in order of preference.

    >>> out: dict[str, Any] = {}
    >>> table = (("client_ip", ("ip", "sourceIp")),)
    >>> pick_first({"ip": "-", "sourceIp": "198.51.100.1"}, table, out)
    >>> out
    {'client_ip': '198.51.100.1'}
    """
    get = obj.get
    for key, names in table:
        if key in into:
            continue
        for name in names:
            value = get(name)
            if value not in ABSENT:
                into[key] = value
                break


def load_lenient_json_object(line: bytes) -> dict[str, Any]:
    """Decode a JSON object line, replacing bytes that are not UTF-8 with U+FFFD.

    NGINX ``escape=json``, Kong's encoder and Envoy write header bytes through raw, so
    one odd byte in a client's User-Agent must not cost the whole request.

    >>> load_lenient_json_object(b'{"http_user_agent": "x\\xff"}')
    {'http_user_agent': 'x\ufffd'}
    """
    try:
        return load_json_object(line)
    except ParseError:
        if _is_utf8(line):
            raise
    return load_json_object(line.decode("utf-8", "replace"))


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
