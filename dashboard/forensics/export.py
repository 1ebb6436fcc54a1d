"""Events matching a search as a download: CSV or JSON Lines, streamed page by page.

CSV cells that a spreadsheet would read as a formula (starting with ``=``, ``+``,
``-``, ``@``, tab or carriage return) get a leading single quote: attackers choose
paths, user agents and user names, and an analyst opening the export must not run
them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

import orjson

from dashboard.forensics.search import EVENT_COLUMNS, EventSearch, search_events
from gatewatch.store.client import Store

ExportFormat = Literal["csv", "jsonl"]
_PAGE = 1000
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class EventExport:
    """The chunks of one export, an iterator of bytes. While and after it is consumed,
    ``rows`` counts the rows written and ``truncated`` says whether ``max_rows``
    stopped it before the last matching event. A truncated JSON Lines export ends with
    one more line, ``{"truncated": true, "rows": N}``; a CSV export just stops."""

    def __init__(self, store: Store, q: EventSearch, fmt: ExportFormat, max_rows: int) -> None:
        if fmt not in ("csv", "jsonl"):
            raise ValueError(f"unknown export format {fmt!r}")
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        self.store = store
        self.q = q
        self.fmt = fmt
        self.max_rows = max_rows
        self.rows = 0
        self.truncated = False
        self._chunks = self._generate()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)

    def _generate(self) -> Iterator[bytes]:
        if self.fmt == "csv":
            yield _csv([EVENT_COLUMNS])
        for rows in self._pages():
            yield _csv(_cells(row) for row in rows) if self.fmt == "csv" else _jsonl(rows)
        if self.truncated and self.fmt == "jsonl":
            yield orjson.dumps({"truncated": True, "rows": self.rows}) + b"\n"

    def _pages(self) -> Iterator[list[dict[str, Any]]]:
        """The matching rows page by page, at most ``max_rows`` in all."""
        q = self.q.model_copy(update={"limit": _PAGE})
        while True:
            page = search_events(self.store, q)
            room = self.max_rows - self.rows
            rows = page.rows[:room]
            self.rows += len(rows)
            self.truncated = len(page.rows) > room or (
                self.rows == self.max_rows and page.next_cursor is not None
            )
            if rows:
                yield rows
            if self.truncated or page.next_cursor is None:
                return
            q = q.model_copy(update={"cursor": page.next_cursor})


def export_events(
    store: Store, q: EventSearch, fmt: ExportFormat, *, max_rows: int = 100_000
) -> EventExport:
    """Every event matching ``q`` (its ``limit`` ignored, its ``cursor`` the start),
    newest first, as CSV with a header row or as JSON Lines."""
    return EventExport(store, q, fmt, max_rows)


def _cells(row: dict[str, Any]) -> list[Any]:
    return [_defused(row[column]) for column in EVENT_COLUMNS]


def _defused(value: Any) -> Any:
    """A text cell a spreadsheet would take for a formula, quoted to stay text.

    >>> _defused("=1+1"), _defused("@A1"), _defused("a-b"), _defused(-3)
    ("'=1+1", "'@A1", 'a-b', -3)
    """
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv(rows: Iterable[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(row) + b"\n" for row in rows)
