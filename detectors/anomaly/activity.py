"""How much every entity usually sends, and how rare an amount is among all entities.

The models judge only busy windows (``features.busy_windows``): judging every window of
every address would cost model time per request. But a client's quiet windows are
its history: a scraper that browsed like a visitor for a minute and then pulls 200
pages in 10 s is far above *its own* usual, and only quiet windows say what that is.
So every window of every entity, busy or not, updates two vectorised summaries of its
volume (``VOLUME``: requests, bytes in, bytes out; ``log1p``, as the models see them):

- ``Activity``: per entity, an exponentially weighted level and absolute deviation,
  in numpy arrays indexed by a slot per entity (a dict lookup per entity and window,
  the rest one array operation per window);
- ``Rarity``: per scope, a decayed histogram of every entity-window, which says how
  rare an amount is among all windows ("one window in 100,000 sends this much").
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat

import numpy as np
import numpy.typing as npt

from detectors.anomaly.baseline import MAD_TO_SIGMA

VOLUME: tuple[str, ...] = ("requests", "bytes_in", "bytes_out")
_BINS = 96  # of 0.25 in log1p space: up to e^24 (~26 billion)
_BIN_WIDTH = 0.25
Floats = npt.NDArray[np.float64]


class Activity:
    """Per entity: EW level and absolute deviation of the ``VOLUME`` features over all
    its windows, and how many it has had. Bounded: past ``max_entities`` the least
    recently active half is dropped."""

    def __init__(self, *, half_life: float, max_entities: int) -> None:
        self.alpha = 1.0 - 0.5 ** (1.0 / half_life)
        self.max_entities = max_entities
        self.slots: dict[str, int] = {}
        width = len(VOLUME)
        self.level = np.zeros((0, width))
        self.spread = np.zeros((0, width))
        self.seen = np.zeros(0, dtype=np.int64)
        self.last = np.zeros(0, dtype=np.int64)  # the window index it was last seen in
        # Slots 0 .. len(slots) - 1 are handed out; the arrays grow by doubling past them.
        self.windows = 0

    def __len__(self) -> int:
        return len(self.slots)

    def slots_of(self, keys: Sequence[str]) -> npt.NDArray[np.int64]:
        """Each key's slot (-1: never seen)."""
        return np.fromiter(map(self.slots.get, keys, repeat(-1)), dtype=np.int64, count=len(keys))

    def deviations(
        self, slot: int, values: Sequence[float]
    ) -> tuple[int, list[float], list[float]]:
        """(windows seen, level, robust z per feature) of one entity's slot."""
        level: list[float] = self.level[slot].tolist()  # plain floats: 3 values, no numpy
        spread: list[float] = self.spread[slot].tolist()
        z = [
            (value - mean) / max(dev * MAD_TO_SIGMA, 0.05 * mean, 0.1)
            for value, mean, dev in zip(values, level, spread, strict=True)
        ]
        return int(self.seen[slot]), level, z

    def learn(self, keys: Sequence[str], values: Floats) -> None:
        """One window of every entity in ``keys`` (rows of ``values``, ``VOLUME`` order)."""
        self.windows += 1
        if not len(keys):
            return
        slots = self.slots_of(keys)
        fresh = np.flatnonzero(slots < 0)
        if len(fresh):
            slots[fresh] = self._allocate([keys[i] for i in fresh.tolist()])
        seen = self.seen[slots]
        # Plain running mean until the half-life is reached, then exponential.
        weight = np.maximum(1.0 / (seen + 1.0), self.alpha)[:, None]
        level = self.level[slots]
        first = (seen == 0)[:, None]
        error = values - level
        spread = self.spread[slots]
        self.level[slots] = np.where(first, values, level + weight * error)
        self.spread[slots] = np.where(first, 0.0, spread + weight * (np.abs(error) - spread))
        self.seen[slots] = seen + 1
        self.last[slots] = self.windows

    def adopt(self, other: Activity) -> None:
        """Take the entities ``other`` knows and this one does not (a partition taken
        over from another consumer)."""
        new = [(key, slot) for key, slot in other.slots.items() if key not in self.slots]
        if not new:
            return
        theirs = np.asarray([slot for _, slot in new], dtype=np.int64)
        mine = self._allocate([key for key, _ in new])
        self.level[mine] = other.level[theirs]
        self.spread[mine] = other.spread[theirs]
        self.seen[mine] = other.seen[theirs]
        self.last[mine] = self.windows

    def _allocate(self, keys: list[str]) -> npt.NDArray[np.int64]:
        if len(self.slots) + len(keys) > self.max_entities:
            self._compact()
        start = len(self.slots)
        need = start + len(keys)
        if need > len(self.seen):
            grow = max(need, 2 * len(self.seen), 64) - len(self.seen)
            width = len(VOLUME)
            self.level = np.concatenate([self.level, np.zeros((grow, width))])
            self.spread = np.concatenate([self.spread, np.zeros((grow, width))])
            self.seen = np.concatenate([self.seen, np.zeros(grow, dtype=np.int64)])
            self.last = np.concatenate([self.last, np.zeros(grow, dtype=np.int64)])
        self.slots.update(zip(keys, range(start, need), strict=True))
        return np.arange(start, need)

    def _compact(self) -> None:
        """Keep the most recently active half."""
        keep = max(1, self.max_entities // 2)
        order = np.argsort(-self.last[list(self.slots.values())], kind="stable")[:keep]
        items = list(self.slots.items())
        self._keep([items[i] for i in order.tolist()])

    def _keep(self, kept: list[tuple[str, int]]) -> None:
        """Keep only these (key, slot) entities, renumbered from 0 in this order."""
        old = np.asarray([slot for _, slot in kept], dtype=np.int64)
        self.level, self.spread = self.level[old], self.spread[old]
        self.seen, self.last = self.seen[old], self.last[old]
        self.slots = {key: i for i, (key, _) in enumerate(kept)}

    def expire(self, idle_windows: int) -> None:
        """Forget entities not seen for ``idle_windows`` windows."""
        if not self.slots:
            return
        idle = self.windows - self.last[: len(self.slots)]
        if (idle > idle_windows).any():
            self._keep([(k, s) for k, s in self.slots.items() if idle[s] <= idle_windows])


class Rarity:
    """Decayed histograms of the ``VOLUME`` features over every entity-window of a
    scope: the share of windows at or above an amount.

    >>> r = Rarity(half_life=10_000)
    >>> r.add(np.log1p(np.array([[3.0, 100, 5000]] * 9_999 + [[200.0, 100, 5000]])))
    >>> r.windows
    10000.0
    >>> round(r.tail(0, np.log1p(150)), 4), round(r.tail(0, np.log1p(3)), 1)
    (0.0001, 1.0)
    """

    def __init__(self, *, half_life: float) -> None:
        self.decay_per_window = 0.5 ** (1.0 / half_life)
        self.counts = np.zeros((len(VOLUME), _BINS))
        self.windows = 0.0
        self._tails: list[list[float]] | None = None  # share at or above each bin

    def add(self, values: Floats) -> None:
        """Rows of ``VOLUME`` values (log1p) of one window's entities."""
        n = len(values)
        if not n:
            return
        decay = self.decay_per_window**n
        self.counts *= decay
        self.windows = self.windows * decay + n
        bins = np.minimum((values / _BIN_WIDTH).astype(np.int64), _BINS - 1)
        for feature in range(len(VOLUME)):
            self.counts[feature] += np.bincount(bins[:, feature], minlength=_BINS)
        self._tails = None

    def median(self, feature: int) -> float:
        """The typical window's value (the middle of the bin where half the windows
        lie at or above; 0.0 before any)."""
        if self.windows <= 0:
            return 0.0
        self.tail(feature, 0.0)  # computes the tails
        assert self._tails is not None
        above = self._tails[feature]
        at = max((i for i, share in enumerate(above) if share >= 0.5), default=0)
        return (at + 0.5) * _BIN_WIDTH

    def tail(self, feature: int, value: float) -> float:
        """Share of windows in ``value``'s bin or above (1.0 before any)."""
        if self.windows <= 0:
            return 1.0
        tails = self._tails
        if tails is None:
            above = self.counts[:, ::-1].cumsum(axis=1)[:, ::-1] / self.windows
            tails = self._tails = above.tolist()
        return tails[feature][min(max(int(value / _BIN_WIDTH), 0), _BINS - 1)]
