"""An application's own JSON log, read through a user-declared field mapping.

The mapping (``ingest.mappings.NAME.fields`` in the config, format ``mapping:NAME``)
says, for each ``RawEvent`` key, the dotted path of its value in the log object::

    {"ts": "@timestamp", "client_ip": "http.client.ip", "method": "http.request.method",
     "path": "url.path", "status": "http.response.status_code", "user": "user.name"}

A path step follows nested objects; when a nested path finds nothing, the whole dotted
text is also tried as one key, for loggers that write flattened keys
(``{"http.request.method": "GET"}``). Values stay as logged; ``None``, ``""`` and
``"-"`` are absent. A line without a time, a path, a status, or a client address
(``client_ip`` or ``forwarded_for``) cannot become an event: ``ParseError`` names the
missing field and where the mapping looked for it.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from gatewatch.errors import ParseError
from ingest.parsers.base import RawEvent, load_json_object

_RAW_KEYS = RawEvent.__optional_keys__ | RawEvent.__required_keys__
_ESSENTIAL = ("ts", "path", "status")
_CLIENT = ("client_ip", "forwarded_for")


class MappingParser:
    """Parses JSON lines by a mapping from ``RawEvent`` keys to dotted paths.

    >>> parser = MappingParser({"ts": "time", "client_ip": "net.peer", "path": "req.path",
    ...     "status": "res.code"})
    >>> parser.parse(b'{"time": 1700000000000, "net": {"peer": "192.0.2.8"},'
    ...     b' "req": {"path": "/v1/orders"}, "res": {"code": 201}}')
    {'ts': 1700000000000, 'client_ip': '192.0.2.8', 'path': '/v1/orders', 'status': 201}
    >>> parser.parse(b'{"time": 1700000000000, "net": {"peer": "192.0.2.8"}, "res": {"code": 201}}')
    Traceback (most recent call last):
    ...
    gatewatch.errors.ParseError: missing field 'path' (mapped from 'req.path')
    """

    name: ClassVar[str] = "mapping"

    def __init__(self, fields: dict[str, str]) -> None:
        unknown = sorted(set(fields) - _RAW_KEYS)
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}")
        missing = [key for key in _ESSENTIAL if key not in fields]
        if not any(key in fields for key in _CLIENT):
            missing.append("client_ip")
        if missing:
            raise ValueError(f"a mapping must say where {', '.join(missing)} is")
        for key, path in fields.items():
            if not path or "" in path.split("."):
                raise ValueError(f"{key}: {path!r} is not a dotted path")
        self.fields = fields
        # Split once: top-level keys take one dict lookup, nested paths a short walk.
        self._flat = tuple((key, path) for key, path in fields.items() if "." not in path)
        self._nested = tuple(
            (key, path, tuple(path.split("."))) for key, path in fields.items() if "." in path
        )
        self._essential = tuple(key for key in _ESSENTIAL if key in fields)
        self._client = tuple(key for key in _CLIENT if key in fields)

    def __repr__(self) -> str:
        return f"MappingParser(fields={self.fields!r})"

    def parse(self, line: bytes) -> RawEvent:
        return self.from_object(load_json_object(line))

    def from_object(self, obj: dict[str, Any]) -> RawEvent:
        """The mapped fields of an already decoded line."""
        get = obj.get
        raw: dict[str, Any] = {}
        for key, name in self._flat:
            value = get(name)
            if value is not None and value not in ("", "-"):
                raw[key] = value
        for key, path, steps in self._nested:
            found: Any = obj
            for step in steps:
                if type(found) is not dict:
                    found = None
                    break
                found = found.get(step)
                if found is None:
                    break
            if found is None:
                found = get(path)
            if found is not None and found not in ("", "-"):
                raw[key] = found
        for key in self._essential:
            if key not in raw:
                raise ParseError(f"missing field {key!r} (mapped from {self.fields[key]!r})")
        if not any(key in raw for key in self._client):
            where = " or ".join(repr(self.fields[key]) for key in self._client)
            raise ParseError(f"missing field {self._client[0]!r} (mapped from {where})")
        return cast("RawEvent", raw)
