"""Password spraying: a few common passwords tried once each against many accounts,
paced to stay under lockout thresholds, from one IP or one network (``/24``, ``/48``).

Per source, over a long window: many accounts with failures, one to
``max_attempts_per_account`` failures each, nearly all logins failing, and either a
slow pace (``max_accounts_per_minute``: a fast run over fresh accounts is stuffing's
shape) or accounts revisited in rounds (``min_rounds`` failures per account: the next
password). How this separates from credential stuffing: ``detectors.auth``. A
corporate NAT fails on many accounts over half an hour too, but at a low ratio.
"""

from __future__ import annotations

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
    plural,
    ramp,
)
from detectors.base import Detector, DetectorParams
from detectors.episodes import Episodes
from detectors.state import EntityTable
from gatewatch.event import Event
from gatewatch.finding import EntityType


class PasswordSprayingParams(LoginParams):
    window_s: Annotated[float, Field(gt=0)] = Field(
        default=1800.0, description="sprayers wait out lockout windows between rounds"
    )
    ttl_s: Annotated[float, Field(gt=0)] = 3600.0
    min_accounts: Annotated[int, Field(ge=2)] = 20
    max_attempts_per_account: Annotated[float, Field(ge=1)] = Field(
        default=2.5, description="failures per account: one or two passwords; more is guessing"
    )
    min_failure_ratio: Annotated[float, Field(ge=0, le=1)] = 0.8
    max_accounts_per_minute: Annotated[float, Field(gt=0)] = Field(
        default=5.0, description="faster over fresh accounts is stuffing's shape"
    )
    min_rounds: Annotated[float, Field(ge=1)] = Field(
        default=1.5, description="failures per account showing accounts revisited in rounds"
    )
    net_min_sources: Annotated[int, Field(ge=2)] = 2
    network_v4_prefix: Annotated[int, Field(ge=8, le=32)] = 24
    network_v6_prefix: Annotated[int, Field(ge=16, le=128)] = 48


class PasswordSpraying(Detector[PasswordSprayingParams]):
    name: ClassVar[str] = "password_spraying"
    kinds: ClassVar[tuple[str, ...]] = ("password_spraying",)
    Params: ClassVar[type[DetectorParams]] = PasswordSprayingParams

    def __init__(self, params: PasswordSprayingParams, *, label: str | None = None) -> None:
        super().__init__(params, label=label)
        p = params
        self.logins = Logins(params)
        self.login_routes = self.logins.is_login
        self.networks = Networks(p.network_v4_prefix, p.network_v6_prefix)
        self.ips: EntityTable[str, LoginWindow] = EntityTable(
            self._window, ttl_s=p.ttl_s, max_entities=p.max_entities
        )
        self.nets: EntityTable[str, LoginWindow] = EntityTable(
            self._window, ttl_s=p.ttl_s, max_entities=p.max_entities
        )
        quiet = p.episode_quiet_s
        self.by_source = Episodes(self, "password_spraying", EntityType.IP, quiet_s=quiet)
        self.takeovers = Takeovers(self, "password_spraying", quiet_s=quiet)

    def _window(self) -> LoginWindow:
        return LoginWindow(span=self.params.window_s, ring=self.params.evidence_ring)

    def observe(self, event: Event) -> None:
        if not self.login_routes.get(event.route, True):
            return  # most events: a route known not to be a login
        outcome = self.logins.outcome(event)
        if outcome == NOT_LOGIN or self.allow.allows(event):
            return
        ts, ip, user = event.ts, event.client_ip, event.user.lower()
        net, rid, p = self.networks(ip) if ip else "", event.request_id, self.params
        if outcome == SUCCEEDED:
            self._succeeded(event, user, self.ips.peek(ip), self.nets.peek(net), net)
            return
        iw = None
        if ip:
            iw = self.ips.get(ip, ts)
            iw.failed(ts, rid, user, "")
            if self._sprayed(iw, ts):
                self._report(ip, iw, ts, rid, ip)
        # A network counts its addresses that mostly fail: a busy NAT in the same /24
        # would otherwise hide the rotating sprayer behind its successes.
        if net and (iw is None or iw.ratio_at_least(p.min_failure_ratio)):
            nw = self.nets.get(net, ts)
            nw.failed(ts, rid, user, ip)
            if self._sprayed(nw, ts) and nw.failed_sources >= p.net_min_sources:
                self._report(net, nw, ts, rid, f"{net} ({nw.failed_sources} IPs)")

    def _report(self, entity: str, w: LoginWindow, ts: float, rid: str, who: str) -> None:
        minutes = max(ts - w.since(), 60.0) / 60
        self.by_source.report(
            entity,
            ts=ts,
            first_ts=w.since(),
            evidence=[rid] if entity in self.by_source else w.evidence(),
            summary=f"{who} failed {w.failures} logins over {plural(w.failed_users, 'account')}"
            f" in {minutes:.0f} min ({w.failures / w.failed_users:.1f} per account,"
            f" {w.failed_users / minutes:.1f} accounts/min, {w.attempts - w.failures} successes)",
            score=ramp(w.failed_users, self.params.min_accounts),
        )

    def _succeeded(
        self, event: Event, user: str, iw: LoginWindow | None, nw: LoginWindow | None, net: str
    ) -> None:
        ts, ip, p = event.ts, event.client_ip, self.params
        burst, where = None, ip
        if iw is not None and self._sprayed(iw, ts):
            burst = iw
        # From a spraying network, only an address that took part and mostly failed:
        # a NAT sharing the network logs its people in all day.
        elif nw and iw and iw.ratio_at_least(p.min_failure_ratio) and self._sprayed(nw, ts):
            burst, where = (nw, net) if nw.failed_sources >= p.net_min_sources else (None, "")
        if burst is not None:
            summary = (
                f"'{user}' logged in from {ip} during a spray from {where} over"
                f" {plural(burst.failed_users, 'account')} ({burst.failures} failures)"
            )
            self.takeovers.report(event, user, burst, summary=summary, score=1.0)
        if iw is not None:
            iw.succeeded(ts)
        if nw is not None and (iw is None or iw.ratio_at_least(p.min_failure_ratio)):
            nw.succeeded(ts)

    def _sprayed(self, w: LoginWindow, ts: float) -> bool:
        p, fails = self.params, w.failures
        if fails < p.min_accounts or not w.ratio_at_least(p.min_failure_ratio):
            return False  # the cheap tests first: a sketch's count is not
        users = w.failed_users
        if users < p.min_accounts or fails > p.max_attempts_per_account * users:
            return False
        per_minute = users * 60 / max(ts - w.since(), 60.0)
        return per_minute <= p.max_accounts_per_minute or fails >= p.min_rounds * users

    def advance(self, watermark: float) -> None:
        self.ips.expire(watermark)
        self.nets.expire(watermark)
        self.by_source.advance(watermark)
        self.takeovers.advance(watermark)

    def reconfigure(self, params: PasswordSprayingParams) -> None:
        super().reconfigure(params)
        self.logins = Logins(params)
        self.login_routes = self.logins.is_login
        self.networks = Networks(params.network_v4_prefix, params.network_v6_prefix)
        for table in (self.ips, self.nets):
            table.ttl_s, table.max_entities = params.ttl_s, params.max_entities
        self.by_source.quiet_s = self.takeovers.quiet_s = params.episode_quiet_s

    def tracked(self) -> int:
        episodes = len(self.by_source) + len(self.takeovers)
        return len(self.ips) + len(self.nets) + episodes
