"""Small integer ids for the clients of one scope (principals, or addresses).

Every window of every client updates its volume history (``activity.Activity``), at
every window length. Keyed by name, that is a dict lookup per client, window and
length, and on a busy API each one walks cold memory (the dict's slot, its entry, the
name; measured ~0.5 us a lookup with 2,000-5,000 clients a window). A ``KeySpace``
names each client once per shortest window, when its requests are coded; from there
on a client is an int: the longer windows join ids rather than strings, and the
histories are arrays indexed by id.

Id 0 is "" (nobody: a request without a principal). The ids of forgotten clients are
handed out again, so ids stay dense and nobody holding an id has to renumber it.

>>> space = KeySpace()
>>> space.ids(np.asarray(["198.51.100.7", "", "203.0.113.5"], dtype=object)).tolist()
[1, 0, 2]
>>> space.ids(np.asarray(["203.0.113.5"], dtype=object)).tolist(), len(space)
([2], 2)
"""

from __future__ import annotations

from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

Ids = npt.NDArray[np.int64]
NOBODY = 0


class KeySpace:
    """Names to ids and back, and when each id was last seen (event time)."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {"": NOBODY}
        self._names = np.asarray([""], dtype=object)  # by id; None: a free id
        self.last_seen = np.zeros(1)  # by id: the end of the last window it was in
        self._free = np.zeros(0, dtype=np.int64)  # ids of forgotten clients
        self._top = 1  # ids below are in use or free

    def __len__(self) -> int:
        """Clients known (nobody aside)."""
        return len(self._ids) - 1

    @property
    def capacity(self) -> int:
        """One more than the highest id handed out: what arrays indexed by id need."""
        return self._top

    def id(self, name: str) -> int:
        """``name``'s id, -1 when it has none."""
        return self._ids.get(name, -1)

    def names(self, ids: Ids) -> npt.NDArray[Any]:
        return self._names[ids]

    def ids(self, names: npt.NDArray[Any]) -> Ids:
        """The id of each of ``names`` (distinct strings), new clients given one."""
        found = np.fromiter(map(self._ids.get, names, repeat(-1)), np.int64, count=len(names))
        fresh = np.flatnonzero(found < 0)
        if len(fresh):
            found[fresh] = given = self._allocate(len(fresh))
            new = names[fresh]
            self._names[given] = new
            self._ids.update(zip(new.tolist(), given.tolist(), strict=True))
        return found

    def seen(self, ids: Ids, when: float) -> None:
        """These clients were in a window that ended at ``when``."""
        self.last_seen[ids] = when

    def forget(self, *, before: float, limit: int, keep: Ids) -> Ids:
        """Forget the clients last seen before ``before`` and, past ``limit`` clients,
        the least recently seen until half of ``limit`` are left; never those in
        ``keep`` (ids still held). Returns the forgotten ids, for the histories to
        clear: they are handed out again."""
        used = np.zeros(self._top, dtype=bool)
        used[self._clients()] = True
        drop = used & (self.last_seen[: self._top] < before)
        remaining = len(self) - int(np.count_nonzero(drop))
        if remaining > limit:
            candidates = np.flatnonzero(used & ~drop)
            order = np.argsort(self.last_seen[candidates], kind="stable")
            drop[candidates[order[: remaining - max(1, limit // 2)]]] = True
        drop[NOBODY] = False
        drop[keep] = False
        gone = np.flatnonzero(drop)
        if len(gone):
            for name in self._names[gone].tolist():
                del self._ids[name]
            self._names[gone] = None
            self._free = np.concatenate((self._free, gone))
        return gone

    def adopt(self, other: KeySpace) -> tuple[Ids, Ids]:
        """Name here every client ``other`` knows (a partition taken over from another
        consumer): (our ids, its ids) of them, in the same order."""
        theirs = other._clients()
        mine = self.ids(other._names[theirs])
        self.last_seen[mine] = np.maximum(self.last_seen[mine], other.last_seen[theirs])
        return mine, theirs

    def _clients(self) -> Ids:
        """The ids in use, nobody aside."""
        ids: Ids = np.fromiter(self._ids.values(), np.int64, count=len(self._ids))
        in_use: Ids = ids[ids != NOBODY]
        return in_use

    def _allocate(self, count: int) -> Ids:
        reused = self._free[:count]
        self._free = self._free[count:]
        more = count - len(reused)
        start = self._top
        self._top += more
        if self._top > len(self._names):
            grow = max(self._top, 2 * len(self._names)) - len(self._names)
            self._names = np.concatenate((self._names, np.full(grow, None, dtype=object)))
            self.last_seen = np.concatenate((self.last_seen, np.zeros(grow)))
        return np.concatenate((reused, np.arange(start, self._top, dtype=np.int64)))
