"""Batches events and dead letters into columnar inserts, bounded by size and time."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from gatewatch.event import DeadLetter, Event
from gatewatch.finding import Finding
from gatewatch.store.client import Store

log = logging.getLogger(__name__)


class BatchWriter:
    """Buffers rows and writes them when ``max_rows`` are waiting or the oldest has
    waited ``max_seconds``. ``flush`` writes whatever is buffered; call it before
    acknowledging input (committing offsets) and at shutdown.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_rows: int = 50_000,
        max_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        on_flush: Callable[[int, int], None] | None = None,
    ) -> None:
        self.store = store
        self.on_flush = on_flush
        self.max_rows = max_rows
        self.max_seconds = max_seconds
        self._clock = clock
        self._events: list[Event] = []
        self._dead: list[DeadLetter] = []
        self._findings: list[Finding] = []
        self._rows: dict[str, list[dict[str, Any]]] = {}  # small tables (alerts, audit)
        self._rows_lock = threading.Lock()
        self._oldest: float | None = None
        self.events_written = 0
        self.dead_letters_written = 0
        self.findings_written = 0

    def add_event(self, event: Event) -> None:
        self._events.append(event)
        self._after_add()

    def add_events(self, events: list[Event]) -> None:
        """Several events at once (a consumed batch): one size and time check."""
        if events:
            self._events.extend(events)
            self._after_add()

    def add_finding(self, finding: Finding) -> None:
        """A finding (or a newer version of one), stored with the next flush."""
        self._findings.append(finding)
        self._after_add()

    def add_row(self, table: str, row: dict[str, Any]) -> None:
        """A row of a small table (alert versions, delivery attempts), stored with the
        next flush. Thread-safe: the alert dispatcher's thread adds its audit rows, the
        flushing thread writes them (one thread talks to the store)."""
        with self._rows_lock:
            self._rows.setdefault(table, []).append(row)

    def add_dead_letter(self, dead: DeadLetter) -> None:
        self._dead.append(dead)
        self._after_add()

    def _after_add(self) -> None:
        if self._oldest is None:
            self._oldest = self._clock()
        if (
            len(self._events) + len(self._dead) >= self.max_rows
            or self._clock() - self._oldest >= self.max_seconds
        ):
            self.flush()

    def tick(self) -> None:
        """Flush if the oldest buffered row has waited long enough (for idle sources)."""
        if self._oldest is not None and self._clock() - self._oldest >= self.max_seconds:
            self.flush()

    @property
    def pending(self) -> int:
        rows = sum(len(rows) for rows in self._rows.values())
        return len(self._events) + len(self._dead) + len(self._findings) + rows

    def flush(self) -> None:
        events, dead, findings = self._events, self._dead, self._findings
        if events:
            self.store.insert_events(events)
            self.events_written += len(events)
            self._events = []
        if dead:
            self.store.insert_dead_letters(dead)
            self.dead_letters_written += len(dead)
            self._dead = []
        if findings:
            # After the events: a finding is never stored before its evidence.
            self.store.insert_findings(findings)
            self.findings_written += len(findings)
            self._findings = []
        if self._rows:
            with self._rows_lock:
                tables, self._rows = self._rows, {}
            for table, rows in tables.items():
                self.store.insert_rows(table, rows)
        self._oldest = None
        if events or dead:
            log.debug("stored %d events and %d dead letters", len(events), len(dead))
            if self.on_flush is not None:
                self.on_flush(len(events), len(dead))
