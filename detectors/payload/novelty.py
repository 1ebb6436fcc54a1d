"""Top-level paths a host never serves: a learned model of the first segment of its paths.

An API's traffic goes to a few top-level resources (``/api``, ``/static``,
``/health``); a scanner asks for what other software would have (``/admin4.nsf``,
``/_vti_bin/``, ``/CFIDE``, ``/servlet``). Once a host has served ``warmup`` requests,
a request whose first path segment is not established there is a weak deviation
(0.3: a low-severity finding on its own, evidence next to a signature). A segment is
established while it carries ``share`` of the host's requests since it first came
and, if it first came after the warm-up, once it has had ``min_hits`` requests: a
new resource after a deploy is reported a few times, then learnt; a scanner's one-off
paths never are. Files every crawler and browser asks for on its own
(``/robots.txt``, ``/favicon.ico``...) are not judged.

Bounded: at most ``max_hosts`` hosts (least recently active first out, idle ones
expire after ``ttl_s``) and ``max_segments`` per host; a segment past that is neither
learnt nor judged. Counts halve every ``horizon`` requests of a host.
"""

from __future__ import annotations

from typing import Final

from detectors.payload.profiles import Deviation, DeviationKind, halve_share
from detectors.state import EntityTable

_WELL_KNOWN: Final = frozenset(
    {"robots.txt", "favicon.ico", "sitemap.xml", "apple-touch-icon.png", "humans.txt"}
)
_SHOWN = 200


class _Host:
    __slots__ = ("seen", "segments")

    def __init__(self) -> None:
        self.seen = 0
        self.segments: dict[str, list[int]] = {}  # segment -> [requests, host's count before]


class RouteNovelty:
    """First path segments per host, judged then counted by ``check``.

    >>> novelty = RouteNovelty(warmup=100)
    >>> for i in range(200):
    ...     _ = novelty.check("api.example.com", f"/api/v1/items/{i}", float(i))
    >>> (d,) = novelty.check("api.example.com", "/admin4.nsf", 200.0)
    >>> str(d.kind), d.score, d.value
    ('unseen_route', 0.3, 'admin4.nsf')
    >>> novelty.check("api.example.com", "/robots.txt", 201.0)
    []
    """

    def __init__(
        self,
        *,
        warmup: int = 1_000,
        share: float = 0.005,
        min_hits: int = 8,
        max_hosts: int = 1_000,
        max_segments: int = 256,
        ttl_s: float = 7 * 86_400.0,
        horizon: int = 1 << 16,
    ) -> None:
        if warmup < 1 or min_hits < 1 or max_hosts < 1 or max_segments < 1:
            raise ValueError("warmup, min_hits, max_hosts and max_segments must be at least 1")
        if not 0 <= share < 1 or ttl_s <= 0 or horizon < 2 * warmup:
            raise ValueError("share in [0, 1), ttl_s positive, horizon at least twice warmup")
        self.warmup = warmup
        self.share = share
        self.min_hits = min_hits
        self.max_hosts = max_hosts
        self.max_segments = max_segments
        self.ttl_s = ttl_s
        self.horizon = horizon
        self.hosts: EntityTable[str, _Host] = EntityTable(
            _Host, ttl_s=ttl_s, max_entities=max_hosts
        )

    def __repr__(self) -> str:
        return (
            f"RouteNovelty(warmup={self.warmup}, share={self.share}, "
            f"min_hits={self.min_hits}, max_hosts={self.max_hosts}, "
            f"max_segments={self.max_segments}, ttl_s={self.ttl_s}, horizon={self.horizon})"
        )

    def check(self, host: str, path: str, ts: float) -> list[Deviation]:
        """A deviation (at most one) when the first segment of ``path`` is not
        established on ``host``; counts the request either way."""
        state = self.hosts.get(host, ts)
        seen = state.seen = state.seen + 1
        if not seen % self.horizon:
            for kept in state.segments.values():
                kept[0], kept[1] = halve_share(kept[0], kept[1], seen)
        segment = path[1:].partition("/")[0] if path.startswith("/") else path
        counts = state.segments.get(segment)
        if counts is None:
            if len(state.segments) >= self.max_segments:
                return []
            counts = state.segments[segment] = [0, seen - 1]
        hits = counts[0] = counts[0] + 1
        warmup = self.warmup
        if seen <= warmup or segment in _WELL_KNOWN:
            return []
        since = counts[1]
        if hits >= self.share * (seen - since) and (since < warmup or hits > self.min_hits):
            return []
        reason = "a top-level path new on this host"
        if since < warmup or hits > self.min_hits:
            reason = "a top-level path rarely seen on this host"
        return [Deviation("", segment[:_SHOWN], reason, 0.3, DeviationKind.ROUTE)]

    def expire(self, now: float) -> int:
        """Forget hosts idle for longer than ``ttl_s``; returns how many."""
        return self.hosts.expire(now)

    def tracked(self) -> int:
        """Segments counted, over all hosts."""
        return sum(len(state.segments) for state in self.hosts.states())
