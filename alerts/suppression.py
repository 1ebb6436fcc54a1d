"""Suppressions: a person decided that findings like these need no alert for a while.

A rule names what it silences (kind, entity, route, client network: every criterion
given must match), why, who, and until when: suppression without an expiry and a
reason is how a SOC goes blind. Suppressed findings are still stored; they add no risk
and raise no alert. Expiry is wall-clock time (a person's "for 12 hours"), read from
an injected clock so tests control it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from alerts.model import source_ip
from gatewatch.finding import KINDS, Finding

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=256)
def _network(text: str) -> Network | None:
    """A rule's CIDR, parsed once; None for a stored value that does not parse (such a
    rule then never matches on it rather than failing the pipeline)."""
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _inside(entity: str, network: Network) -> bool:
    """Whether an IP entity (an address, or a network such as ``203.0.113.0/24``) lies
    inside ``network``; False for users, keys and anything else."""
    try:
        found = ipaddress.ip_network(entity, strict=False)
    except ValueError:
        return False
    if found.version != network.version:
        return False
    return found.subnet_of(network)  # type: ignore[arg-type]  # same version, checked


@dataclass(frozen=True, slots=True)
class Suppression:
    """One rule. Times are wall-clock epoch seconds. Build new rules with ``create``
    (it validates); rows read back from the store are trusted as stored."""

    id: str
    reason: str
    created_by: str
    created_ts: float
    expires_ts: float
    kind: str = ""
    entity: str = ""
    route: str = ""
    cidr: str = ""

    @classmethod
    def create(
        cls,
        *,
        reason: str,
        created_by: str,
        duration_s: float,
        now: float,
        kind: str = "",
        entity: str = "",
        route: str = "",
        cidr: str = "",
    ) -> Suppression:
        """A validated rule that expires ``duration_s`` after ``now``.

        >>> rule = Suppression.create(reason="pentest", created_by="ana", duration_s=3600,
        ...                           now=1710230400.0, cidr="198.51.100.0/24")
        >>> rule.id, rule.expires_ts
        ('s-3b3d126124d3', 1710234000.0)
        >>> Suppression.create(reason=" ", created_by="ana", duration_s=60, now=0, kind="bola")
        Traceback (most recent call last):
        ...
        ValueError: reason: say why findings are suppressed (it is kept with the rule)
        """
        if not reason.strip():
            raise ValueError("reason: say why findings are suppressed (it is kept with the rule)")
        if kind and kind not in KINDS:
            raise ValueError(
                f"kind: unknown finding kind {kind!r} (known: {', '.join(sorted(KINDS))})"
            )
        if cidr and _network(cidr) is None:
            raise ValueError(f"cidr: {cidr!r} is not an IP network (e.g. 198.51.100.0/24)")
        if not (kind or entity or route or cidr):
            raise ValueError(
                "criteria: at least one criterion is required: kind, entity, route or cidr"
            )
        if not (math.isfinite(duration_s) and duration_s > 0):
            raise ValueError(f"duration_s: must be a positive number of seconds, got {duration_s}")
        text = "\x1f".join((kind, entity, route, cidr, reason, created_by, f"{now:.6f}"))
        return cls(
            id="s-" + hashlib.blake2b(text.encode(), digest_size=6).hexdigest(),
            reason=reason.strip(),
            created_by=created_by,
            created_ts=now,
            expires_ts=now + duration_s,
            kind=kind,
            entity=entity,
            route=route,
            cidr=cidr,
        )

    def matches(self, finding: Finding, now: float) -> bool:
        """Whether the rule silences ``finding`` at wall-clock time ``now``. A ``cidr``
        matches an IP (or network) entity, or the client address a finding about a
        user names (``source_ip``, see ``alerts.model.source_ip``)."""
        if now >= self.expires_ts:
            return False
        if self.kind and finding.kind != self.kind:
            return False
        if self.entity and finding.entity != self.entity:
            return False
        if self.route and finding.extra.get("route") != self.route:
            return False
        if self.cidr:
            network = _network(self.cidr)
            if network is None:
                return False
            source = source_ip(finding)
            return _inside(finding.entity, network) or (
                source is not None and _inside(source, network)
            )
        return bool(self.kind or self.entity or self.route)

    def to_row(self) -> dict[str, Any]:
        """A row of the ``suppressions`` table (times in epoch seconds)."""
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Suppression:
        """A rule from a stored row; columns it does not know (``deleted``) are ignored."""
        return cls(
            id=str(row["id"]),
            reason=str(row["reason"]),
            created_by=str(row.get("created_by", "")),
            created_ts=float(row["created_ts"]),
            expires_ts=float(row["expires_ts"]),
            kind=str(row.get("kind") or ""),
            entity=str(row.get("entity") or ""),
            route=str(row.get("route") or ""),
            cidr=str(row.get("cidr") or ""),
        )


class Suppressions:
    """The active rules; thread-safe replace (the CLI/API edits the store; a running
    pipeline reloads). Readers take the current tuple of rules without a lock: a
    reload swaps the whole tuple, never edits it in place."""

    def __init__(
        self, rules: Iterable[Suppression] = (), *, clock: Callable[[], float] = time.time
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._rules: tuple[Suppression, ...] = tuple(rules)
        self.suppressed = 0  # findings suppressed, for metrics

    def replace(self, rules: Iterable[Suppression]) -> None:
        fresh = tuple(rules)
        with self._lock:
            self._rules = fresh

    def match(self, finding: Finding) -> Suppression | None:
        """The first active rule that silences ``finding``, or None."""
        rules = self._rules
        if not rules:
            return None
        now = self._clock()
        for rule in rules:
            if rule.matches(finding, now):
                self.suppressed += 1
                return rule
        return None

    def active(self) -> list[Suppression]:
        """The rules not yet expired."""
        now = self._clock()
        return [rule for rule in self._rules if now < rule.expires_ts]
