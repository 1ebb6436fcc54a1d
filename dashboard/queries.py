"""The dashboard's reads and writes of alerts and their triage. SQL text holds only
the database name from validated settings; every value is a bound parameter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gatewatch.store.client import Store

ALERT_COLUMNS = (
    "id, version, state, severity, actor_type, actor, risk, title, opened_ts, updated_ts, "
    "first_ts, last_ts, kinds, finding_count"
)


def alerts(
    store: Store,
    *,
    seconds: int,
    limit: int,
    state: str | None = None,
    severity: str | None = None,
    kind: str | None = None,
) -> list[tuple[Any, ...]]:
    """Alerts updated in the last ``seconds``, newest first (``ALERT_COLUMNS``)."""
    conditions = ["updated_ts >= now64(3) - toIntervalSecond(%(seconds)s)"]
    params: dict[str, Any] = {"seconds": seconds, "limit": limit}
    for name, value in (("state", state), ("severity", severity)):
        if value is not None:
            conditions.append(f"{name} = %({name})s")
            params[name] = value
    if kind is not None:
        conditions.append("mapContains(kinds, %(kind)s)")
        params["kind"] = kind
    return store.query(
        f"SELECT {ALERT_COLUMNS} FROM {store.database}.alerts FINAL "
        f"WHERE {' AND '.join(conditions)} ORDER BY updated_ts DESC, id LIMIT %(limit)s",
        params,
    )


def alert(store: Store, alert_id: str) -> tuple[Any, ...] | None:
    """One alert's latest version: ``ALERT_COLUMNS``, then summary and finding ids."""
    rows = store.query(
        f"SELECT {ALERT_COLUMNS}, summary, finding_ids FROM {store.database}.alerts FINAL "
        "WHERE id = %(id)s",
        {"id": alert_id},
    )
    return rows[0] if rows else None


def triage(store: Store, ids: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Each alert's triage rows, oldest first:
    (ts, action, analyst, assignee, comment, suppression_id)."""
    if not ids:
        return {}
    rows = store.query(
        "SELECT alert_id, ts, action, analyst, assignee, comment, suppression_id "
        f"FROM {store.database}.alert_triage WHERE alert_id IN %(ids)s ORDER BY ts",
        {"ids": ids},
    )
    found: dict[str, list[tuple[Any, ...]]] = {}
    for alert_id, *rest in rows:
        found.setdefault(alert_id, []).append(tuple(rest))
    return found


def deliveries(store: Store, alert_id: str) -> list[tuple[Any, ...]]:
    return store.query(
        "SELECT ts, version, channel, attempt, ok, error, latency_ms, digest "
        f"FROM {store.database}.alert_deliveries WHERE alert_id = %(id)s ORDER BY ts",
        {"id": alert_id},
    )


def open_alerts(store: Store, *, limit: int = 200) -> list[tuple[Any, ...]]:
    """(updated_ts, severity, title, finding_count, risk, id) of the open alerts."""
    return store.query(
        "SELECT updated_ts, severity, title, finding_count, risk, id "
        f"FROM {store.database}.alerts FINAL WHERE state = 'open' "
        "ORDER BY updated_ts DESC LIMIT %(limit)s",
        {"limit": limit},
    )


Rows = list[tuple[Any, ...]]


def utc(value: datetime) -> datetime:
    """A time read from the store (naive, in UTC) as an aware UTC time."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime) -> str:
    """RFC 3339 with milliseconds and Z, as the API shows every time."""
    return utc(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stored_since(store: Store, since: datetime, *, limit: int = 200) -> tuple[Rows, Rows, datetime]:
    """Findings and alert versions stored after ``since`` (the live feed), oldest first,
    with the newest ``stored_at`` seen (the next cursor)."""
    findings = store.query(
        "SELECT stored_at, id, kind, subkind, severity, entity_type, entity, summary, "
        f"detected_ts FROM {store.database}.findings "
        "WHERE stored_at > {since:DateTime64(3, 'UTC')} ORDER BY stored_at LIMIT {limit:UInt32}",
        {"since": since, "limit": limit},
    )
    alerts = store.query(
        "SELECT stored_at, id, version, state, severity, title, finding_count, updated_ts, "
        "actor_type, actor "
        f"FROM {store.database}.alerts "
        "WHERE stored_at > {since:DateTime64(3, 'UTC')} ORDER BY stored_at LIMIT {limit:UInt32}",
        {"since": since, "limit": limit},
    )
    newest = max([utc(since), *(utc(row[0]) for row in findings), *(utc(row[0]) for row in alerts)])
    return findings, alerts, newest


def latest_stored(store: Store) -> datetime:
    """Where a new live feed starts: the newest ``stored_at`` now (the store's clock)."""
    rows = store.query(
        f"SELECT greatest((SELECT max(stored_at) FROM {store.database}.findings), "
        f"(SELECT max(stored_at) FROM {store.database}.alerts), now64(3) - 1)"
    )
    return utc(rows[0][0])


def findings_by_id(store: Store, ids: list[str]) -> Rows:
    """The latest version of each finding in ``ids``, newest first:
    (id, kind, subkind, severity, entity_type, entity, summary, first_ts, last_ts,
    detected_ts, evidence count, owasp, mitre)."""
    if not ids:
        return []
    return store.query(
        "SELECT id, kind, subkind, severity, entity_type, entity, summary, first_ts, "
        "last_ts, detected_ts, length(evidence), owasp, mitre "
        f"FROM {store.database}.findings FINAL WHERE id IN {{ids:Array(String)}} "
        "ORDER BY last_ts DESC",
        {"ids": ids},
    )
