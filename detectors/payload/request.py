"""A request rebuilt from what the access log carried, the way the Core Rule Set sees it.

The log keeps method, path, query, some headers and (when configured) the body. The
rules also look at headers a log usually drops; where their absence alone would make a
protocol rule fire (no ``Host``, no ``Accept``, a body without ``Content-Type`` or
``Content-Length``), a neutral value is filled in, so a finding is about what the
client sent, never about what the log left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gatewatch.event import Event

_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"
_ODD_SEGMENT = re.compile(r"[^A-Za-z0-9._~\-/]")  # "/" for the whole path's quick test
_ARG_UNSAFE = re.compile(r"[&=#+]")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True, slots=True)
class RebuiltRequest:
    method: str
    uri: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    content_type: str = field(default="", compare=False)
    path_args: tuple[tuple[str, str], ...] = field(default=(), compare=False)  # odd_segments


def rebuild(event: Event) -> RebuiltRequest:
    """The request an event stands for. Path segments that hold more than a name or
    an id are also passed as arguments (``odd_segments``).

    >>> from gatewatch.event import Event
    >>> e = Event("r1", 0.0, "203.0.113.9", "POST", "/login", "/login", 200,
    ...           host="api.example.com", query="next=%2F", body='{"user":"ann"}')
    >>> r = rebuild(e)
    >>> r.uri, r.content_type, dict(r.headers)["content-length"]
    ('/login?next=%2F', 'application/json', '14')
    """
    headers = dict(event.headers)
    headers.setdefault("host", event.host or "localhost")
    if event.user_agent:
        headers.setdefault("user-agent", event.user_agent)
    headers.setdefault("accept", "*/*")
    body = event.body.encode("utf-8", "surrogateescape") if event.body else b""
    if body:
        headers.setdefault("content-type", _guess_content_type(event.body))
        headers["content-length"] = str(len(body))
    elif event.method in _BODY_METHODS:
        # The log dropped the body, not the client: it sent a length.
        headers.setdefault("content-length", str(max(0, event.request_bytes)))
        headers.setdefault("content-type", _FORM)
    else:
        headers.pop("content-length", None)
    uri = event.path or "/"
    query = event.query
    odd = odd_segments(uri)
    if odd:  # values in the path: the argument rules read them too
        extra = "&".join(f"{name}={_ARG_UNSAFE.sub(_escape, raw)}" for name, raw in odd)
        query = f"{query}&{extra}" if query else extra
    if query:
        uri = f"{uri}?{query}"
    return RebuiltRequest(
        event.method or "GET",
        uri,
        tuple(headers.items()),
        body,
        headers.get("content-type", ""),
        tuple(odd),
    )


def odd_segments(path: str) -> list[tuple[str, str]]:
    """Path segments that hold more than a name or an id, named ``path.N`` (their
    position): an API takes values in its path, and an attack comes there too.

    >>> odd_segments("/api/v1/products/1234/reviews")
    []
    >>> odd_segments("/api/v1/products/%27%20OR%201%3D1--/reviews")
    [('path.4', '%27%20OR%201%3D1--')]
    """
    if not _ODD_SEGMENT.search(path):
        return []
    return [
        (f"path.{index}", segment)
        for index, segment in enumerate(path.split("/"))
        if segment and _ODD_SEGMENT.search(segment)
    ]


def _escape(found: re.Match[str]) -> str:
    return f"%{ord(found.group()):02X}"


def _guess_content_type(body: str) -> str:
    start = body.lstrip()[:1]
    if start in ("{", "["):
        return _JSON
    return _FORM  # CRS refuses text/plain by policy (920420); as a form, it reads the text
