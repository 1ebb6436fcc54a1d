"""What every attack episode shares: its context from the schedule, its own RNG, a
timeline of request times, and the attacker's networks, software and victims.

An episode is an ``Actor`` (``ingest.simulator.actor``) that plans its request times
when it is built (``schedule``) and makes request ``i`` at ``times[i]`` (``make``).
Its ``Emitter`` carries the ``attack_id``, so every request it makes is labelled, and
the infrastructure part of each request (latency, sizes, load balancer, the odd 5xx)
is drawn exactly as for benign traffic. Every episode draws only from its own
``random.Random``, seeded from the run's seed and the ``attack_id``: adding or removing
an episode changes nothing else.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from ingest.simulator import catalogue, network
from ingest.simulator.actor import Actor, Client, Emitter, World
from ingest.simulator.endpoints import Endpoint
from ingest.simulator.request import SimRequest

WEB_USER_IDS = (200_000, 220_000)
"""The range of user ids of the simulated web population (``build_actors``)."""


@dataclass(frozen=True, slots=True)
class EpisodeContext:
    """Where and when the schedule put one episode, and the run it is part of.

    >>> ctx = EpisodeContext("bola-1", "bola", 1, "denied", 1000.0, 60.0, seed=3)
    >>> ctx.end_ts
    1060.0
    """

    attack_id: str
    kind: str
    index: int
    variant: str
    start_ts: float
    duration_s: float
    seed: int = 0
    host: str = "api.example.com"
    lb_share: float = 0.25
    server_error_rate: float = 0.003

    @property
    def end_ts(self) -> float:
        return self.start_ts + self.duration_s


class Move(NamedTuple):
    """One request an episode planned: who sends what, and the status it will get.

    ``authorization`` is an Authorization header sent with this request only (a token
    the attacker obtained or stole); ``user_agent``, when set, replaces the client's
    from this request on (bots rotate them).
    """

    client: Client
    endpoint: Endpoint
    path: str
    status: int
    user: str = ""
    query: str = ""
    api_key: str = ""
    authorization: str = ""
    user_agent: str = ""


class AttackEpisode(Actor):
    """One labelled attack: an actor whose requests all carry its ``attack_id``.

    Class attributes describe the attack kind for the registry and the schedule:
    ``kind`` (the registry name), ``accepted_kinds`` (the finding kinds that count as
    detecting it), ``variants`` (episodes of a kind cycle through them), ``lane``
    (episodes in one lane never overlap in time) and ``nominal_s`` (how long an
    episode lasts when the run leaves room for it). A subclass sets up its attacker in
    ``__init__`` and calls ``schedule`` with its request times (inside
    ``[start_ts, end_ts]``) and the ``Move`` to make at each; or overrides ``make`` to
    build requests as it goes.
    """

    kind: ClassVar[str]
    accepted_kinds: ClassVar[tuple[str, ...]]
    variants: ClassVar[tuple[str, ...]] = ("default",)
    lane: ClassVar[str]
    nominal_s: ClassVar[float]

    __slots__ = (
        "_i",
        "_moves",
        "_times",
        "attack_id",
        "context",
        "description",
        "emitter",
        "rng",
        "variant",
    )

    def __init__(self, context: EpisodeContext) -> None:
        super().__init__(None)
        self.context = context
        self.attack_id = context.attack_id
        self.variant = context.variant
        self.rng = random.Random(f"{context.seed}/attack/{context.attack_id}")  # noqa: S311
        self.emitter = Emitter(
            self.rng,
            self.kind,
            server_error_rate=context.server_error_rate,
            attack_id=context.attack_id,
        )
        self.description = ""
        self._times: list[float] = []
        self._moves: list[Move] = []
        self._i = 0

    @property
    def start_ts(self) -> float:
        return self.context.start_ts

    @property
    def end_ts(self) -> float:
        return self.context.end_ts

    @property
    def planned(self) -> int:
        """How many requests the episode plans to make."""
        return len(self._times)

    def schedule(self, times: list[float], moves: list[Move] | None = None) -> None:
        """Make request ``i`` at ``times[i]`` (non-decreasing, clamped to the episode):
        ``moves[i]`` when given (``zip`` semantics: the shorter list wins)."""
        if moves is not None:
            times = times[: len(moves)]
            self._moves = moves[: len(times)]
        low, high = self.start_ts, self.end_ts
        clamped: list[float] = []
        last = low
        for t in times:
            last = min(max(t, last), high)
            clamped.append(last)
        self._times = clamped
        self._i = 0
        self.next_ts = clamped[0] if clamped else None

    def step(self, now: float, world: World) -> SimRequest | None:
        i = self._i
        request = self.make(i, now)
        self._i = i + 1
        self.next_ts = self._times[i + 1] if i + 1 < len(self._times) else None
        return request

    def make(self, i: int, now: float) -> SimRequest:
        """The episode's ``i``-th request, made at ``now``: its planned ``Move``."""
        move = self._moves[i]
        client = move.client
        if move.user_agent:
            self.set_agent(client, move.user_agent)
        if move.authorization:
            client.set_header("authorization", move.authorization)
        request = self.emitter.emit(
            now,
            move.endpoint,
            client,
            move.path,
            move.status,
            query=move.query,
            user=move.user,
            api_key=move.api_key,
        )
        if move.authorization:
            client.set_header("authorization", None)
        return request

    # --- helpers for subclasses ---------------------------------------------------------

    def client(
        self,
        ip: str,
        user_agent: str,
        *,
        tls_version: str = "TLSv1.3",
        protocol: str = "HTTP/1.1",
        scheme: str = "https",
    ) -> Client:
        """A client of the attacker's, reaching the gateway like everyone else."""
        rng = self.rng
        return Client(
            ip,
            network.ephemeral_port(rng),
            user_agent,
            host=self.context.host,
            protocol=protocol,
            scheme=scheme,
            tls_version=tls_version,
            via_lb=rng.random() < self.context.lb_share,
        )

    def set_agent(self, client: Client, user_agent: str) -> None:
        """Change ``client``'s user agent (a bot rotating them), keeping sizes right."""
        client.header_bytes += len(user_agent) - len(client.user_agent)
        client.user_agent = user_agent

    def paced(
        self,
        count: int,
        *,
        min_gap_s: float,
        jitter: float = 0.6,
        start: float | None = None,
        span: float | None = None,
    ) -> list[float]:
        """About ``count`` request times spread evenly over ``span`` seconds from
        ``start`` (by default the whole episode), fewer when that is too short for gaps
        of at least ``min_gap_s``; each gap jittered.

        >>> ctx = EpisodeContext("x-1", "x", 1, "default", 100.0, 10.0)
        >>> times = _Probe(ctx).paced(50, min_gap_s=1.0)
        >>> len(times), times == sorted(times), 100.0 <= times[0] and times[-1] <= 110.0
        (10, True, True)
        """
        low = self.start_ts if start is None else start
        span = self.end_ts - low if span is None else span
        count = max(1, min(count, int(span / min_gap_s)))
        gap = span / count
        rand = self.rng.random
        return [low + gap * (k + jitter * rand()) for k in range(count)]

    def scattered(self, count: int, *, start: float | None = None) -> list[float]:
        """``count`` independent uniform times from ``start`` to the episode's end, sorted
        (Poisson arrivals: many unrelated sources)."""
        low = self.start_ts if start is None else start
        span = self.end_ts - low
        rand = self.rng.random
        return sorted(low + span * rand() for _ in range(count))


class _Probe(AttackEpisode):
    """The smallest episode, for doctests."""

    kind = "probe"
    accepted_kinds = ("anomaly",)
    lane = "probe"
    nominal_s = 10.0

    def make(self, i: int, now: float) -> SimRequest:
        raise NotImplementedError  # never scheduled


# --- the attacker's world -----------------------------------------------------------

# /16 prefixes of hosting providers that rent servers by the hour (none of them a range
# benign traffic comes from).
_HOSTING_V4: tuple[tuple[int, int], ...] = (
    (45, 135), (185, 220), (193, 142), (5, 188), (194, 26), (103, 75), (89, 248), (146, 70),
)  # fmt: skip


def hosting_ipv4(rng: random.Random) -> str:
    """A rented server: the usual home of scanners and attack tools."""
    a, b = rng.choice(_HOSTING_V4)
    return f"{a}.{b}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def proxy_ipv4(rng: random.Random) -> str:
    """An exit of a proxy pool: mostly residential proxies (the same ranges real users
    come from), then cloud and hosting addresses."""
    draw = rng.random()
    if draw < 0.6:
        return network.residential_ipv4(rng)
    if draw < 0.85:
        return network.cloud_ipv4(rng)
    return hosting_ipv4(rng)


def spread_address(rng: random.Random) -> str:
    """An address from anywhere: home broadband, IPv6, mobile carriers, cloud, hosting."""
    draw = rng.random()
    if draw < 0.4:
        return network.residential_ipv4(rng)
    if draw < 0.5:
        return network.residential_ipv6(rng)
    if draw < 0.65:
        return network.cgnat_ipv4(rng)
    if draw < 0.85:
        return network.cloud_ipv4(rng)
    return hosting_ipv4(rng)


TOOL_AGENTS: tuple[str, ...] = (
    "python-requests/2.31.0",
    "python-requests/2.28.1",
    "curl/8.5.0",
    "Go-http-client/1.1",
    "Mozilla/4.0 (Hydra)",
    "axios/1.6.7",
    "PostmanRuntime/7.36.3",
)

SCANNER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000347)",
    "gobuster/3.6",
    "Fuzz Faster U Fool v2.1.0-dev",
    "Wfuzz/3.1.0",
    "feroxbuster/2.10.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/87.0.4280.88 Safari/537.36",
)

OLD_TLS_AGENTS: tuple[str, ...] = (
    "Java/1.7.0_80",
    "Apache-HttpClient/4.2.5 (java 1.5)",
    "Dalvik/1.6.0 (Linux; U; Android 4.4.2; GT-I9505 Build/KOT49H)",
    "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0)",
    "POS-Terminal/2.3 (WinCE 6.0)",
)


def rotating_agent(rng: random.Random) -> str:
    """A browser user agent as credential-stuffing kits forge them: a real template with
    a random version, so nearly every request carries a different one."""
    draw = rng.random()
    if draw < 0.3:
        return rng.choice(catalogue.BROWSER_AGENTS)
    major = rng.randrange(96, 123)
    build = f"{major}.0.{rng.randrange(4600, 6300)}.{rng.randrange(0, 200)}"
    if draw < 0.75:
        platform = rng.choice(
            (
                "Windows NT 10.0; Win64; x64",
                "Windows NT 6.1; Win64; x64",
                "Macintosh; Intel Mac OS X 10_15_7",
                "X11; Linux x86_64",
            )
        )
        return (
            f"Mozilla/5.0 ({platform}) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"Chrome/{build} Safari/537.36"
        )
    if draw < 0.9:
        return (
            f"Mozilla/5.0 (Linux; Android {rng.randrange(9, 15)}; SM-G{rng.randrange(900, 999)}F) "
            f"AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{build} Mobile Safari/537.36"
        )
    return (
        f"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{major - 10}.0) "
        f"Gecko/20100101 Firefox/{major - 10}.0"
    )


_LEAK_DOMAINS: tuple[str, ...] = (
    *catalogue.CONSUMER_MAIL_DOMAINS,
    "post.example",
    "webmail.example",
    "mailbox.example",
)


def leaked_username(rng: random.Random) -> str:
    """A login name as it appears in a leaked combo list."""
    first, last = rng.choice(catalogue.FIRST_NAMES), rng.choice(catalogue.LAST_NAMES)
    domain = rng.choice(_LEAK_DOMAINS)
    shape = rng.random()
    if shape < 0.35:
        return f"{first}.{last}{rng.randrange(1, 100)}@{domain}"
    if shape < 0.6:
        return f"{first}{last[0]}{rng.randrange(60, 100):02d}@{domain}"
    if shape < 0.85:
        return f"{first[0]}{last}{rng.randrange(1, 1000)}@{domain}"
    return f"{last}.{first}@{domain}"


def distinct_usernames(rng: random.Random, count: int) -> list[str]:
    """``count`` different leaked-list usernames."""
    seen: dict[str, None] = {}
    while len(seen) < count:
        seen.setdefault(leaked_username(rng))
    return list(seen)


def web_user_id(rng: random.Random) -> int:
    """The id of an account of the web population."""
    low, high = WEB_USER_IDS
    return rng.randrange(low, high)
