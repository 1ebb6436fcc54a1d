"""The NCSA combined log format, shared by NGINX ``combined`` and Apache combined.

Apache writes it as ``%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"``; NGINX's
``combined`` is the same layout (``$remote_addr - $remote_user [$time_local] "$request"
$status $body_bytes_sent "$http_referer" "$http_user_agent"``)::

    203.0.113.7 - alice [14/Nov/2023:22:13:20 +0000] "GET /v1/items HTTP/1.1" 200 512 "-" "curl/8"

One expression (compiled in a fast and an escape-aware variant, see ``COMBINED``) reads,
in this order:

* an optional leading virtual host (Apache ``vhost_combined``'s ``%v:%p``, or NGINX
  formats that start with ``$host``) -> ``host``, as logged (it may carry a port);
* the client address (IPv4, IPv6 or a hostname) -> ``client_ip``; the identd field,
  which must be ``-`` (NGINX writes a literal ``-``; Apache's ``IdentityCheck`` is
  obsolete) so that a remote user may contain spaces, as Basic-auth names can;
* the remote user -> ``user`` (a client cannot forge the fields after it: both servers
  escape the quotes it would need); the time text as logged -> ``ts``;
* the request line -> ``method`` and ``path`` (``path`` keeps any ``?query``: the
  normaliser splits it; the protocol is dropped);
* status -> ``status`` and body bytes -> ``response_bytes``, as strings;
* optionally referer (quoted, or a bare ``-``) and user agent: without them the line is
  the common log format; the referer goes to ``headers["referer"]``;
* optionally a third quoted field, the X-Forwarded-For of NGINX's stock ``main``
  format -> ``forwarded_for`` (the normaliser believes it only from trusted proxies);
* and ignores anything after that (request times, upstream fields, Traefik's
  router and duration), whose meaning and units vary by setup.

Quoted fields may contain escapes: Apache writes ``\\"`` and ``\\\\``, both write
``\\xHH`` for control and non-ASCII bytes, Apache also C escapes such as ``\\n``. They are
decoded (bytes that are not UTF-8 stay as ``\\xHH`` text), just as a JSON parser decodes
JSON escapes, so every format hands detectors the same text.

A request line that is not ``METHOD TARGET [PROTOCOL]`` (``-``, empty, or the binary of
a TLS handshake sent to a plain-HTTP port) is still a valid line of this format: the
event keeps its time, client, status and sizes, and has no ``method`` or ``path``
(whether an event without a path is stored is the normaliser's decision).
Placeholders (``-``, empty) leave their key out.
"""

from __future__ import annotations

import re
from typing import Any, cast

from gatewatch.errors import ParseError
from ingest.parsers.base import RawEvent, decode_text


def _combined(quoted: str) -> re.Pattern[str]:
    return re.compile(
        r"(?:(\S+) )??"  # 1 virtual host, rarely present: tried last
        r"(\S+) - "  # 2 client address; identd is always "-"
        r"(.+?) "  # 3 remote user (Basic-auth names may contain spaces)
        r"\[([^\[\]]+)\] "  # 4 time (no brackets: a user name cannot end early)
        rf'"({quoted})" '  # 5 request line
        r"(\d{3}|-) "  # 6 status
        r"(\d+|-)"  # 7 body bytes
        rf'(?: (?:"({quoted})"|-) "({quoted})"'  # 8 referer, 9 user agent
        rf'(?: "({quoted})")?)?',  # 10 X-Forwarded-For
        re.DOTALL,
    )


# Quoted fields hold no bare quote; only Apache writes escaped ones (\"), so lines
# without that pair take a pattern about three times faster than the escape-aware one.
COMBINED: re.Pattern[str] = _combined(r'[^"]*')
COMBINED_ESCAPED: re.Pattern[str] = _combined(r'[^"\\]*(?:\\.[^"\\]*)*')

_KNOWN_METHODS = frozenset(
    ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE")
)
# An RFC 9110 token, bounded: anything else is not a method.
_METHOD = re.compile(r"[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,31}")

_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|.)", re.DOTALL)
_C_ESCAPES = {
    '"': b'"',
    "\\": b"\\",
    "n": b"\n",
    "r": b"\r",
    "t": b"\t",
    "b": b"\b",
    "v": b"\v",
    "f": b"\f",
}


def parse_combined(line: bytes) -> RawEvent:
    """The fields of one combined (or common) log line, or ``ParseError``.

    >>> raw = parse_combined(b'2001:db8::7 - - [14/Nov/2023:22:13:20 +0000] '
    ...     b'"POST /v1/login HTTP/1.1" 401 38 "-" "python-requests/2.31.0"')
    >>> raw["client_ip"], raw["method"], raw["path"], raw["status"]
    ('2001:db8::7', 'POST', '/v1/login', '401')
    """
    raw = match_combined(decode_text(line))
    if raw is None:
        raise ParseError("line does not match the combined log format")
    return raw


def match_combined(text: str) -> RawEvent | None:
    """The fields of a decoded combined or common log line; ``None`` if it is not one."""
    match = (COMBINED_ESCAPED if '\\"' in text else COMBINED).match(text)
    if match is None:
        return None
    vhost, client, user, ts, request, status, size, referer, agent, xff = match.groups()
    fields: dict[str, Any] = {"ts": ts}
    if client != "-":
        fields["client_ip"] = client
    if status != "-":
        fields["status"] = status
    if size != "-":
        fields["response_bytes"] = size
    if user not in ("-", '""'):  # Apache logs an empty user name as ""
        fields["user"] = unescape(user)
    if vhost is not None and vhost != "-":
        fields["host"] = vhost
    if request and request != "-":
        target = split_request_line(unescape(request))
        if target is not None:
            fields["method"], fields["path"] = target
    if agent and agent != "-":
        fields["user_agent"] = unescape(agent)
    if referer and referer != "-":
        fields["headers"] = {"referer": unescape(referer)}
    if xff and xff != "-":
        fields["forwarded_for"] = unescape(xff)
    return cast("RawEvent", fields)


def split_request_line(request: str) -> tuple[str, str] | None:
    """``(method, target)`` of an HTTP request line, or ``None`` when it is not one.

    The protocol is optional (HTTP/0.9) and a target may contain spaces, as clients
    sometimes send them unencoded.

    >>> split_request_line("GET /search?q=a b HTTP/1.1")
    ('GET', '/search?q=a b')
    >>> split_request_line("\\x16\\x03\\x01") is None
    True
    """
    method, space, rest = request.partition(" ")
    if not space or (method not in _KNOWN_METHODS and _METHOD.fullmatch(method) is None):
        return None
    target, space, protocol = rest.rpartition(" ")
    if not space or not protocol.startswith("HTTP/"):
        target = rest
    if not target or target[0] == " ":
        return None
    return method, target


def unescape(value: str) -> str:
    r"""Decode the backslash escapes Apache and NGINX write inside quoted fields.

    >>> unescape(r'Mozilla/5.0 \"x\" \xd0\x96 \xff')
    'Mozilla/5.0 "x" Ж \\xff'
    """
    if "\\" not in value:
        return value
    out = bytearray()
    start = 0
    for match in _ESCAPE.finditer(value):
        out += value[start : match.start()].encode()
        code = match.group(1)
        if len(code) == 3:
            out.append(int(code[1:], 16))
        else:
            out += _C_ESCAPES.get(code) or match.group(0).encode()
        start = match.end()
    out += value[start:].encode()
    return out.decode("utf-8", "backslashreplace")
