"""Discovery: endpoint scanning (what routes exist) and user enumeration (which accounts).

**Endpoint scanning**, per client IP, in a window of event time: many distinct paths
that do not exist (404, 405 or another refusal on a route that has never answered
anyone with success), most of what the client asks for; a burst of them; or known
scanner probes (``/.env``, ``/.git/``, ``/wp-admin``, ...), whatever they were answered.
A 404 on a route that works for others (``/orders/{orderId}`` with an unknown id) is a
missing object, not a missing endpoint (that is BOLA's business). Benign look-alikes: a
stale app version calling a handful of removed routes (many 404s, few distinct paths),
crawlers (``/robots.txt``, ``/sitemap.xml``: never counted; dead links are a small
share of what they fetch), health checks (one path, answered).

**User enumeration**, per source (an IP, or its ``/24`` / ``/48`` network): login,
password-reset or sign-up endpoints probed for many distinct usernames while the
answers differ (``404`` vs ``401``, ``200`` vs ``404``, ``201`` vs ``409``, or two
clearly separate response sizes): the attacker learns which accounts exist. On login
only failures count, and most attempts must fail (a corporate NAT's users mostly
succeed); all failures alike (every one ``401``) is credential stuffing, not this.
Reset and sign-up probing for many accounts is reported even when answers are uniform.
"""

from __future__ import annotations

import ipaddress
import math
import re
from itertools import pairwise
from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, model_validator

from detectors.auth_routes import AuthRouteCache, AuthRoutes
from detectors.base import Detector, DetectorParams
from detectors.episodes import Episodes
from detectors.state import DistinctCounter, EntityTable
from gatewatch.event import Event
from gatewatch.finding import EntityType

Ratio = Annotated[float, Field(ge=0, le=1)]
_CACHE_MAX = 16_384

# Files and admin consoles that exist on some stack, never on an API: scanners ask for
# them everywhere. Matched at the start of a path segment, followed by the end, "/" or
# an extension (".git" matches "/.git/config", not "/.github").
SCANNER_PROBES: tuple[str, ...] = (
    ".env", ".git", ".svn", ".hg", ".ds_store", ".htaccess", ".htpasswd", ".aws", ".ssh",
    ".docker", ".vscode", ".idea", ".bash_history", "wp-admin", "wp-login.php",
    "wp-content", "wp-includes", "wp-config.php", "xmlrpc.php", "phpmyadmin", "phpinfo.php",
    "info.php", "admin.php", "shell.php", "config.php", "actuator", "server-status",
    "server-info", "etc/passwd", "win.ini", "web.config", "config.json", "config.yml",
    "config.yaml", "settings.py", "docker-compose.yml", "backup.zip", "backup.sql",
    "backup.tar.gz", "dump.sql", "database.sql", "db.sql", "id_rsa", "cgi-bin",
    "vendor/phpunit", "jmx-console", "manager/html", "debug/pprof", "_profiler", "boaform",
    "hnap1",
)  # fmt: skip

# What crawlers, browsers and uptime checks fetch from any host: never a probe.
# A trailing "*" makes a prefix (browsers ask for /apple-touch-icon-120x120.png & co).
WELL_KNOWN: tuple[str, ...] = (
    "/robots.txt", "/sitemap.xml", "/sitemap_index.xml", "/favicon*", "/apple-touch-icon*",
    "/browserconfig.xml", "/ads.txt", "/humans.txt", "/.well-known/*",
)  # fmt: skip

_PROBE, _LEARNED = 1, 2  # route flags: a probe; a learned {param} that may hide one
_EMPTY = DistinctCounter(exact_limit=0)  # placeholder until a window starts


class EndpointScanningParams(DetectorParams):
    window_s: Annotated[float, Field(gt=0)] = 300.0
    min_distinct_paths: Annotated[int, Field(ge=2)] = Field(
        default=25, description="distinct unknown paths in the window (a stale app has few)"
    )
    min_unknown_ratio: Ratio = Field(
        default=0.5, description="their share of the client's requests (crawlers: small)"
    )
    burst_window_s: Annotated[float, Field(gt=0)] = 10.0
    burst_min_unknown: Annotated[int, Field(ge=2)] = Field(
        default=30, description="unknown-path requests within burst_window_s"
    )
    burst_min_distinct: Annotated[int, Field(ge=2)] = 10
    min_probes: Annotated[int, Field(ge=1)] = Field(
        default=3, description="distinct scanner probe paths (a health check is one)"
    )
    probe_tokens: tuple[str, ...] = SCANNER_PROBES
    well_known: tuple[str, ...] = Field(
        default=WELL_KNOWN, description="paths (prefixes when ending in *) never counted"
    )
    miss_statuses: frozenset[int] = Field(
        default=frozenset({401, 403, 404, 405, 410}),
        description="answers to an unknown path; 405 counts on any route",
    )
    known_route_successes: Annotated[int, Field(ge=1)] = Field(
        default=10, description="successes (any client) after which a route exists"
    )
    distinct_exact_limit: Annotated[int, Field(ge=8)] = 64
    evidence_ring: Annotated[int, Field(ge=1, le=1000)] = 32
    ttl_s: Annotated[float, Field(gt=0)] = 900.0
    max_entities: Annotated[int, Field(gt=0)] = 100_000
    max_routes: Annotated[int, Field(gt=0)] = 20_000
    episode_quiet_s: Annotated[float, Field(gt=0)] = 600.0

    @model_validator(mode="after")
    def _ttl_covers_window(self) -> Self:
        if self.ttl_s < self.window_s:
            raise ValueError("ttl_s must be at least window_s: state would expire in-window")
        return self


class _Window:
    """What one client has asked for in the current window. Most clients only ever
    miss one path (a typo, a stale link): the first is kept inline, the set of paths
    and the ring of request ids only exist from the second on."""

    __slots__ = (
        "burst_distinct", "burst_start", "burst_unknown", "distinct", "first", "first_request",
        "last", "probes", "reported", "ring", "seen", "start", "total", "unknown",
    )  # fmt: skip

    def __init__(self) -> None:
        self.reported = False
        self.restart(-math.inf)

    def restart(self, ts: float) -> None:
        self.start = self.burst_start = ts
        self.distinct: DistinctCounter | None = None
        self.ring: list[str] | None = None
        self.first = self.first_request = self.last = ""
        # seen: paths taken as new (exact up to the limit, then "differs from the last")
        self.seen = self.probes = self.total = self.unknown = 0
        self.burst_distinct = self.burst_unknown = 0

    def add(self, path: str, request_id: str, exact_limit: int, ring_size: int) -> bool:
        """Record a counted request; True if its path is new this window."""
        if self.ring is not None:
            self.ring.append(request_id)
            if len(self.ring) > ring_size:
                del self.ring[0]
        elif self.first_request:
            self.ring = [self.first_request, request_id]
        else:
            self.first_request = request_id
        if self.distinct is None:
            if not self.seen or path == self.first:
                self.first = path
                return not self.seen
            self.distinct = DistinctCounter(exact_limit=exact_limit, precision=8)
            self.distinct.add(self.first)
        new = self.distinct.add(path)
        if self.seen >= exact_limit:  # a sketch now: its "new" is unreliable
            new = path != self.last
        self.last = path
        return new

    def evidence(self) -> list[str]:
        return self.ring if self.ring is not None else [self.first_request]


class EndpointScanning(Detector[EndpointScanningParams]):
    name: ClassVar[str] = "endpoint_scanning"
    kinds: ClassVar[tuple[str, ...]] = ("endpoint_scanning",)
    Params: ClassVar[type[DetectorParams]] = EndpointScanningParams

    def __init__(self, params: EndpointScanningParams, *, label: str | None = None) -> None:
        super().__init__(params, label=label)
        self.clients: EntityTable[str, _Window] = EntityTable(
            _Window, ttl_s=params.ttl_s, max_entities=params.max_entities
        )
        self.episodes = Episodes(
            self, "endpoint_scanning", EntityType.IP, quiet_s=params.episode_quiet_s
        )
        self._successes: dict[str, int] = {}  # route -> successes, up to "known"
        self._flags: dict[str, int] = {}
        self._compile()

    def reconfigure(self, params: EndpointScanningParams) -> None:
        super().reconfigure(params)
        self.clients.ttl_s, self.clients.max_entities = params.ttl_s, params.max_entities
        self._compile()

    def _compile(self) -> None:
        tokens = "|".join(re.escape(t) for t in self.params.probe_tokens)
        self._probe_re = re.compile(rf"(?:^|/)(?:{tokens})(?=$|[/.?#~_-])", re.IGNORECASE)
        self._flags.clear()

    def observe(self, event: Event) -> None:
        p, route, status = self.params, event.route, event.status
        if 0 < status < 400:
            known = self._successes.get(route, 0)
            if known < p.known_route_successes:
                self._learn(route, known)
        flags = self._flags.get(route)
        if flags is None:
            flags = self._route_flags(route)
        probe = bool(flags & _PROBE) or (
            bool(flags & _LEARNED) and self._probe_re.search(event.path) is not None
        )
        # A refusal on a route nobody succeeds on; a 405 anywhere (a method scan); or on
        # a learned {param} route, whose literals a wordlist may have collapsed into it.
        unknown = status in p.miss_statuses and (
            status == 405
            or bool(flags & _LEARNED)
            or self._successes.get(route, 0) < p.known_route_successes
        )
        ip = event.client_ip
        state = self.clients.peek(ip)
        if not (probe or unknown) or not ip or self._well_known(event.path):
            if state is not None and event.ts - state.start < p.window_s:
                state.total += 1
            return
        if self.allow.allows(event):
            return
        self._count(event, probe, unknown)

    def _count(self, event: Event, probe: bool, unknown: bool) -> None:
        p, ts, ip = self.params, event.ts, event.client_ip
        state = self.clients.get(ip, ts)
        if ts - state.start >= p.window_s:
            state.restart(ts)
        if state.reported and not self.episodes.add_evidence(ip, ts, event.request_id):
            state.reported = False  # the episode closed: a new one needs new evidence
        state.total += 1
        state.unknown += unknown
        key = event.path if event.status != 405 else f"{event.method} {event.path}"
        new = state.add(key, event.request_id, p.distinct_exact_limit, p.evidence_ring)
        if ts - state.burst_start >= p.burst_window_s:
            state.burst_start, state.burst_unknown, state.burst_distinct = ts, 0, 0
        state.burst_unknown += unknown
        if new:
            state.seen += 1
            state.burst_distinct += 1
            state.probes += probe
        if new or state.burst_unknown == p.burst_min_unknown:
            self._judge(event, state)

    def _judge(self, event: Event, state: _Window) -> None:
        p = self.params
        wide = state.seen >= p.min_distinct_paths and (
            state.unknown >= p.min_unknown_ratio * state.total
        )
        burst = (
            state.burst_unknown >= p.burst_min_unknown
            and state.burst_distinct >= p.burst_min_distinct
        )
        probes = state.probes >= p.min_probes
        if not (wide or burst or probes):
            return
        subkind = "known_probes" if probes else "wordlist" if wide else "burst"
        score = min(1.0, 0.5 + 0.3 * wide + 0.2 * burst + 0.1 * state.probes)
        seconds = event.ts - state.start
        self.episodes.report(
            event.client_ip,
            ts=event.ts,
            first_ts=state.start,
            evidence=() if state.reported else state.evidence(),  # add_evidence: the rest
            summary=f"{event.client_ip} requested {state.seen} distinct missing or probe paths "
            f"in {seconds:.0f} s ({state.unknown} of its {state.total} requests refused, "
            f"{state.probes} known scanner probes)",
            score=score,
            subkind=subkind,
            extra={"distinct_paths": state.seen, "probes": state.probes},
        )
        state.reported = True

    def _learn(self, route: str, known: int) -> None:
        successes = self._successes
        if not known and len(successes) >= self.params.max_routes:
            # Forget routes still learning; those that exist stay known.
            limit = self.params.known_route_successes
            for name in [r for r, n in successes.items() if n < limit]:
                del successes[name]
            if len(successes) >= self.params.max_routes:
                successes.clear()
        successes[route] = known + 1

    def _route_flags(self, route: str) -> int:
        flags = _PROBE if self._probe_re.search(route) else 0
        if "{param}" in route or "{...}" in route:
            flags |= _LEARNED
        if len(self._flags) >= _CACHE_MAX:
            self._flags.clear()
        self._flags[route] = flags
        return flags

    def _well_known(self, path: str) -> bool:
        return any(
            path.startswith(w[:-1]) if w[-1:] == "*" else path == w for w in self.params.well_known
        )

    def advance(self, watermark: float) -> None:
        self.clients.expire(watermark)
        self.episodes.advance(watermark)

    def tracked(self) -> int:
        return len(self.clients) + len(self.episodes)


class UserEnumerationParams(DetectorParams):
    routes: AuthRoutes = AuthRoutes()
    group_by: Literal["ip", "network"] = Field(
        default="network", description="count per address, or per /24 (IPv4) and /48 (IPv6)"
    )
    window_s: Annotated[float, Field(gt=0)] = 600.0
    min_distinct_users: Annotated[int, Field(ge=2)] = Field(
        default=20, description="distinct usernames probed while the answers differ"
    )
    min_share: Ratio = Field(
        default=0.1, description="share of the minority answer (status or size class)"
    )
    min_class_count: Annotated[int, Field(ge=1)] = 3
    min_failure_ratio: Ratio = Field(
        default=0.5, description="on login: failed share of attempts (a NAT's users succeed)"
    )
    probe_min_distinct: Annotated[int, Field(ge=2)] = Field(
        default=100, description="usernames from one address on reset/sign-up, answers alike"
    )
    size_gap: Annotated[float, Field(gt=1)] = Field(
        default=2.0, description="two response sizes this far apart are two answers"
    )
    ignored_statuses: frozenset[int] = Field(
        default=frozenset({429}), description="answers that say nothing of the account (5xx too)"
    )
    distinct_exact_limit: Annotated[int, Field(ge=8)] = 64
    evidence_ring: Annotated[int, Field(ge=1, le=1000)] = 32
    ttl_s: Annotated[float, Field(gt=0)] = 1800.0
    max_entities: Annotated[int, Field(gt=0)] = 50_000
    episode_quiet_s: Annotated[float, Field(gt=0)] = 600.0

    @model_validator(mode="after")
    def _ttl_covers_window(self) -> Self:
        if self.ttl_s < self.window_s:
            raise ValueError("ttl_s must be at least window_s: state would expire in-window")
        return self


class _Probing:
    """One source on one kind of auth endpoint, in the current window."""

    __slots__ = (
        "attempts", "entity", "ip", "last", "many_ips", "reported", "ring", "seen", "sizes",
        "start", "statuses", "users",
    )  # fmt: skip

    def __init__(self) -> None:
        self.ring: list[str] = []
        self.reported = self.many_ips = False
        self.ip = self.entity = ""  # the first address; the entity an episode is under
        self.users = _EMPTY
        self.restart(-1.0, 0)

    def restart(self, ts: float, exact_limit: int) -> None:
        self.start = ts
        if exact_limit:
            self.users = DistinctCounter(exact_limit=exact_limit, precision=8)
        self.seen = self.attempts = 0
        self.statuses: dict[int, int] = {}
        self.sizes: dict[int, int] = {}  # quarter-octave size class -> answers
        self.last = ""
        self.ring.clear()


class UserEnumeration(Detector[UserEnumerationParams]):
    name: ClassVar[str] = "user_enumeration"
    kinds: ClassVar[tuple[str, ...]] = ("user_enumeration",)
    Params: ClassVar[type[DetectorParams]] = UserEnumerationParams

    def __init__(self, params: UserEnumerationParams, *, label: str | None = None) -> None:
        super().__init__(params, label=label)
        self.auth = AuthRouteCache(params.routes)
        self.sources: EntityTable[tuple[str, str], _Probing] = EntityTable(
            _Probing, ttl_s=params.ttl_s, max_entities=params.max_entities
        )
        self.episodes = Episodes(
            self, "user_enumeration", EntityType.IP, quiet_s=params.episode_quiet_s
        )
        self._networks: dict[str, str] = {}

    def reconfigure(self, params: UserEnumerationParams) -> None:
        super().reconfigure(params)
        self.sources.ttl_s, self.sources.max_entities = params.ttl_s, params.max_entities
        self.auth = AuthRouteCache(params.routes)

    def observe(self, event: Event) -> None:
        kind = self.auth.kind(event.route)
        if not kind or not event.user or not event.client_ip or event.method in _NO_SUBMIT:
            return
        p, status = self.params, event.status
        if status >= 500 or status < 200 or status in p.ignored_statuses:
            return
        if self.allow.allows(event):
            return
        ip, ts = event.client_ip, event.ts
        source = ip if p.group_by == "ip" else self._network(ip)
        state = self.sources.get((source, kind), ts)
        if state.start < 0 or ts - state.start >= p.window_s:
            state.restart(ts, p.distinct_exact_limit)
        if not state.ip:
            state.ip = ip
        elif ip != state.ip:
            state.many_ips = True
        state.attempts += 1
        if kind == "login" and status < 400:
            return  # a success says nothing the attacker could not learn anyway
        if state.reported and not self.episodes.add_evidence(state.entity, ts, event.request_id):
            state.reported = False
        ring = state.ring
        ring.append(event.request_id)
        if len(ring) > p.evidence_ring:
            del ring[0]
        statuses = state.statuses
        if status in statuses or len(statuses) < 8:
            statuses[status] = statuses.get(status, 0) + 1
        size = event.response_bytes
        size_class = int(4 * math.log2(size)) if size > 0 else -1_000
        if size_class in state.sizes or len(state.sizes) < 16:
            state.sizes[size_class] = state.sizes.get(size_class, 0) + 1
        user = event.user
        new = state.users.add(user)
        if state.seen >= p.distinct_exact_limit:  # a sketch now: its "new" is unreliable
            new = user != state.last
        state.last = user
        if new:
            state.seen += 1
            if state.seen >= p.min_distinct_users:
                self._judge(event, kind, source, state)

    def _judge(self, event: Event, kind: str, source: str, state: _Probing) -> None:
        p = self.params
        answers = sum(state.statuses.values())
        if kind == "login" and answers < p.min_failure_ratio * state.attempts:
            return
        differ = self._differ(state.statuses, answers) or self._bimodal(state.sizes, answers)
        # Alike answers teach nothing; only a single address asking about very many
        # accounts is worth a (low) finding, never a network full of real sign-ups.
        if not differ and (kind == "login" or state.many_ips or state.seen < p.probe_min_distinct):
            return
        if not state.reported:
            state.entity = source if state.many_ips else state.ip
        shown = ", ".join(
            f"{status} x{n}" for status, n in sorted(state.statuses.items(), key=_by_count)
        )
        how = f"answers differ ({differ})" if differ else "answers alike"
        seconds = event.ts - state.start
        self.episodes.report(
            state.entity,
            ts=event.ts,
            first_ts=state.start,
            evidence=() if state.reported else state.ring,
            summary=f"{state.entity} probed {state.seen} distinct usernames on {kind} "
            f"({event.method} {event.route}) in {seconds:.0f} s; {how}: {shown}",
            score=(0.85 if kind == "login" else 0.95) if differ else 0.6,
            subkind=f"{kind}_oracle" if differ else f"{kind}_probing",
            extra={"distinct_users": state.seen, "auth_kind": kind},
        )
        state.reported = True

    def _differ(self, statuses: dict[int, int], answers: int) -> str:
        """``"statuses"`` when the second most common status is a real share."""
        if len(statuses) < 2:
            return ""
        second = sorted(statuses.values())[-2]
        need = max(self.params.min_class_count, self.params.min_share * answers)
        return "statuses" if second >= need else ""

    def _bimodal(self, sizes: dict[int, int], answers: int) -> str:
        """``"sizes"`` when the size classes split in two, far apart, each a real share."""
        if len(sizes) < 2:
            return ""
        p = self.params
        gap = 4 * math.log2(p.size_gap)
        need = max(p.min_class_count, p.min_share * answers)
        below = 0
        ordered = sorted(sizes.items())
        for (low, n), (high, _) in pairwise(ordered):
            below += n
            if high - low > gap and need <= below <= answers - need:
                return "sizes"
        return ""

    def _network(self, ip: str) -> str:
        network = self._networks.get(ip)
        if network is None:
            network = _network_of(ip)
            if len(self._networks) >= 65_536:
                self._networks.clear()
            self._networks[ip] = network
        return network

    def advance(self, watermark: float) -> None:
        self.sources.expire(watermark)
        self.episodes.advance(watermark)

    def tracked(self) -> int:
        return len(self.sources) + len(self.episodes)


_NO_SUBMIT = frozenset({"HEAD", "OPTIONS"})


def _by_count(item: tuple[int, int]) -> tuple[int, int]:
    return -item[1], item[0]


def _network_of(ip: str) -> str:
    """The ``/24`` (IPv4) or ``/48`` (IPv6) of an address; the text itself if not one.

    >>> _network_of("203.0.113.9"), _network_of("2001:db8:1:2::5"), _network_of("x")
    ('203.0.113.0/24', '2001:db8:1::/48', 'x')
    """
    if ip.count(".") == 3 and ip.replace(".", "").isdigit():
        return ip[: ip.rindex(".")] + ".0/24"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if address.version == 6 and address.ipv4_mapped is not None:
        return _network_of(str(address.ipv4_mapped))
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
