"""What the authentication-attack detectors share: what a login attempt is, the login
window they count in per entity, the source networks, and account-takeover findings.

Four attacks on login endpoints, told apart by the shape of the failures: ``F`` failed
logins, ``U`` distinct accounts among them, ``F/U`` attempts per account, and the
failure ratio (failures / attempts, which keeps corporate NAT and mobile CGNAT out:
hundreds of users behind one address, a few of them mistyping, is a low ratio).

=====================  ===========================================  =================
detector               shape                                        window (default)
=====================  ===========================================  =================
brute_force            one account: many failures; one IP: many     5 min
                       failures on few accounts (``F/U >= 5``:
                       typos stop at 4)
credential_stuffing    many accounts, ``F/U <= 3``, ratio ~1, from  5 min
                       an IP, a /24 or /48, or everyone at once
                       (a surge over the failure baseline)
password_spraying      many accounts, ``F/U`` 1-2.5, paced slowly   30 min
                       (or revisiting accounts in rounds)
account takeover       a success right after one of the above, from  as the detector
                       a source of the burst: subkind
                       ``account_takeover``, critical
=====================  ===========================================  =================

Stuffing and spraying look alike in a log (passwords are not in it): both fail once or
twice per account over many accounts. Stuffing is fast and never comes back to an
account (each leaked pair tried once); spraying is paced to stay under lockout
thresholds and comes back in rounds (one password per round). So stuffing needs many
accounts within its short window, and spraying needs many accounts within its long
window *and* either a slow pace or revisits. A slow one-per-account run is spraying
only; a fast run over fresh accounts is stuffing only; a fast run in rounds, or a
moderate pace, is ambiguous and both may fire.

State is kept only for entities that failed: a success updates an entity already
tracked and creates none, so the memory goes to failing sources, not to every login.
The price: an address's ratio counts successes from its first failure on, so the
first failure of a busy address (a NAT) looks like a failing address's for a moment.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Annotated, Any, Self

from pydantic import Field, model_validator

from detectors.auth_routes import AuthRouteCache, AuthRoutes
from detectors.base import DetectorParams
from detectors.episodes import Episodes
from detectors.state import DistinctCounter
from gatewatch.finding import EntityType, Severity

if TYPE_CHECKING:
    from detectors.base import Detector
    from gatewatch.event import Event

NOT_LOGIN, FAILED, SUCCEEDED = 0, 1, 2

# Distinct values are exact up to _EXACT (the thresholds sit below), then a 1 KB sketch
# (3% error): only attacking sources and big NATs get that far.
_EXACT, _PRECISION = 256, 10  # exact up to 256: a spray's second round must match its first


class LoginParams(DetectorParams):
    """What every auth detector's config holds besides its thresholds."""

    failure_statuses: frozenset[int] = Field(
        default=frozenset({401, 403}),
        description="statuses of a failed login (some APIs answer 400 or 422)",
    )
    login_methods: frozenset[str] = Field(
        default=frozenset({"POST", "PUT", ""}),
        description="methods that submit credentials ('' when the log has none): a GET of "
        "the login page is not a login",
    )
    routes: AuthRoutes = AuthRoutes()
    window_s: Annotated[float, Field(gt=0)] = 300.0
    ttl_s: Annotated[float, Field(gt=0)] = 600.0
    max_entities: Annotated[int, Field(gt=0)] = 100_000
    evidence_ring: Annotated[int, Field(gt=0, le=1000)] = Field(
        default=64, description="recent failed request ids kept per entity and generation"
    )
    episode_quiet_s: Annotated[float, Field(gt=0)] = 600.0

    @model_validator(mode="after")
    def _ttl_covers_window(self) -> Self:
        if self.ttl_s < 2 * self.window_s:
            raise ValueError("ttl_s must be at least 2 * window_s: state would expire in-window")
        return self


class Logins:
    """Classifies an event as a failed login, a successful one, or neither.

    Every detector asks this of every event, so the route test is memoised per route
    (templates: few distinct) in ``is_login``, which a detector reads first:
    ``if not logins.is_login.get(event.route, True): return`` leaves most events
    after one dict lookup. The empty route is never memoised (the path decides).
    """

    __slots__ = ("_failures", "_methods", "_routes", "is_login")

    def __init__(self, params: LoginParams) -> None:
        self._routes = AuthRouteCache(params.routes)
        self.is_login: dict[str, bool] = {}
        self._failures = params.failure_statuses
        self._methods = params.login_methods

    def outcome(self, event: Event) -> int:
        """``FAILED``, ``SUCCEEDED`` or ``NOT_LOGIN``."""
        route = event.route or event.path
        login = self.is_login.get(route)
        if login is None:
            login = self._routes.kind(route) == "login"
            if len(self.is_login) >= 16_384:
                self.is_login.clear()
            if route:
                self.is_login[route] = login
        if not login or event.method not in self._methods:
            return NOT_LOGIN
        status = event.status
        if status in self._failures:
            return FAILED
        return SUCCEEDED if 200 <= status < 300 else NOT_LOGIN


class Recent:
    """Distinct values in the current and the previous generation of a ``LoginWindow``.

    A generation holds nothing, one value (most entities: one account, one address),
    or a ``DistinctCounter`` once a second value comes. A value seen in both counts
    once while the older generation is exact, at worst twice after that (an
    over-estimate of a count already past the thresholds). Past ``_EXACT`` the sketch's
    estimate (a sum over its registers) is refreshed only after the count may have
    grown by an eighth (until then: the last estimate plus the new values since, an
    upper bound), so a flood of new accounts costs a few estimates, not one per failure.

    >>> r = Recent()
    >>> for v in "abca":
    ...     r.add(v)
    >>> r.rotate(keep=True)
    >>> r.add("a"); r.add("d")
    >>> r.count, "b" in r, "e" in r
    (4, True, False)
    >>> for i in range(5000):
    ...     r.add(str(i))
    >>> 4700 < r.count < 5300
    True
    """

    __slots__ = ("_base", "_cur", "_known", "_overlap", "_pending", "_prev")

    def __init__(self) -> None:
        self._cur: str | DistinctCounter | None = None
        self._prev: str | DistinctCounter | None = None
        self._base = self._overlap = self._known = self._pending = 0

    def add(self, value: str) -> None:
        cur = self._cur
        if cur is None:
            self._cur = value
        elif isinstance(cur, str):
            if cur == value:
                return
            counter = self._cur = DistinctCounter(exact_limit=_EXACT, precision=_PRECISION)
            counter.add(cur)
            counter.add(value)
        elif not cur.add(value):
            return
        if _holds(self._prev, value):
            self._overlap += 1
        self._pending += 1

    @property
    def count(self) -> int:
        pending, known = self._pending, self._known
        if pending and (known < _EXACT or pending * 8 >= known):
            known = self._known = self._base + _size(self._cur) - self._overlap
            pending = self._pending = 0
        return known + pending

    def rotate(self, *, keep: bool) -> None:
        self._prev = self._cur if keep else None
        self._base = self._known = _size(self._prev)
        self._cur = None
        self._overlap = self._pending = 0

    def __contains__(self, value: str) -> bool:
        return _holds(self._cur, value) or _holds(self._prev, value)


def _ids(ring: str | list[str] | None) -> list[str] | tuple[str, ...]:
    if ring is None:
        return ()
    return (ring,) if isinstance(ring, str) else ring


def _holds(generation: str | DistinctCounter | None, value: str) -> bool:
    if isinstance(generation, str):
        return generation == value
    return generation is not None and value in generation


def _size(generation: str | DistinctCounter | None) -> int:
    if generation is None:
        return 0
    return 1 if isinstance(generation, str) else generation.count()


class LoginWindow:
    """One entity's logins over two aligned generations of ``span`` seconds (so between
    one and two spans of history): counts, distinct accounts and sources among the
    failures, and a bounded ring of recent failed request ids per generation.

    Counts, distinct values and evidence share one clock, which is why this is not a
    ``WindowCounter`` beside a ``DistinctCounter``. Parts are made on the first failure:
    an entity that only ever succeeds costs a few slots.

    >>> w = LoginWindow(span=60, ring=2)
    >>> for i, user in enumerate(["a", "b", "b"]):
    ...     w.failed(100.0 + i, f"r{i}", user, "")
    >>> w.succeeded(130.0)
    >>> w.failures, w.attempts, w.failed_users, w.evidence()
    (3, 4, 2, ['r1', 'r2'])
    >>> w.failed(150.0, "r3", "c", "")  # the next generation: the last one still counts
    >>> w.failures, w.failed_users, w.since()
    (4, 3, 100.0)
    >>> w.failed(400.0, "r4", "d", "")  # two generations later: only the new failure
    >>> w.failures, w.failed_users, w.evidence()
    (1, 1, ['r4'])
    """

    __slots__ = (
        "fails",
        "first",
        "gen",
        "prev_fails",
        "prev_first",
        "prev_ring",
        "prev_tries",
        "ring",
        "ring_size",
        "sources",
        "span",
        "tries",
        "users",
    )

    def __init__(self, *, span: float, ring: int) -> None:
        self.span, self.ring_size = span, ring
        self.gen = -1
        self.fails = self.tries = self.prev_fails = self.prev_tries = 0
        self.first = self.prev_first = 0.0
        self.ring: str | list[str] | None = None  # one id kept bare: most entities
        self.prev_ring: str | list[str] | None = None
        self.users: Recent | None = None
        self.sources: Recent | None = None

    def roll(self, ts: float) -> None:
        gen = int(ts // self.span)
        if gen <= self.gen:
            return  # same generation, or a late event: counted in the newest
        keep = gen == self.gen + 1
        self.prev_fails, self.prev_tries = (self.fails, self.tries) if keep else (0, 0)
        self.prev_ring = self.ring if keep else None
        self.prev_first = self.first
        self.fails = self.tries = 0
        self.ring = None
        if self.users is not None:
            self.users.rotate(keep=keep)
        if self.sources is not None:
            self.sources.rotate(keep=keep)
        self.gen = gen

    def failed(self, ts: float, request_id: str, user: str, source: str) -> None:
        """A failed login; ``user`` / ``source`` are counted when not empty, and the
        request id kept for evidence when not empty."""
        self.roll(ts)
        if not self.fails:
            self.first = ts
        self.fails += 1
        self.tries += 1
        if user:
            users = self.users or self._recent("users")
            users.add(user)
        if source:
            sources = self.sources or self._recent("sources")
            sources.add(source)
        if not request_id:
            return
        ring = self.ring
        if ring is None:
            self.ring = request_id
        elif isinstance(ring, str):
            self.ring = [ring, request_id][-self.ring_size :]
        else:
            if len(ring) >= self.ring_size:
                del ring[0]
            ring.append(request_id)

    def succeeded(self, ts: float) -> None:
        self.roll(ts)
        self.tries += 1

    @property
    def failures(self) -> int:
        return self.fails + self.prev_fails

    @property
    def attempts(self) -> int:
        return self.tries + self.prev_tries

    @property
    def failed_users(self) -> int:
        # Never more than the failures: a sketch's estimate can overshoot a little.
        return 0 if self.users is None else min(self.users.count, self.failures)

    @property
    def failed_sources(self) -> int:
        return 0 if self.sources is None else min(self.sources.count, self.failures)

    def ratio_at_least(self, ratio: float) -> bool:
        """Failures are at least ``ratio`` of the attempts."""
        return self.failures >= ratio * self.attempts

    def since(self) -> float:
        """Event time of the oldest failure still counted."""
        return self.prev_first if self.prev_fails else self.first

    def evidence(self) -> list[str]:
        return [*_ids(self.prev_ring), *_ids(self.ring)]

    def _recent(self, name: str) -> Recent:
        recent = Recent()
        setattr(self, name, recent)
        return recent


class Networks:
    """The network an address belongs to, as CIDR text: ``/24`` for IPv4 and ``/48``
    for IPv6 by default (one customer or one hosting allocation), memoised.

    >>> n = Networks()
    >>> n("203.0.113.9"), n("2001:0DB8:1:2::5"), n("2001:db8::1"), n("::ffff:198.51.100.7")
    ('203.0.113.0/24', '2001:db8:1::/48', '2001:db8::/48', '198.51.100.0/24')
    >>> n("unknown"), n("")
    ('', '')
    """

    __slots__ = ("_memo", "v4_prefix", "v6_prefix")

    def __init__(self, v4_prefix: int = 24, v6_prefix: int = 48) -> None:
        self.v4_prefix, self.v6_prefix = v4_prefix, v6_prefix
        self._memo: dict[str, str] = {}

    def __call__(self, ip: str) -> str:
        network = self._memo.get(ip)
        if network is None:
            network = self._network(ip)
            if len(self._memo) >= 65_536:
                self._memo.clear()
            self._memo[ip] = network
        return network

    def _network(self, ip: str) -> str:
        # The common cases without ipaddress (five times dearer): a dotted quad, and an
        # IPv6 address whose first three groups are written out.
        if self.v4_prefix == 24 and ip.count(".") == 3 and ip.replace(".", "").isdigit():
            return ip[: ip.rindex(".")] + ".0/24"
        groups = ip.split(":", 3)
        if self.v6_prefix == 48 and len(groups) == 4 and all(groups[:3]) and "." not in ip:
            try:
                a, b, c = (int(g, 16) for g in groups[:3])
            except ValueError:
                return ""
            return f"{a:x}:{b:x}:{c:x}::/48"
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return ""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        prefix = self.v4_prefix if address.version == 4 else self.v6_prefix
        return str(ipaddress.ip_network((address, prefix), strict=False))


class Takeovers:
    """Successful logins right after a failure burst the detector found suspicious: one
    critical finding (subkind ``account_takeover``) per account, or per source when
    the log names no account. Its evidence is the burst and the success."""

    __slots__ = ("_ips", "_users")

    def __init__(self, detector: Detector[Any], kind: str, *, quiet_s: float) -> None:
        self._users = Episodes(detector, kind, EntityType.USER, quiet_s=quiet_s)
        self._ips = Episodes(detector, kind, EntityType.IP, quiet_s=quiet_s)

    def report(
        self, event: Event, user: str, burst: LoginWindow, *, summary: str, score: float
    ) -> None:
        episodes, entity = (self._users, user) if user else (self._ips, event.client_ip)
        episodes.report(
            entity,
            ts=event.ts,
            first_ts=min(burst.since(), event.ts),
            evidence=[*burst.evidence(), event.request_id],
            summary=summary,
            score=score,
            severity=Severity.CRITICAL,
            subkind="account_takeover",
            # Lets alerting join the takeover to the alert on the attacking address.
            extra={"source_ip": event.client_ip},
        )

    @property
    def quiet_s(self) -> float:
        return self._users.quiet_s

    @quiet_s.setter
    def quiet_s(self, value: float) -> None:
        self._users.quiet_s = self._ips.quiet_s = value

    def advance(self, watermark: float) -> None:
        self._users.advance(watermark)
        self._ips.advance(watermark)

    def __len__(self) -> int:
        return len(self._users) + len(self._ips)


def ramp(value: float, threshold: float) -> float:
    """A score from how far past its threshold a count is: 2/3 at it, 1 at three times.

    >>> ramp(10, 10), ramp(30, 10)
    (0.667, 1.0)
    """
    return round(min(1.0, 0.5 + value / (6 * threshold)), 3)


def plural(count: int, noun: str) -> str:
    """``count noun``, with an s when it is not one.

    >>> plural(1, "account"), plural(3, "IP")
    ('1 account', '3 IPs')
    """
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def accounts(count: int) -> str:
    """How many accounts failed, for a summary: logs that carry no username say so.

    >>> accounts(3), accounts(0)
    ('3 accounts', 'accounts the log does not name')
    """
    return plural(count, "account") if count else "accounts the log does not name"
