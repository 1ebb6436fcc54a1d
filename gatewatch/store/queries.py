"""The forensic questions the events table is laid out to answer fast.

Every function takes typed, validated arguments and binds them as query parameters:
nothing a user types is ever spliced into SQL text.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from gatewatch.finding import EntityType, Finding, Severity
from gatewatch.store.client import Store

ActorKind = Literal["ip", "user", "api_key"]
# IPv4 is stored IPv4-mapped in the IPv6 column; show it the way people write it.
IP_TEXT = "replaceRegexpOne(toString(client_ip), '^::ffff:([0-9.]+)$', '\\1')"
_ACTOR_COLUMN: dict[str, str] = {"ip": "client_ip", "user": "user", "api_key": "api_key"}
_BUCKETS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86_400}


@dataclass(frozen=True, slots=True)
class TimeRange:
    since: datetime
    until: datetime

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise ValueError("time range bounds must carry a time zone")
        if self.until <= self.since:
            raise ValueError("'until' must be after 'since'")

    @property
    def params(self) -> dict[str, Any]:
        return {"since": self.since.astimezone(UTC), "until": self.until.astimezone(UTC)}


ACTOR_COLUMNS = (
    "ts",
    "client_ip",
    "method",
    "host",
    "path",
    "query",
    "status",
    "user",
    "api_key",
    "user_agent",
    "request_id",
)


def actor_activity(
    store: Store,
    kind: ActorKind,
    value: str,
    window: TimeRange,
    *,
    limit: int = 1000,
    newest_first: bool = False,
) -> list[tuple[Any, ...]]:
    """Everything one IP, user or API key did in a time range, oldest first (or the
    newest ``limit`` requests, newest first)."""
    if kind == "ip":
        value = str(ipaddress.ip_address(value))
        where = "client_ip = toIPv6({value:String})"
    else:
        where = f"{_ACTOR_COLUMN[kind]} = {{value:String}}"
    sql = (
        f"SELECT toString(ts), {IP_TEXT}, method, host, path, query, status, user, "
        f"api_key, user_agent, request_id FROM {store.database}.events FINAL "
        f"WHERE {where} AND ts >= {{since:DateTime64(3, 'UTC')}} "
        "AND ts < {until:DateTime64(3, 'UTC')} "
        f"ORDER BY ts{' DESC' if newest_first else ''} LIMIT {{limit:UInt32}}"
    )
    return store.query(sql, {**window.params, "value": value, "limit": limit})


def top_talkers(
    store: Store,
    window: TimeRange,
    *,
    route: str | None = None,
    per_route: int = 5,
    routes: int = 10,
) -> list[tuple[Any, ...]]:
    """The busiest clients (route, ip, requests, errors): on one route when ``route`` is
    given, else on each of the ``routes`` busiest routes."""
    params: dict[str, Any] = {**window.params, "per_route": per_route, "routes": routes}
    in_window = "ts >= {since:DateTime64(3, 'UTC')} AND ts < {until:DateTime64(3, 'UTC')}"
    if route is not None:
        params["route"] = route
        which = "route = {route:String}"
    else:
        which = (
            f"route IN (SELECT route FROM {store.database}.events WHERE {in_window} "
            "GROUP BY route ORDER BY count() DESC LIMIT {routes:UInt32})"
        )
    sql = (
        f"SELECT route, {IP_TEXT} AS ip, count() AS requests, countIf(status >= 400) AS errors "
        f"FROM {store.database}.events FINAL WHERE {in_window} AND {which} "
        "GROUP BY route, ip ORDER BY route, requests DESC LIMIT {per_route:UInt32} BY route"
    )
    return store.query(sql, params)


def failed_auth_over_time(
    store: Store, window: TimeRange, *, bucket: str = "5m"
) -> list[tuple[Any, ...]]:
    """Failed authentications (401, 403) per time bucket: (bucket start, 401s, 403s)."""
    if bucket not in _BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(_BUCKETS)}")
    sql = (
        "SELECT toString(toStartOfInterval(ts, toIntervalSecond({step:UInt32}))) AS bucket, "
        "countIf(status = 401) AS unauthorized, countIf(status = 403) AS forbidden "
        f"FROM {store.database}.events FINAL "
        "WHERE ts >= {since:DateTime64(3, 'UTC')} AND ts < {until:DateTime64(3, 'UTC')} "
        "AND status IN (401, 403) GROUP BY bucket ORDER BY bucket"
    )
    return store.query(sql, {**window.params, "step": _BUCKETS[bucket]})


def dead_letter_reasons(store: Store, *, limit: int = 20) -> list[tuple[Any, ...]]:
    """Why lines were dead-lettered: (reason, lines), commonest first."""
    return store.query(
        f"SELECT reason, count() AS lines FROM {store.database}.dead_letters FINAL "
        "GROUP BY reason ORDER BY lines DESC LIMIT {limit:UInt32}",
        {"limit": limit},
    )


def most_failed_logins(store: Store, window: TimeRange) -> tuple[str, str] | None:
    """(ip, a user it tried) of the client with the most 401s in the window."""
    rows = store.query(
        f"SELECT {IP_TEXT} AS ip, anyIf(user, user != '') FROM {store.database}.events "
        "WHERE status = 401 AND ts >= {since:DateTime64(3, 'UTC')} "
        "AND ts < {until:DateTime64(3, 'UTC')} GROUP BY ip ORDER BY count() DESC LIMIT 1",
        window.params,
    )
    return (str(rows[0][0]), str(rows[0][1])) if rows else None


FINDING_COLUMNS = (
    "detected_ts",
    "kind",
    "subkind",
    "severity",
    "entity_type",
    "entity",
    "first_ts",
    "last_ts",
    "summary",
    "evidence_count",
    "owasp",
    "mitre",
    "id",
)


def recent_findings(
    store: Store,
    window: TimeRange,
    *,
    kind: str | None = None,
    entity: str | None = None,
    limit: int = 100,
) -> list[tuple[Any, ...]]:
    """Findings detected in the window, newest first; the latest version of each."""
    conditions = ["detected_ts >= %(since)s", "detected_ts < %(until)s"]
    params = window.params
    if kind:
        conditions.append("kind = %(kind)s")
        params["kind"] = kind
    if entity:
        conditions.append("entity = %(entity)s")
        params["entity"] = entity
    params["limit"] = limit
    return store.query(
        "SELECT detected_ts, kind, subkind, severity, entity_type, entity, first_ts, last_ts, "
        "summary, length(evidence), owasp, mitre, id "
        f"FROM {store.database}.findings FINAL WHERE {' AND '.join(conditions)} "
        "ORDER BY detected_ts DESC, id LIMIT %(limit)s",
        params,
    )


SUPPRESSION_COLUMNS = (
    "id", "kind", "entity", "route", "cidr", "reason", "created_by", "created_ts", "expires_ts",
)  # fmt: skip


def active_suppressions(store: Store) -> list[dict[str, Any]]:
    """Suppression rules not removed and not expired, as rows (epoch-second times)."""
    rows = store.query(
        "SELECT id, kind, entity, route, cidr, reason, created_by, "
        "toUnixTimestamp64Milli(created_ts) / 1000, toUnixTimestamp64Milli(expires_ts) / 1000 "
        f"FROM {store.database}.suppressions FINAL "
        "WHERE NOT deleted AND expires_ts > now64(3) ORDER BY created_ts"
    )
    return [dict(zip(SUPPRESSION_COLUMNS, row, strict=True)) for row in rows]


def save_suppression(store: Store, row: dict[str, Any]) -> None:
    """Store a suppression rule (``Suppression.to_row()``), active."""
    store.insert_rows("suppressions", [{**row, "deleted": False, "updated_ts": time.time()}])


def remove_suppression(store: Store, rule_id: str) -> bool:
    """Remove an active rule (a newer version marked deleted); False if none is active."""
    for row in active_suppressions(store):
        if row["id"] == rule_id:
            store.insert_rows("suppressions", [{**row, "deleted": True, "updated_ts": time.time()}])
            return True
    return False


ALERT_COLUMNS = (
    "updated", "id", "version", "state", "severity", "actor_type", "actor", "risk", "kinds",
    "findings", "title",
)  # fmt: skip


def recent_alerts(
    store: Store, window: TimeRange, *, state: str | None = None, limit: int = 100
) -> list[tuple[Any, ...]]:
    """Alerts updated in the window, newest first; the latest version of each."""
    params = window.params
    params["limit"] = limit
    condition = ""
    if state:
        condition, params["state"] = " AND state = %(state)s", state
    return store.query(
        "SELECT updated_ts, id, version, state, severity, actor_type, actor, risk, kinds, "
        f"finding_count, title FROM {store.database}.alerts FINAL "
        f"WHERE updated_ts >= %(since)s AND updated_ts < %(until)s{condition} "
        "ORDER BY updated_ts DESC, id LIMIT %(limit)s",
        params,
    )


def delivery_attempts(store: Store, alert_id: str) -> list[tuple[Any, ...]]:
    """Every delivery attempt of an alert (the audit trail), oldest first."""
    return store.query(
        "SELECT ts, version, channel, attempt, ok, error, latency_ms, digest "
        f"FROM {store.database}.alert_deliveries WHERE alert_id = %(id)s ORDER BY ts",
        {"id": alert_id},
    )


_OPEN_ALERT_COLUMNS = (
    "id", "version", "actor_type", "actor", "severity", "risk", "opened_ts", "updated_ts",
    "first_ts", "last_ts", "kinds", "finding_ids", "finding_count",
)  # fmt: skip


def open_alerts(store: Store, *, limit: int = 10_000) -> list[tuple[dict[str, Any], list[Finding]]]:
    """The alerts whose latest version is open (epoch-second times), each with the
    stored latest versions of its findings: what alerting carries on with after a
    restart."""
    seconds = "toUnixTimestamp64Milli({})/1000"
    rows = store.query(
        "SELECT id, version, actor_type, actor, severity, risk, "
        + ", ".join(seconds.format(c) for c in ("opened_ts", "updated_ts", "first_ts", "last_ts"))
        + f", kinds, finding_ids, finding_count FROM {store.database}.alerts FINAL "
        "WHERE state = 'open' ORDER BY updated_ts DESC LIMIT %(limit)s",
        {"limit": limit},
    )
    alerts = [dict(zip(_OPEN_ALERT_COLUMNS, row, strict=True)) for row in rows]
    ids = sorted({fid for alert in alerts for fid in alert["finding_ids"]})
    findings: dict[str, Finding] = {}
    if ids:
        found = store.query(
            "SELECT id, kind, subkind, severity, score, entity_type, entity, "
            + ", ".join(seconds.format(c) for c in ("first_ts", "last_ts", "detected_ts"))
            + ", summary, evidence, owasp, mitre, detector, extra "
            f"FROM {store.database}.findings FINAL WHERE id IN %(ids)s",
            {"ids": ids},
        )
        for fid, kind, sub, sev, score, etype, entity, first, last, detected, *rest in found:
            summary, evidence, owasp, mitre, detector, extra = rest
            findings[fid] = Finding(
                id=fid, kind=kind, subkind=sub, severity=Severity(sev),
                score=min(1.0, max(0.0, round(float(score), 3))),
                entity_type=EntityType(etype), entity=entity,
                first_ts=float(first), last_ts=float(last), detected_ts=float(detected),
                summary=summary, evidence=tuple(evidence), owasp=owasp, mitre=mitre,
                detector=detector, extra=orjson.loads(extra) if extra else {},
            )  # fmt: skip
    return [
        (alert, [findings[fid] for fid in alert["finding_ids"] if fid in findings])
        for alert in alerts
    ]
