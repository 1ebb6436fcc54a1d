"""The simulation: who is in it (``SimulationConfig``, ``build_actors``) and the engine
that merges every actor's requests in timestamp order (``run``, ``generate``).

Time is simulated: it starts at ``start_ts`` and advances by the actors' own
inter-arrival times, never by the wall clock. Every actor draws from its own
``random.Random`` seeded from ``seed`` and the actor's name, so the same config gives
byte-identical traffic, and adding actors (attack episodes) to ``run`` leaves the
benign traffic unchanged.

>>> config = SimulationConfig(seed=7, count=3)
>>> [r.ts >= config.start_ts for r in generate(config)]
[True, True, True]
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields, replace

from gatewatch.errors import ConfigError
from ingest.simulator import network
from ingest.simulator.actor import Actor, SimulationError, World
from ingest.simulator.automated import PARTNER_NAMES, Crawler, HealthProbe, PartnerIntegration
from ingest.simulator.endpoints import SERVICES
from ingest.simulator.request import SimRequest
from ingest.simulator.users import CorporateNat, HomeBroadband, MobileCgnat, SessionSource

_GATEWAY_PODS = SERVICES["web"].upstreams
_FRACTIONS = frozenset(
    (
        "ipv6_share",
        "lb_share",
        "typo_rate",
        "corporate_typo_rate",
        "mobile_roam_rate",
        "server_error_rate",
    )
)
_POSITIVE = frozenset(
    ("health_interval_s", "web_users", "corporate_users", "corporate_sites", "mobile_users")
)


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """What to simulate. Rates are per second of simulated time.

    The run stops at ``start_ts + duration_s`` or after ``count`` requests, whichever
    comes first; with neither it never stops. The defaults give about 100 requests per
    second from every kind of actor.
    """

    seed: int = 0
    start_ts: float = 1_710_230_400.0  # 2024-03-12T08:00:00Z
    duration_s: float | None = 600.0
    count: int | None = None
    host: str = "api.example.com"
    web_users: int = 20_000
    web_session_rate: float = 1.5
    corporate_sites: int = 2
    corporate_users: int = 800
    corporate_session_rate: float = 1.0
    mobile_users: int = 10_000
    mobile_session_rate: float = 1.5
    partners: int = 3
    partner_rate: float = 12.0
    crawlers: int = 4
    crawler_rate: float = 1.5
    health_probes: int = 3
    health_interval_s: float = 10.0
    ipv6_share: float = 0.08
    lb_share: float = 0.25
    typo_rate: float = 0.05
    corporate_typo_rate: float = 0.08
    mobile_roam_rate: float = 0.08
    server_error_rate: float = 0.003

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name in ("seed", "start_ts", "host") or value is None:
                continue
            if value < 0:
                problems.append((field.name, f"must not be negative, got {value}"))
            elif field.name in _FRACTIONS and value > 1:
                problems.append((field.name, f"is a fraction (0 to 1), got {value}"))
            elif field.name in _POSITIVE and value == 0:
                problems.append((field.name, "must be positive"))
        if not self.host:
            problems.append(("host", "must not be empty"))
        if problems:
            raise ConfigError("simulation", problems)

    def crowded(self, factor: float) -> SimulationConfig:
        """The same traffic from ``factor`` times as many people, partners and
        crawlers (a busier API, not faster clients: each actor keeps its own pace).

        >>> config = SimulationConfig().crowded(10)
        >>> config.web_users, config.web_session_rate, config.partner_rate
        (200000, 15.0, 120.0)
        """
        if factor <= 0:
            raise ConfigError("simulation", [("crowd", f"must be positive, got {factor}")])
        return replace(
            self,
            web_users=max(1, round(self.web_users * factor)),
            web_session_rate=self.web_session_rate * factor,
            corporate_users=max(1, round(self.corporate_users * factor)),
            corporate_session_rate=self.corporate_session_rate * factor,
            mobile_users=max(1, round(self.mobile_users * factor)),
            mobile_session_rate=self.mobile_session_rate * factor,
            partner_rate=self.partner_rate * factor,
            crawler_rate=self.crawler_rate * factor,
        )

    @property
    def end_ts(self) -> float | None:
        return None if self.duration_s is None else self.start_ts + self.duration_s


def build_actors(config: SimulationConfig) -> list[Actor]:
    """Every benign actor ``config`` describes, each with its own seeded RNG."""

    def rng(name: str) -> random.Random:
        return random.Random(f"{config.seed}/{name}")  # noqa: S311 - simulation, not secrets

    start, host, lb_share = config.start_ts, config.host, config.lb_share
    actors: list[Actor] = []
    populations = (
        (
            "web",
            HomeBroadband(host=host, lb_share=lb_share, ipv6_share=config.ipv6_share),
            config.web_users,
            200_000,
            config.web_session_rate,
            config.typo_rate,
        ),
        (
            "corporate",
            CorporateNat(
                host=host,
                lb_share=lb_share,
                sites=config.corporate_sites,
                rng=rng("corporate-sites"),
            ),
            config.corporate_users,
            400_000,
            config.corporate_session_rate,
            config.corporate_typo_rate,
        ),
        (
            "mobile",
            MobileCgnat(host=host, lb_share=lb_share, roam_rate=config.mobile_roam_rate),
            config.mobile_users,
            600_000,
            config.mobile_session_rate,
            config.typo_rate,
        ),
    )
    for name, profile, users, first_id, session_rate, typo_rate in populations:
        if session_rate > 0:
            actors.append(
                SessionSource(
                    profile,
                    rng(name),
                    start_ts=start,
                    users=users,
                    first_id=first_id,
                    session_rate=session_rate,
                    typo_rate=typo_rate,
                    server_error_rate=config.server_error_rate,
                )
            )

    weights = [1.0 / (i + 1) for i in range(config.partners)]
    for i, weight in enumerate(weights):
        name = PARTNER_NAMES[i % len(PARTNER_NAMES)]
        if i >= len(PARTNER_NAMES):
            name = f"{name}-{i // len(PARTNER_NAMES) + 1}"
        if config.partner_rate > 0:
            actors.append(
                PartnerIntegration(
                    rng(f"partner/{i}"),
                    name=name,
                    partner_id=4100 + 37 * i,
                    start_ts=start,
                    rate=config.partner_rate * weight / sum(weights),
                    host=host,
                    lb_share=lb_share,
                )
            )

    for i in range(config.health_probes):
        actors.append(
            HealthProbe(
                rng(f"health/{i}"),
                node_ip=network.PROBE_NODES[i % len(network.PROBE_NODES)],
                pod=_GATEWAY_PODS[i % len(_GATEWAY_PODS)],
                start_ts=start,
                interval_s=config.health_interval_s,
            )
        )

    if config.crawler_rate > 0:
        for i in range(config.crawlers):
            actors.append(
                Crawler(
                    rng(f"crawler/{i}"),
                    bot="bingbot" if i % 3 == 2 else "googlebot",
                    start_ts=start,
                    rate=config.crawler_rate / config.crawlers,
                    host=host,
                    lb_share=lb_share,
                )
            )
    return actors


def run(
    actors: Iterable[Actor], *, end_ts: float | None = None, count: int | None = None
) -> Iterator[SimRequest]:
    """Requests of all ``actors`` (and those they start) in timestamp order.

    Stops before the first request later than ``end_ts``, after ``count`` requests,
    or when no actor is left. Simultaneous actors act in the order they were
    scheduled, so the order is deterministic.
    """
    if count is not None and count <= 0:
        return
    heap: list[tuple[float, int, Actor]] = []
    seq = 0
    for actor in actors:
        if actor.next_ts is not None:
            heap.append((actor.next_ts, seq, actor))
            seq += 1
    heapq.heapify(heap)
    world = World()
    spawned = world.spawned
    limit = float("inf") if end_ts is None else end_ts
    remaining = -1 if count is None else count
    heapreplace, heappop, heappush = heapq.heapreplace, heapq.heappop, heapq.heappush
    while heap:
        now, _, actor = heap[0]
        if now > limit:
            return
        request = actor.step(now, world)
        after = actor.next_ts
        if after is None:
            heappop(heap)
        elif after >= now:
            heapreplace(heap, (after, seq, actor))
            seq += 1
        else:
            raise SimulationError(f"{type(actor).__name__} rescheduled itself into the past")
        if spawned:
            for child in spawned:
                if child.next_ts is None:
                    continue
                if child.next_ts < now:
                    raise SimulationError(f"{type(child).__name__} was started in the past")
                heappush(heap, (child.next_ts, seq, child))
                seq += 1
            spawned.clear()
        if request is not None:
            yield request
            remaining -= 1
            if remaining == 0:
                return


def generate(config: SimulationConfig, extra: Iterable[Actor] = ()) -> Iterator[SimRequest]:
    """The benign traffic ``config`` describes, in timestamp order, merged with the
    requests of ``extra`` actors (attack episodes, benign traps) when given."""
    return run([*build_actors(config), *extra], end_ts=config.end_ts, count=config.count)
