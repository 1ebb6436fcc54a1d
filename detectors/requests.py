"""Requests that are wrong in themselves: oversized bodies and malformed requests.

**Oversized payload**, per request: a body far above what its route normally receives
(a per-route profile of request sizes, read at a high quantile once ``warmup``
requests have been seen) and at least ``min_bytes``; or above ``hard_limit_bytes``
whatever the route's profile. Flagged bodies are never learnt, so a flood of them
cannot become the norm. Routes that receive large bodies by design (photo uploads)
have a large profile: their uploads are not flagged, while a body of megabytes on a
route that takes kilobytes is. One episode per source address.

**Malformed request**, per source address in a window of event time: a burst of
protocol errors (400, 405, 414, 431, 501 by default), methods outside the standard
set (``TRACE``, ``TRACK``, ``PROPFIND``, ``DEBUG``, garbage) or unreadable requests
(empty path or method: the ingest keeps what the server could not parse with an
empty path). It takes a burst that is most of what the source sent in the window, or
several distinct invalid methods (a scanner trying them): a buggy client sending a
steady trickle of 400s among its ordinary traffic never reaches either.
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Self

from pydantic import Field, model_validator

from detectors.base import Detector, DetectorParams
from detectors.episodes import Episodes
from detectors.state import EntityTable
from detectors.volume import OctaveHistogram, human_bytes
from gatewatch.event import Event
from gatewatch.finding import EntityType

Ratio = Annotated[float, Field(ge=0, le=1)]
Positive = Annotated[float, Field(gt=0)]
_MiB = 1 << 20
_REFRESH_MASK = 63  # a route's threshold is recomputed every 64 samples


class OversizedPayloadParams(DetectorParams):
    min_bytes: Annotated[int, Field(ge=1)] = Field(
        default=_MiB, description="floor: a smaller body is never oversized"
    )
    hard_limit_bytes: Annotated[int, Field(ge=1)] = Field(
        default=32 * _MiB, description="a larger body is flagged whatever the route receives"
    )
    route_multiplier: Annotated[float, Field(ge=1)] = Field(
        default=8.0, description="a body must exceed this times the route's usual large size"
    )
    route_quantile: Annotated[float, Field(gt=0, lt=1)] = 0.99
    warmup: Annotated[int, Field(ge=1)] = Field(
        default=50, description="requests on a route before its profile judges"
    )
    ttl_s: Positive = Field(
        default=24 * 3600.0, description="idle time before a route is forgotten"
    )
    max_routes: Annotated[int, Field(gt=0)] = 5_000
    max_entities: Annotated[int, Field(gt=0)] = Field(
        default=50_000, description="sources with an open episode"
    )
    episode_quiet_s: Positive = 600.0


class _RouteSize:
    __slots__ = ("profile", "seen", "small", "threshold", "usual")

    def __init__(self) -> None:
        self.profile = OctaveHistogram()
        self.seen = self.small = 0  # small: bodies too small to matter, not yet in profile
        self.threshold = self.usual = math.inf  # until warm


class _Oversized:
    __slots__ = ("count", "largest")

    def __init__(self) -> None:
        self.count = self.largest = 0


class OversizedPayload(Detector[OversizedPayloadParams]):
    name: ClassVar[str] = "oversized_payload"
    kinds: ClassVar[tuple[str, ...]] = ("oversized_payload",)
    Params: ClassVar[type[DetectorParams]] = OversizedPayloadParams

    def __init__(self, params: OversizedPayloadParams, *, label: str | None = None) -> None:
        super().__init__(params, label=label)
        self.routes: EntityTable[str, _RouteSize] = EntityTable(
            _RouteSize, ttl_s=params.ttl_s, max_entities=params.max_routes
        )
        self.sources: EntityTable[str, _Oversized] = EntityTable(
            _Oversized, ttl_s=params.episode_quiet_s, max_entities=params.max_entities
        )
        self.episodes = Episodes(
            self, "oversized_payload", EntityType.IP, quiet_s=params.episode_quiet_s
        )
        self._small = params.min_bytes / params.route_multiplier / 2  # never matters

    def reconfigure(self, params: OversizedPayloadParams) -> None:
        super().reconfigure(params)
        self.routes.ttl_s, self.routes.max_entities = params.ttl_s, params.max_routes
        self.sources.ttl_s, self.sources.max_entities = params.episode_quiet_s, params.max_entities
        self.episodes.quiet_s = params.episode_quiet_s
        self._small = params.min_bytes / params.route_multiplier / 2
        for _, route in self.routes.items():
            route.threshold = route.usual = math.inf
            self._refresh(route)

    def observe(self, event: Event) -> None:
        p, size, name = self.params, event.request_bytes, event.route
        route = self.routes.peek(name)
        if route is None or not route.seen & 255:  # refresh its activity now and then
            route = self.routes.get(name, event.ts)
        seen = route.seen = route.seen + 1
        over = size >= p.min_bytes and (size >= route.threshold or size >= p.hard_limit_bytes)
        if over and event.client_ip and (self.allow.empty or not self.allow.allows(event)):
            self._flag(event, route)
            return  # never learnt
        if size < self._small:
            route.small += 1  # counted into the profile's lowest bucket in bulk
        else:
            route.profile.add(size)
        if not seen & _REFRESH_MASK or seen == p.warmup:
            self._refresh(route)

    def _refresh(self, route: _RouteSize) -> None:
        if route.small:
            route.profile.add(0, route.small)
            route.small = 0
        if route.seen >= self.params.warmup:
            usual = route.profile.quantile(self.params.route_quantile)
            route.usual = max(usual, self._small)  # smaller sizes are all alike here
            route.threshold = self.params.route_multiplier * route.usual

    def _flag(self, event: Event, route: _RouteSize) -> None:
        ip, ts, size = event.client_ip, event.ts, event.request_bytes
        source = self.sources.get(ip, ts)
        source.count += 1
        source.largest = max(source.largest, size)
        usual = (
            f"the route usually receives under {human_bytes(route.usual)}"
            if route.usual < math.inf
            else "the route has no size profile yet"
        )
        hard = size >= self.params.hard_limit_bytes
        over = size / max(1.0, route.usual) if route.usual < math.inf else 0.0
        target = f"{event.method} {event.route or '(no route)'}"
        self.episodes.report(
            ip,
            ts=ts,
            first_ts=ts,
            evidence=[event.request_id],
            summary=f"{ip} sent a {human_bytes(size)} body to {target} ({usual}); "
            f"{source.count} oversized, largest {human_bytes(source.largest)}",
            score=0.9 if hard else min(0.9, 0.6 + 0.05 * math.log2(max(1.0, over))),
            subkind="hard_limit" if hard else "above_route_profile",
            extra={"bytes": size, "route_usual_bytes": route.usual if over else None},
        )

    def advance(self, watermark: float) -> None:
        self.routes.expire(watermark)
        self.sources.expire(watermark)
        self.episodes.advance(watermark)

    def tracked(self) -> int:
        return len(self.routes) + len(self.sources) + len(self.episodes)


STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_UNREAD = frozenset({"", "-"})
_MAX_METHODS = 16


class MalformedRequestParams(DetectorParams):
    window_s: Positive = 60.0
    min_burst: Annotated[int, Field(ge=1)] = Field(
        default=20, description="malformed requests in the window (a trickle stays below)"
    )
    min_ratio: Ratio = Field(
        default=0.5, description="their share of the source's requests in the window"
    )
    min_odd_methods: Annotated[int, Field(ge=1)] = Field(
        default=3, description="distinct non-standard methods in the window (a scanner's)"
    )
    statuses: frozenset[int] = Field(
        default=frozenset({400, 405, 414, 431, 501}),
        description="answers that say the request itself was wrong",
    )
    methods: frozenset[str] = Field(
        default=STANDARD_METHODS, description="methods that are never malformed"
    )
    evidence_ring: Annotated[int, Field(ge=1, le=1000)] = 32
    ttl_s: Positive = 600.0
    max_entities: Annotated[int, Field(gt=0)] = 50_000
    episode_quiet_s: Positive = 600.0

    @model_validator(mode="after")
    def _ttl_covers_window(self) -> Self:
        if self.ttl_s < self.window_s:
            raise ValueError("ttl_s must be at least window_s: state would expire in-window")
        return self


class _Source:
    """One source's malformed requests in the current window (made at the first)."""

    __slots__ = ("bad", "methods", "reported", "ring", "start", "status", "total", "unreadable")

    def __init__(self) -> None:
        self.reported = False
        self.restart(-math.inf)

    def restart(self, ts: float) -> None:
        self.start = ts
        self.total = self.bad = self.status = self.unreadable = 0
        self.methods: dict[str, int] = {}  # non-standard method -> requests
        self.ring: list[str] = []


class MalformedRequest(Detector[MalformedRequestParams]):
    name: ClassVar[str] = "malformed_request"
    kinds: ClassVar[tuple[str, ...]] = ("malformed_request",)
    Params: ClassVar[type[DetectorParams]] = MalformedRequestParams

    def __init__(self, params: MalformedRequestParams, *, label: str | None = None) -> None:
        super().__init__(params, label=label)
        self.sources: EntityTable[str, _Source] = EntityTable(
            _Source, ttl_s=params.ttl_s, max_entities=params.max_entities
        )
        self.episodes = Episodes(
            self, "malformed_request", EntityType.IP, quiet_s=params.episode_quiet_s
        )
        # Addresses that may have state: a set test is much cheaper than a table lookup
        # for the many requests that are fine. It holds every key of the table, and is
        # rebuilt (dropping expired and evicted ones) when the table has shrunk.
        self._watched: set[str] = set()
        self._evicted = 0

    def reconfigure(self, params: MalformedRequestParams) -> None:
        super().reconfigure(params)
        self.sources.ttl_s, self.sources.max_entities = params.ttl_s, params.max_entities
        self.episodes.quiet_s = params.episode_quiet_s

    def observe(self, event: Event) -> None:
        p, ip, method = self.params, event.client_ip, event.method
        if method in p.methods and event.path and event.status not in p.statuses:
            if ip in self._watched:  # a source already sending malformed ones
                state = self.sources.peek(ip)
                if state is not None and event.ts - state.start < p.window_s:
                    state.total += 1
            return
        if not ip:
            return
        ts = event.ts
        unreadable = not event.path or method in _UNREAD
        odd = not unreadable and method not in p.methods
        if self.allow.allows(event):
            return
        state = self.sources.get(ip, ts)
        self._watched.add(ip)
        if ts - state.start >= p.window_s:
            state.restart(ts)
        if state.reported and not self.episodes.add_evidence(ip, ts, event.request_id):
            state.reported = False  # the episode closed: a new one needs new evidence
        state.total += 1
        state.bad += 1
        state.unreadable += unreadable
        state.status += not (unreadable or odd)
        if odd and (method in state.methods or len(state.methods) < _MAX_METHODS):
            state.methods[method] = state.methods.get(method, 0) + 1
        if not state.reported:
            state.ring.append(event.request_id)
            if len(state.ring) > p.evidence_ring:
                del state.ring[0]
        burst = state.bad >= p.min_burst and state.bad >= p.min_ratio * state.total
        if burst or len(state.methods) >= p.min_odd_methods:
            self._report(event, state)

    def _report(self, event: Event, state: _Source) -> None:
        odd = sum(state.methods.values())
        counts = {"invalid_method": odd, "unreadable": state.unreadable}
        counts["protocol_errors"] = state.status
        subkind = max(counts, key=counts.__getitem__)
        methods = ", ".join(sorted(state.methods)[:5]) or "none"
        ip = event.client_ip
        self.episodes.report(
            ip,
            ts=event.ts,
            first_ts=state.start,
            evidence=() if state.reported else state.ring,
            summary=f"{ip} sent {state.bad} malformed requests of {state.total} in "
            f"{max(1.0, event.ts - state.start):.0f} s ({state.status} refused as malformed, "
            f"{state.unreadable} unreadable, {odd} with non-standard methods: {methods})",
            score=min(
                0.9, 0.5 + 0.1 * len(state.methods) + 0.2 * (state.bad >= 2 * self.params.min_burst)
            ),
            subkind=subkind,
            extra={
                "malformed": state.bad,
                "requests": state.total,
                "methods": sorted(state.methods),
            },
        )
        state.reported = True
        state.ring = []

    def advance(self, watermark: float) -> None:
        dropped = self.sources.expire(watermark)
        if dropped or self.sources.evicted != self._evicted:
            self._watched = set(self.sources.keys())
            self._evicted = self.sources.evicted
        self.episodes.advance(watermark)

    def tracked(self) -> int:
        return len(self.sources) + len(self.episodes)
