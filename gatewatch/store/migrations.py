"""Versioned schema migrations for the Gatewatch database.

Each migration runs once, in order, and is recorded in ``schema_migrations``. Never
edit a released migration: add a new one.

Why the events table looks the way it does (the forensic questions it must answer):
- ``ORDER BY (client_ip, ts, ...)``: "everything this IP did between A and B" reads one
  contiguous range of the primary index.
- bloom-filter skip indexes on ``user`` and ``api_key``: a principal's or key's requests
  come from few IPs, so they sit in few granules; the filters skip the rest.
- ``PARTITION BY toYYYYMMDD(ts)``: every time-bounded query (top talkers per route,
  failed-auth counts over time) prunes to the days it asks for, and retention drops
  whole days (``ttl_only_drop_parts``).
- ``ReplacingMergeTree`` keyed on (client_ip, ts, source, position): a replayed line
  (same source and position) collapses into the row already stored, so at-least-once
  delivery never double counts once parts merge; exact counts use ``FINAL``.
- ``LowCardinality`` for the few-valued text columns and ``IPv6`` (IPv4 mapped) for the
  address keep rows near 80 bytes compressed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "events, dead_letters and findings",
        (
            """
            CREATE TABLE IF NOT EXISTS {db}.events (
                ts DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
                client_ip IPv6,
                request_id String CODEC(ZSTD(1)),
                method LowCardinality(String),
                scheme LowCardinality(String),
                host LowCardinality(String),
                path String CODEC(ZSTD(1)),
                route LowCardinality(String),
                query String CODEC(ZSTD(1)),
                status UInt16,
                latency_ms Float32,
                request_bytes UInt64,
                response_bytes UInt64,
                user_agent LowCardinality(String),
                user String,
                api_key String,
                tls_version LowCardinality(String),
                body String CODEC(ZSTD(3)),
                headers Map(LowCardinality(String), String) CODEC(ZSTD(1)),
                source LowCardinality(String),
                position UInt64,
                ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
                INDEX idx_user user TYPE bloom_filter(0.01) GRANULARITY 2,
                INDEX idx_api_key api_key TYPE bloom_filter(0.01) GRANULARITY 2
            )
            ENGINE = ReplacingMergeTree
            PARTITION BY toYYYYMMDD(ts)
            ORDER BY (client_ip, ts, source, position)
            TTL toDateTime(ts) + INTERVAL {retention_days} DAY DELETE
            SETTINGS ttl_only_drop_parts = 1
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.dead_letters (
                received_ts DateTime64(3, 'UTC'),
                source LowCardinality(String),
                position UInt64,
                format LowCardinality(String),
                reason String,
                raw String CODEC(ZSTD(3)),
                raw_size UInt64
            )
            ENGINE = ReplacingMergeTree
            ORDER BY (source, position)
            TTL toDateTime(received_ts) + INTERVAL {dead_letter_retention_days} DAY DELETE
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.findings (
                id String,
                kind LowCardinality(String),
                subkind LowCardinality(String),
                severity LowCardinality(String),
                score Float32,
                entity_type LowCardinality(String),
                entity String,
                first_ts DateTime64(3, 'UTC'),
                last_ts DateTime64(3, 'UTC'),
                detected_ts DateTime64(3, 'UTC'),
                summary String,
                evidence Array(String) CODEC(ZSTD(3)),
                owasp LowCardinality(String),
                mitre LowCardinality(String),
                detector LowCardinality(String),
                extra String CODEC(ZSTD(3)),
                stored_at DateTime64(3, 'UTC') DEFAULT now64(3)
            )
            ENGINE = ReplacingMergeTree
            PARTITION BY toYYYYMM(detected_ts)
            ORDER BY (kind, entity_type, entity, detected_ts, id)
            TTL toDateTime(detected_ts) + INTERVAL {retention_days} DAY DELETE
            """,
        ),
    ),
    Migration(
        2,
        "dead_letters.key for Kafka record keys",
        ("ALTER TABLE {db}.dead_letters ADD COLUMN IF NOT EXISTS key String AFTER position",),
    ),
    Migration(
        3,
        "alerts, alert_deliveries (the audit trail of every attempt) and suppressions",
        (
            # One row per alert version; the newest version wins when parts merge.
            """
            CREATE TABLE IF NOT EXISTS {db}.alerts (
                id String,
                version UInt32,
                state LowCardinality(String),
                actor_type LowCardinality(String),
                actor String,
                severity LowCardinality(String),
                risk Float32,
                opened_ts DateTime64(3, 'UTC'),
                updated_ts DateTime64(3, 'UTC'),
                first_ts DateTime64(3, 'UTC'),
                last_ts DateTime64(3, 'UTC'),
                kinds Map(LowCardinality(String), UInt32),
                finding_ids Array(String) CODEC(ZSTD(3)),
                finding_count UInt32,
                title String,
                summary String CODEC(ZSTD(3)),
                stored_at DateTime64(3, 'UTC') DEFAULT now64(3)
            )
            ENGINE = ReplacingMergeTree(version)
            PARTITION BY toYYYYMM(opened_ts)
            ORDER BY id
            TTL toDateTime(opened_ts) + INTERVAL {retention_days} DAY DELETE
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.alert_deliveries (
                ts DateTime64(3, 'UTC'),
                delivery_id String,
                alert_id String,
                version UInt32,
                channel LowCardinality(String),
                attempt UInt16,
                ok Bool,
                error String,
                latency_ms Float32,
                digest Bool
            )
            ENGINE = MergeTree
            PARTITION BY toYYYYMM(ts)
            ORDER BY (alert_id, ts)
            TTL toDateTime(ts) + INTERVAL {retention_days} DAY DELETE
            """,
            # Edits are new versions of the row (updated_ts); removal sets deleted.
            """
            CREATE TABLE IF NOT EXISTS {db}.suppressions (
                id String,
                kind LowCardinality(String),
                entity String,
                route String,
                cidr String,
                reason String,
                created_by String,
                created_ts DateTime64(3, 'UTC'),
                expires_ts DateTime64(3, 'UTC'),
                deleted Bool DEFAULT false,
                updated_ts DateTime64(3, 'UTC') DEFAULT now64(3)
            )
            ENGINE = ReplacingMergeTree(updated_ts)
            ORDER BY id
            """,
        ),
    ),
    Migration(
        4,
        "alert_triage, audit_log, and stored_at indexes for the live feed",
        (
            # One row per triage action; an alert's triage state is its latest rows.
            """
            CREATE TABLE IF NOT EXISTS {db}.alert_triage (
                ts DateTime64(3, 'UTC'),
                alert_id String,
                action LowCardinality(String),
                analyst String,
                assignee String,
                comment String,
                suppression_id String
            )
            ENGINE = MergeTree
            PARTITION BY toYYYYMM(ts)
            ORDER BY (alert_id, ts)
            TTL toDateTime(ts) + INTERVAL {retention_days} DAY DELETE
            """,
            # Who viewed, queried or changed what through the dashboard and its API.
            """
            CREATE TABLE IF NOT EXISTS {db}.audit_log (
                ts DateTime64(3, 'UTC'),
                principal String,
                role LowCardinality(String),
                auth LowCardinality(String),
                client_ip String,
                method LowCardinality(String),
                path String,
                action LowCardinality(String),
                target String,
                status UInt16,
                detail String CODEC(ZSTD(3))
            )
            ENGINE = MergeTree
            PARTITION BY toYYYYMM(ts)
            ORDER BY ts
            TTL toDateTime(ts) + INTERVAL {retention_days} DAY DELETE
            """,
            # The live feed asks for what was stored since a moment: skip the rest.
            "ALTER TABLE {db}.findings ADD INDEX IF NOT EXISTS idx_stored_at stored_at "
            "TYPE minmax GRANULARITY 1",
            "ALTER TABLE {db}.alerts ADD INDEX IF NOT EXISTS idx_stored_at stored_at "
            "TYPE minmax GRANULARITY 1",
        ),
    ),
    Migration(
        5,
        "detector_checkpoints: learnt model state with the Kafka positions it includes",
        (
            # One row per checkpoint: what a consumer's detectors had learnt, signed, and
            # the partitions (sources) it covers, so a restart or the next owner of a
            # partition carries on from it. Only the newest few per consumer are kept.
            """
            CREATE TABLE IF NOT EXISTS {db}.detector_checkpoints (
                ts DateTime64(3, 'UTC'),
                group_id String,
                instance String,
                sources Array(String),
                positions String,
                state String CODEC(ZSTD(3)),
                signature String
            )
            ENGINE = MergeTree
            ORDER BY (group_id, ts)
            TTL toDateTime(ts) + INTERVAL 7 DAY DELETE
            """,
        ),
    ),
)
