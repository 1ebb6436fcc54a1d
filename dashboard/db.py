"""The dashboard's one store, shared by request threads and, in the demo, the live
pipeline: ``run`` holds the store's lock across several queries that belong
together; single calls take it themselves (``Store.lock``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from gatewatch.store.client import Store

T = TypeVar("T")


class Database:
    """``store`` behind a lock: ``run(fn, *args)`` calls ``fn(store, *args)`` alone."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = store.lock

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
