"""Broken object-level authorization: one principal reaching into many objects that are
not its own, on a route whose path names an object (``/orders/{orderId}``; the object
id is the path segment at the placeholder).

Per principal (the user, else the API key, else the client IP) and object route, in a
window of event time, three signals:

- **volume**: distinct ids far above what the route's principals normally touch (a
  per-route baseline learned online) and above an absolute floor;
- **sequential walk**: numeric ids visited in consecutive order (``1001, 1002, ...``),
  strong at lower counts, whatever the answers (a vulnerable API says 200 to each);
- **denials**: most of the ids answered 403 or 404 (probing ids it does not own).

Benign look-alikes. On a public catalogue (``/products/{id}``) principals share ids
(the same popular products), the median one touches many, or many anonymous
visitors are served beside signed-in users: such a route is *public*, and there only
403s count. A user opening their own orders touches few, not consecutively. A route
nobody else uses is not judged (refusals there are a scan of paths:
``endpoint_scanning``); while a route is too new to tell whether it is public (less
than a window watched), anonymous clients (crawlers) are not judged on volume or
walks. Admins and exports belong in ``allow``.

The baseline counts principal-windows that reached 1, 2, 3, 4, 6, 8, ... distinct ids,
decayed; its quantile leaves out the principal being judged, and a flagged one's
windows are withdrawn and never learnt from again. Most principals touch one id per
route (their own profile): they are kept as a tuple, a *sighting*, until a second id.
"""

from __future__ import annotations

import math
import zlib
from array import array
from typing import Annotated, ClassVar, Self

from pydantic import Field, model_validator

from detectors.base import Detector, DetectorParams
from detectors.episodes import Episodes
from detectors.state import DistinctCounter, EntityTable
from gatewatch.event import Event
from gatewatch.finding import EntityType

# 1, 2, 3, 4, 6, 8, 12, 16, ...: half-octave steps, so a quantile is within 1.5x.
LEVELS: tuple[int, ...] = (1, *sorted({m << k for k in range(1, 21) for m in (1, 3)}))
_NOT_NUMERIC = -1
_SHARE_SAMPLE = 2  # the first ids of each principal-window measure how shared ids are
_CLASSIFY_EVERY_S = 60.0
_SPECS_MAX = 16_384
Ratio = Annotated[float, Field(ge=0, le=1)]


class BolaParams(DetectorParams):
    window_s: Annotated[float, Field(gt=0)] = 600.0
    min_distinct: Annotated[int, Field(ge=2)] = Field(
        default=30, description="floor: fewer distinct ids never flag on volume"
    )
    baseline_multiplier: Annotated[float, Field(ge=1)] = Field(
        default=4.0, description="volume must exceed this times the route's baseline"
    )
    baseline_quantile: Ratio = Field(
        default=0.95, description="the baseline: this quantile of ids per principal-window"
    )
    min_peers: Annotated[int, Field(ge=1)] = Field(
        default=5, description="other principal-windows needed before the baseline counts"
    )
    cold_min_distinct: Annotated[int, Field(ge=2)] = Field(
        default=80, description="volume floor while the route has fewer than min_peers"
    )
    sequential_min_steps: Annotated[int, Field(ge=2)] = Field(
        default=20, description="consecutive steps of a walk (20 own orders stay below)"
    )
    sequential_max_step: Annotated[int, Field(ge=1)] = 3
    sequential_min_ratio: Ratio = 0.8
    denied_min: Annotated[int, Field(ge=1)] = Field(
        default=10, description="distinct ids answered 403/404"
    )
    denied_min_ratio: Ratio = 0.5
    public_share: Ratio = Field(
        default=0.1, description="share of ids touched by another principal: a public route"
    )
    public_min_samples: Annotated[int, Field(ge=1)] = Field(
        default=200, description="touches before sharing can make a route public"
    )
    public_min_peers: Annotated[int, Field(ge=1)] = Field(
        default=30, description="principal-windows before the median can make it public"
    )
    catalogue_median: Annotated[int, Field(ge=2)] = Field(
        default=8, description="median ids per principal-window at which a route is public"
    )
    public_open_clients: Annotated[int, Field(ge=1, le=256)] = Field(
        default=20,
        description="anonymous clients answered 2xx at which a route is public (it serves "
        "its objects without authentication), when users or keys use it too",
    )
    public_authed_share: Ratio = Field(
        default=0.1, description="... users or keys in this share of its principal-windows"
    )
    baseline_half_life_s: Annotated[float, Field(gt=0)] = 6 * 3600.0
    id_memory: Annotated[int, Field(ge=64, le=65_536)] = Field(
        default=1024, description="recent ids per route remembered to measure sharing"
    )
    ignored_placeholders: frozenset[str] = Field(
        default=frozenset({"{date}", "{...}"}), description="placeholders that name no object"
    )
    distinct_exact_limit: Annotated[int, Field(ge=8)] = 64
    evidence_ring: Annotated[int, Field(ge=1, le=1000)] = 32
    ttl_s: Annotated[float, Field(gt=0)] = 1800.0
    max_entities: Annotated[int, Field(gt=0)] = 100_000
    max_routes: Annotated[int, Field(gt=0)] = 2_000
    episode_quiet_s: Annotated[float, Field(gt=0)] = 600.0

    @model_validator(mode="after")
    def _ttl_covers_window(self) -> Self:
        if self.ttl_s < self.window_s:
            raise ValueError("ttl_s must be at least window_s: state would expire in-window")
        return self


class _Route:
    """What one object route's principals normally do (learned, decayed)."""

    __slots__ = (
        "active", "authed", "born", "fingerprints", "open", "owners", "public", "reached",
        "shared", "touches",
    )  # fmt: skip

    def __init__(self, id_memory: int) -> None:
        self.active = -math.inf  # event time its activity was last refreshed in the table
        self.born = math.inf  # event time it was first seen
        self.public = False  # once public, for good: a catalogue does not become private
        self.reached = [0.0] * len(LEVELS)  # principal-windows that reached LEVELS[i] ids
        self.touches = 0.0  # new ids touched by unflagged principals
        self.shared = 0.0  # ... of which another principal touched recently
        self.open: set[int] = set()  # anonymous clients answered 2xx (capped)
        self.authed = 0.0  # principal-windows of a user or API key
        self.fingerprints = array("I", bytes(4 * id_memory))
        self.owners = array("I", bytes(4 * id_memory))

    def touch(self, object_id: str, owner: int) -> None:
        h = zlib.crc32(object_id.encode())
        slot = h % len(self.owners)
        fingerprint = h | 1
        self.touches += 1
        if self.fingerprints[slot] == fingerprint and self.owners[slot] != owner:
            self.shared += 1
        self.fingerprints[slot] = fingerprint
        self.owners[slot] = owner

    def classify(self, p: BolaParams, own_level: int = 0) -> bool:
        """Whether the route is public: its ids shared, the median principal many, or
        many anonymous clients served beside authenticated ones (one anonymous attacker
        on a vulnerable route does not make it public; logs that never name a principal
        cannot tell, and do not)."""
        if not self.public:
            touches = self.touches
            shared = touches >= p.public_min_samples and self.shared >= p.public_share * touches
            peers = self.peers(own_level)
            self.public = (
                shared
                or (
                    len(self.open) >= p.public_open_clients
                    and self.authed >= p.public_authed_share * peers
                )
                or (
                    peers >= p.public_min_peers
                    and self.quantile(0.5, own_level) >= p.catalogue_median
                )
            )
        return self.public

    def peers(self, own_level: int) -> float:
        """Principal-windows seen on the route, the one being judged excluded."""
        return self.reached[0] - (own_level > 0)

    def quantile(self, q: float, own_level: int) -> int:
        """LEVELS value that a share ``1 - q`` of the other principal-windows reached."""
        reached = self.reached
        need = max(1e-9, (1.0 - q) * self.peers(own_level))
        for i in range(len(LEVELS) - 1, -1, -1):
            if reached[i] - (i < own_level) >= need:
                return LEVELS[i]
        return 1

    def withdraw(self, level: int) -> None:
        for i in range(level):
            self.reached[i] = max(0.0, self.reached[i] - 1.0)

    def decay(self, factor: float) -> None:
        self.reached = [r * factor for r in self.reached]
        self.touches *= factor
        self.shared *= factor
        self.authed *= factor


class _Principal:
    """One principal on one object route, in the current window.

    Ids are kept exactly, each with the request that first touched it (the evidence a
    finding starts with), up to the exact limit; past it a sketch counts them, an id
    counts as new when it differs from the last one, and a ring keeps recent requests.
    """

    __slots__ = (
        "check_at", "denied", "flagged", "forbidden", "ids", "last_id", "last_num", "level",
        "owner", "reported", "ring", "route", "seen", "seq", "sketch", "start", "steps",
    )  # fmt: skip

    def __init__(self, owner: int, ts: float, route: _Route, check_at: int) -> None:
        self.owner = owner  # hash of the principal: tells peers apart when ids are shared
        self.flagged = self.reported = False  # flagged: never learnt from again
        self.ids: dict[str, str] | None = None
        self.restart(ts, route, check_at)

    def restart(self, ts: float, route: _Route, check_at: int) -> None:
        self.start, self.route, self.check_at = ts, route, check_at
        if self.ids is None:
            self.ids = {}
        else:
            self.ids.clear()
        self.sketch: DistinctCounter | None = None
        self.ring: list[str] | None = None
        # seen: ids taken as new (exact up to the limit, then "differs from the last")
        self.seen = self.level = self.seq = self.steps = self.denied = self.forbidden = 0
        self.last_id = ""
        self.last_num = _NOT_NUMERIC

    def add(self, object_id: str, request_id: str, exact_limit: int, ring_size: int) -> bool:
        """Record a touch of ``object_id``; True if it is new this window."""
        ids = self.ids
        if ids is not None:
            if object_id in ids:
                return False
            ids[object_id] = request_id
            if len(ids) > exact_limit:
                self.sketch = DistinctCounter(exact_limit=0, precision=8)
                for seen in ids:
                    self.sketch.add(seen)
                self.ring = list(ids.values())[-ring_size:]
                self.ids = None
            return True
        if self.sketch is None or self.ring is None:
            return False
        self.sketch.add(object_id)
        if object_id == self.last_id:
            return False
        self.ring.append(request_id)
        if len(self.ring) > ring_size:
            del self.ring[0]
        return True

    def note(self, object_id: str, status: int, max_step: int) -> int:
        """Count a new id: refusals, and steps of a walk. Returns the ids seen."""
        self.seen += 1
        self.last_id = object_id
        if status in (403, 404):
            self.denied += 1
            self.forbidden += status == 403
        value = object_id.rpartition("/")[2]  # the last placeholder's value
        if value.isdigit() and len(value) < 19:
            number, last = int(value), self.last_num
            if last != _NOT_NUMERIC:
                self.steps += 1
                self.seq += abs(number - last) <= max_step
            self.last_num = number
        return self.seen

    def count(self) -> int:
        """Distinct ids this window (past the exact limit a sketch estimate: ~10 us)."""
        if self.ids is not None:
            return len(self.ids)
        return self.sketch.count() if self.sketch is not None else 0

    def evidence(self) -> list[str]:
        return list(self.ids.values()) if self.ids is not None else list(self.ring or ())


# start, object id, request id, status, principal hash: a principal's first id in a window
_Sighting = tuple[float, str, str, int, int]


class Bola(Detector[BolaParams]):
    name: ClassVar[str] = "bola"
    kinds: ClassVar[tuple[str, ...]] = ("bola",)
    Params: ClassVar[type[DetectorParams]] = BolaParams

    def __init__(self, params: BolaParams, *, label: str | None = None) -> None:
        super().__init__(params, label=label)
        p = params
        self.principals: EntityTable[tuple[str, str, str], _Principal | _Sighting] = EntityTable(
            _no_factory, ttl_s=p.ttl_s, max_entities=p.max_entities
        )  # filled by put(): a sighting first, a _Principal from the second id on
        self.routes: EntityTable[str, _Route] = EntityTable(
            lambda: _Route(p.id_memory), ttl_s=max(p.ttl_s, 86_400.0), max_entities=p.max_routes
        )
        self.episodes = {  # by entity type, as a plain string (see observe)
            t.value: Episodes(self, "bola", t, quiet_s=p.episode_quiet_s, max_open=p.max_entities)
            for t in (EntityType.USER, EntityType.API_KEY, EntityType.IP)
        }
        self._specs: dict[str, tuple[int, tuple[int, ...]]] = {}
        self._public: set[str] = set()  # routes found public (the hot path's shortcut)
        self._decayed_at = -1.0
        self._classified_at = -math.inf
        self._check_from = _first_check(p)

    def reconfigure(self, params: BolaParams) -> None:
        super().reconfigure(params)
        self._check_from = _first_check(params)
        self.principals.ttl_s, self.principals.max_entities = params.ttl_s, params.max_entities
        self.routes.max_entities = params.max_routes
        self._specs.clear()  # ignored_placeholders may have changed

    def observe(self, event: Event) -> None:
        spec = self._specs.get(event.route) or self._spec(event.route)
        at = spec[1]
        if not at or event.method == "OPTIONS" or self.allow.allows(event):
            return
        if event.status != 403 and event.route in self._public:
            return  # on a public route only refusals count
        parts = event.path.split("/")
        if len(parts) != spec[0]:
            return
        object_id = parts[at[0]] if len(at) == 1 else "/".join([parts[i] for i in at])
        if not object_id:
            return
        # Plain strings in the key: an enum member hashes in Python, three times slower.
        if event.user:
            kind, principal = "user", event.user
        elif event.api_key:
            kind, principal = "api_key", event.api_key
        else:
            kind, principal = "ip", event.client_ip
            if not principal:
                return
        p, ts, key = self.params, event.ts, (event.route, kind, principal)
        entry = self.principals.peek(key)
        if entry is None or (isinstance(entry, tuple) and ts - entry[0] >= p.window_s):
            self._sight(key, event, object_id, principal)
            return
        # Activity is refreshed for new ids only: a sighting is stale after one window
        # anyway, and a principal that only repeats itself may well be forgotten.
        if isinstance(entry, tuple):
            if object_id == entry[1]:
                return
            entry = self._promote(entry, self._route(event.route, ts))
        state = entry
        if state.route.public and not (state.forbidden or state.flagged) and event.status != 403:
            self.principals.pop(key)  # tracked before the route was known to be public
            return
        if ts - state.start >= p.window_s:
            state.restart(ts, self._route(event.route, ts), self._check_from)
        if state.reported and not self.episodes[kind].add_evidence(principal, ts, event.request_id):
            state.reported = False  # the episode closed: judge afresh (still not learnt from)
            state.check_at = min(state.check_at, self._check_from)
        if not state.add(object_id, event.request_id, p.distinct_exact_limit, p.evidence_ring):
            return
        self.principals.put(key, ts, state)
        seen = state.note(object_id, event.status, p.sequential_max_step)
        route = state.route
        if not state.flagged:
            if LEVELS[state.level] == seen:
                route.reached[state.level] += 1.0
                state.level += 1
            if seen <= _SHARE_SAMPLE:
                route.touch(object_id, state.owner)
        if seen >= state.check_at:
            self._judge(event, kind, principal, state, route)

    def _sight(
        self, key: tuple[str, str, str], event: Event, object_id: str, principal: str
    ) -> None:
        """A principal's first id on a route in a window: most never touch a second one,
        so it is a tuple (a sighting) until they do."""
        ts = event.ts
        route = self._route(event.route, ts)
        if route.public and event.status != 403:
            return  # on a public route only refusals start tracking a principal
        owner = zlib.crc32(principal.encode()) | 1
        route.reached[0] += 1.0
        if key[1] != "ip":
            route.authed += 1.0
        elif 200 <= event.status < 300 and len(route.open) < self.params.public_open_clients:
            route.open.add(owner)
        route.touch(object_id, owner)
        self.principals.put(key, ts, (ts, object_id, event.request_id, event.status, owner))

    def _promote(self, sighting: _Sighting, route: _Route) -> _Principal:
        """A second id: the sighting becomes a principal-window, its first id counted."""
        start, object_id, request_id, status, owner = sighting
        state = _Principal(owner, start, route, self._check_from)
        state.add(object_id, request_id, self.params.distinct_exact_limit, 1)
        state.note(object_id, status, self.params.sequential_max_step)
        state.level = 1  # the sighting was learnt as a principal-window reaching one id
        return state

    def _classify(self, name: str, route: _Route, own_level: int = 0) -> bool:
        public = route.classify(self.params, own_level)
        if public and name not in self._public:
            if len(self._public) >= _SPECS_MAX:
                self._public.clear()  # re-learnt from the routes within a minute
            self._public.add(name)
        return public

    def _route(self, name: str, ts: float) -> _Route:
        """The route's profile, its activity refreshed at most once a minute."""
        route = self.routes.peek(name)
        if route is None or ts - route.active >= _CLASSIFY_EVERY_S:
            route = self.routes.get(name, ts)
            route.active = ts
            route.born = min(route.born, ts)
        return route

    def _judge(
        self, event: Event, kind: str, principal: str, state: _Principal, route: _Route
    ) -> None:
        p = self.params
        seen, count = state.seen, state.count()
        state.check_at = seen + max(1, seen // 8)
        public = self._classify(event.route, route, state.level)
        peers = route.peers(state.level)
        # Whether anonymous clients are its visitors takes a window of watching to tell.
        known = public or (
            route.touches >= p.public_min_samples and event.ts - route.born >= p.window_s
        )
        denied = state.forbidden if public else state.denied
        signals: list[tuple[float, str, str]] = []
        # An object route is one others use (a public one was used by many): refusals on
        # a route nobody else is served on are a scan of paths, not of objects.
        used = public or peers >= p.min_peers
        if used and denied >= p.denied_min and denied >= p.denied_min_ratio * seen:
            what = "403" if public else "403/404"
            signals.append((0.7 + 0.3 * denied / seen, "denied", f"{denied} answered {what}"))
        if not public and peers >= 1 and (kind != "ip" or known):
            if state.seq >= p.sequential_min_steps and state.seq >= (
                p.sequential_min_ratio * state.steps
            ):
                note = f"{state.seq} of {state.steps} steps sequential"
                signals.append((0.8 + 0.2 * state.seq / max(1, state.steps), "sequential", note))
            # Few peers: a high floor.
            baseline = route.quantile(p.baseline_quantile, state.level)
            floor = p.min_distinct if peers >= p.min_peers else p.cold_min_distinct
            limit = max(floor, round(p.baseline_multiplier * baseline))
            if count >= limit:
                score = 0.6 + 0.3 * min(1.0, count / limit - 1.0)
                signals.append((score, "volume", f"route norm {baseline}, limit {limit}"))
        if not signals:
            return
        signals.sort(reverse=True)
        score, subkind, _ = signals[0]
        if not state.flagged:
            state.flagged = True
            route.withdraw(state.level)
        seconds = event.ts - state.start
        notes = "; ".join(note for _, _, note in signals)
        self.episodes[kind].report(
            principal,
            ts=event.ts,
            first_ts=state.start,
            evidence=() if state.reported else state.evidence(),  # add_evidence: the rest
            summary=f"{kind} {principal!r} touched {count} distinct ids on "
            f"{event.route} in {seconds:.0f} s ({notes})",
            score=min(1.0, score + 0.05 * (len(signals) - 1)),
            subkind=subkind,
            extra={"route": event.route, "distinct_ids": count},
        )
        state.reported = True
        # Keep the summary's numbers current while the episode lasts (exactly while the
        # count is exact; past that every 1/16th, as the sketch estimate costs ~10 us).
        state.check_at = seen + (1 if seen < p.distinct_exact_limit else seen // 16)

    def _spec(self, route: str) -> tuple[int, tuple[int, ...]]:
        """Segment count and placeholder positions of a route ((0, ()) if none)."""
        segments = route.split("/")
        ignored = self.params.ignored_placeholders
        at = tuple(
            i
            for i, s in enumerate(segments)
            if len(s) > 2 and s[0] == "{" and s[-1] == "}" and s not in ignored
        )
        if len(self._specs) >= _SPECS_MAX:
            self._specs.clear()
        spec = self._specs[route] = (len(segments), at)
        return spec

    def advance(self, watermark: float) -> None:
        p = self.params
        self.principals.expire(watermark)
        self.routes.expire(watermark)
        for episodes in self.episodes.values():
            episodes.advance(watermark)
        if watermark == float("inf"):
            return
        if self._classified_at + _CLASSIFY_EVERY_S <= watermark:
            self._classified_at = watermark
            for name, route in self.routes.items():
                self._classify(name, route)
        if self._decayed_at < 0:
            self._decayed_at = watermark
        elif watermark - self._decayed_at >= p.window_s:
            factor = 0.5 ** ((watermark - self._decayed_at) / p.baseline_half_life_s)
            for _, route in self.routes.items():
                route.decay(factor)
            self._decayed_at = watermark

    def tracked(self) -> int:
        return len(self.principals) + sum(len(e) for e in self.episodes.values())


def _no_factory() -> _Sighting:
    raise LookupError("principals are put, never created by get()")


def _first_check(p: BolaParams) -> int:
    """The count of new ids at which a principal-window is first judged."""
    return min(p.min_distinct, p.sequential_min_steps + 1, p.denied_min)
