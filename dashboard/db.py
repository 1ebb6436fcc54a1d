"""The dashboard's one store, shared by request threads: queries and inserts take
turns (an embedded chDB session is not safe to use from two threads at once)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from gatewatch.store.client import Store

T = TypeVar("T")


class Database:
    """``store`` behind a lock: ``run(fn, *args)`` calls ``fn(store, *args)`` alone."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()

    @property
    def database(self) -> str:
        return self.store.database

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self._lock:
            return fn(self.store, *args, **kwargs)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self._lock:
            return self.store.query(sql, params)

    def insert_rows(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        with self._lock:
            self.store.insert_rows(table, rows)
