"""Risk per actor: what its findings add up to, fading with event time.

A single low finding should not wake anyone; several findings from one actor within
an hour should. Each finding adds points (``AlertPolicy.points``), and an actor's risk
halves every ``half_life_s`` of event time, so old evidence still counts a little and
a slow attacker keeps building risk while a one-off fades away.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from alerts.policy import AlertPolicy
from gatewatch.finding import EntityType

Actor = tuple[EntityType, str]

FORGET_BELOW = 0.01  # of the threshold: an actor this quiet is forgotten


def decay(elapsed_s: float, half_life_s: float) -> float:
    """What is left of one point after ``elapsed_s`` of event time.

    >>> decay(3600, 3600), decay(0, 3600)
    (0.5, 1.0)
    """
    return float(0.5 ** (elapsed_s / half_life_s))


class RiskBook:
    """Risk per actor: points added per finding, exponential decay in event time,
    bounded size (TTL: forget actors whose risk decayed below 1% of the threshold;
    cap ``max_actors`` with LRU). ``on_forget`` hears of every actor dropped, so state
    kept elsewhere per actor can die with its risk.

    >>> from alerts.policy import AlertPolicy
    >>> book = RiskBook(AlertPolicy(half_life_s=60))
    >>> actor = (EntityType.IP, "203.0.113.9")
    >>> book.add(actor, 40, ts=0.0), book.add(actor, 40, ts=60.0), book.risk(actor, 120.0)
    (40.0, 60.0, 30.0)
    """

    __slots__ = ("_entries", "_floor", "_half_life", "_next_sweep", "max_actors", "on_forget")

    def __init__(
        self,
        policy: AlertPolicy,
        *,
        max_actors: int = 100_000,
        on_forget: Callable[[Actor], None] | None = None,
    ) -> None:
        if max_actors < 1:
            raise ValueError(f"max_actors must be >= 1, got {max_actors}")
        self.max_actors = max_actors
        self.on_forget = on_forget
        self._half_life = policy.half_life_s
        self._floor = FORGET_BELOW * policy.risk_threshold
        self._entries: OrderedDict[Actor, tuple[float, float]] = OrderedDict()  # (risk, ts)
        self._next_sweep = float("-inf")

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, actor: Actor) -> bool:
        return actor in self._entries

    def add(self, actor: Actor, points: float, ts: float) -> float:
        """Add ``points`` at event time ``ts``; returns the new risk.

        A late finding (``ts`` before the actor's last update) adds its points decayed
        to that update's time, as if it had arrived in order.
        """
        self.expire(ts)
        entries = self._entries
        entry = entries.get(actor)
        if entry is None:
            if len(entries) >= self.max_actors:
                self._drop(next(iter(entries)))
            value, at = float(points), ts
        else:
            value, at = entry
            if ts >= at:
                value, at = value * self._decay(ts - at) + points, ts
            else:
                value += points * self._decay(at - ts)
            entries.move_to_end(actor)
        entries[actor] = (value, at)
        return value

    def risk(self, actor: Actor, ts: float) -> float:
        """The actor's risk at ``ts`` (0 when unknown; never grows back before its last
        update)."""
        entry = self._entries.get(actor)
        if entry is None:
            return 0.0
        value, at = entry
        return value * self._decay(max(0.0, ts - at))

    def expire(self, ts: float) -> int:
        """Forget actors whose risk decayed below the floor by ``ts``; returns how many.

        Amortised: a full pass runs at most once per quarter half-life of event time,
        so calling it for every finding is cheap.
        """
        if ts < self._next_sweep:
            return 0
        self._next_sweep = ts + self._half_life / 4
        faded = [
            actor
            for actor, (value, at) in self._entries.items()
            if value * self._decay(max(0.0, ts - at)) < self._floor
        ]
        for actor in faded:
            self._drop(actor)
        return len(faded)

    def _decay(self, elapsed: float) -> float:
        return decay(elapsed, self._half_life)

    def _drop(self, actor: Actor) -> None:
        del self._entries[actor]
        if self.on_forget is not None:
            self.on_forget(actor)
