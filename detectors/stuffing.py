"""Credential stuffing: leaked username/password pairs tried against many accounts,
about once each, nearly all failing. Seen per source IP, per network (``/24`` or
``/48``: a proxy pool rotating addresses), and globally (a botnet where every source
stays slow: failures over many accounts and many sources surge above the login failure
baseline while the failure ratio climbs). User agents are ignored: bots rotate them.

A corporate NAT or a mobile CGNAT range has many failing accounts too, but a low
failure ratio; a morning login rush raises failures and successes alike (the ratio
does not climb); an outage makes real users retry several times each (attempts per
account above ``max_failures_per_user``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Annotated, ClassVar

from pydantic import Field

from detectors.auth import (
    NOT_LOGIN,
    SUCCEEDED,
    LoginParams,
    Logins,
    LoginWindow,
    Networks,
    Takeovers,
    accounts,
    plural,
    ramp,
)
from detectors.base import Detector, DetectorParams
from detectors.episodes import Episodes
from detectors.state import EntityTable
from gatewatch.event import Event
from gatewatch.finding import EntityType

Count = Annotated[int, Field(ge=2)]


class CredentialStuffingParams(LoginParams):
    ip_min_users: Count = Field(default=30, description="accounts failing from one IP")
    ip_fast_min_users: Count = Field(
        default=15, description="... or this many within ip_fast_s (a spray is slower)"
    )
    ip_fast_s: Annotated[float, Field(gt=0)] = 180.0
    net_min_users: Count = 30
    net_min_sources: Count = Field(default=3, description="fewer: the per-IP finding's job")
    min_failure_ratio: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.8, description="stuffing succeeds for 0.1-2% of pairs; NATs fail ~10%"
    )
    max_failures_per_user: Annotated[float, Field(ge=1)] = Field(
        default=3.0, description="failures per account (more: guessing, or users retrying)"
    )
    global_min_users: Count = 50
    global_min_sources: Count = 5
    global_surge: Annotated[float, Field(gt=1)] = Field(
        default=2.0, description="failure rate against its baseline"
    )
    global_min_ratio_rise: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.05, description="failure ratio above its baseline (a rush: none)"
    )
    global_evidence_hold_s: Annotated[float, Field(ge=0)] = Field(
        default=60.0,
        description="a failure joins the global evidence unless its address "
        "logs in within this time (a person who mistyped)",
    )
    global_burst_s: Annotated[float, Field(ge=10, le=600)] = Field(
        default=120.0, description="a short burst is judged over this span too"
    )
    global_burst_surge: Annotated[float, Field(gt=1)] = Field(
        default=2.5, description="failure rate over the burst span against its baseline"
    )
    global_burst_ratio_rise: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.1, description="failure ratio over the burst span above its baseline"
    )
    global_warmup_s: Annotated[float, Field(ge=0)] = Field(
        default=600.0, description="baseline learnt before global findings"
    )
    baseline_alpha: Annotated[float, Field(gt=0, le=1)] = 0.2
    takeover_min_users: Count = Field(
        default=3, description="accounts the source failed on before a success during a surge"
    )
    network_v4_prefix: Annotated[int, Field(ge=8, le=32)] = 24
    network_v6_prefix: Annotated[int, Field(ge=16, le=128)] = 48


class CredentialStuffing(Detector[CredentialStuffingParams]):
    name: ClassVar[str] = "credential_stuffing"
    kinds: ClassVar[tuple[str, ...]] = ("credential_stuffing",)
    Params: ClassVar[type[DetectorParams]] = CredentialStuffingParams

    def __init__(self, params: CredentialStuffingParams, *, label: str | None = None) -> None:
        super().__init__(params, label=label)
        quiet, p = params.episode_quiet_s, params
        self.logins = Logins(params)
        self.login_routes = self.logins.is_login
        self.networks = Networks(p.network_v4_prefix, p.network_v6_prefix)
        self.ips: EntityTable[str, LoginWindow] = EntityTable(
            self._window, ttl_s=p.ttl_s, max_entities=p.max_entities
        )
        self.nets: EntityTable[str, LoginWindow] = EntityTable(
            self._window, ttl_s=p.ttl_s, max_entities=p.max_entities
        )
        self.everyone = self._window()
        self.burst = RecentLogins(params.global_burst_s)
        self.by_source = Episodes(self, "credential_stuffing", EntityType.IP, quiet_s=quiet)
        self.by_global = Episodes(self, "credential_stuffing", EntityType.GLOBAL, quiet_s=quiet)
        self.takeovers = Takeovers(self, "credential_stuffing", quiet_s=quiet)
        self.baseline = FailureBaseline()
        self.held = HeldFailures(p.global_evidence_hold_s, max_sources=p.max_entities)

    def _window(self) -> LoginWindow:
        return LoginWindow(span=self.params.window_s, ring=self.params.evidence_ring)

    def observe(self, event: Event) -> None:
        if not self.login_routes.get(event.route, True):
            return  # most events: a route known not to be a login
        outcome = self.logins.outcome(event)
        if outcome == NOT_LOGIN or self.allow.allows(event):
            return
        ts, ip, user, rid = event.ts, event.client_ip, event.user.lower(), event.request_id
        self.baseline.learn(self.everyone, ts, self.params.baseline_alpha)
        net = self.networks(ip) if ip else ""
        if outcome == SUCCEEDED:
            self._succeeded(event, user, net)
            return
        p, w, claimed = self.params, None, False
        if ip:
            w = self.ips.get(ip, ts)
            w.failed(ts, rid, user, "")
            if self._ip_stuffed(w, ts):
                claimed = True
                self._report(ip, w, ts, rid, who=f"{ip} failed", th=p.ip_min_users)
        # A network counts its addresses that mostly fail: a busy NAT in the same /24
        # would otherwise hide the rotating attacker behind its successes.
        if net and (w is None or w.ratio_at_least(p.min_failure_ratio)):
            nw = self.nets.get(net, ts)
            nw.failed(ts, rid, user, ip)
            if self._net_stuffed(nw):
                claimed = True
                who = f"{net}: {plural(nw.failed_sources, 'IP')} failed"
                self._report(net, nw, ts, rid, who=who, th=p.net_min_users)
        if not claimed:  # the global surge is what no source explains
            # Its evidence leaves out busy shared addresses (NATs: mostly successes).
            bot_like = w is None or w.ratio_at_least(p.min_failure_ratio)
            self.everyone.failed(ts, rid if bot_like else "", user, ip)
            self.burst.add(ts, failed=True)
            if self._global_surge(ts):
                self._report_global(ts, ip, rid if bot_like else "")

    def _report(
        self, entity: str, w: LoginWindow, ts: float, rid: str, *, who: str, th: int
    ) -> None:
        self.by_source.report(
            entity,
            ts=ts,
            first_ts=w.since(),
            evidence=[rid] if entity in self.by_source else w.evidence(),
            summary=f"{who} {w.failures} logins for {accounts(w.failed_users)} in"
            f" {ts - w.since():.0f} s ({w.attempts - w.failures} successes)",
            score=ramp(w.failed_users, th),
        )

    def _report_global(self, ts: float, ip: str, rid: str) -> None:
        g, base = self.everyone, self.baseline
        base.flagged_gen = g.gen
        opened = "global" in self.by_global
        if opened and rid:
            self.held.hold(ip, ts, rid)
        self.by_global.report(
            "global",
            ts=ts,
            first_ts=g.since(),
            evidence=() if opened else g.evidence(),
            summary=f"{g.failures} failed logins for {accounts(g.failed_users)}"
            f" from {plural(g.failed_sources, 'IP')} in {ts - g.since():.0f} s:"
            f" {base.current(g, ts) * 60:.1f}/min against a baseline of {base.rate * 60:.1f}/min,"
            f" {g.failures / g.attempts:.0%} of logins failing (baseline {base.ratio:.0%});"
            f" {self.burst.totals(ts)[0]} failures in the last {self.burst.span_s:.0f} s",
            score=ramp(g.failed_users, self.params.global_min_users),
        )

    def _succeeded(self, event: Event, user: str, net: str) -> None:
        ip, ts, p = event.client_ip, event.ts, self.params
        self.held.release(ip)
        iw = self.ips.peek(ip) if ip else None
        nw = self.nets.peek(net) if net else None
        burst, where = None, ip
        if iw is not None and self._ip_stuffed(iw, ts):
            burst = iw
        elif nw is not None and iw is not None and self._net_stuffed(nw):
            # Only an address that took part, and mostly failed: a NAT sharing the
            # network logs its people in all day.
            if iw.ratio_at_least(p.min_failure_ratio):
                burst, where = nw, net
        elif (
            iw is not None
            and "global" in self.by_global
            and self._stuffed(iw, p.takeover_min_users)
        ):
            burst = iw
        if burst is not None:
            summary = (
                f"'{user}' logged in from {ip} right after {burst.failures} failed logins for"
                f" {accounts(burst.failed_users)} from {where} in"
                f" {ts - burst.since():.0f} s"
            )
            self.takeovers.report(event, user, burst, summary=summary, score=1.0)
        if iw is not None:
            iw.succeeded(ts)
        if nw is not None and (iw is None or iw.ratio_at_least(p.min_failure_ratio)):
            nw.succeeded(ts)
        self.everyone.succeeded(ts)
        self.burst.add(ts, failed=False)

    def _stuffed(self, w: LoginWindow, min_users: int) -> bool:
        p = self.params
        if w.failures < min_users or not w.ratio_at_least(p.min_failure_ratio):
            return False  # the cheap tests first: a sketch's count is not
        users = w.failed_users
        return users >= min_users and w.failures <= p.max_failures_per_user * users

    def _ip_stuffed(self, w: LoginWindow, ts: float) -> bool:
        """Many accounts failing from one address, or fewer but fast."""
        p = self.params
        if ts - w.since() <= p.ip_fast_s:
            return self._stuffed(w, min(p.ip_fast_min_users, p.ip_min_users))
        return self._stuffed(w, p.ip_min_users)

    def _net_stuffed(self, w: LoginWindow) -> bool:
        p = self.params
        return w.failed_sources >= p.net_min_sources and self._stuffed(w, p.net_min_users)

    def _global_surge(self, ts: float) -> bool:
        """Failures no source explains far above their baseline, over the window or
        over a short burst, with the failure ratio climbing (a rush raises both)."""
        g, p, base = self.everyone, self.params, self.baseline
        if not base.warm(ts, p.global_warmup_s):
            return False
        surged = base.current(g, ts) >= p.global_surge * base.rate and g.ratio_at_least(
            base.ratio + p.global_min_ratio_rise
        )
        if not surged:
            burst = self.burst
            fails, tries = burst.totals(ts)
            surged = (
                fails >= p.global_burst_surge * base.rate * burst.span_s
                and fails >= (base.ratio + p.global_burst_ratio_rise) * tries
            )
            if not surged:
                return False
        users = g.failed_users
        return (
            users >= p.global_min_users
            and g.failures <= p.max_failures_per_user * users
            and g.failed_sources >= p.global_min_sources
        )

    def advance(self, watermark: float) -> None:
        self.ips.expire(watermark)
        self.nets.expire(watermark)
        self.by_source.advance(watermark)
        for ts, rid in self.held.due(watermark):
            self.by_global.add_evidence("global", ts, rid)
        self.by_global.advance(watermark)
        self.takeovers.advance(watermark)

    def reconfigure(self, params: CredentialStuffingParams) -> None:
        super().reconfigure(params)
        self.logins = Logins(params)
        self.login_routes = self.logins.is_login
        self.networks = Networks(params.network_v4_prefix, params.network_v6_prefix)
        if params.global_burst_s != self.burst.span_s:
            self.burst = RecentLogins(params.global_burst_s)
        for table in (self.ips, self.nets):
            table.ttl_s, table.max_entities = params.ttl_s, params.max_entities
        for episodes in (self.by_source, self.by_global, self.takeovers):
            episodes.quiet_s = params.episode_quiet_s

    def tracked(self) -> int:
        episodes = len(self.by_source) + len(self.by_global) + len(self.takeovers)
        return len(self.ips) + len(self.nets) + episodes + len(self.held)


class FailureBaseline:
    """The login failure rate (per second) and ratio of ordinary times: a moving
    average over the generations of the global window (which holds the failures no
    source finding claimed); flagged generations are skipped and each observation is
    clipped (a rise of half the rate, two points of ratio, per generation at most), so
    an attack does not raise the bar it is measured against while a real trend is
    still followed within a few generations."""

    __slots__ = ("flagged_gen", "rate", "ratio", "start")

    def __init__(self) -> None:
        self.start = -1.0
        self.rate = self.ratio = 0.0
        self.flagged_gen = -1

    def warm(self, ts: float, warmup_s: float) -> bool:
        return self.start >= 0 and ts - self.start >= warmup_s and self.rate >= 0

    def learn(self, g: LoginWindow, ts: float, alpha: float) -> None:
        """Before ``g`` counts an event at ``ts``: fold a completed generation in."""
        if self.start < 0:
            self.start, self.rate = ts, -1.0  # -1: nothing learnt yet
        if int(ts // g.span) <= g.gen or g.gen < 0:
            return
        if g.tries and g.gen != self.flagged_gen:
            rate = g.fails / min(g.span, (g.gen + 1) * g.span - self.start)
            ratio = g.fails / g.tries
            if self.rate < 0:
                self.rate, self.ratio = rate, ratio
            else:  # clipped: an attack building up below the bar cannot drag it up fast
                self.rate += alpha * (min(rate, 1.5 * self.rate + 1 / g.span) - self.rate)
                self.ratio += alpha * (min(ratio, self.ratio + 0.02) - self.ratio)
        g.roll(ts)

    @staticmethod
    def current(g: LoginWindow, ts: float) -> float:
        """Failures per second over the time ``g`` covers."""
        covered = ts - g.gen * g.span + (g.span if g.prev_tries else 0.0)
        return g.failures / max(covered, 1.0)


class RecentLogins:
    """Login attempts and failures over the last ``span_s`` of event time, in twelve
    buckets: a burst of a minute or two that a five-minute window dilutes.

    >>> recent = RecentLogins(120.0)
    >>> for t in range(100): recent.add(float(t), failed=t % 4 == 0)
    >>> recent.totals(99.0), recent.totals(500.0)
    ((25, 100), (0, 0))
    """

    __slots__ = ("_at", "_fails", "_tries", "bucket_s", "span_s")
    _BUCKETS = 12

    def __init__(self, span_s: float) -> None:
        self.span_s, self.bucket_s = span_s, span_s / self._BUCKETS
        self._fails, self._tries = [0] * self._BUCKETS, [0] * self._BUCKETS
        self._at = [-1] * self._BUCKETS  # the bucket number each slot holds

    def add(self, ts: float, *, failed: bool) -> None:
        n = int(ts // self.bucket_s)
        slot = n % self._BUCKETS
        if self._at[slot] != n:
            self._at[slot], self._fails[slot], self._tries[slot] = n, 0, 0
        self._tries[slot] += 1
        self._fails[slot] += failed

    def totals(self, ts: float) -> tuple[int, int]:
        """(failures, attempts) in the buckets of the last span."""
        oldest = int(ts // self.bucket_s) - self._BUCKETS + 1
        fails = tries = 0
        for at, f, t in zip(self._at, self._fails, self._tries, strict=True):
            if at >= oldest:
                fails, tries = fails + f, tries + t
        return fails, tries


class HeldFailures:
    """Failures held back from the global finding's evidence for ``hold_s``: during a
    surge, customers still mistype, and log in seconds later. A success from the
    address drops what it held; what is still held after ``hold_s`` is evidence.

    >>> held = HeldFailures(60.0, max_sources=10)
    >>> held.hold("192.0.2.1", 0.0, "typo"); held.hold("192.0.2.2", 1.0, "bot")
    >>> held.release("192.0.2.1")
    >>> list(held.due(30.0)), list(held.due(61.0))
    ([], [(1.0, 'bot')])
    """

    __slots__ = ("_held", "hold_s", "max_sources")

    def __init__(self, hold_s: float, *, max_sources: int) -> None:
        self.hold_s, self.max_sources = hold_s, max_sources
        self._held: OrderedDict[str, list[tuple[float, str]]] = OrderedDict()

    def hold(self, ip: str, ts: float, rid: str) -> None:
        held = self._held.get(ip)
        if held is None:
            held = self._held[ip] = []
        if len(held) < 64:
            held.append((ts, rid))

    def release(self, ip: str) -> None:
        self._held.pop(ip, None)

    def due(self, watermark: float) -> Iterator[tuple[float, str]]:
        """What was held long enough (oldest address first), or past the size cap."""
        held = self._held
        while held:
            ip, failures = next(iter(held.items()))
            if failures[0][0] > watermark - self.hold_s and len(held) <= self.max_sources:
                return
            del held[ip]
            yield from failures

    def __len__(self) -> int:
        return len(self._held)
