"""Brute force: many failed logins for one account, or from one IP concentrating on a
few accounts, within a short window; and a success right after (account takeover).

Per account, a user mistyping two to four times stays far below the threshold, and a
busy shared account whose failures are a minority is not flagged. Per IP, failures
must also be most of the IP's logins and several per account: a corporate NAT
(hundreds of users, a few mistyping) has a low ratio, and one try each over many
accounts is stuffing or spraying (``detectors.auth``), not guessing.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field

from detectors.auth import (
    NOT_LOGIN,
    SUCCEEDED,
    LoginParams,
    Logins,
    LoginWindow,
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


class BruteForceParams(LoginParams):
    user_min_failures: Annotated[int, Field(ge=2)] = Field(
        default=10, description="failed logins for one account in the window (typos: 2-4)"
    )
    ip_min_failures: Annotated[int, Field(ge=2)] = 20
    user_min_failure_ratio: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.5, description="failures / logins of the account (a busy shared account)"
    )
    ip_min_failure_ratio: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.8, description="failures / logins of the IP (a NAT: 0.1-0.5 in bursts)"
    )
    ip_min_failures_per_user: Annotated[float, Field(ge=1)] = Field(
        default=5.0,
        description="per failed account, from one IP: typos stop at 4; fewer is stuffing or "
        "spraying",
    )


def _attacker(w: LoginWindow, ip: str) -> dict[str, Any]:
    """Who is attacking the account: one address (alerting then joins the finding to
    that address's alert) or how many."""
    sources = w.failed_sources
    return {"source_ip": ip} if sources == 1 else {"sources": sources}


class BruteForce(Detector[BruteForceParams]):
    name: ClassVar[str] = "brute_force"
    kinds: ClassVar[tuple[str, ...]] = ("brute_force",)
    Params: ClassVar[type[DetectorParams]] = BruteForceParams

    def __init__(self, params: BruteForceParams, *, label: str | None = None) -> None:
        super().__init__(params, label=label)
        quiet, p = params.episode_quiet_s, params
        self.logins = Logins(params)
        self.login_routes = self.logins.is_login
        self.users: EntityTable[str, LoginWindow] = EntityTable(
            self._window, ttl_s=p.ttl_s, max_entities=p.max_entities
        )
        self.ips: EntityTable[str, LoginWindow] = EntityTable(
            self._window, ttl_s=p.ttl_s, max_entities=p.max_entities
        )
        self.by_user = Episodes(self, "brute_force", EntityType.USER, quiet_s=quiet)
        self.by_ip = Episodes(self, "brute_force", EntityType.IP, quiet_s=quiet)
        self.takeovers = Takeovers(self, "brute_force", quiet_s=quiet)

    def _window(self) -> LoginWindow:
        return LoginWindow(span=self.params.window_s, ring=self.params.evidence_ring)

    def observe(self, event: Event) -> None:
        if not self.login_routes.get(event.route, True):
            return  # most events: a route known not to be a login
        outcome = self.logins.outcome(event)
        if outcome == NOT_LOGIN or self.allow.allows(event):
            return
        ts, ip, user, rid = event.ts, event.client_ip, event.user.lower(), event.request_id
        if outcome == SUCCEEDED:
            self._succeeded(event, user)
            return
        if user:
            w = self.users.get(user, ts)
            w.failed(ts, rid, "", ip)
            if self._user_attacked(w):
                self.by_user.report(
                    user,
                    ts=ts,
                    first_ts=w.since(),
                    evidence=[rid] if user in self.by_user else w.evidence(),
                    summary=f"'{user}' failed {w.failures} logins in {ts - w.since():.0f} s"
                    f" from {plural(w.failed_sources, 'IP')} ({w.attempts - w.failures} successes)",
                    score=ramp(w.failures, self.params.user_min_failures),
                    extra=_attacker(w, ip),
                )
        if ip:
            w = self.ips.get(ip, ts)
            w.failed(ts, rid, user, "")
            if self._ip_attacked(w):
                self.by_ip.report(
                    ip,
                    ts=ts,
                    first_ts=w.since(),
                    evidence=[rid] if ip in self.by_ip else w.evidence(),
                    summary=f"{ip} failed {w.failures} logins for"
                    f" {accounts(w.failed_users)} in {ts - w.since():.0f} s"
                    f" ({w.attempts - w.failures} successes)",
                    score=ramp(w.failures, self.params.ip_min_failures),
                )

    def _succeeded(self, event: Event, user: str) -> None:
        ip, ts = event.client_ip, event.ts
        uw = self.users.peek(user) if user else None
        iw = self.ips.peek(ip) if ip else None
        # The success must come from a source of the burst: the owner logging in from
        # home while someone hammers the account elsewhere is no takeover.
        if (
            uw is not None
            and self._user_attacked(uw)
            and (
                (uw.sources is not None and ip in uw.sources)
                or (iw and iw.users and user in iw.users)
            )
        ):
            summary = (
                f"'{user}' logged in from {ip} right after {uw.failures} failed logins"
                f" for it in {ts - uw.since():.0f} s"
            )
            self.takeovers.report(event, user, uw, summary=summary, score=1.0)
        elif (
            iw is not None
            and self._ip_attacked(iw)
            and (not user or (iw.users and user in iw.users))
        ):
            summary = (
                f"{ip} logged in as '{user}' right after {iw.failures} failed logins for"
                f" {accounts(iw.failed_users)} in {ts - iw.since():.0f} s"
            )
            self.takeovers.report(event, user, iw, summary=summary, score=1.0)
        if uw is not None:
            uw.succeeded(ts)
        if iw is not None:
            iw.succeeded(ts)

    def _user_attacked(self, w: LoginWindow) -> bool:
        p = self.params
        return w.failures >= p.user_min_failures and w.ratio_at_least(p.user_min_failure_ratio)

    def _ip_attacked(self, w: LoginWindow) -> bool:
        p = self.params
        return (
            w.failures >= p.ip_min_failures
            and w.ratio_at_least(p.ip_min_failure_ratio)
            and w.failures >= p.ip_min_failures_per_user * max(w.failed_users, 1)
        )

    def advance(self, watermark: float) -> None:
        self.users.expire(watermark)
        self.ips.expire(watermark)
        self.by_user.advance(watermark)
        self.by_ip.advance(watermark)
        self.takeovers.advance(watermark)

    def reconfigure(self, params: BruteForceParams) -> None:
        super().reconfigure(params)
        self.logins = Logins(params)
        self.login_routes = self.logins.is_login
        for table in (self.users, self.ips):
            table.ttl_s, table.max_entities = params.ttl_s, params.max_entities
        self.by_user.quiet_s = self.by_ip.quiet_s = params.episode_quiet_s
        self.takeovers.quiet_s = params.episode_quiet_s

    def tracked(self) -> int:
        episodes = len(self.by_user) + len(self.by_ip) + len(self.takeovers)
        return len(self.users) + len(self.ips) + episodes
