"""The aggregate reads behind the overview charts and the route inventory. SQL text
holds only the database name from validated settings and sort columns from a fixed
table; every value is a bound parameter.

Both read ``events`` without ``FINAL``. The table is a ReplacingMergeTree keyed on
(client_ip, ts, source, position), and ``FINAL`` would merge every part on that key at
query time: several times the work of the aggregation itself, and the overview must
answer within 500 ms over 10M events. What it would remove is rare: a replayed line
that is stored twice until its parts merge. A chart or an inventory that counts such
a line twice for a while is still right in every way that matters to a reader; the
forensic queries (``gatewatch.store.queries``) that must be exact use ``FINAL``.

Every events query filters on ``ts`` first: the table is partitioned by day, so a
window reads only the days it overlaps, and only the columns the aggregation needs.
Findings and alerts are small, and a finding is rewritten while its episode grows, so
they are read with ``FINAL`` (one row per finding, its latest version).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from gatewatch.finding import Severity
from gatewatch.store.client import Store

Rows = list[tuple[Any, ...]]
RouteSort = Literal["requests", "errors", "unauthenticated"]

_IN_WINDOW = "{col} >= {{since:DateTime64(3, 'UTC')}} AND {col} < {{until:DateTime64(3, 'UTC')}}"
_BUCKET = "toUnixTimestamp(toStartOfInterval({col}, toIntervalSecond({{step:UInt32}})))"
# A severity's rank, worst highest, for max(); 0 for anything unknown.
_RANK = f"indexOf([{', '.join(repr(s.value) for s in Severity)}], severity)"
# No anonymous request carries a user name or an API key (fingerprint).
_ANONYMOUS = "empty(user) AND empty(api_key)"
_ROUTE_ORDER: dict[RouteSort, str] = {
    "requests": "requests",
    "errors": "errors",
    "unauthenticated": "unauthenticated",
}


def _window(since: datetime, until: datetime, step: int) -> dict[str, Any]:
    return {"since": since, "until": until, "step": step}


def traffic(store: Store, since: datetime, until: datetime, step: int) -> Rows:
    """Per bucket of ``step`` seconds with events: (bucket start in epoch seconds,
    requests, 401 and 403 responses), oldest first."""
    return store.query(
        f"SELECT {_BUCKET.format(col='ts')} AS t, count(), countIf(status IN (401, 403)) "
        f"FROM {store.database}.events WHERE {_IN_WINDOW.format(col='ts')} "
        "GROUP BY t ORDER BY t",
        _window(since, until, step),
    )


def findings_by_kind(store: Store, since: datetime, until: datetime, step: int) -> Rows:
    """Per bucket and kind with findings detected in it: (bucket start in epoch
    seconds, kind, findings)."""
    return store.query(
        f"SELECT {_BUCKET.format(col='detected_ts')} AS t, kind, count() "
        f"FROM {store.database}.findings FINAL WHERE {_IN_WINDOW.format(col='detected_ts')} "
        "GROUP BY t, kind ORDER BY t, kind",
        _window(since, until, step),
    )


def top_actors(store: Store, since: datetime, until: datetime, *, limit: int = 10) -> Rows:
    """The entities with the most findings detected in the window: (entity_type,
    entity, findings, worst severity, its rank, latest ``last_ts``); ties go to the
    worse severity, then the more recent."""
    return store.query(
        f"SELECT entity_type, entity, count() AS findings, argMax(severity, {_RANK}), "
        f"max({_RANK}) AS worst, max(last_ts) AS last_seen "
        f"FROM {store.database}.findings FINAL "
        f"WHERE {_IN_WINDOW.format(col='detected_ts')} GROUP BY entity_type, entity "
        "ORDER BY findings DESC, worst DESC, last_seen DESC, entity_type, entity "
        "LIMIT {limit:UInt32}",
        {"since": since, "until": until, "limit": limit},
    )


def open_alerts_by_severity(store: Store) -> Rows:
    """(severity, open alerts) over the alerts whose latest version is open."""
    return store.query(
        f"SELECT severity, count() FROM {store.database}.alerts FINAL "
        "WHERE state = 'open' GROUP BY severity"
    )


ROUTE_COLUMNS = (
    "route", "methods", "requests", "errors", "client_errors", "unauthenticated",
    "anonymous_denied", "distinct_clients", "first_seen", "last_seen", "p95_latency_ms",
)  # fmt: skip


def routes(store: Store, since: datetime, until: datetime, *, sort: RouteSort, limit: int) -> Rows:
    """Each route template requested in the window (``ROUTE_COLUMNS``), by ``sort``
    descending, then by requests and name. ``errors`` are 5xx responses,
    ``client_errors`` 4xx, ``anonymous_denied`` the 401s and 403s among the requests
    with neither user nor API key. Two figures are estimates, to keep a day of 10M
    events under half a second: distinct clients (exact up to some thousands, then
    within about 1%) and the p95 latency (from a sample of 8192 requests per route).
    """
    order = _ROUTE_ORDER[sort]
    return store.query(
        "SELECT route, arraySort(groupUniqArray(16)(method)), count() AS requests, "
        "countIf(status >= 500) AS errors, countIf(status >= 400 AND status < 500), "
        f"countIf({_ANONYMOUS}) AS unauthenticated, "
        f"countIf({_ANONYMOUS} AND status IN (401, 403)), uniqCombined(14)(client_ip), "
        "min(ts), max(ts), quantile(0.95)(latency_ms) "
        f"FROM {store.database}.events WHERE {_IN_WINDOW.format(col='ts')} "
        f"GROUP BY route ORDER BY {order} DESC, requests DESC, route LIMIT {{limit:UInt32}}",
        {"since": since, "until": until, "limit": limit},
    )
