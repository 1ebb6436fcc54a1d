"""Learned traffic baselines: what is unusual for this route, this principal, this address.

Fixed thresholds miss what is unusual for one API and one client. This detector keeps,
per route, per principal (user or API key) and per client address, fixed event-time
windows (10 s and 1 min by default). A request costs an append; when a window closes
its requests become columns and every entity's features are summed at once
(``features``): request count, error ratios, distinct routes and objects, bytes in and
out, latency quantiles, new agents and addresses. Only busy windows (``min_requests``
or ``min_bytes``) are judged, so the model cost is per busy window, not per request.

- A **route** is judged by its own ``WindowModel`` (one per route and window length):
  routes differ too much to be each other's peers. The routes' forecasts of one window
  length live in one ``SeasonalForecast`` (a slot per route), so a window's busy routes
  are forecast and learnt together (``WindowModel.judge_many``).
- A **principal or address** is judged against its own history and its peers. Its
  own history: a volume baseline over *every* window it appears in, quiet ones
  included (``activity.Activity``: a scraper that browsed like a visitor is far above
  *its* usual), and a baseline of all features over its busy windows. Its peers: the
  population ``WindowModel`` of its scope and window length, and how rare its volume
  is among all clients' windows (``activity.Rarity``). Flagged when it is far above
  its own usual (the drivers) *and* its peers' model finds the window anomalous or few
  windows ever move that much; without history of its own, its peers alone judge it.
- Drivers must rise (a drop is not an attack) by a margin that matters (``min_ratio``,
  ``min_bytes_rise``, ``min_errors``); latency or a new agent or address never drives
  a finding alone.
- Flagged windows are never learnt, by any baseline, so an attack cannot become the
  baseline; the models emit nothing during their warm-up.

Each finding names its drivers, observed against baseline, in its summary and in
``extra.drivers``; its evidence is the requests that show the top driver.

State (models, baselines, open windows, and the Kafka positions they include) is
saved by ``snapshot`` and restored by ``restore``; events at or before a restored
source's position are skipped, as they are already learnt (``gatewatch.store.checkpoints``).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import attrgetter
from statistics import NormalDist
from typing import Annotated, Any, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from detectors.anomaly.activity import VOLUME, Activity, Rarity
from detectors.anomaly.baseline import RobustBaseline, SeasonalForecast
from detectors.anomaly.features import FEATURES, INDEX, LOGGED, Columns, Window, busy_windows, shown
from detectors.anomaly.keyspace import KeySpace
from detectors.anomaly.model import Driver, ModelParams, Verdict, WindowModel, forecast_for
from detectors.auth_routes import AuthRouteCache
from detectors.base import Detector, DetectorParams
from detectors.episodes import Episodes
from detectors.state import EntityTable
from detectors.volume import human_bytes
from gatewatch.event import Event
from gatewatch.finding import EntityType

Scope = Literal["route", "principal", "ip"]
_NOT_VOLUME = tuple(i for i, name in enumerate(FEATURES) if name not in VOLUME)
# Never drivers alone: slow is not hostile, and a new agent or address is everyday.
log = logging.getLogger(__name__)
_SOURCE, _POSITION = attrgetter("source"), attrgetter("position")
_NORMAL = NormalDist()
_RARE_SEEN = 3  # windows at the rare share needed before rarity says anything
_CONTEXT = frozenset({"latency_p50_ms", "latency_p95_ms", "new_agents", "new_addresses"})
_NOVELTY = frozenset({"new_agents", "new_addresses"})
_BYTES = {"bytes_in": "largest_in", "bytes_out": "largest_out"}
_ONE = math.log1p(1)
SCOPES: tuple[Scope, ...] = ("route", "principal", "ip")
_KNOWN_CAP = 32  # agents / addresses remembered per entity
_STATE_VERSION = 7
_FORGET_EVERY = 360  # shortest windows between passes forgetting idle clients
Positive = Annotated[float, Field(gt=0)]


class WindowSpec(BaseModel):
    """One window length and the least traffic that makes a window worth judging: a
    window below both floors is idle, neither judged nor learnt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size_s: Annotated[float, Field(gt=0, le=3600)]
    min_requests: Annotated[int, Field(ge=1)] = Field(description="requests that make it busy")
    min_bytes: Annotated[int, Field(ge=0)] = Field(
        default=0, description="... or bytes in and out (0: requests only)"
    )


class AnomalyModelParams(DetectorParams):
    windows: tuple[WindowSpec, ...] = Field(
        default=(
            WindowSpec(size_s=10, min_requests=40, min_bytes=4 << 20),
            WindowSpec(size_s=60, min_requests=60, min_bytes=16 << 20),
        ),
        min_length=1,
        description="window lengths, shortest first; each a multiple of the shortest",
    )
    scopes: frozenset[Scope] = Field(
        default=frozenset(SCOPES), description="route, principal, ip: whose windows are judged"
    )
    model: ModelParams = Field(
        default_factory=ModelParams,
        description="the model of each route: one series of windows, in order (the "
        "default seasonal forecast; what bench.nab scores)",
    )
    population_model: ModelParams = Field(
        default_factory=lambda: ModelParams(algorithm="robust_z"),
        description="the model of the population of principals and of addresses: windows "
        "of many clients interleaved, so no forecast across them",
    )
    min_history: Annotated[int, Field(ge=1)] = Field(
        default=4, description="windows an entity's own baseline needs before it judges"
    )
    rare_share: Annotated[float, Field(gt=0, lt=1)] = Field(
        default=1e-3,
        description="a client far above its own usual is flagged when the model finds the "
        "window anomalous, or when this small a share of all clients' windows send as much",
    )
    sustain: Annotated[int, Field(ge=1)] = Field(
        default=3,
        description="windows in a row far above its own usual that flag a client even "
        "when its peers do not agree (until then they are held back, not learnt)",
    )
    population_sample: Annotated[int, Field(ge=1)] = Field(
        default=4,
        description="the population model learns one in this many of the windows a "
        "client's own history already clears (they cannot be flagged; the cost is per window)",
    )
    min_bytes_rise: Annotated[int, Field(ge=0)] = Field(
        default=1 << 20, description="bytes above its baseline a bytes feature needs to drive"
    )
    min_errors: Annotated[int, Field(ge=1)] = Field(
        default=5, description="errors in the window an error-ratio feature needs to drive"
    )
    activity_half_life: Positive = Field(
        default=360.0, description="windows after which a client's volume history weighs half"
    )
    rarity_half_life: Positive = Field(
        default=500_000.0,
        description="client-windows after which the population's volume histogram weighs half",
    )
    min_deviation: Positive = Field(
        default=4.0, description="robust z above its own baseline a feature needs to drive"
    )
    min_ratio: Annotated[float, Field(gt=1)] = Field(
        default=3.0, description="... and this times its baseline (counts, bytes, latency)"
    )
    min_ratio_rise: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.25, description="... or this much higher (error ratios)"
    )
    ttl_s: Positive = Field(
        default=6 * 3600.0, description="idle time before an entity is forgotten"
    )
    max_entities: Annotated[int, Field(gt=0)] = 100_000
    max_routes: Annotated[int, Field(gt=0)] = 5_000
    episode_quiet_s: Positive = 600.0

    @model_validator(mode="after")
    def _windows_nest(self) -> Self:
        sizes = [w.size_s for w in self.windows]
        if sizes != sorted(set(sizes)):
            raise ValueError("windows must be distinct and shortest first")
        base = sizes[0]
        for size in sizes[1:]:
            ratio = size / base
            if abs(ratio - round(ratio)) > 1e-9:
                raise ValueError(f"window {size:g} s is not a multiple of {base:g} s")
        if self.ttl_s < 2 * sizes[-1]:
            raise ValueError("ttl_s must be at least twice the longest window")
        return self


class _Entity:
    """One route, principal or address: its own baselines (a whole model per window
    length for a route; a principal's or address's busy windows' baseline, next to the
    population model of its scope) and the agents and addresses it used before."""

    __slots__ = ("addresses", "agents", "baselines", "models", "streak")

    def __init__(
        self,
        params: AnomalyModelParams,
        scope: Scope,
        forecasts: list[SeasonalForecast] | None = None,
    ) -> None:
        """``forecasts``: per window length, the forecasts every route's model shares
        (judged together: ``WindowModel.judge_many``)."""
        model = params.model
        sizes = len(params.windows)
        self.models: list[WindowModel] | None = None
        self.baselines: list[RobustBaseline] | None = None
        if scope == "route":
            self.models = [
                WindowModel(FEATURES, model, forecasts=forecasts[i] if forecasts else None)
                for i in range(sizes)
            ]
        else:
            self.baselines = [
                RobustBaseline(len(FEATURES), half_life=model.half_life) for _ in range(sizes)
            ]
        self.streak = [0] * sizes  # windows in a row far above its own usual
        self.agents: set[str] | None = None if scope == "route" else set()
        self.addresses: set[str] | None = set() if scope == "principal" else None


@dataclass(slots=True)
class _Level:
    """The open window of one length: the columns of its closed shorter windows."""

    size_s: float
    min_requests: int
    min_bytes: float
    start: float = -math.inf
    chunks: list[Columns] = field(default_factory=list)


class AnomalyModel(Detector[AnomalyModelParams]):
    name = "anomaly_model"
    kinds = ("anomaly",)
    Params = AnomalyModelParams

    def __init__(self, params: AnomalyModelParams, *, label: str | None = None) -> None:
        super().__init__(params, label=label)
        self.auth = AuthRouteCache()
        self._setup(params)
        self.positions: dict[str, int] = {}  # source -> last position observed
        self._resume: dict[str, int] = {}  # source -> restored position (skip up to it)
        self.windows_judged = self.windows_flagged = self.skipped = 0
        self._cleared = 0  # client windows their own history cleared

    def _setup(self, params: AnomalyModelParams) -> None:
        self._base = params.windows[0].size_s
        self._start = -math.inf  # of the open shortest window
        self._end = -math.inf
        self._events: list[Event] = []  # of the open shortest window
        self._restored: list[Columns] = []  # ... and what a checkpoint held of it
        self._levels = [
            _Level(w.size_s, w.min_requests, w.min_bytes or math.inf) for w in params.windows
        ]
        clients: tuple[Scope, ...] = ("principal", "ip")
        self.models = {
            (scope, w.size_s): WindowModel(FEATURES, params.population_model)
            for scope in clients
            for w in params.windows
        }
        # Principals and addresses as ids, named once per shortest window.
        self.clients = {scope: KeySpace() for scope in clients}
        self._closed = 0  # shortest windows closed
        self.activity = {
            (scope, w.size_s): Activity(half_life=params.activity_half_life)
            for scope in clients
            for w in params.windows
        }
        self.rarity = {
            (scope, w.size_s): Rarity(half_life=params.rarity_half_life)
            for scope in clients
            for w in params.windows
        }
        self.route_forecasts: list[SeasonalForecast] | None = None
        if params.model.algorithm == "forecast":
            self.route_forecasts = [
                forecast_for(params.model, len(FEATURES)) for _ in params.windows
            ]
        self.entities: dict[Scope, EntityTable[str, _Entity]] = {
            scope: EntityTable(
                functools.partial(_Entity, params, scope, self.route_forecasts),
                ttl_s=params.ttl_s,
                max_entities=params.max_routes if scope == "route" else params.max_entities,
            )
            for scope in SCOPES
        }
        self.episodes = {
            t: Episodes(self, "anomaly", t, quiet_s=params.episode_quiet_s)
            for t in (EntityType.ROUTE, EntityType.USER, EntityType.API_KEY, EntityType.IP)
        }

    def reconfigure(self, params: AnomalyModelParams) -> None:
        structural = _structure(params) != _structure(self.params)
        super().reconfigure(params)
        if structural:  # new windows or model: what was learnt no longer fits
            log.warning("%s: windows or models changed, baselines start over", self.label)
            self._setup(params)
        for table in self.entities.values():
            table.ttl_s = params.ttl_s
        for episodes in self.episodes.values():
            episodes.quiet_s = params.episode_quiet_s

    # -- per request: an append --------------------------------------------------------

    def observe(self, event: Event) -> None:
        if self._resume and event.position <= self._resume.get(event.source, -1):
            self.skipped += 1
            return  # already learnt before the checkpoint this run resumed from
        if event.ts >= self._end:
            self._roll(event.ts)
        if self.allow.empty or not self.allow.allows(event):
            self._events.append(event)

    def _is_login(self, route: str) -> bool:
        """On login and reset routes ``user`` is an attempted name, not who is calling."""
        return bool(self.auth.kind(route))

    # -- per window ---------------------------------------------------------------------

    def advance(self, watermark: float) -> None:
        if watermark >= self._end:
            self._roll(watermark)
        for episodes in self.episodes.values():
            episodes.advance(watermark)

    def _roll(self, ts: float) -> None:
        """Close the windows that ended at or before ``ts``; open the current ones."""
        if self._start > -math.inf:
            chunk = self._take_chunk()
            end = self._end
            if chunk is not None:
                for level in self._levels[1:]:
                    level.chunks.append(chunk)
                self._judge_all(chunk, self._levels[0], end)
                self._closed += 1
                if not self._closed % _FORGET_EVERY or any(
                    len(space) > self.params.max_entities for space in self.clients.values()
                ):
                    self._forget_clients(end)
            for level in self._levels[1:]:
                if math.isinf(ts) or ts >= level.start + level.size_s:
                    if level.chunks:
                        self._judge_all(
                            Columns.concat(level.chunks), level, level.start + level.size_s
                        )
                    level.chunks = []
        if math.isinf(ts):
            self._start = self._end = -math.inf
            for level in self._levels:
                level.start = -math.inf
            return
        base = self._base
        self._start = math.floor(ts / base) * base
        self._end = self._start + base
        for level in self._levels:
            if ts >= level.start + level.size_s:
                level.start = math.floor(ts / level.size_s) * level.size_s

    def _open_parts(self) -> list[Columns]:
        """The open shortest window as columns: what a checkpoint held of it, then the
        requests since (turned into columns once, whether a checkpoint or the window's
        close asks first)."""
        if self._events:
            self._note_positions(self._events)
            self._restored.append(Columns.of(self._events, self._is_login))
            self._events = []
        return self._restored

    def _take_chunk(self) -> Columns | None:
        parts = self._open_parts()
        self._restored = []
        return Columns.concat(parts) if parts else None

    def _forget_clients(self, end: float) -> None:
        """Forget the principals and addresses idle for ``ttl_s``, and past
        ``max_entities`` the least recently seen; never one an open window holds."""
        for scope, space in self.clients.items():
            held = [
                chunk.ids[scope]
                for level in self._levels[1:]
                for chunk in level.chunks
                if scope in chunk.ids
            ]
            gone = space.forget(
                before=end - self.params.ttl_s,
                limit=self.params.max_entities,
                keep=np.concatenate(held) if held else np.zeros(0, dtype=np.int64),
            )
            if len(gone):
                for level in self._levels:
                    self.activity[(scope, level.size_s)].forget(gone)

    def _note_positions(self, events: list[Event]) -> None:
        """The last position of each source these events came from (the checkpoint's
        positions; one pass per window, not a dict update per request)."""
        if not events:
            return
        sources = set(map(_SOURCE, events))
        if len(sources) == 1:  # one partition (or a file): no grouping
            last = {sources.pop(): max(map(_POSITION, events))}
        else:
            last = {}
            for source, position in zip(map(_SOURCE, events), map(_POSITION, events), strict=True):
                if position > last.get(source, -1):
                    last[source] = position
        known = self.positions
        for source, position in last.items():
            if source and position > known.get(source, -1):
                known[source] = position

    def _judge_all(self, columns: Columns, level: _Level, end: float) -> None:
        index = self._levels.index(level)
        size = level.size_s
        for scope in SCOPES:
            if scope not in self.params.scopes:
                continue
            if scope != "route":
                space = self.clients[scope]
                if scope not in columns.ids:  # a shortest window: its clients named
                    columns.ids[scope] = space.ids(columns.codes(scope)[1])
                space.seen(columns.ids[scope], end)
            windows, volumes = busy_windows(
                columns,
                scope,
                min_requests=level.min_requests,
                min_bytes=level.min_bytes,
                agents=scope != "route",
                addresses=scope == "principal",
            )
            if scope == "route":
                self._judge_routes(windows, index, size, end)
                continue
            activity = self.activity[(scope, size)]
            # Flagged and suspect windows teach nothing.
            flagged = [
                window.client
                for window in windows
                if not self._judge_client(scope, window, index, size, end, activity)
            ]
            values, seen = volumes.values, volumes.ids
            assert seen is not None
            if flagged:  # a flagged window teaches nothing
                keep = ~np.isin(seen, flagged)
                seen, values = seen[keep], values[keep]
            activity.learn(seen, values)
            self.rarity[(scope, size)].add(values)

    def _judge_routes(self, windows: list[Window], index: int, size: float, end: float) -> None:
        """Routes against their own models (routes differ too much to be peers), all
        of the window's at once."""
        table = self.entities["route"]
        models = []
        for window in windows:
            entity = table.get(window.key, end)
            assert entity.models is not None
            models.append(entity.models[index])
        xs = [window.vector(None, None) for window in windows]
        verdicts = WindowModel.judge_many(models, xs)
        self.windows_judged += len(windows)
        for window, verdict in zip(windows, verdicts, strict=True):
            drivers = self._drivers(verdict.drivers, window) if verdict.anomalous else ()
            if drivers:
                self.windows_flagged += 1
                self._report("route", window, size, end, verdict, drivers, own=True)
        self._reclaim_forecasts(index)

    def _reclaim_forecasts(self, index: int) -> None:
        """Free the slots of routes forgotten (expired or evicted) in the forecasts of
        window length ``index``, once they hold as many again as the routes known."""
        if self.route_forecasts is None:
            return
        forecasts = self.route_forecasts[index]
        table = self.entities["route"]
        if forecasts.in_use <= 2 * len(table) + 64:
            return
        live = []
        for _, entity in table.items():
            series = entity.models[index].series if entity.models else None
            if series is not None and series.forecast is forecasts:
                live.append(series.slot)
        forecasts.release(live)

    def _judge_client(  # noqa: PLR0917 - one call site, each argument named by its role
        self,
        scope: Scope,
        window: Window,
        index: int,
        size: float,
        end: float,
        activity: Activity,
    ) -> bool:
        """A principal or address against its own history and its peers; False when
        the window must not be learnt (flagged, or suspect: far above its own usual
        without its peers' agreement; ``sustain`` suspect windows in a row flag)."""
        p = self.params
        entity = self.entities[scope].get(window.key, end)
        assert entity.baselines is not None
        x = window.vector(entity.agents, entity.addresses)
        model = self.models[(scope, size)]
        self.windows_judged += 1
        own = entity.baselines[index]
        history, candidates = self._own_history(activity, window.client, own, x)
        drivers = self._drivers(candidates, window)
        if history >= p.min_history and not drivers:
            # Its own history clears it, whatever its peers say: the population model
            # only needs a sample of such windows to learn from.
            self._cleared += 1
            if not self._cleared % p.population_sample:
                model.judge(x)
            self._learn(entity, own, window, x)
            entity.streak[index] = 0
            return True
        verdict = model.judge(x)
        suspect = False
        if history >= p.min_history:
            # Far above its own usual; and unusual among its peers too (the model), or
            # moving an amount few clients' windows ever move.
            rare = bool(self._rare_drivers(scope, size, x, None))
            # The peers agree when their model flags the window for a rise too (not
            # for being quieter than the busiest clients, or for a new agent).
            peers = verdict.anomalous and any(
                d.deviation >= p.min_deviation and d.feature not in _CONTEXT
                for d in verdict.drivers
            )
            flagged = bool(drivers) and (peers or rare)
            if drivers and not flagged:  # its peers do not agree (yet): hold it back
                suspect = True
                entity.streak[index] += 1
                flagged = entity.streak[index] >= p.sustain
        else:  # no history of its own: its peers judge
            drivers = self._drivers(verdict.drivers, window)
            flagged = verdict.anomalous and bool(drivers)
            if not flagged:
                # Moving what few clients' windows ever move, from its first window:
                # held back, and flagged if it goes on.
                drivers = self._rare_drivers(scope, size, x, window)
                if drivers:
                    suspect = True
                    entity.streak[index] += 1
                    flagged = entity.streak[index] >= p.sustain
        if not flagged:
            if suspect:
                return False
            self._learn(entity, own, window, x)
            entity.streak[index] = 0
            return True
        self.windows_flagged += 1
        self._report(scope, window, size, end, verdict, drivers, own=history >= p.min_history)
        return False

    def _own_history(
        self, activity: Activity, client: int, own: RobustBaseline, x: list[float]
    ) -> tuple[int, list[Driver]]:
        """How many windows of its own a client (its id) has, and each feature against
        them: volume against all its windows, the rest against its busy ones."""
        p = self.params
        history = activity.history(client)
        candidates: list[Driver] = []
        if history >= p.min_history:
            volume = [x[INDEX[f]] for f in VOLUME]
            _, level, z = activity.deviations(client, volume)
            candidates += [Driver(f, volume[i], level[i], z[i]) for i, f in enumerate(VOLUME)]
        if own.seen >= p.min_history:
            z_own = own.deviations(x)
            candidates += [
                Driver(FEATURES[i], x[i], own.baseline(i), z_own[i]) for i in _NOT_VOLUME
            ]
        return history, candidates

    def _rare_drivers(
        self, scope: Scope, size: float, x: list[float], window: Window | None
    ) -> tuple[Driver, ...]:
        """Volume features rare among all clients' windows, against the typical one
        (all of them without a ``window``: no margin checks)."""
        rarity = self.rarity[(scope, size)]
        if rarity.windows * self.params.rare_share < _RARE_SEEN:
            return ()  # too few windows seen to say what is rare
        candidates = []
        for i, feature in enumerate(VOLUME):
            value = x[INDEX[feature]]
            share = rarity.tail(i, value)
            if share <= self.params.rare_share:
                z = _NORMAL.inv_cdf(1.0 - max(share, 1e-12))
                candidates.append(Driver(feature, value, rarity.median(i), z))
        if window is None or not candidates:
            return tuple(candidates)
        return self._drivers(candidates, window)

    @staticmethod
    def _learn(entity: _Entity, own: RobustBaseline, window: Window, x: list[float]) -> None:
        own.learn(x)
        if entity.agents is not None:
            _remember(entity.agents, window.agents)
        if entity.addresses is not None:
            _remember(entity.addresses, window.addresses)

    def _drivers(self, candidates: Iterable[Driver], window: Window) -> tuple[Driver, ...]:
        """The features far *above* their baseline, by a margin that matters (a rise
        in requests, errors, bytes...: a drop is not an attack), most deviant first;
        none when only latency rose (slow is not hostile on its own)."""
        p = self.params
        log_ratio = math.log(p.min_ratio)
        found = []
        for d in candidates:
            feature = d.feature
            if d.deviation < p.min_deviation:
                continue
            if feature in _NOVELTY:
                # Something new (an agent, an address) where there usually is none.
                if d.observed < _ONE or d.baseline > _ONE / 2:
                    continue
            elif feature in _BYTES:
                # The rise must hold without the window's single biggest request: one
                # big upload or download is not a volume anomaly.
                usual = math.expm1(d.baseline)
                rest = math.expm1(d.observed) - getattr(window, _BYTES[feature])
                if rest - usual < p.min_bytes_rise or math.log1p(rest) - d.baseline < log_ratio:
                    continue
            elif feature in LOGGED:
                if d.observed - d.baseline < log_ratio:
                    continue
            elif (
                d.observed - d.baseline < p.min_ratio_rise
                or d.observed * window.requests < p.min_errors
            ):
                continue
            found.append(d)
        if all(d.feature in _CONTEXT for d in found):
            return ()
        found.sort(key=lambda d: -d.deviation)
        return tuple(found)

    def _strength(self, driver: Driver) -> float:
        """Confidence from one driver: how far beyond the floors it is (at the floor:
        0; twice the floor: 0.5; ten times: 0.9), in z or, for amounts, in ratio."""
        p = self.params
        strength = 1.0 - p.min_deviation / driver.deviation
        if driver.feature in LOGGED and driver.feature not in _NOVELTY:
            ratio = (math.expm1(driver.observed) + 1.0) / (math.expm1(driver.baseline) + 1.0)
            strength = max(strength, 1.0 - p.min_ratio / ratio)
        return max(0.0, strength)

    def _report(  # noqa: PLR0917 - one call site, each argument named by its role
        self,
        scope: Scope,
        window: Window,
        size: float,
        end: float,
        verdict: Verdict,
        drivers: tuple[Driver, ...],
        *,
        own: bool,
    ) -> None:
        entity_type, entity = _entity(scope, window.key)
        baseline = "its own baseline" if own else "its peers"
        named = "; ".join(describe(d) for d in drivers[:4])
        score = max(verdict.score, *(self._strength(d) for d in drivers))
        summary = (
            f"{entity_type} {entity}: {size:g} s window unusual against {baseline}: {named} "
            f"(score {score:.2f})"
        )
        extra = {
            "scope": scope,
            "window_s": size,
            "algorithm": (
                self.params.model if scope == "route" else self.params.population_model
            ).algorithm,
            "drivers": [
                {
                    "feature": d.feature,
                    "observed": round(shown(d.feature, d.observed), 3),
                    "baseline": round(shown(d.feature, d.baseline), 3),
                    "deviation": round(d.deviation, 2),
                }
                for d in drivers
            ],
        }
        self.episodes[entity_type].report(
            entity,
            ts=window.last_ts,
            first_ts=window.first_ts,
            evidence=window.evidence_for(drivers[0].feature),
            summary=summary,
            score=score,
            subkind=f"{scope}_baseline",
            extra=extra,
        )

    # -- introspection and persistence ------------------------------------------------

    def tracked(self) -> int:
        """Routes, and clients (principals, addresses) with a volume history: every
        client seen; the busy ones also have baselines of all features."""
        clients = sum(len(space) for space in self.clients.values())
        return len(self.entities["route"]) + max(
            clients, len(self.entities["principal"]) + len(self.entities["ip"])
        )

    def counters(self) -> dict[str, int]:
        learnt = sum(m.windows for m in list(self.models.values()))
        for route in self.entities["route"].states():  # read while detection runs
            learnt += sum(m.windows for m in route.models or ())
        return {
            "windows_judged": self.windows_judged,
            "windows_flagged": self.windows_flagged,
            "replayed_skipped": self.skipped,
            "model_windows": learnt,  # restored with the models: survives a restart
        }

    def snapshot(self) -> dict[str, Any]:
        """Everything learnt and open, with the positions it includes (picklable)."""
        chunk = list(self._open_parts())
        return {
            "version": _STATE_VERSION,
            "params": _structure(self.params),
            "window": (self._start, self._end, chunk),
            "levels": [(level.start, list(level.chunks)) for level in self._levels],
            "models": self.models,
            "clients": self.clients,
            "closed": self._closed,
            "activity": self.activity,
            "rarity": self.rarity,
            "cleared": self._cleared,
            "entities": self.entities,
            "route_forecasts": self.route_forecasts,  # the routes' models' shared state
            "positions": dict(self.positions),
        }

    def restore(self, state: dict[str, Any], *, sources: set[str] | None = None) -> bool:
        """Take over a snapshot; False (and nothing changed) when it no longer fits the
        configured windows and model. ``sources``: only these sources' positions (a
        partition taken over from another consumer); entities this detector already
        knows are kept, the snapshot's fill the rest."""
        if state.get("version") != _STATE_VERSION or state.get("params") != _structure(self.params):
            return False
        positions: dict[str, int] = state["positions"]
        if sources is not None:
            positions = {s: p for s, p in positions.items() if s in sources}
        if (
            not self.windows_judged
            and not self.tracked()
            and not self._events
            and not self._restored
        ):
            self._start, self._end, self._restored = state["window"]
            for level, (start, chunks) in zip(self._levels, state["levels"], strict=True):
                level.start, level.chunks = start, chunks
            self.models = state["models"]
            self.clients = state["clients"]
            self._closed = state["closed"]
            self.activity = state["activity"]
            self.rarity = state["rarity"]
            self._cleared = state["cleared"]
            self.entities = state["entities"]
            self.route_forecasts = state["route_forecasts"]
            for table in self.entities.values():
                table.ttl_s = self.params.ttl_s
        else:
            for scope, table in state["entities"].items():
                mine = self.entities[scope]
                for key, entity in table.items():
                    if mine.peek(key) is None:
                        if entity.models is not None and self.route_forecasts is not None:
                            for model, forecasts in zip(
                                entity.models, self.route_forecasts, strict=True
                            ):
                                model.move_to(forecasts)
                        mine.put(key, max(self._start, 0.0), entity)
            for scope, space in state["clients"].items():
                ours, theirs = self.clients[scope].adopt(space)
                for level in self._levels:
                    where = (scope, level.size_s)
                    self.activity[where].adopt(state["activity"][where], ours, theirs)
        for source, position in positions.items():
            self._resume[source] = max(position, self._resume.get(source, -1))
            self.positions[source] = max(position, self.positions.get(source, -1))
        return True


def _structure(params: AnomalyModelParams) -> tuple[Any, ...]:
    """What learnt state depends on: other params can change under it."""
    return params.windows, params.model, params.population_model


def _remember(known: set[str], seen: list[str]) -> None:
    for item in seen:
        if len(known) >= _KNOWN_CAP:
            return
        known.add(item)


def _entity(scope: Scope, key: str) -> tuple[EntityType, str]:
    if scope == "route":
        return EntityType.ROUTE, key
    if scope == "ip":
        return EntityType.IP, key
    kind, _, principal = key.partition(":")
    return (EntityType.USER if kind == "u" else EntityType.API_KEY), principal


def describe(driver: Driver) -> str:
    """One driver for people: ``requests 412 (usual 12)``.

    >>> describe(Driver("bytes_out", math.log1p(5 << 20), math.log1p(40 << 10), 9.0))
    'bytes_out 5.0 MiB (usual 40.0 KiB)'
    >>> describe(Driver("status_404", 0.62, 0.02, 7.5))
    'status_404 62% (usual 2%)'
    """
    feature = driver.feature
    observed, usual = shown(feature, driver.observed), shown(feature, driver.baseline)
    if feature not in LOGGED:
        return f"{feature} {observed:.0%} (usual {usual:.0%})"
    if feature.startswith("bytes"):
        return f"{feature} {human_bytes(observed)} (usual {human_bytes(usual)})"
    return f"{feature} {observed:.0f} (usual {usual:.0f})"
