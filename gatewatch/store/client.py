"""The ClickHouse store: connection, migrations, retention and columnar inserts.

One class, one database. The DSN picks the engine: ``chdb:///path`` runs ClickHouse in
process on disk (the embedded default), ``http(s)://host:port`` talks to a server.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import clickhouse_connect
import pyarrow as pa
from clickhouse_connect.driver.exceptions import ClickHouseError

from gatewatch.errors import StoreError
from gatewatch.store.columns import dead_letters_table, events_table, findings_table
from gatewatch.store.migrations import MIGRATIONS

log = logging.getLogger(__name__)

# Dedup happens when parts merge (ReplacingMergeTree); deduplicating again inside every
# insert costs half the insert throughput and buys nothing: one batch never holds the
# same line twice.
_INSERT_SETTINGS = {"optimize_on_insert": 0}


class Store:
    """Gatewatch's tables in one ClickHouse database."""

    def __init__(
        self,
        dsn: str,
        *,
        database: str = "gatewatch",
        username: str = "default",
        password: str = "",
        retention_days: int = 90,
        dead_letter_retention_days: int = 30,
    ) -> None:
        self.dsn = dsn
        self.database = database
        # One client, several threads (the pipeline's writer, the dashboard's requests):
        # its calls take turns; an embedded chDB session is not safe to share otherwise.
        self.lock = threading.RLock()
        self.retention_days = retention_days
        self.dead_letter_retention_days = dead_letter_retention_days
        try:
            if dsn.startswith("chdb://"):
                location = dsn.removeprefix("chdb://")
                if location and location != "memory":
                    Path(location).mkdir(parents=True, exist_ok=True)
                self.client = clickhouse_connect.get_client(dsn=dsn)
            else:
                self.client = clickhouse_connect.get_client(
                    dsn=dsn, username=username, password=password
                )
        except (ClickHouseError, OSError) as exc:
            raise StoreError(f"cannot connect to {_safe_dsn(dsn)}: {exc}", retriable=True) from exc

    @property
    def embedded(self) -> bool:
        return self.dsn.startswith("chdb://")

    def migrate(self) -> list[int]:
        """Create the database and apply pending migrations; returns versions applied."""
        db = self.database
        self.command(f"CREATE DATABASE IF NOT EXISTS {db}")
        self.command(
            f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
            "(version UInt32, name String, applied_at DateTime DEFAULT now()) "
            "ENGINE = MergeTree ORDER BY version"
        )
        done = {row[0] for row in self.query(f"SELECT version FROM {db}.schema_migrations")}
        applied = []
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            for statement in migration.statements:
                self.command(
                    statement.format(
                        db=db,
                        retention_days=self.retention_days,
                        dead_letter_retention_days=self.dead_letter_retention_days,
                    )
                )
            with self.lock:
                self.client.insert(
                    f"{db}.schema_migrations",
                    [[migration.version, migration.name]],
                    column_names=["version", "name"],
                )
            log.info("applied migration %d: %s", migration.version, migration.name)
            applied.append(migration.version)
        self._apply_retention()
        return applied

    def _apply_retention(self) -> None:
        """Bring table TTLs in line with the configured retention when it changed."""
        wanted = {
            "events": ("toDateTime(ts)", self.retention_days),
            "findings": ("toDateTime(detected_ts)", self.retention_days),
            "dead_letters": ("toDateTime(received_ts)", self.dead_letter_retention_days),
            "alerts": ("toDateTime(opened_ts)", self.retention_days),
            "alert_deliveries": ("toDateTime(ts)", self.retention_days),
            "alert_triage": ("toDateTime(ts)", self.retention_days),
            "audit_log": ("toDateTime(ts)", self.retention_days),
        }
        for table, (expr, days) in wanted.items():
            create = self.query(
                "SELECT create_table_query FROM system.tables WHERE database = %(db)s "
                "AND name = %(t)s",
                {"db": self.database, "t": table},
            )
            current = re.search(r"toIntervalDay\((\d+)\)", create[0][0]) if create else None
            if current is not None and int(current.group(1)) != days:
                self.command(
                    f"ALTER TABLE {self.database}.{table} MODIFY TTL {expr} + "
                    f"INTERVAL {days} DAY DELETE",
                    settings={"materialize_ttl_after_modify": 0},
                )
                log.info("retention of %s set to %d days", table, days)

    def insert_events(self, events: Sequence[Any]) -> None:
        if events:
            self._insert_arrow("events", events_table(events))

    def insert_dead_letters(self, dead: Sequence[Any]) -> None:
        if dead:
            self._insert_arrow("dead_letters", dead_letters_table(dead))

    def insert_findings(self, findings: Sequence[Any]) -> None:
        """Findings, including updates of an episode (same id: the newest version wins
        when parts merge; read with FINAL for exact results)."""
        if findings:
            self._insert_arrow("findings", findings_table(findings))

    def insert_rows(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        """Few rows of a small table (alerts, deliveries, suppressions): column names
        from the first row's keys; times (``ts``, ``*_ts``) as epoch seconds."""
        if not rows:
            return
        names = list(rows[0])
        times = [i for i, name in enumerate(names) if name == "ts" or name.endswith("_ts")]
        data = [[row[name] for name in names] for row in rows]
        for values in data:
            for i in times:
                values[i] = datetime.fromtimestamp(values[i], UTC)
        try:
            with self.lock:
                self.client.insert(f"{self.database}.{table}", data, column_names=names)
        except ClickHouseError as exc:
            raise StoreError(
                f"insert into {table} failed: {exc}", retriable=not self.embedded
            ) from exc

    def _insert_arrow(self, table: str, data: pa.Table) -> None:
        try:
            with self.lock:
                self.client.insert_arrow(
                    f"{self.database}.{table}", data, settings=_INSERT_SETTINGS
                )
        except ClickHouseError as exc:
            raise StoreError(
                f"insert into {table} failed: {exc}", retriable=not self.embedded
            ) from exc

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            with self.lock:
                rows = self.client.query(sql, parameters=parameters).result_rows
        except ClickHouseError as exc:
            raise StoreError(f"query failed: {exc}") from exc
        return [tuple(row) for row in rows]

    def command(
        self,
        sql: str,
        settings: dict[str, Any] | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        try:
            with self.lock:
                self.client.command(sql, parameters=parameters, settings=settings)
        except ClickHouseError as exc:
            raise StoreError(f"command failed: {exc}") from exc

    def count(self, table: str) -> int:
        """Exact row count, duplicates from replays collapsed."""
        return int(self.query(f"SELECT count() FROM {self.database}.{table} FINAL")[0][0])

    def close(self) -> None:
        with self.lock:
            self.client.close()


def _safe_dsn(dsn: str) -> str:
    """The DSN without any password it may carry."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", dsn)
