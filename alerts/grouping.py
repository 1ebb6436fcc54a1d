"""From findings to alerts: risk per actor, one alert per actor, few notices.

A SOC abandons a tool that floods it, so the manager's job is mostly to stay quiet:

* **Risk, not findings, opens an alert.** A finding id counts once, for the points of
  its best version (detectors raise the score, sometimes the severity, as an episode's
  evidence grows), decaying from its latest version: versions never count twice, and
  an attack still going on keeps its full weight (``_credit``). An alert opens when the
  risk reaches ``risk_threshold``, or at once for a finding of ``alert_at_severity``
  (high by default) or worse. Until then the
  actor's findings are kept (bounded) so the alert, when it opens, shows what built
  the risk. Only news opens an alert: a finding new to the actor, or a version worth
  more than the ones before, never a mere re-emission.
* **One alert per actor**, ``(entity_type, entity)``: every finding of the actor updates
  the same alert, whose id stays stable. Campaign rule: an account takeover (subkind
  ``account_takeover`` about a user) whose ``extra["source_ip"]`` names the client
  address joins that address's open alert, because the takeover is the outcome of the
  attack that alert already describes. Without the address, with no open alert for
  it, or when the user's own open alert already holds that finding, it stays with the
  user.
  Attacker rule: any other finding about a user or key whose ``extra["source_ip"]``
  names one client address (a brute force on an account from a single address) is
  the address's: it joins (or opens) the address's alert, and its later versions
  follow it there even when they no longer name one address.
  Campaign rule: once ``campaign_after`` addresses opened alerts of one kind within
  ``campaign_window_s`` (a distributed attack: stuffing from a proxy pool), another
  address with a finding of that kind and no alert of its own joins the kind's
  campaign alert (actor ``global``, ``campaign:<kind>``) instead of opening one more.
* **Notices:** OPENED once; ESCALATED whenever severity rises or a new kind joins
  (always sent; restarts the cooldown); UPDATED when new findings joined and
  ``cooldown_s`` passed since the last notice; otherwise the alert changes silently
  (its version still increments). A re-emitted version of a known finding never
  notifies unless it escalates. CLOSED after ``close_after_s`` of event time with no
  finding (re-emitted versions count: the attack is still going on).
* **Suppressed** findings and findings below ``min_severity`` are counted and change
  nothing.

Everything moves on event time (a finding's ``last_ts``, which a detector advances with
each version, never before its ``detected_ts``), so replaying the same findings gives
the same alerts, ids and notices. State is bounded: an actor's pending findings die
with its decayed risk (``RiskBook``), and at most ``max_open`` alerts are open (past
that the least recently updated closes early).
"""

from __future__ import annotations

import ipaddress
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from alerts.model import (
    TAKEOVER,
    Alert,
    AlertState,
    Notice,
    NoticeReason,
    alert_id,
    rank,
    source_ip,
)
from alerts.policy import AlertPolicy
from alerts.risk import Actor, RiskBook, decay
from alerts.suppression import Suppressions
from gatewatch.finding import EntityType, Finding, Severity

MAX_IDS_PER_ACTOR = 10_000  # finding ids remembered per actor: alert counts exact up to it
CAMPAIGN = "campaign:"  # the entity of a campaign actor: campaign:<kind>
MAX_JOINED = 100_000  # findings joined to their attacking address, remembered for versions


@dataclass(slots=True)
class AlertStats:
    """What the manager did, for metrics and tests."""

    findings: int = 0
    ignored: int = 0  # below min_severity
    suppressed: int = 0
    alerts_opened: int = 0
    notices: Counter[NoticeReason] = field(default_factory=Counter)


@dataclass(slots=True)
class _Credit:
    """What one finding id counts for in its actor's risk (``value`` at event time
    ``at``; at most ``best``, the points of its best version), and to which of the
    actor's alerts (``generation``) it belongs."""

    severity: Severity
    best: float
    value: float
    at: float
    generation: int


@dataclass(slots=True)
class _Actor:
    """An actor's alert (open, or still collecting the findings that build its risk)
    and the finding ids already counted."""

    alert: Alert
    credits: dict[str, _Credit] = field(default_factory=dict)
    generation: int = 0  # +1 each time an alert closes
    is_open: bool = False
    notified_ts: float = float("-inf")


def network_of(address: str) -> str:
    """The network the detectors use by default for a distributed source: /24 for IPv4,
    /48 for IPv6.

    >>> network_of("198.51.100.7"), network_of("2001:db8::1")
    ('198.51.100.0/24', '2001:db8::/48')
    """
    ip = ipaddress.ip_address(address)
    return str(ipaddress.ip_network((ip, 24 if ip.version == 4 else 48), strict=False))


def event_time(finding: Finding) -> float:
    """When a finding version happened: detectors keep ``detected_ts`` across versions
    and move ``last_ts`` on with the attack."""
    return max(finding.detected_ts, finding.last_ts)


class AlertManager:
    """Findings in, notices out: risk per actor, one alert per actor (grouped: all its
    findings update the same alert, id stable), dedup and cooldown, suppression, close
    after quiet. Not thread-safe: one detection thread drives it; the notices it hands
    out carry snapshots other threads may keep."""

    def __init__(
        self,
        policy: AlertPolicy,
        notify: Callable[[Notice], None],
        *,
        suppressions: Suppressions | None = None,
        max_actors: int = 100_000,
        max_open: int = 10_000,
        on_change: Callable[[Alert], None] | None = None,
    ) -> None:
        self.policy = policy
        self.notify = notify
        # A silent update (no notice): the live alert, on this thread, to store it.
        self.on_change = on_change
        self.suppressions = suppressions
        self.max_open = max_open
        self.stats = AlertStats()
        self._risk = RiskBook(policy, max_actors=max_actors, on_forget=self._forget)
        self._actors: dict[Actor, _Actor] = {}
        self._open: dict[Actor, _Actor] = {}  # least recently updated first
        self._joined: dict[str, Actor] = {}  # finding id -> the actor it was joined to
        self._openings: dict[str, deque[float]] = {}  # kind -> when its last IP alerts opened
        self._watermark = float("-inf")
        self._next_close = float("inf")  # no open alert is due before this

    def __repr__(self) -> str:
        return f"AlertManager({self.policy!r})"

    # -- driven by the pipeline -----------------------------------------------------

    def on_finding(self, finding: Finding) -> None:
        self.stats.findings += 1
        policy = self.policy
        if rank(finding.severity) < rank(policy.min_severity):
            self.stats.ignored += 1
            return
        if self.suppressions is not None and self.suppressions.match(finding) is not None:
            self.stats.suppressed += 1
            return
        ts = event_time(finding)
        self.advance(ts)  # a finding after a quiet spell starts a new alert
        key = self._route(finding)
        actor = self._actors.get(key)
        if actor is None:
            actor = self._actors[key] = _Actor(Alert.empty(*key))
        added, news, new_here = self._credit(actor, finding, ts)
        risk = self._risk.add(key, added, ts) if added > 0 else self._risk.risk(key, ts)
        self._actors[key] = actor  # the risk book may have just forgotten it: faded, then back
        alert = actor.alert
        escalates = alert.absorb(finding, new=new_here, ts=ts, max_findings=policy.max_findings)
        alert.risk = risk
        if not actor.is_open:
            reached = risk >= policy.risk_threshold * (1 - 1e-9)  # float sums of decays
            at_once = rank(finding.severity) >= rank(policy.alert_at_severity)
            if news and (reached or at_once):
                self._open_alert(key, actor, finding, ts)
            return
        alert.version += 1
        del self._open[key]
        self._open[key] = actor
        if escalates:
            self._send(actor, NoticeReason.ESCALATED, finding, ts)
        elif new_here and ts - actor.notified_ts >= policy.cooldown_s:
            self._send(actor, NoticeReason.UPDATED, finding, ts)
        elif self.on_change is not None:
            self.on_change(alert)

    def advance(self, ts: float) -> None:
        """Event time has reached ``ts``: close alerts quiet for ``close_after_s``
        (CLOSED notices) and forget actors whose risk faded."""
        if ts <= self._watermark:
            return
        self._watermark = ts
        self._risk.expire(ts)
        if ts < self._next_close:
            return
        quiet = self.policy.close_after_s
        for key in [k for k, a in self._open.items() if ts - a.alert.updated_ts >= quiet]:
            self._close(key)
        updated = [actor.alert.updated_ts for actor in self._open.values()]
        self._next_close = min(updated) + quiet if updated else float("inf")

    def resume(self, alerts: list[Alert]) -> None:
        """Take back the alerts that were open when the process last stopped (read from
        the store): later findings of their actors update them instead of opening new
        ones, a first notice waits out the cooldown from their last update, and they
        close after ``close_after_s`` of quiet like any other."""
        for alert in sorted(alerts, key=lambda a: a.updated_ts):
            key: Actor = (alert.actor_type, alert.actor)
            if key in self._open:
                continue
            actor = _Actor(alert, is_open=True, notified_ts=alert.updated_ts)
            for finding in alert.findings.values():
                points = self.policy.points(finding)
                at = event_time(finding)
                actor.credits[finding.id] = _Credit(finding.severity, points, points, at, 0)
            self._actors[key] = self._open[key] = actor
            if alert.risk > 0:
                self._risk.add(key, alert.risk, alert.updated_ts)
            due = alert.updated_ts + self.policy.close_after_s
            self._next_close = min(self._next_close, due)

    def finish(self) -> None:
        """End of input: close every open alert."""
        for key in list(self._open):
            self._close(key)
        self._next_close = float("inf")

    # -- for the service, the CLI and tests ---------------------------------------------

    def open_alerts(self) -> list[Alert]:
        """Snapshots of the open alerts, least recently updated first."""
        return [actor.alert.snapshot() for actor in self._open.values()]

    def tracked(self) -> int:
        """How many actors the manager holds state for (bounded by ``max_actors`` plus
        the open alerts)."""
        return len(self._actors)

    # -- inside -------------------------------------------------------------------------

    def _route(self, finding: Finding) -> Actor:
        """The actor whose alert the finding joins (the campaign rules: module docs)."""
        own: Actor = (finding.entity_type, finding.entity)
        if finding.entity_type is EntityType.GLOBAL:
            return own
        joined = self._joined.get(finding.id)
        if joined is not None:
            return joined  # later versions follow the first, whatever they name
        if finding.entity_type is EntityType.IP:
            return self._campaign(finding, own)
        source = source_ip(finding)
        if source is None:
            return own
        campaign: Actor = (EntityType.IP, source)
        if finding.subkind == TAKEOVER:
            # The address's alert, or its network's (a spray from a /24 is one actor).
            campaign = next(
                (key for key in ((EntityType.IP, a) for a in (source, network_of(source)))
                 if key in self._open),
                own,
            )  # fmt: skip
            if finding.entity_type is not EntityType.USER or campaign == own:
                return own
            mine = self._actors.get(own)
            if mine is not None and mine.is_open:
                credit = mine.credits.get(finding.id)
                if credit is not None and credit.generation == mine.generation:
                    return own
            return campaign
        # One address attacking one account or key: the attacker is the actor.
        return self._join(finding, campaign)

    def _campaign(self, finding: Finding, own: Actor) -> Actor:
        """An address without an alert of its own joins its kind's campaign when
        ``campaign_after`` addresses opened alerts of that kind within the window."""
        policy = self.policy
        opened = self._openings.get(finding.kind)
        if (
            own in self._open
            or opened is None
            or len(opened) < policy.campaign_after
            or opened[0] < event_time(finding) - policy.campaign_window_s
        ):
            return own
        return self._join(finding, (EntityType.GLOBAL, f"{CAMPAIGN}{finding.kind}"))

    def _join(self, finding: Finding, actor: Actor) -> Actor:
        self._joined[finding.id] = actor
        while len(self._joined) > MAX_JOINED:
            del self._joined[next(iter(self._joined))]
        return actor

    def _credit(self, actor: _Actor, finding: Finding, ts: float) -> tuple[float, bool, bool]:
        """(risk points to add, whether the finding is news, whether its id is new to
        the actor's current alert).

        A version at or after the id's last one tops its share of the risk back up to
        its best points (what decayed since, plus any growth); a late version adds only
        growth. News is a new id or growth (a higher score or severity), never the
        top-up: a late re-emission must not reopen a closed alert.
        """
        points = self.policy.points(finding)
        credits = actor.credits
        credit = credits.pop(finding.id, None)
        if credit is None:
            added, news, new_here = points, True, True
            credit = _Credit(finding.severity, points, points, ts, actor.generation)
            while len(credits) >= MAX_IDS_PER_ACTOR:
                del credits[next(iter(credits))]
        else:
            growth = max(0.0, points - credit.best)
            rises = rank(finding.severity) > rank(credit.severity)
            news = growth > 0 or rises
            new_here = credit.generation != actor.generation
            credit.best += growth
            if ts >= credit.at:
                current = credit.value * decay(ts - credit.at, self.policy.half_life_s)
                added = max(0.0, credit.best - current)
                credit.value, credit.at = current + added, ts
            else:
                added = growth
                credit.value += growth * decay(credit.at - ts, self.policy.half_life_s)
            if rises:
                credit.severity = finding.severity
            credit.generation = actor.generation
        credits[finding.id] = credit  # most recently seen last: the oldest is dropped first
        return added, news, new_here

    def _open_alert(self, key: Actor, actor: _Actor, trigger: Finding, ts: float) -> None:
        while len(self._open) >= self.max_open:
            self._close(next(iter(self._open)))
        alert = actor.alert
        alert.id = alert_id(key[0], key[1], ts)
        alert.opened_ts = ts
        alert.version = 1
        alert.state = AlertState.OPEN
        actor.is_open = True
        self._open[key] = actor
        self._next_close = min(self._next_close, alert.updated_ts + self.policy.close_after_s)
        self.stats.alerts_opened += 1
        if key[0] is EntityType.IP and self.policy.campaign_after:
            opened = self._openings.get(trigger.kind)
            if opened is None:
                opened = self._openings[trigger.kind] = deque(maxlen=self.policy.campaign_after)
            opened.append(ts)
        self._send(actor, NoticeReason.OPENED, trigger, ts)

    def _close(self, key: Actor) -> None:
        actor = self._open.pop(key)
        alert = actor.alert
        alert.state = AlertState.CLOSED
        alert.version += 1
        self._emit(Notice(alert.snapshot(), NoticeReason.CLOSED, None))
        actor.alert = Alert.empty(*key)
        actor.is_open = False
        actor.generation += 1
        actor.notified_ts = float("-inf")
        if key not in self._risk:
            del self._actors[key]  # its risk faded while the alert was open

    def _forget(self, key: Actor) -> None:
        """The risk book dropped the actor: its pending state goes too (an open alert
        stays until it closes)."""
        actor = self._actors.get(key)
        if actor is not None and not actor.is_open:
            del self._actors[key]

    def _send(self, actor: _Actor, reason: NoticeReason, trigger: Finding, ts: float) -> None:
        actor.notified_ts = ts
        self._emit(Notice(actor.alert.snapshot(), reason, trigger))

    def _emit(self, notice: Notice) -> None:
        self.stats.notices[notice.reason] += 1
        self.notify(notice)
