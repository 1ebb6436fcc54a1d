"""The dashboard's audit log: who viewed, queried or changed what, in ClickHouse
(``audit_log``). Rows are buffered and written at most once a second, so auditing
never slows a page down; ``close`` writes what is left."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from dashboard.db import Database
from gatewatch.errors import StoreError

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 1.0
MAX_BUFFERED = 100_000  # past this (a store down for long), the oldest rows are dropped


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def start(self) -> None:
        """Start writing once a second (again after ``close``: an app's lifespan may
        run more than once, e.g. under a test client)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="audit-log", daemon=True)
        self._thread.start()

    def record(
        self,
        *,
        principal: str,
        role: str,
        auth: str,
        client_ip: str,
        method: str,
        path: str,
        action: str,
        target: str = "",
        status: int = 200,
        detail: str = "",
    ) -> None:
        row = {
            "ts": time.time(),
            "principal": principal,
            "role": role,
            "auth": auth,
            "client_ip": client_ip,
            "method": method,
            "path": path[:2048],
            "action": action,
            "target": target[:1024],
            "status": status,
            "detail": detail[:8192],
        }
        with self._lock:
            self._rows.append(row)
            if len(self._rows) > MAX_BUFFERED:
                del self._rows[0]
                self.dropped += 1

    def flush(self) -> None:
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return
        try:
            self.db.insert_rows("audit_log", rows)
        except StoreError as exc:
            log.warning("audit rows not stored yet (%d kept): %s", len(rows), exc)
            with self._lock:
                self._rows[:0] = rows

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_EVERY_S):
            self.flush()
