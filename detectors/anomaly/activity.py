"""How much every entity usually sends, and how rare an amount is among all entities.

The models judge only busy windows (``features.busy_windows``): judging every window of
every address would cost model time per request. But a client's quiet windows are
its history: a scraper that browsed like a visitor for a minute and then pulls 200
pages in 10 s is far above *its own* usual, and only quiet windows say what that is.
So every window of every entity, busy or not, updates two vectorised summaries of its
volume (``VOLUME``: requests, bytes in, bytes out; ``log1p``, as the models see them):

- ``Activity``: per entity, an exponentially weighted level and absolute deviation,
  in numpy arrays indexed by the entity's id (``keyspace``): one array operation per
  window, no lookup per entity;
- ``Rarity``: per scope, a decayed histogram of every entity-window, which says how
  rare an amount is among all windows ("one window in 100,000 sends this much").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from detectors.anomaly.baseline import MAD_TO_SIGMA
from detectors.anomaly.keyspace import Ids

VOLUME: tuple[str, ...] = ("requests", "bytes_in", "bytes_out")
_BINS = 96  # of 0.25 in log1p space: up to e^24 (~26 billion)
_BIN_WIDTH = 0.25
Floats = npt.NDArray[np.float64]


class Activity:
    """Per client id (``keyspace.KeySpace``): EW level and absolute deviation of the
    ``VOLUME`` features over all its windows, and how many it has had. The key space
    bounds the clients; ``forget`` clears the history of the ids it forgot."""

    def __init__(self, *, half_life: float) -> None:
        self.alpha = 1.0 - 0.5 ** (1.0 / half_life)
        width = len(VOLUME)
        self.level = np.zeros((0, width))
        self.spread = np.zeros((0, width))
        self.seen = np.zeros(0, dtype=np.int64)  # by id; 0: no history

    def __len__(self) -> int:
        """Clients with a history."""
        return int(np.count_nonzero(self.seen))

    def history(self, client: int) -> int:
        """How many of ``client``'s windows were learnt (0: none, or an id it never saw)."""
        return int(self.seen[client]) if 0 <= client < len(self.seen) else 0

    def deviations(
        self, client: int, values: Sequence[float]
    ) -> tuple[int, list[float], list[float]]:
        """(windows seen, level, robust z per feature) of one client."""
        level: list[float] = self.level[client].tolist()  # plain floats: 3 values, no numpy
        spread: list[float] = self.spread[client].tolist()
        z = [
            (value - mean) / max(dev * MAD_TO_SIGMA, 0.05 * mean, 0.1)
            for value, mean, dev in zip(values, level, spread, strict=True)
        ]
        return int(self.seen[client]), level, z

    def learn(self, clients: Ids, values: Floats) -> None:
        """One window of each of ``clients`` (ids; rows of ``values``, ``VOLUME`` order)."""
        if not len(clients):
            return
        self._reserve(int(clients.max()) + 1)
        seen = self.seen[clients]
        # Plain running mean until the half-life is reached, then exponential.
        weight = np.maximum(1.0 / (seen + 1.0), self.alpha)[:, None]
        level = self.level[clients]
        first = (seen == 0)[:, None]
        error = values - level
        spread = self.spread[clients]
        self.level[clients] = np.where(first, values, level + weight * error)
        self.spread[clients] = np.where(first, 0.0, spread + weight * (np.abs(error) - spread))
        self.seen[clients] = seen + 1

    def forget(self, clients: Ids) -> None:
        """Clear these clients' histories (their ids are handed out again)."""
        clients = clients[clients < len(self.seen)]
        self.seen[clients] = 0

    def adopt(self, other: Activity, mine: Ids, theirs: Ids) -> None:
        """Take the histories ``other`` has (of its ids ``theirs``, ours ``mine``) of
        clients this one has none of (a partition taken over from another consumer)."""
        self._reserve(int(mine.max()) + 1 if len(mine) else 0)
        has = np.zeros(len(theirs), dtype=bool)
        within = theirs < len(other.seen)
        has[within] = other.seen[theirs[within]] > 0
        take = has & (self.seen[mine] == 0)
        mine, theirs = mine[take], theirs[take]
        self.level[mine] = other.level[theirs]
        self.spread[mine] = other.spread[theirs]
        self.seen[mine] = other.seen[theirs]

    def _reserve(self, size: int) -> None:
        if size <= len(self.seen):
            return
        grow = max(size, 2 * len(self.seen), 64) - len(self.seen)
        width = len(VOLUME)
        self.level = np.concatenate([self.level, np.zeros((grow, width))])
        self.spread = np.concatenate([self.spread, np.zeros((grow, width))])
        self.seen = np.concatenate([self.seen, np.zeros(grow, dtype=np.int64)])


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
