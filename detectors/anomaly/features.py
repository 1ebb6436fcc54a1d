"""What each busy entity did in one window, as the feature vectors the models judge.

Per request the detector only keeps the Event (a list append). When a window closes,
its requests become columns (``Columns``) and every entity's window is summed at once,
per scope, with numpy: counts, error ratios, bytes, distinct routes and objects,
latency quantiles. Only *busy* entities (at least ``min_requests`` requests or
``min_bytes`` bytes) become a ``Window``: most addresses send a request now and then,
and cost nothing beyond the append. The columns hold the requests' strings, not the
Events (about 150 bytes a request: a minute of a 10k/s gateway is ~90 MB).

Counts, bytes and latencies enter the models as ``log1p`` (a scraper at 40x its usual
rate is as far from its baseline as a client at 1/40th is below it, and heavy-tailed
sizes stop dominating the scale); ratios enter as they are.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from detectors.anomaly.keyspace import NOBODY, Ids
from gatewatch.event import Event

FEATURES: tuple[str, ...] = (
    "requests",
    "error_4xx",
    "error_5xx",
    "status_401",
    "status_403",
    "status_404",
    "routes",
    "objects",
    "bytes_in",
    "bytes_out",
    "latency_p50_ms",
    "latency_p95_ms",
    "new_agents",
    "new_addresses",
)
INDEX = {name: i for i, name in enumerate(FEATURES)}
RATIOS = frozenset({"error_4xx", "error_5xx", "status_401", "status_403", "status_404"})
# Features that enter the models as log1p(value); the rest are ratios in 0..1.
LOGGED = frozenset(FEATURES) - RATIOS
EVIDENCE = 16  # request ids kept per window
# Event fields by name, read one column at a time. Measured in a run, at window close
# (the events out of the CPU's caches), the 14 fields the detector reads cost 0.7-1.2
# us a request this way, ``zip(*events)`` 1.1-1.5 us and ``zip`` over an itemgetter
# of the 14 fields 1.8-2.7 us.
_FIELD = {name: itemgetter(i) for i, name in enumerate(Event._fields)}

Array = npt.NDArray[np.generic]
_KEYED = ("ip", "principal", "route", "obj", "agent")
_NOBODY = np.asarray([""], dtype=object)
_STATUS = {
    "error_4xx": (400, 499),
    "error_5xx": (500, 599),
    "status_401": (401, 401),
    "status_403": (403, 403),
    "status_404": (404, 404),
}
# Status classes, counted at once: 0 below 400, 1 other 4xx, 2 401, 3 403, 4 404, 5 5xx.
_CLASSES = 6
_STATUS_CLASS = np.zeros(1000, dtype=np.int8)
_STATUS_CLASS[400:500] = 1
_STATUS_CLASS[[401, 403, 404]] = (2, 3, 4)
_STATUS_CLASS[500:] = 5
_LARGEST = {
    "bytes_in": "bytes_in",
    "bytes_out": "bytes_out",
    "latency_p50_ms": "latency",
    "latency_p95_ms": "latency",
}


def shown(feature: str, value: float) -> float:
    """A model-space value back in its unit (requests, bytes, ms, ratio)."""
    return math.expm1(value) if feature in LOGGED else value


Coded = tuple[npt.NDArray[np.intp], Array]  # a code per row, and the distinct values


@dataclass(slots=True)
class Columns:
    """The requests of one window, column by column. The text columns are kept only
    factorised (``keyed``): hashing strings is the costliest pass over a column, so it
    is done once per short window and the longer windows join the distinct values."""

    status: npt.NDArray[np.int64]
    status_class: npt.NDArray[np.int8]  # see ``_STATUS_CLASS``
    bytes_in: npt.NDArray[np.int64]
    bytes_out: npt.NDArray[np.int64]
    latency: npt.NDArray[np.float64]
    request_id: Array  # object
    ts: npt.NDArray[np.float64]
    # "ip": the client address; "principal": "u:user" / "k:key" / "" (none); "route";
    # "obj": the path on a templated route (it names an object), else ""; "agent".
    keyed: dict[str, Coded] = field(default_factory=dict)
    # "ip", "principal" once named (``keyspace``): each distinct value's client id.
    ids: dict[str, Ids] = field(default_factory=dict)

    @classmethod
    def of(cls, events: Sequence[Event], is_login: Callable[[str], bool]) -> Columns:
        """``is_login(route)``: the route takes an attempted username in ``user`` (a
        login or reset), so ``user`` there is not who is calling."""
        n = len(events)

        def column(field: str, dtype: type[Any] = object) -> npt.NDArray[Any]:
            return np.fromiter(map(_FIELD[field], events), dtype=dtype, count=n)

        route_codes, route_names = _by_identity(column("route"))
        templated = np.asarray(["{" in r for r in route_names], dtype=bool)[route_codes]
        login = np.asarray([is_login(r) for r in route_names], dtype=bool)[route_codes]
        # Only the paths of templated routes name objects: only they are hashed, and
        # "" (no object) is code 0.
        named = np.flatnonzero(templated)
        object_codes = np.zeros(n, dtype=np.intp)
        codes, object_names = pd.factorize(column("path")[named])
        object_codes[named] = codes + 1
        status = column("status", np.int64)
        columns = cls(
            status=status,
            status_class=_STATUS_CLASS[np.clip(status, 0, len(_STATUS_CLASS) - 1)],
            bytes_in=column("request_bytes", np.int64),
            bytes_out=column("response_bytes", np.int64),
            latency=column("latency_ms", np.float64),
            request_id=column("request_id"),
            ts=column("ts", np.float64),
        )
        keyed = columns.keyed
        keyed["ip"] = _by_identity(column("client_ip"))
        keyed["principal"] = _principals(_by_identity(column("api_key")), column("user"), login)
        keyed["route"] = (route_codes, route_names)
        keyed["obj"] = (object_codes, np.concatenate((_NOBODY, object_names)))
        keyed["agent"] = _by_identity(column("user_agent"))
        return columns

    @classmethod
    def concat(cls, parts: Sequence[Columns]) -> Columns:
        if len(parts) == 1:
            return parts[0]
        columns: dict[str, Any] = {
            name: np.concatenate([getattr(p, name) for p in parts]) for name in _COLUMN_NAMES
        }
        joined = cls(**columns)
        for name in _KEYED:
            coded = [p.keyed[name] for p in parts]
            if all(name in p.ids for p in parts):
                ids = [p.ids[name] for p in parts]
                joined.keyed[name], joined.ids[name] = _join_ids(coded, ids)
            else:
                joined.keyed[name] = _join_codes(coded)
        return joined

    def codes(self, name: str) -> Coded:
        """``name``'s column factorised: a code per row and the distinct values."""
        return self.keyed[name]

    def __len__(self) -> int:
        return len(self.status)


def _by_identity(values: Array) -> Coded:
    """``values`` (strings) factorised: by object identity first, then the distinct
    objects by value, so equal strings held as two objects still share a code.

    Hashing a string row by row is the costly part of factorising (pandas hashes its
    characters every time: 0.14 us a row for user agents), and most rows repeat a
    string the normaliser already shares (agents, routes, keys, the addresses its
    resolver caches). The identities are the object array's own pointers, read
    without a copy while ``values`` is alive: one integer hash per row instead.
    """
    n = len(values)
    if not n:
        return np.zeros(0, dtype=np.intp), values
    pointers = np.ctypeslib.as_array((ctypes.c_ssize_t * n).from_address(values.ctypes.data))
    codes, first = _first_codes(pointers)
    merged, distinct = pd.factorize(values[first])
    if len(distinct) < len(first):  # one string held as more than one object
        codes = merged[codes]
    return codes, distinct


def _first_codes(values: npt.NDArray[np.intp]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Codes of ``values`` in order of first appearance, and a row holding each."""
    codes, uniques = pd.factorize(values)
    rows = np.empty(len(uniques), dtype=np.intp)
    rows[codes] = np.arange(len(values))
    return codes, rows


@dataclass(slots=True)
class Window:
    """One busy entity's window: its counts, and the agents/addresses it used. What
    only a flagged window needs (its rows, first and last times, largest request) is
    read from the columns when asked."""

    key: str
    requests: int
    counts: tuple[int, int, int, int, int]  # 4xx, 5xx, 401, 403, 404
    routes: int
    objects: int
    bytes_in: int
    bytes_out: int
    latency_p50: float
    latency_p95: float
    agents: list[str]
    addresses: list[str]
    columns: Columns | None = None  # the window's requests, while it is judged
    # Per row of ``columns``, the index of the busy entity it belongs to (-1: none), and
    # this entity's index.
    entity_of_row: npt.NDArray[np.int64] | None = None
    index: int = 0
    client: int = -1  # its id (``keyspace``) when its scope names clients
    _rows: npt.NDArray[np.intp] | None = field(default=None, init=False, repr=False)

    @property
    def rows(self) -> npt.NDArray[np.intp]:
        """This entity's rows in ``columns``, in arrival order."""
        if self._rows is None:
            if self.entity_of_row is None:
                self._rows = np.zeros(0, dtype=np.intp)
            else:
                self._rows = np.flatnonzero(self.entity_of_row == self.index)
        return self._rows

    @property
    def first_ts(self) -> float:
        return self._read("ts", np.min)

    @property
    def last_ts(self) -> float:
        return self._read("ts", np.max)

    @property
    def largest_in(self) -> int:
        """The biggest single request body."""
        return int(self._read("bytes_in", np.max))

    @property
    def largest_out(self) -> int:
        """The biggest single response."""
        return int(self._read("bytes_out", np.max))

    def _read(self, column: str, reduce: Callable[[Array], Any]) -> float:
        rows = self.rows
        if self.columns is None or not len(rows):
            return 0.0
        return float(reduce(getattr(self.columns, column)[rows]))

    @property
    def evidence(self) -> list[str]:
        """The entity's first requests in the window."""
        if self.columns is None:
            return []
        ids: list[str] = self.columns.request_id[self.rows[:EVIDENCE]].tolist()
        return ids

    def evidence_for(self, feature: str) -> list[str]:
        """The requests that show ``feature`` (on a route, the window holds everyone's
        requests: the ones with the errors, the bodies or responses far larger than
        the window's typical one, or the busiest client's, not the first few)."""
        columns, rows = self.columns, self.rows
        if columns is None:
            return []
        if feature in _STATUS:
            status = columns.status[rows]
            low, high = _STATUS[feature]
            chosen = rows[(status >= low) & (status <= high)]
        elif feature in _LARGEST:
            values = getattr(columns, _LARGEST[feature])[rows]
            order = np.argsort(-values, kind="stable")
            # Only those far above the window's typical request, largest first.
            outsized = values[order] > 3 * max(float(np.median(values)), 1.0)
            chosen = rows[order[outsized]]
        else:  # requests, routes, objects, new agents: the busiest client's
            codes = columns.codes("ip")[0][rows]
            chosen = rows[codes == np.bincount(codes).argmax()]
        ids: list[str] = columns.request_id[chosen[:EVIDENCE]].tolist()
        return ids or self.evidence

    def vector(
        self, known_agents: Set[str] | None, known_addresses: Set[str] | None
    ) -> list[float]:
        """The features in model space, in ``FEATURES`` order. ``known_*``: what the
        entity used before this window (None: not tracked for its scope, 0)."""
        n = self.requests or 1
        c4, c5, c401, c403, c404 = self.counts
        log = math.log1p
        return [
            log(self.requests),
            c4 / n,
            c5 / n,
            c401 / n,
            c403 / n,
            c404 / n,
            log(self.routes),
            log(self.objects),
            log(self.bytes_in),
            log(self.bytes_out),
            log(self.latency_p50),
            log(self.latency_p95),
            log(_new(self.agents, known_agents)),
            log(_new(self.addresses, known_addresses)),
        ]


def _new(seen: list[str], known: Set[str] | None) -> int:
    if known is None:
        return 0
    return sum(1 for item in seen if item not in known)


@dataclass(slots=True)
class Volumes:
    """Every entity's volume in one window, busy or not (``activity.VOLUME`` order,
    log1p): what the activity baselines and rarity histograms learn."""

    keys: Array  # the entities' names
    values: npt.NDArray[np.float64]  # rows: entities; columns: requests, bytes in, out
    ids: Ids | None = None  # ... and ids, when the column has them


def _principals(keys: Coded, users: Array, login: npt.NDArray[np.bool_]) -> Coded:
    """Who calls, as codes and names ("k:key", else "u:user" off login routes, else
    "" for nobody): the prefixes are joined to the distinct names, not to every row."""
    key_codes, key_names = keys
    user_codes, user_names = pd.factorize(users)
    by_key = (key_names != "")[key_codes]
    by_user = (user_names != "")[user_codes] & ~login & ~by_key
    combined = np.zeros(len(users), dtype=np.intp)
    combined[by_key] = 1 + key_codes[by_key]
    combined[by_user] = 1 + len(key_names) + user_codes[by_user]
    names = np.concatenate((_NOBODY, np.add("k:", key_names), "u:" + user_names))
    # Only the names some row uses (a user seen only on a login route is nobody): keys
    # first, then users, each in order of first appearance.
    used = np.zeros(len(names), dtype=bool)
    used[combined] = True
    renumber = np.cumsum(used) - 1
    return renumber[combined], names[used]


def _join_codes(parts: Sequence[Coded]) -> Coded:
    """Codes of concatenated columns from each part's codes: only the parts' distinct
    values are hashed again, not every row."""
    mapped, uniques = pd.factorize(np.concatenate([u for _, u in parts]))
    out = []
    offset = 0
    for codes, distinct in parts:
        out.append(mapped[offset : offset + len(distinct)][codes])
        offset += len(distinct)
    return np.concatenate(out), uniques


def _join_ids(parts: Sequence[Coded], ids: Sequence[Ids]) -> tuple[Coded, Ids]:
    """``_join_codes`` of columns whose values have ids: ints joined, not strings.

    Ids are small (a key space hands freed ones out again), so each is marked in an
    array as long as the largest, not sorted: the distinct ids come out ascending
    and each id's rank is its code. An id names one value, so any of its rows gives
    the name.
    """
    every = np.concatenate(ids)
    if not len(every):
        return (np.concatenate([codes for codes, _ in parts]), parts[0][1][:0]), every
    holder = np.full(int(every.max()) + 1, -1, dtype=np.intp)
    holder[every] = np.arange(len(every))
    present = holder >= 0
    distinct = np.flatnonzero(present)
    rank = np.cumsum(present) - 1
    names = np.concatenate([uniques for _, uniques in parts])[holder[distinct]]
    codes = [
        rank[part_ids][part_codes] for (part_codes, _), part_ids in zip(parts, ids, strict=True)
    ]
    return (np.concatenate(codes), names), distinct.astype(np.int64, copy=False)


def busy_windows(
    columns: Columns,
    key: str,
    *,
    min_requests: int,
    min_bytes: float,
    agents: bool = True,
    addresses: bool = False,
) -> tuple[list[Window], Volumes]:
    """The windows of the entities named by the ``key`` column (``ip``, ``principal``
    or ``route``; "" is nobody) that sent at least ``min_requests`` requests or
    ``min_bytes`` bytes, and every entity's volume."""
    codes, uniques = columns.codes(key)
    ids = columns.ids.get(key)
    if not len(columns):
        return [], Volumes(uniques, np.zeros((0, 3)), ids)
    n_keys = len(uniques)
    counts = np.bincount(codes, minlength=n_keys)
    sent = np.bincount(codes, weights=columns.bytes_in, minlength=n_keys)
    received = np.bincount(codes, weights=columns.bytes_out, minlength=n_keys)
    # With ids, no string is compared (nobody is id 0).
    somebody = uniques != "" if ids is None else ids != NOBODY
    volumes = Volumes(
        uniques[somebody],
        np.log1p(np.column_stack((counts, sent, received))[somebody]),
        None if ids is None else ids[somebody],
    )
    busy = (counts >= min_requests) | (sent + received >= min_bytes)
    busy &= somebody
    if not busy.any():
        return [], volumes
    local = np.full(n_keys, -1, dtype=np.int64)
    busy_codes = np.flatnonzero(busy)
    local[busy_codes] = np.arange(len(busy_codes))
    row_code = local[codes]
    rows = np.flatnonzero(row_code >= 0)
    lc = row_code[rows]
    b = len(busy_codes)
    n = np.bincount(lc, minlength=b)
    # Each row's status class, counted per entity in one pass.
    by_class = np.bincount(
        lc * _CLASSES + columns.status_class[rows], minlength=b * _CLASSES
    ).reshape(b, _CLASSES)
    c4 = by_class[:, 1:5].sum(axis=1).tolist()
    c401, c403, c404, c5 = (by_class[:, k].tolist() for k in (2, 3, 4, 5))
    bytes_in = np.bincount(lc, weights=columns.bytes_in[rows], minlength=b).tolist()
    bytes_out = np.bincount(lc, weights=columns.bytes_out[rows], minlength=b).tolist()
    # A route's window has one route; the others count theirs.
    routes = [1] * b if key == "route" else _distinct(lc, columns.codes("route"), rows, b)
    object_codes, object_names = columns.codes("obj")
    objects = _distinct(lc, (object_codes, object_names), rows, b, keep=_named(object_names))
    p50, p95 = _quantiles(lc, n, columns.latency[rows], (0.5, 0.95))
    # Agents are hashed once per window, for both client scopes, and carried into the
    # longer windows like the other keys.
    agent_sets = _members(lc, columns.codes("agent"), rows, b) if agents else None
    address_sets = None
    if addresses:
        address_sets = _members(lc, columns.codes("ip"), rows, b)
    none: list[str] = []
    names = uniques[busy_codes].tolist()
    clients = None if ids is None else ids[busy_codes].tolist()
    requests = n.tolist()
    windows = [
        Window(
            key=names[i],
            requests=requests[i],
            counts=(c4[i], c5[i], c401[i], c403[i], c404[i]),
            routes=routes[i],
            objects=objects[i],
            bytes_in=int(bytes_in[i]),
            bytes_out=int(bytes_out[i]),
            latency_p50=max(0.0, p50[i]),
            latency_p95=max(0.0, p95[i]),
            agents=none if agent_sets is None else agent_sets[i],
            addresses=none if address_sets is None else address_sets[i],
            columns=columns,
            entity_of_row=row_code,
            index=i,
            client=-1 if clients is None else clients[i],
        )
        for i in range(b)
    ]
    return windows, volumes


def _quantiles(
    lc: npt.NDArray[np.int64],
    n: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    quantiles: Sequence[float],
) -> list[list[float]]:
    """Each entity's ``values`` (entity code ``lc`` per row, ``n`` rows per entity) read
    at each quantile: one sort on a single float key, the entity code plus the value
    scaled into [0, 1)."""
    low = float(values.min())
    ordered = values[np.argsort(lc + (values - low) / (float(values.max()) - low + 1.0))]
    starts = np.cumsum(n) - n
    return [ordered[starts + ((n - 1) * q).astype(np.int64)].tolist() for q in quantiles]


def _distinct(
    lc: npt.NDArray[np.int64],
    factorised: Coded,
    rows: npt.NDArray[np.int64],
    b: int,
    *,
    keep: npt.NDArray[np.bool_] | None = None,
) -> list[int]:
    """Distinct values of a factorised column per entity code (``lc``, one per row of
    ``rows``); ``keep``: per distinct value, whether it counts."""
    codes, uniques = factorised
    width = len(uniques)
    pairs = _pairs(lc, codes[rows], b, width)
    if keep is not None:
        pairs = pairs[keep[pairs % width]]
    return np.bincount(pairs // width, minlength=b).tolist()  # type: ignore[no-any-return]


def _named(uniques: Array) -> npt.NDArray[np.bool_]:
    """Which distinct values are not "" (columns made by ``Columns.of``, and joins of
    them, have "" first: then no string is compared)."""
    if len(uniques) and uniques[0] == "":
        named = np.ones(len(uniques), dtype=bool)
        named[0] = False
        return named
    return uniques != ""  # type: ignore[no-any-return]


def _pairs(lc: npt.NDArray[np.int64], values: npt.NDArray[np.intp], b: int, width: int) -> Array:
    """The distinct (entity, value) pairs as ``entity * width + value``, ascending: by a
    mark per possible pair while there are few (no hashing), else by hashing."""
    flat = lc * width + values
    if b * width <= max(1 << 16, 8 * len(flat)):
        seen = np.zeros(b * width, dtype=bool)
        seen[flat] = True
        return np.flatnonzero(seen)
    return np.sort(pd.unique(flat))


def _members(
    lc: npt.NDArray[np.int64],
    factorised: Coded,
    rows: npt.NDArray[np.int64],
    b: int,
    cap: int = 64,
) -> list[list[str]]:
    """Each entity's distinct values, from a factorised column read at ``rows`` (at
    most ``cap``: enough to tell new from known)."""
    codes, uniques = factorised
    width = len(uniques)
    pairs = _pairs(lc, codes[rows], b, width)
    found = uniques[pairs % width]
    bounds = np.searchsorted(pairs // width, np.arange(b + 1)).tolist()
    return [found[bounds[i] : min(bounds[i + 1], bounds[i] + cap)].tolist() for i in range(b)]


_COLUMN_NAMES = tuple(name for name in Columns.__slots__ if name not in ("keyed", "ids"))
