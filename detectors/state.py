"""Bounded per-entity state and the small window structures detectors count with.

Every table a detector keeps per IP, user, key or route is an ``EntityTable``: entries
expire after ``ttl_s`` of event time without activity, and past ``max_entities`` the
least recently active are evicted, so memory is bounded whatever the traffic.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K")
S = TypeVar("S")


class EntityTable(Generic[K, S]):
    """State per entity with a TTL in event time and a size cap (LRU eviction).

    >>> table: EntityTable[str, list[int]] = EntityTable(list, ttl_s=60, max_entities=2)
    >>> table.get("a", 0.0).append(1)
    >>> table.get("b", 1.0).append(2)
    >>> table.get("c", 2.0).append(3)  # evicts "a", the least recently active
    >>> sorted(table.keys())
    ['b', 'c']
    >>> table.expire(61.5)  # "b" idle since 1.0
    1
    >>> sorted(table.keys())
    ['c']
    """

    __slots__ = ("_entries", "_factory", "evicted", "max_entities", "ttl_s")

    def __init__(self, factory: Callable[[], S], *, ttl_s: float, max_entities: int) -> None:
        self._factory = factory
        self._entries: OrderedDict[K, tuple[float, S]] = OrderedDict()
        self.ttl_s = ttl_s
        self.max_entities = max_entities
        self.evicted = 0

    def get(self, key: K, ts: float) -> S:
        """The entity's state (created if new), marked active at ``ts``."""
        entries = self._entries
        entry = entries.get(key)
        if entry is None:
            state = self._factory()
            if len(entries) >= self.max_entities:
                entries.popitem(last=False)
                self.evicted += 1
        else:
            state = entry[1]
            entries.move_to_end(key)
        entries[key] = (ts, state)
        return state

    def put(self, key: K, ts: float, state: S) -> None:
        """Set the entity's state, marked active at ``ts``."""
        entries = self._entries
        if key in entries:
            entries.move_to_end(key)
        elif len(entries) >= self.max_entities:
            entries.popitem(last=False)
            self.evicted += 1
        entries[key] = (ts, state)

    def peek(self, key: K) -> S | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def pop(self, key: K) -> S | None:
        entry = self._entries.pop(key, None)
        return None if entry is None else entry[1]

    def expire(self, now: float) -> int:
        """Drop entities idle for longer than the TTL; returns how many."""
        entries = self._entries
        limit = now - self.ttl_s
        dropped = 0
        # Oldest activity first, so stop at the first entity still alive. An event that
        # arrived late (older ts, moved to the end) can only delay expiry, never lose it.
        while entries:
            key, (seen, _) = next(iter(entries.items()))
            if seen > limit:
                break
            del entries[key]
            dropped += 1
        return dropped

    def items(self) -> Iterator[tuple[K, S]]:
        for key, (_, state) in self._entries.items():
            yield key, state

    def keys(self) -> Iterator[K]:
        return iter(self._entries)

    def states(self) -> list[S]:
        """The states, least recently active first, copied in one step.

        Safe while another thread changes the table (a /metrics scrape during
        detection): the copy runs in C without releasing the GIL, where iterating with
        ``items()`` can see the table change and raise.
        """
        return [state for _, state in list(self._entries.values())]

    def __len__(self) -> int:
        return len(self._entries)


class WindowCounter:
    """Counts in a sliding event-time window, kept as a ring of fixed buckets.

    Memory is ``buckets`` integers whatever the rate; the window slides a bucket at a
    time (``window_s / buckets`` resolution).

    >>> c = WindowCounter(window_s=60, buckets=6)
    >>> for t in (0, 5, 15, 59):
    ...     c.add(t)
    >>> c.total(59)
    4
    >>> c.total(75)  # buckets [0,10) and [10,20) have slid out
    1
    """

    __slots__ = ("_counts", "_epoch", "_width")

    def __init__(self, *, window_s: float, buckets: int = 6) -> None:
        self._width = window_s / buckets
        self._counts = [0] * buckets
        self._epoch = 0  # index (ts // width) of the newest bucket

    def add(self, ts: float, amount: int = 1) -> None:
        index = int(ts // self._width)
        self._roll(index)
        if index > self._epoch - len(self._counts):  # too late for the window: ignored
            self._counts[index % len(self._counts)] += amount

    def total(self, ts: float) -> int:
        self._roll(int(ts // self._width))
        return sum(self._counts)

    def _roll(self, index: int) -> None:
        if index <= self._epoch:
            return
        counts = self._counts
        size = len(counts)
        if index - self._epoch >= size:
            for i in range(size):
                counts[i] = 0
        else:
            for i in range(self._epoch + 1, index + 1):
                counts[i % size] = 0
        self._epoch = index


class DistinctCounter:
    """Distinct values, exact up to ``exact_limit`` then a HyperLogLog estimate.

    Most entities see few distinct values (a user's handful of object ids), so they
    stay exact and small; the few that see thousands (a scanner's paths) switch to a
    fixed 2^precision-byte sketch with about 1.04/sqrt(2^precision) relative error.

    >>> d = DistinctCounter(exact_limit=4)
    >>> for v in "abcab":
    ...     _ = d.add(v)
    >>> d.count()
    3
    >>> for i in range(1000):
    ...     _ = d.add(str(i))
    >>> 900 < d.count() < 1100
    True
    """

    __slots__ = ("_exact", "_sketch", "exact_limit", "precision")

    def __init__(self, *, exact_limit: int = 64, precision: int = 10) -> None:
        self._exact: set[str] | None = set()
        self._sketch: bytearray | None = None
        self.exact_limit = exact_limit
        self.precision = precision

    def add(self, value: str) -> bool:
        """Add ``value``; True if it was (exactly, or probably) not seen before."""
        exact = self._exact
        if exact is not None:
            if value in exact:
                return False
            exact.add(value)
            if len(exact) > self.exact_limit:
                self._sketch = bytearray(1 << self.precision)
                for item in exact:
                    self._sketch_add(item)
                self._exact = None
            return True
        return self._sketch_add(value)

    def __contains__(self, value: str) -> bool:
        return self._exact is not None and value in self._exact

    def count(self) -> int:
        if self._exact is not None:
            return len(self._exact)
        return _hll_estimate(self._sketch or bytearray(1), self.precision)

    def _sketch_add(self, value: str) -> bool:
        sketch = self._sketch
        assert sketch is not None
        h = int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big")
        register = h >> (64 - self.precision)
        rest = h & ((1 << (64 - self.precision)) - 1)
        rank = (64 - self.precision) - rest.bit_length() + 1
        if rank > sketch[register]:
            sketch[register] = rank
            return True
        return False


def _hll_estimate(sketch: bytearray, precision: int) -> int:
    m = 1 << precision
    alpha = 0.7213 / (1 + 1.079 / m)
    raw = alpha * m * m / sum(2.0**-r for r in sketch)
    zeros = sketch.count(0)
    if raw <= 2.5 * m and zeros:
        return round(m * math.log(m / zeros))
    return round(raw)
