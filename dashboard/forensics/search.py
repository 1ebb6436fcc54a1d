"""Validated forensic search over stored events and findings, paged by keyset.

Every filter value is a server-side query parameter; SQL text holds only the database
name and fixed fragments. Pages run newest first and continue from an opaque cursor
that holds the last row's sort key, so paging stays stable while events arrive and
never uses OFFSET.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from gatewatch.finding import KINDS, EntityType, Severity
from gatewatch.store.client import Store
from gatewatch.store.queries import IP_TEXT

MAX_SPAN = timedelta(days=31)
MAX_TEXT = 256
_MS = timedelta(milliseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_STATUS_CLASS = re.compile(r"[1-5]xx")
# The narrowest prefix a network filter may have: wider ranges read too much.
_MIN_PREFIX = {4: 8, 6: 32}


class HttpMethod(StrEnum):
    GET = "GET"
    HEAD = "HEAD"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"
    OPTIONS = "OPTIONS"
    TRACE = "TRACE"
    CONNECT = "CONNECT"


def _printable(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _network(value: str) -> str:
    """An address or a CIDR network, normalised.

    >>> _network("10.1.2.3/16"), _network("2001:DB8::1")
    ('10.1.0.0/16', '2001:db8::1')
    """
    try:
        if "/" not in value:
            return str(ipaddress.ip_address(value))
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError("must be an IP address or a CIDR network") from None
    if network.prefixlen < _MIN_PREFIX[network.version]:
        raise ValueError(
            f"an IPv{network.version} network must be /{_MIN_PREFIX[network.version]} or narrower"
        )
    return str(network)


def _kind(value: str) -> str:
    if value not in KINDS:
        raise ValueError(f"must be one of {', '.join(sorted(KINDS))}")
    return value


def _status(value: object) -> int | str:
    """A status code (100-599) or a class.

    >>> _status(404), _status("404"), _status("5XX")
    (404, 404, '5xx')
    """
    if isinstance(value, str):
        text = value.strip().lower()
        if _STATUS_CLASS.fullmatch(text):
            return text
        value = int(text) if text.isascii() and text.isdigit() else None
    if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
        return value
    raise ValueError("must be a status code from 100 to 599 or a class like 4xx")


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT), AfterValidator(_printable)]
IpFilter = Annotated[str, Field(max_length=64), AfterValidator(_network)]
Kind = Annotated[str, Field(max_length=64), AfterValidator(_kind)]
Status = Annotated[int | str, BeforeValidator(_status)]
Method = Annotated[HttpMethod, BeforeValidator(_upper)]


class _Search(BaseModel):
    """A time window [since, until), a page size and where the page starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    since: AwareDatetime
    until: AwareDatetime
    limit: Annotated[int, Field(ge=1, le=1000)] = 100
    cursor: Annotated[str, Field(max_length=1024)] | None = None

    _cursor_types: ClassVar[tuple[type, ...]]

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @field_validator("until")
    @classmethod
    def _window(cls, until: datetime, info: ValidationInfo) -> datetime:
        since = info.data.get("since")
        if since is not None:
            if until <= since:
                raise ValueError("must be after 'since'")
            if until - since > MAX_SPAN:
                raise ValueError(f"must be at most {MAX_SPAN.days} days after 'since'")
        return until

    @field_validator("cursor")
    @classmethod
    def _cursor(cls, value: str | None) -> str | None:
        if value is not None:
            _decode_cursor(value, cls._cursor_types)
        return value

    def position(self) -> tuple[Any, ...] | None:
        """The sort key the page continues after, decoded from the cursor."""
        return None if self.cursor is None else _decode_cursor(self.cursor, self._cursor_types)

    def window_params(self) -> dict[str, Any]:
        return {"since": _floor_ms(self.since), "until": _ceil_ms(self.until)}


class EventSearch(_Search):
    """Which events to list: every filter given must match (exact values; ``ip`` may be
    a network, ``status`` a class like ``4xx``, ``kind`` the kind of a finding the
    event is evidence of)."""

    ip: IpFilter | None = None
    user: Text | None = None
    api_key: Text | None = None
    route: Text | None = None
    status: Status | None = None
    method: Method | None = None
    kind: Kind | None = None

    # (ts in ms, request_id, source, position): unique per stored event.
    _cursor_types = (int, str, str, int)


class FindingSearch(_Search):
    """Which findings to list, by the time they were detected."""

    kind: Kind | None = None
    entity_type: EntityType | None = None
    entity: Text | None = None
    severity: Severity | None = None

    # (detected_ts in ms, id)
    _cursor_types = (int, str)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of results: JSON-able rows, and the cursor of the next page (None on
    the last one)."""

    rows: list[dict[str, Any]]
    next_cursor: str | None


EVENT_COLUMNS = (
    "ts", "request_id", "client_ip", "method", "scheme", "host", "path", "route", "query",
    "status", "user", "api_key", "user_agent", "latency_ms", "request_bytes",
    "response_bytes", "tls_version", "source", "position",
)  # fmt: skip
_EVENT_SELECT = (
    f"toUnixTimestamp64Milli(ts), request_id, {IP_TEXT}, method, scheme, host, path, route, "
    "query, status, user, api_key, user_agent, round(toFloat64(latency_ms), 3), "
    "request_bytes, response_bytes, tls_version, source, position"
)
_EVENT_KEY = ("ts", "request_id", "source", "position")


def search_events(store: Store, q: EventSearch) -> Page:
    """One page of the events matching ``q``, newest first."""
    conditions, params = _event_conditions(store.database, q)
    sql = (
        f"SELECT {_EVENT_SELECT} FROM {store.database}.events FINAL "  # noqa: S608 (identifiers only)
        f"WHERE {' AND '.join(conditions)} "
        "ORDER BY ts DESC, request_id, source, position LIMIT {limit:UInt32}"
    )
    rows = store.query(sql, {**params, "limit": q.limit + 1})
    return _page(rows, q.limit, EVENT_COLUMNS, key=_EVENT_KEY, times=("ts",))


def _event_conditions(database: str, q: EventSearch) -> tuple[list[str], dict[str, Any]]:
    since, until = _ts("since"), _ts("until")
    conditions = [f"ts >= {since}", f"ts < {until}"]
    params = q.window_params()
    if q.ip is not None:
        # A range on the first column of the sort key reads one index range.
        conditions.append("client_ip BETWEEN {ip_lo:IPv6} AND {ip_hi:IPv6}")
        params["ip_lo"], params["ip_hi"] = _ipv6_range(q.ip)
    for column in ("user", "api_key", "route"):
        value = getattr(q, column)
        if value is not None:
            conditions.append(f"{column} = {{{column}:String}}")
            params[column] = value
    if isinstance(q.status, int):
        conditions.append("status = {status:UInt16}")
        params["status"] = q.status
    elif q.status is not None:
        conditions.append("intDiv(status, 100) = {status_class:UInt8}")
        params["status_class"] = int(q.status[0])
    if q.method is not None:
        conditions.append("method = {method:String}")
        params["method"] = q.method.value
    if q.kind is not None:
        # Evidence lists request ids; a finding's evidence lies within its first..last.
        conditions.append(
            "request_id IN (SELECT arrayJoin(evidence) FROM "  # noqa: S608 (identifiers only)
            f"{database}.findings WHERE kind = {{kind:String}} "
            f"AND first_ts < {until} AND last_ts >= {since})"
        )
        params["kind"] = q.kind
    position = q.position()
    if position is not None:
        after = _ts("after_ts")
        conditions.append(
            f"ts <= {after} AND (ts < {after} OR (request_id, source, position) > "
            "({after_id:String}, {after_source:String}, {after_position:UInt64}))"
        )
        keys = ("after_ts", "after_id", "after_source", "after_position")
        params.update(zip(keys, position, strict=True))
    return conditions, params


FINDING_COLUMNS = (
    "detected_ts", "id", "kind", "subkind", "severity", "score", "entity_type", "entity",
    "first_ts", "last_ts", "summary", "evidence_count", "owasp", "mitre", "detector",
)  # fmt: skip
_FINDING_SELECT = (
    "toUnixTimestamp64Milli(detected_ts), id, kind, subkind, severity, "
    "round(toFloat64(score), 3), entity_type, entity, toUnixTimestamp64Milli(first_ts), "
    "toUnixTimestamp64Milli(last_ts), summary, length(evidence), owasp, mitre, detector"
)
_FINDING_TIMES = ("detected_ts", "first_ts", "last_ts")


def search_findings(store: Store, q: FindingSearch) -> Page:
    """One page of the findings detected in ``q``'s window (the latest version of
    each), newest first."""
    conditions = [f"detected_ts >= {_ts('since')}", f"detected_ts < {_ts('until')}"]
    params = q.window_params()
    for column in ("kind", "entity_type", "entity", "severity"):
        value = getattr(q, column)
        if value is not None:
            conditions.append(f"{column} = {{{column}:String}}")
            params[column] = str(value)
    position = q.position()
    if position is not None:
        after = _ts("after_ts")
        conditions.append(
            f"detected_ts <= {after} AND (detected_ts < {after} OR id > {{after_id:String}})"
        )
        params["after_ts"], params["after_id"] = position
    sql = (
        f"SELECT {_FINDING_SELECT} FROM {store.database}.findings FINAL "  # noqa: S608 (identifiers only)
        f"WHERE {' AND '.join(conditions)} "
        "ORDER BY detected_ts DESC, id LIMIT {limit:UInt32}"
    )
    rows = store.query(sql, {**params, "limit": q.limit + 1})
    return _page(rows, q.limit, FINDING_COLUMNS, key=("detected_ts", "id"), times=_FINDING_TIMES)


def _page(
    rows: list[tuple[Any, ...]],
    limit: int,
    columns: Sequence[str],
    *,
    key: Sequence[str],
    times: Sequence[str],
) -> Page:
    """The first ``limit`` rows as dicts (``times`` from epoch ms to ISO 8601), and a
    cursor holding the ``key`` columns of the last when a further row exists."""
    shown = [dict(zip(columns, row, strict=True)) for row in rows[:limit]]
    cursor = _encode_cursor([shown[-1][c] for c in key]) if len(rows) > limit else None
    for row in shown:
        for column in times:
            row[column] = _iso(row[column])
    return Page(shown, cursor)


def _ts(param: str) -> str:
    """SQL for a bound epoch-milliseconds parameter as a UTC DateTime64."""
    return f"fromUnixTimestamp64Milli({{{param}:Int64}}, 'UTC')"


def _iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC with a Z."""
    return (_EPOCH + ms * _MS).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _floor_ms(value: datetime) -> int:
    return (value - _EPOCH) // _MS


def _ceil_ms(value: datetime) -> int:
    return -((_EPOCH - value) // _MS)


def _ipv6_range(value: str) -> tuple[str, str]:
    """First and last address of an address or network, in the IPv6 column's terms
    (IPv4 is stored IPv4-mapped)."""
    network = ipaddress.ip_network(value)
    first, last = network.network_address, network.broadcast_address
    if network.version == 4:
        return f"::ffff:{first}", f"::ffff:{last}"
    return str(first), str(last)


def _encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def _decode_cursor(text: str, types: tuple[type, ...]) -> tuple[Any, ...]:
    problem = ValueError("is malformed: pass next_cursor from the previous page unchanged")
    try:
        values = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        raise problem from None
    if (
        not isinstance(values, list)
        or len(values) != len(types)
        or not all(type(v) is t for v, t in zip(values, types, strict=True))
        or any(isinstance(v, int) and v < 0 for v in values)
    ):
        raise problem
    return tuple(values)
