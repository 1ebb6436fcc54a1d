"""The durable queue between alerting and delivery: one SQLite file in the data dir.

A message is written here (and synced to disk) before anything tries to send it, so a
crash or a restart loses nothing: the next dispatcher delivers what it finds. Each
message has a deterministic id, ``alert_id:version:channel``, so submitting the same
alert version to the same channel twice is a no-op, also after it was delivered (the
ids of delivered messages are kept for ``keep_delivered_s``). Messages that ran out of
attempts move to a dead table, kept for an operator to see.

>>> import tempfile
>>> from pathlib import Path
>>> with tempfile.TemporaryDirectory() as tmp:
...     outbox = Outbox(Path(tmp) / "outbox.sqlite")
...     first = Delivery.of("a1", 1, "ops", "title", "body", created_ts=10.0)
...     outbox.put(first), outbox.put(first), outbox.pending()
...     outbox.done(first.id)
...     outbox.put(first), outbox.pending()
...     outbox.close()
(True, False, 1)
(False, 0)
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_COLUMNS = (
    "id, alert_id, version, channel, title, body, created_ts, attempts, next_try_ts, last_error"
)
_FORGET_EVERY = 1000  # deliveries between prunes of the remembered ids
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    alert_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    channel TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_ts REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try_ts REAL NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (channel, next_try_ts, seq);
CREATE TABLE IF NOT EXISTS dead (
    id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    channel TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_ts REAL NOT NULL,
    attempts INTEGER NOT NULL,
    next_try_ts REAL NOT NULL,
    last_error TEXT NOT NULL,
    dead_ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS delivered (
    id TEXT PRIMARY KEY,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS delivered_ts ON delivered (ts);
"""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message for one channel: a rendered alert version, or its retry state."""

    id: str
    alert_id: str
    version: int
    channel: str
    title: str
    body: str
    created_ts: float
    attempts: int = 0
    next_try_ts: float = 0.0
    last_error: str = ""

    @classmethod
    def of(
        cls, alert_id: str, version: int, channel: str, title: str, body: str, *, created_ts: float
    ) -> Delivery:
        """A new message, due at once, with the id that makes re-submitting a no-op."""
        return cls(
            f"{alert_id}:{version}:{channel}", alert_id, version, channel, title, body, created_ts
        )


def _delivery(row: tuple[Any, ...]) -> Delivery:
    return Delivery(*row[:10])


class Outbox:
    """Pending messages, persisted (WAL, ``synchronous=FULL``). Safe to share between
    threads: one connection behind one lock."""

    def __init__(self, path: Path, *, keep_delivered_s: float = 7 * 86400.0) -> None:
        self.path = path
        self.keep_delivered_s = keep_delivered_s
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # Python opens a transaction before each write; ``with self._db`` commits it.
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._done_since_forget = 0
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._forget_delivered(time.time())

    def put(self, delivery: Delivery) -> bool:
        """Store a message; False when its id is already pending, dead or delivered."""
        with self._lock, self._db:
            seen = self._db.execute(
                "SELECT 1 FROM delivered WHERE id = ? UNION ALL SELECT 1 FROM dead WHERE id = ?",
                (delivery.id, delivery.id),
            ).fetchone()
            if seen:
                return False
            cursor = self._db.execute(
                f"INSERT OR IGNORE INTO outbox ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                (
                    delivery.id,
                    delivery.alert_id,
                    delivery.version,
                    delivery.channel,
                    delivery.title,
                    delivery.body,
                    delivery.created_ts,
                    delivery.attempts,
                    delivery.next_try_ts,
                    delivery.last_error,
                ),
            )
            return cursor.rowcount == 1

    def due(self, now: float, limit: int = 100, *, channel: str | None = None) -> list[Delivery]:
        """Messages whose next try is at or before ``now``, oldest first; only those for
        ``channel`` when given."""
        params: tuple[object, ...]
        where, params = "next_try_ts <= ?", (now,)
        if channel is not None:
            where, params = "channel = ? AND next_try_ts <= ?", (channel, now)
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE {where} ORDER BY next_try_ts, seq LIMIT ?",  # noqa: S608
                (*params, limit),
            ).fetchall()
        return [_delivery(row) for row in rows]

    def next_try(self, channel: str | None = None) -> float | None:
        """When the earliest pending message (of ``channel``, if given) is due."""
        params: tuple[str, ...]
        sql, params = "SELECT min(next_try_ts) FROM outbox", ()
        if channel is not None:
            sql, params = f"{sql} WHERE channel = ?", (channel,)
        with self._lock:
            (earliest,) = self._db.execute(sql, params).fetchone()
        return float(earliest) if earliest is not None else None

    def done(self, delivery_id: str) -> None:
        """Delivered: the message leaves the outbox; its id is remembered for dedup."""
        now = time.time()
        with self._lock, self._db:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (delivery_id,))
            self._db.execute(
                "INSERT OR REPLACE INTO delivered (id, ts) VALUES (?, ?)", (delivery_id, now)
            )
            self._done_since_forget += 1
        if self._done_since_forget >= _FORGET_EVERY:
            self._forget_delivered(now)

    def retry(self, delivery_id: str, *, next_try_ts: float, error: str) -> None:
        """One more failed attempt; try again at ``next_try_ts``."""
        with self._lock, self._db:
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_try_ts = ?, last_error = ?"
                " WHERE id = ?",
                (next_try_ts, error, delivery_id),
            )

    def give_up(self, delivery_id: str, error: str) -> None:
        """The last attempt failed: the message moves to the dead table (see ``dead``)."""
        with self._lock, self._db:
            self._db.execute(
                f"INSERT OR REPLACE INTO dead ({_COLUMNS}, dead_ts)"  # noqa: S608
                " SELECT id, alert_id, version, channel, title, body, created_ts,"
                " attempts + 1, next_try_ts, ?, ? FROM outbox WHERE id = ?",
                (error, time.time(), delivery_id),
            )
            self._db.execute("DELETE FROM outbox WHERE id = ?", (delivery_id,))

    def pending(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
        return int(count)

    def pending_by_channel(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT channel, count(*) FROM outbox GROUP BY channel")
            return {str(channel): int(count) for channel, count in rows.fetchall()}

    def dead(self) -> list[Delivery]:
        """Messages given up on, oldest first."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM dead ORDER BY dead_ts").fetchall()  # noqa: S608
        return [_delivery(row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _forget_delivered(self, now: float) -> None:
        """Delivered ids older than ``keep_delivered_s`` no longer block a re-submit."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM delivered WHERE ts < ?", (now - self.keep_delivered_s,))
            self._done_since_forget = 0

    def __repr__(self) -> str:
        return f"Outbox(path={str(self.path)!r}, keep_delivered_s={self.keep_delivered_s!r})"
