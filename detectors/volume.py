"""Volume: how much one client asks for (rate) and takes away (bytes), against its history.

Per client (the principal: the user, else the API key, else the client IP; on login
and reset routes ``user`` is an attempted name, not a principal, so the key or IP is
used), in tumbling windows of event time that start at the client's first request:

- **rate anomaly** (scraping, floods): requests in the window;
- **data exfiltration**: response bytes in the window (many pages of a list export,
  or a few huge responses).

A window is anomalous when its amount is above an absolute floor, far above the
client's own baseline, and far above what clients typically do on the route that
carried most of it. Baselines:

- *own*: an EWMA (mean and variance) of the client's active windows, and of the
  windows of its heaviest usual route (the per principal+route baseline);
- *route*: a decayed histogram of client-windows dominated by the route, read at a
  high quantile.

Both learn only from windows that were not flagged (nor suspected: see below).

A client without history is *cold*. Cold integrations (requests carrying an API key,
such as a partner's backend syncing at a high steady rate from its first request) are
flagged only far above any partner's rate (``cold_integration_min_*``: a stolen key
pulling everything from the start) or, for bytes, at the ordinary floor when their
responses are each far larger than the route's usual (pages of thousands of records
where partners fetch tens); past ``min_history`` windows their own history judges them.
Other cold clients are flagged at a higher floor (``cold_min_*``) at once, or at the
ordinary floor after ``cold_windows`` consecutive windows above it; those suspect
windows are never learnt, so a new scraper cannot become its own baseline. A client
address shared by many people (a corporate NAT: many distinct user agents) is judged
only against its own history.

Benign look-alikes: partners (a high, steady own baseline), crawlers (steady, below
the floor), a NAT (principal-keyed users; the address's own history), admins running
occasional exports (the export route's baseline is high once learnt; until then a cold
route needs ``cold_route_factor`` times the floor; known admins and export routes
belong in ``allow``).
"""

from __future__ import annotations

import math
from array import array
from typing import Annotated, ClassVar, Generic, NamedTuple, Self, TypeVar

from pydantic import Field, model_validator

from detectors.auth_routes import AuthRouteCache
from detectors.base import Detector, DetectorParams
from detectors.episodes import Episodes
from detectors.state import EntityTable
from gatewatch.event import Event
from gatewatch.finding import EntityType

_BUCKETS = 96  # half-octaves: values up to 2^48
_MiB = 1 << 20
_IP = EntityType.IP
_AUTH_MEMO = 16_384
_MIN_SIZE_SAMPLES = 20
_FULL_RING = 4096  # requests kept for a client whose last window was suspect
Ratio = Annotated[float, Field(gt=0, lt=1)]
Positive = Annotated[float, Field(gt=0)]


def human_bytes(n: float) -> str:
    """Bytes for people.

    >>> human_bytes(512), human_bytes(3 * 1024), human_bytes(5.5 * 1024 * 1024)
    ('512 B', '3.0 KiB', '5.5 MiB')
    """
    if n < 1024:
        return f"{n:.0f} B"
    if n < _MiB:
        return f"{n / 1024:.1f} KiB"
    return f"{n / _MiB:.1f} MiB"


def _upper(bucket: int) -> float:
    """The exclusive upper bound of a bucket (the lower bound of the next one)."""
    following = bucket + 1
    if following < 2:
        return float(following)
    base = float(1 << (following // 2))
    return base * 1.5 if following % 2 else base


class OctaveHistogram:
    """Counts of values in half-octave buckets, halved when ``cap`` is reached so old
    samples fade: a high quantile of sizes or counts within 1.5x, in constant memory.

    >>> h = OctaveHistogram()
    >>> for v in [100] * 90 + [5000] * 10:
    ...     h.add(v)
    >>> h.quantile(0.5), h.quantile(0.95)
    (128.0, 6144.0)
    >>> h.total
    100.0
    """

    __slots__ = ("cap", "counts", "total")

    def __init__(self, cap: float = 4096.0) -> None:
        self.counts = array("d", bytes(8 * _BUCKETS))
        self.total = 0.0
        self.cap = cap

    def add(self, value: int, weight: float = 1.0) -> None:
        # Buckets 0, 1, 2, 3, 4-5, 6-7, 8-11, 12-15, ...: the top two bits of the value.
        if value < 2:
            bucket = max(0, value)
        else:
            bits = value.bit_length()
            bucket = min(_BUCKETS - 1, 2 * bits - 2 + ((value >> (bits - 2)) & 1))
        self.counts[bucket] += weight
        self.total += weight
        while self.total >= self.cap:
            counts = self.counts
            for i in range(_BUCKETS):
                counts[i] *= 0.5
            self.total *= 0.5

    def quantile(self, q: float) -> float:
        """Upper bound of the bucket holding the ``q`` quantile (0.0 when empty)."""
        need = (1.0 - q) * self.total
        above = 0.0
        counts = self.counts
        for i in range(_BUCKETS - 1, -1, -1):
            above += counts[i]
            if above > need:
                return _upper(i)
        return 0.0


class _Route:
    """What clients do on a route: amounts per client-window (windows it dominated),
    and per request (sampled)."""

    __slots__ = ("per_request", "windows")

    def __init__(self) -> None:
        self.windows = OctaveHistogram()
        self.per_request = OctaveHistogram()


class Limits(NamedTuple):
    """A volume detector's window and floors, in its unit (requests or bytes)."""

    window: float
    floor: int  # less in a window never flags
    cold_floor: int  # a client without history is flagged at once above this
    cold_route_floor: float  # needed on a route without a baseline
    cold_integration_floor: int  # an API key without history is flagged above this
    outsized_floor: float  # per request: an amount below this is never outsized


class VolumeParams(DetectorParams):
    """What both volume detectors share; the floors are named by each subclass."""

    baseline_multiplier: Annotated[float, Field(ge=1)] = Field(
        default=4.0, description="a window must exceed this times the client's own mean"
    )
    baseline_sigmas: Annotated[float, Field(ge=0)] = Field(
        default=6.0, description="... and its own mean plus this many standard deviations"
    )
    baseline_alpha: Ratio = Field(default=0.1, description="EWMA weight of a new window")
    min_history: Annotated[int, Field(ge=1)] = Field(
        default=3, description="learnt windows before the client's own baseline judges"
    )
    route_multiplier: Annotated[float, Field(ge=1)] = Field(
        default=5.0, description="a window must exceed this times the route's typical client"
    )
    route_quantile: Ratio = 0.9
    route_min_windows: Annotated[int, Field(ge=1)] = Field(
        default=30, description="client-windows learnt before a route's baseline counts"
    )
    cold_windows: Annotated[int, Field(ge=1)] = Field(
        default=2, description="consecutive windows above the floor that flag a new client"
    )
    known_addresses: Annotated[int, Field(ge=0, le=64)] = Field(
        default=8,
        description="addresses remembered per user or API key; a window it opens from an "
        "address it never used is judged against new_address_multiplier, without the "
        "route check (a stolen token pulling what its owner may pull, but elsewhere); 0: off",
    )
    new_address_multiplier: Annotated[float, Field(ge=1)] = Field(
        default=1.5,
        description="a window opened from a new address must exceed this times the "
        "principal's own mean (and the floor)",
    )
    shared_ip_min_agents: Annotated[int, Field(ge=0)] = Field(
        default=6, description="user agents making an address shared (a NAT); 0: never"
    )
    evidence_ring: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=64,
        description="recent requests kept as first evidence past half a threshold "
        "(a whole window's once the last one was suspect)",
    )
    ttl_s: Positive = Field(
        default=6 * 3600.0, description="idle time before a client is forgotten"
    )
    max_entities: Annotated[int, Field(gt=0)] = 100_000
    max_routes: Annotated[int, Field(gt=0)] = 5_000
    episode_quiet_s: Positive = 600.0

    def limits(self) -> Limits:
        """The window and floors, named by each subclass (min_requests, min_bytes, ...)."""
        raise NotImplementedError

    @model_validator(mode="after")
    def _ttl_covers_window(self) -> Self:
        if self.ttl_s < 2 * self.limits().window:
            raise ValueError("ttl_s must be at least twice the window: baselines would not last")
        return self


class _Client:
    """One client's current window and what it has learnt (plain floats: small, fast)."""

    __slots__ = (
        "addresses", "agents", "away", "count", "flagged", "home", "home_mean", "integration",
        "learned", "mean", "next_check", "opened_by", "requests", "ring", "ring_cap",
        "ring_from", "start", "strikes", "top", "type", "var", "votes",
    )  # fmt: skip

    def __init__(self) -> None:
        self.start = -math.inf
        self.count = self.requests = self.votes = self.learned = self.strikes = 0
        self.mean = self.var = self.home_mean = 0.0
        self.next_check = self.ring_from = 0.0
        self.ring_cap = 0
        self.top = self.home = self.opened_by = ""
        self.type = EntityType.IP
        self.integration = self.flagged = self.away = False
        self.ring: list[str] | None = None
        self.agents: set[str] | None = None
        self.addresses: list[str] | None = None  # a principal's usual client addresses


P = TypeVar("P", bound=VolumeParams)


class _VolumeDetector(Detector[P], Generic[P]):
    """Windows, baselines and judgement shared by the volume detectors."""

    kind: ClassVar[str]
    unit: ClassVar[str]
    sized: ClassVar[bool]  # counts response bytes (else requests)

    def __init__(self, params: P, *, label: str | None = None) -> None:
        super().__init__(params, label=label)
        self.auth = AuthRouteCache()
        self.clients: EntityTable[str, _Client] = EntityTable(
            _Client, ttl_s=params.ttl_s, max_entities=params.max_entities
        )
        self.routes: EntityTable[str, _Route] = EntityTable(
            _Route, ttl_s=params.ttl_s, max_entities=params.max_routes
        )
        self.episodes = {
            t: Episodes(self, self.kind, t, quiet_s=params.episode_quiet_s)
            for t in (EntityType.USER, EntityType.API_KEY, EntityType.IP)
        }
        self.limits = params.limits()
        self._peek = self.clients.peek
        self._auth: dict[str, bool] = {}  # route -> login, reset or sign-up
        self._sampled = self._closed = 0

    def reconfigure(self, params: P) -> None:
        super().reconfigure(params)
        self.limits = params.limits()
        self.clients.ttl_s, self.clients.max_entities = params.ttl_s, params.max_entities
        self.routes.ttl_s, self.routes.max_entities = params.ttl_s, params.max_routes
        for episodes in self.episodes.values():
            episodes.quiet_s = params.episode_quiet_s

    def observe(self, event: Event) -> None:
        """Count the event for its client; judge when it crosses a threshold."""
        amount = event.response_bytes if self.sized else 1
        if amount <= 0:
            return
        user, route = event.user, event.route
        if user:
            auth = self._auth.get(route)
            if auth is None:
                auth = self._auth_route(route)
            if auth:
                user = ""  # an attempted username, not who is calling
        key = user or event.api_key or event.client_ip
        if not key or (not self.allow.empty and self.allow.allows(event)):
            return
        ts = event.ts
        state = self._peek(key)
        if state is None or ts - state.start >= self.limits.window:
            # Activity is marked once a window, not per request: TTL >> window.
            state = self.clients.get(key, ts)
            if state.start == -math.inf:
                state.type = (
                    EntityType.USER if user else EntityType.API_KEY if event.api_key else _IP
                )
            else:
                self._close(state, ts)
            self._open(state, ts, integration=bool(event.api_key))
            state.opened_by = event.client_ip
            if state.addresses is not None and self._elsewhere(state, event):
                self._away(state)
        count = state.count = state.count + amount
        state.requests += 1
        if route == state.top:
            state.votes += amount
        elif state.votes > amount:
            state.votes -= amount
        else:  # weighted majority vote: the route carrying most of the window
            state.top, state.votes = route, amount - state.votes
        if self.sized:
            self._sampled += 1
            if not self._sampled & 7 and not (state.flagged or state.strikes):
                # One response in eight teaches the route's usual size per request.
                self.routes.get(route, ts).per_request.add(amount)
        if count < state.ring_from:  # the common case: far below any threshold
            return
        if state.flagged:
            if self.episodes[state.type].add_evidence(key, ts, event.request_id):
                return
            state.flagged, state.next_check = False, count  # episode closed: reopen
        self._remember(state, event)
        if count >= state.next_check:
            self._judge(event, key, state)

    def _auth_route(self, route: str) -> bool:
        if len(self._auth) >= _AUTH_MEMO:
            self._auth.clear()
        auth = self._auth[route] = bool(self.auth.kind(route))
        return auth

    def _remember(self, state: _Client, event: Event) -> None:
        ring = state.ring
        if ring is None:
            ring = state.ring = []
        ring.append(event.request_id)
        if len(ring) > state.ring_cap:
            del ring[0]
        limit = self.params.shared_ip_min_agents
        if state.type is EntityType.IP and limit and event.user_agent:
            if state.agents is None:
                state.agents = set()
            if len(state.agents) < limit:
                state.agents.add(event.user_agent)

    def _shared(self, state: _Client) -> bool:
        agents, limit = state.agents, self.params.shared_ip_min_agents
        return limit > 0 and agents is not None and len(agents) >= limit

    def _open(self, state: _Client, ts: float, *, integration: bool) -> None:
        """Start a window; its first threshold comes from what the client has learnt."""
        p, lim = self.params, self.limits
        if ts - state.start >= 2 * lim.window:
            state.strikes = 0  # not consecutive
        state.start, state.count, state.requests, state.votes, state.top = ts, 0, 0, 0, ""
        state.flagged, state.away, state.ring = False, False, None
        state.integration = state.integration or integration
        if state.learned >= p.min_history:
            own = max(
                p.baseline_multiplier * state.mean,
                state.mean + p.baseline_sigmas * math.sqrt(state.var),
            )
            threshold = max(float(lim.floor), own)
        elif state.agents is not None and self._shared(state):
            threshold = math.inf  # judged by its own history only, once it has one
        elif state.integration:
            threshold = float(lim.floor)  # then at the integration floor, unless outsized
        elif state.strikes + 1 >= p.cold_windows:
            threshold = float(lim.floor)
        else:
            threshold = float(max(lim.floor, lim.cold_floor))
        state.next_check = threshold
        if state.strikes:  # the last window was suspect: all of this one may be evidence
            state.ring_from, state.ring_cap = 0.0, _FULL_RING
        else:
            state.ring_from, state.ring_cap = threshold / 2, p.evidence_ring

    def _close(self, state: _Client, ts: float) -> None:
        """The window is over: learn from it unless it was flagged or suspect."""
        count = state.count
        if count <= 0:
            return
        p = self.params
        cold = state.learned < p.min_history
        suspect = state.flagged or (
            cold
            and count >= self.limits.floor
            and not state.integration
            and not self._shared(state)
            and self._over_route(state.top, count)
        )
        if suspect:
            state.strikes += 1
            return
        state.strikes = 0
        if state.type is not _IP and state.opened_by and self.params.known_addresses:
            self._learn_address(state, state.opened_by)
        # A plain mean of the first windows, then an EWMA.
        alpha = max(p.baseline_alpha, 1.0 / (state.learned + 1))
        diff = count - state.mean
        state.mean += alpha * diff
        state.var = (1.0 - alpha) * (state.var + alpha * diff * diff)
        state.learned += 1
        if state.top == state.home:
            state.home_mean += alpha * (count - state.home_mean)
        elif count > state.home_mean:
            state.home, state.home_mean = state.top, float(count)
        self._closed += 1
        if state.top and not self._closed & 3:
            # One learnt window in four, weighted: the same quantiles, a quarter of the
            # cost for the many clients whose every request opens a new window.
            self.routes.get(state.top, ts).windows.add(count, 4.0)

    def _learn_address(self, state: _Client, ip: str) -> None:
        known = state.addresses
        if known is None:
            state.addresses = [ip]
        elif ip not in known:
            known.append(ip)
            if len(known) > self.params.known_addresses:
                del known[0]

    @staticmethod
    def _elsewhere(state: _Client, event: Event) -> bool:
        """A principal with history calling from an address it never used."""
        known = state.addresses
        return known is not None and bool(event.client_ip) and event.client_ip not in known

    def _away(self, state: _Client) -> None:
        """The window opened from a new address: a lower bar, from its own mean."""
        p = self.params
        if state.learned < p.min_history or not p.known_addresses:
            return
        state.away = True
        threshold = max(float(self.limits.floor), p.new_address_multiplier * state.mean)
        if threshold < state.next_check:
            state.next_check = threshold
            state.ring_from = min(state.ring_from, threshold / 2)

    def _route_typical(self, route: str) -> float | None:
        """The route's typical client-window, or None while it has too few."""
        profile = self.routes.peek(route)
        if profile is None or profile.windows.total < self.params.route_min_windows:
            return None
        return profile.windows.quantile(self.params.route_quantile)

    def _outsized(self, state: _Client) -> float:
        """The route's usual amount per request when the window's requests are each far
        larger (a client asking for pages of thousands of records where others ask for
        tens), else 0."""
        p = self.params
        per_request = state.count / max(1, state.requests)
        if per_request < self.limits.outsized_floor:
            return 0.0
        profile = self.routes.peek(state.top)
        if profile is None or profile.per_request.total < _MIN_SIZE_SAMPLES:
            return 0.0
        usual = profile.per_request.quantile(p.route_quantile)
        return usual if per_request >= p.route_multiplier * usual else 0.0

    def _over_route(self, route: str, count: int) -> bool:
        typical = self._route_typical(route)
        if typical is None:
            return count >= self.limits.cold_route_floor
        return count >= self.params.route_multiplier * typical

    def _judge(self, event: Event, key: str, state: _Client) -> None:
        p = self.params
        outsized = self._outsized(state)
        own = max(state.mean, state.home_mean if state.top == state.home else 0.0)
        elsewhere = state.away
        multiplier = p.new_address_multiplier if elsewhere else p.baseline_multiplier
        if state.learned < p.min_history:
            if self._shared(state):
                state.next_check = math.inf  # judged by its own history, once it has one
                return
            lim = self.limits
            if state.integration and state.count < lim.cold_integration_floor and not outsized:
                state.next_check = state.count + lim.floor  # ask again a floor later
                return
        elif state.count < multiplier * own:
            state.next_check = multiplier * own  # the home route is its norm
            return
        typical = self._route_typical(state.top)
        need = self.limits.cold_route_floor if typical is None else p.route_multiplier * typical
        # Far above the route already (outsized), or above its own norm from an address
        # the principal never used: the route's heavy users excuse neither.
        if state.count < need and not outsized and not elsewhere:
            state.next_check = need
            return
        state.flagged, state.ring_from = True, 0.0  # every request now is evidence
        ratio = state.count / max(1.0, own, typical or 0.0)
        history = (
            f"its usual {self._show(own)} per {self.limits.window:.0f} s"
            if state.learned
            else "no history"
        )
        route = "a new route" if typical is None else f"typical {self._show(typical)} there"
        if outsized:
            each = self._show(state.count / max(1, state.requests))
            route += f"; {each} per response where {self._show(outsized)} is usual"
        if elsewhere:
            route += f"; from {state.opened_by}, an address it has not used before"
        seconds = max(1.0, event.ts - state.start)
        self.episodes[state.type].report(
            key,
            ts=event.ts,
            first_ts=state.start,
            evidence=state.ring or [event.request_id],
            summary=f"{key} {self._verb(state.count)} in {seconds:.0f} s, mostly "
            f"{state.top or '(no route)'} ({history}; {route})",
            score=min(0.95, 0.5 + 0.1 * math.log2(max(1.0, ratio))),
            subkind="new_address" if elsewhere else "sustained" if state.strikes else "burst",
            extra={"amount": state.count, "unit": self.unit, "baseline": round(own, 1)},
        )
        state.ring = None

    def _show(self, amount: float) -> str:
        raise NotImplementedError

    def _verb(self, amount: int) -> str:
        raise NotImplementedError

    def advance(self, watermark: float) -> None:
        self.clients.expire(watermark)
        self.routes.expire(watermark)
        for episodes in self.episodes.values():
            episodes.advance(watermark)

    def tracked(self) -> int:
        return len(self.clients) + len(self.routes) + sum(map(len, self.episodes.values()))


class RateAnomalyParams(VolumeParams):
    window_s: Positive = 60.0
    min_requests: Annotated[int, Field(ge=1)] = Field(
        default=300, description="floor: fewer requests in a window never flag (5/s)"
    )
    cold_min_requests: Annotated[int, Field(ge=1)] = Field(
        default=900, description="a client without history is flagged at once above this"
    )
    cold_route_factor: Annotated[float, Field(ge=1)] = Field(
        default=1.0, description="times the floor needed on a route without a baseline"
    )
    cold_integration_min_requests: Annotated[int, Field(ge=1)] = Field(
        default=3_000, description="an API key without history is flagged above this (50/s)"
    )

    def limits(self) -> Limits:
        return Limits(
            window=self.window_s,
            floor=self.min_requests,
            cold_floor=self.cold_min_requests,
            cold_route_floor=self.cold_route_factor * self.min_requests,
            cold_integration_floor=self.cold_integration_min_requests,
            outsized_floor=math.inf,  # a request is one request
        )


class RateAnomaly(_VolumeDetector[RateAnomalyParams]):
    """Scraping and floods: a client's request rate far above its own and its route's."""

    name: ClassVar[str] = "rate_anomaly"
    kinds: ClassVar[tuple[str, ...]] = ("rate_anomaly",)
    Params: ClassVar[type[DetectorParams]] = RateAnomalyParams
    kind: ClassVar[str] = "rate_anomaly"
    unit: ClassVar[str] = "requests"
    sized: ClassVar[bool] = False

    def _show(self, amount: float) -> str:
        return f"{amount:.0f}"

    def _verb(self, amount: int) -> str:
        return f"sent {amount} requests"


class DataExfiltrationParams(VolumeParams):
    window_s: Positive = 600.0
    min_bytes: Annotated[int, Field(ge=1)] = Field(
        default=10 * _MiB, description="floor: less in a window never flags"
    )
    cold_min_bytes: Annotated[int, Field(ge=1)] = Field(
        default=10 * _MiB, description="a client without history is flagged at once above this"
    )
    cold_route_factor: Annotated[float, Field(ge=1)] = Field(
        default=16.0,
        description="times the floor needed on a route without a baseline (exports are rare)",
    )
    cold_integration_min_bytes: Annotated[int, Field(ge=1)] = Field(
        default=256 * _MiB,
        description="an API key without history is flagged above this, or above min_bytes "
        "when its responses are outsized",
    )
    outsized_response_bytes: Annotated[int, Field(ge=1)] = Field(
        default=256 * 1024,
        description="mean response size that may be outsized: route_multiplier times the "
        "route's usual per request, and at least this",
    )
    cold_windows: Annotated[int, Field(ge=1)] = 1
    route_min_windows: Annotated[int, Field(ge=1)] = 10
    baseline_multiplier: Annotated[float, Field(ge=1)] = 5.0

    def limits(self) -> Limits:
        return Limits(
            window=self.window_s,
            floor=self.min_bytes,
            cold_floor=self.cold_min_bytes,
            cold_route_floor=self.cold_route_factor * self.min_bytes,
            cold_integration_floor=self.cold_integration_min_bytes,
            outsized_floor=self.outsized_response_bytes,
        )


class DataExfiltration(_VolumeDetector[DataExfiltrationParams]):
    """Bulk reads: response bytes per principal far above its own and its route's."""

    name: ClassVar[str] = "data_exfiltration"
    kinds: ClassVar[tuple[str, ...]] = ("data_exfiltration",)
    Params: ClassVar[type[DetectorParams]] = DataExfiltrationParams
    kind: ClassVar[str] = "data_exfiltration"
    unit: ClassVar[str] = "bytes"
    sized: ClassVar[bool] = True

    def _show(self, amount: float) -> str:
        return human_bytes(amount)

    def _verb(self, amount: int) -> str:
        return f"received {self._show(amount)}"
