"""The named values a request carries: decoded query string, form body and JSON body.

``request_params`` turns what the log kept of a request into ``(name, value)`` pairs, the
unit the parameter profiles learn (``detectors.payload.profiles``). Form components are
decoded the way a server decodes them (``+`` is a space, then percent-decoding) and once
more when a second layer of escapes is left (``%2527`` is a quote to a server that
decodes twice, and an attacker counts on it). Bytes that are not UTF-8 are read as
Latin-1, the charset of legacy forms, so decoding never raises.

A JSON body is flattened to dotted names (``user.name``), array items named ``items[]``,
scalars as text (``true``, ``null``, ``12.5``). A body that says it is JSON and is not
is kept whole as one pair with an empty name, so nothing escapes inspection. Other
bodies (multipart, XML, plain text) yield no parameters.

Caps, so a hostile request costs no more than a large benign one: at most
``MAX_PARAMS`` (64) pairs per request (the rest are dropped, query first then body),
values cut to ``MAX_VALUE`` (4096) characters after decoding (the prefix is kept),
names to ``MAX_NAME`` (256, so the dotted names of deeply nested JSON stop growing).

Cost (timeit, this machine, best of 9, orjson.loads of a 470-byte line measuring 1.2 us
alongside): ``id=12&page=3`` 1.0 us, ``q=men%27s+shoes&page=2&sort=price`` 2.1 us, a
5-field Latin-1 form body 3.0 us, ``{"user": {"name": "ann"}, "items": [1, 2]}`` about
3 us (2.4 times orjson.loads of the line). Components without ``%`` or ``+`` are not
decoded at all; percent-decoding runs in the C escape codec.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from itertools import islice

import orjson

MAX_PARAMS = 64
MAX_VALUE = 4096
MAX_NAME = 256

_RAW_VALUE = 3 * MAX_VALUE  # a value is cut before decoding too: %XX is 3 chars a byte
_DEEP = 32  # JSON levels flattened by recursion; deeper ones by a loop

_escape_decode = codecs.escape_decode
_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")
# Unambiguous (a name part cannot hold "="), so a near miss fails in linear time.
_FORM_BODY = re.compile(r"[^=&\s]+=[^&\s]*(?:&[^=&\s]*(?:=[^&\s]*)?)*")


def request_params(query: str, body: str, content_type: str) -> list[tuple[str, str]]:
    """The decoded ``(name, value)`` pairs of a request, query string first.

    >>> request_params("q=men%27s+shoes&page=2", "", "")
    [('q', "men's shoes"), ('page', '2')]
    >>> request_params("", '{"user": {"name": "ann"}, "tags": ["a", 1], "ok": true}',
    ...                "application/json")
    [('user.name', 'ann'), ('tags[]', 'a'), ('tags[]', '1'), ('ok', 'true')]
    >>> request_params("", "id=1&nombre=A%F1adir", "")  # no content type, looks like a form
    [('id', '1'), ('nombre', 'Añadir')]
    >>> request_params("", "{not json", "application/json")
    [('', '{not json')]
    """
    pairs: list[tuple[str, str]] = []
    if query:
        _add_form(query, pairs)
    if not body or len(pairs) >= MAX_PARAMS:
        return pairs
    kind = content_type.lower()
    if "x-www-form-urlencoded" in kind:
        _add_form(body, pairs)
    elif "json" in kind or body[:64].lstrip()[:1] in ("{", "["):
        _add_json(body, pairs)
    elif not kind and _FORM_BODY.fullmatch(body[:_RAW_VALUE]) is not None:
        _add_form(body, pairs)
    return pairs


def decode_component(text: str) -> str:
    """A form-encoded name or value as the application sees it.

    ``+`` is a space; percent escapes are decoded, and decoded once more if the first
    pass left escapes (double encoding), never more: the result is what a server that
    decodes twice would see. Bytes that are not valid UTF-8 are read as Latin-1.

    >>> decode_component("men%27s+shoes")
    "men's shoes"
    >>> decode_component("%253Cscript%253E")  # double-encoded
    '<script>'
    >>> decode_component("100%25+cotton"), decode_component("50%off")
    ('100% cotton', '50%off')
    >>> decode_component("Jam%F3n"), decode_component("caf%C3%A9")
    ('Jamón', 'café')
    """
    if "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    once = _unquote(text)
    if "%" in once and once != text:
        return _unquote(once)
    return once


def _unquote(text: str) -> str:
    # The codec's C loop does the work: every "%" becomes "\\x" once the text's own
    # backslashes are doubled, so "\\x" is the only escape it can meet. A "%" not
    # followed by two hex digits makes it refuse, and the slower loop keeps it as is.
    try:
        escaped = text.replace("\\", "\\\\").replace("%", "\\x")
        raw = _escape_decode(escaped.encode("utf-8", "surrogateescape"))[0]
    except (ValueError, UnicodeEncodeError):
        raw = _unquote_slow(text)
    if raw.isascii():
        return raw.decode("ascii")
    decoded = raw.decode("utf-8", "replace")
    return decoded if "\ufffd" not in decoded else raw.decode("latin-1")


def _unquote_slow(text: str) -> bytes:
    try:
        encoded = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that no decoder made: keep it, as bytes
        encoded = text.encode("utf-8", "surrogatepass")
    return _ESCAPE.sub(lambda m: bytes.fromhex(m.group(1).decode()), encoded)


def _add_form(text: str, pairs: list[tuple[str, str]]) -> None:
    room = MAX_PARAMS - len(pairs)
    for part in text.split("&", room)[:room]:  # the last part may hold the unsplit rest
        if not part:
            continue
        name, _, value = part.partition("=")
        if len(part) > MAX_NAME:  # rare: cut before decoding, and after
            name = decode_component(name[: 3 * MAX_NAME])[:MAX_NAME]
            value = decode_component(value[:_RAW_VALUE])[:MAX_VALUE]
        elif "%" in part or "+" in part:
            name, value = decode_component(name), decode_component(value)
        pairs.append((name, value))


def _add_json(text: str, pairs: list[tuple[str, str]]) -> None:
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        pairs.append(("", text[:MAX_VALUE]))
        return
    _flatten(document, "", 0, pairs)


def _flatten(node: object, name: str, depth: int, pairs: list[tuple[str, str]]) -> None:
    if isinstance(node, str):
        pairs.append((name, node if len(node) <= MAX_VALUE else node[:MAX_VALUE]))
    elif isinstance(node, dict):
        if depth >= _DEEP:  # orjson accepts 1024 levels, Python recursion fewer
            _flatten_deep(node, name, pairs)
            return
        for key, value in node.items():
            if len(pairs) >= MAX_PARAMS:
                return
            child = f"{name}.{key}" if name else key
            _flatten(value, child if len(child) <= MAX_NAME else child[:MAX_NAME], depth + 1, pairs)
    elif isinstance(node, list):
        if depth >= _DEEP:
            _flatten_deep(node, name, pairs)
            return
        item = f"{name}[]"[:MAX_NAME]
        for value in node:
            if len(pairs) >= MAX_PARAMS:
                return
            _flatten(value, item, depth + 1, pairs)
    else:
        pairs.append((name, _scalar(node)))


def _flatten_deep(node: object, name: str, pairs: list[tuple[str, str]]) -> None:
    """The same, depth first in document order, without recursion."""
    stack: list[tuple[str, object]] = [(name, node)]
    while stack and len(pairs) < MAX_PARAMS:
        name, node = stack.pop()
        if isinstance(node, dict | list):
            stack.extend(reversed(list(islice(_children(node, name), MAX_PARAMS))))
        elif isinstance(node, str):
            pairs.append((name, node[:MAX_VALUE]))
        else:
            pairs.append((name, _scalar(node)))


def _children(node: dict[str, object] | list[object], name: str) -> Iterator[tuple[str, object]]:
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{name}.{key}" if name else key
            yield (child if len(child) <= MAX_NAME else child[:MAX_NAME]), value
    else:
        item = f"{name}[]"[:MAX_NAME]
        for value in node:
            yield item, value


def _scalar(node: object) -> str:
    if node is None:
        return "null"
    if node is True or node is False:
        return "true" if node else "false"
    return str(node)  # a number: orjson gives int or float
