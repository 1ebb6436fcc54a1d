"""The detector contract: one small class per detection, configured by typed params.

Lifecycle, as ``detectors.engine.DetectionEngine`` drives it:

1. The engine builds each detector once from its validated ``Params`` (the config
   file's ``[detection.detectors.NAME]`` table). Params are not state: they are kept
   as ``self.params`` and can be swapped by ``reconfigure`` (config hot reload)
   without touching what the detector has learned.
2. ``observe(event)`` runs for every Event, in event-time order (the engine reorders
   within the allowed lateness). It must be cheap (all detectors together have a
   budget of about 10 us per event): return early on events it does not care about,
   keep per-entity state in bounded tables (``detectors.state``), never read the wall
   clock. When a threshold is crossed it calls ``self.raise_finding(...)``.
3. ``advance(watermark)`` runs when event time has moved on (about once per second of
   event time and at the end of input): expire idle entities, close episodes.

Findings are episodes, not alerts per request: a detector raises one finding when an
entity first crosses its threshold and, while the episode goes on, re-emits the same
finding (same ``id``, same ``detected_ts``) with more evidence and later ``last_ts``.
``Episodes`` does that bookkeeping.

A score is the detector's confidence in 0..1 that the finding is the attack its kind
names (1.0: unmistakable). Severity comes from the params (default per kind,
``detectors.taxonomy``).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from detectors.taxonomy import TAXONOMY
from gatewatch.event import Event
from gatewatch.finding import EntityType, Finding, Severity

FindingSink = Callable[[Finding], None]


class Allowlist(BaseModel):
    """Traffic a detector ignores: known scanners, partner integrations, health checks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ips: tuple[str, ...] = Field(default=(), description="addresses or CIDR networks")
    users: frozenset[str] = frozenset()
    api_keys: frozenset[str] = Field(default=frozenset(), description="key fingerprints (fp:...)")
    routes: frozenset[str] = Field(default=frozenset(), description="route templates")

    @field_validator("ips")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
        return value

    def compiled(self) -> CompiledAllowlist:
        return CompiledAllowlist(self)


class CompiledAllowlist:
    """An ``Allowlist`` ready for the hot path: one set lookup per field, networks
    checked only for addresses not seen before (memoised, bounded)."""

    __slots__ = ("_keys", "_networks", "_routes", "_seen", "_users", "empty")

    def __init__(self, allow: Allowlist) -> None:
        self._networks = tuple(ipaddress.ip_network(n, strict=False) for n in allow.ips)
        self._users = allow.users
        self._keys = allow.api_keys
        self._routes = allow.routes
        self._seen: dict[str, bool] = {}
        self.empty = not (self._networks or self._users or self._keys or self._routes)

    def allows(self, event: Event) -> bool:
        if self.empty:
            return False
        if event.route in self._routes or (event.user and event.user in self._users):
            return True
        if event.api_key and event.api_key in self._keys:
            return True
        if not self._networks:
            return False
        ip = event.client_ip
        known = self._seen.get(ip)
        if known is None:
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                known = False
            else:
                known = any(address in net for net in self._networks)
            if len(self._seen) >= 65_536:
                self._seen.clear()
            self._seen[ip] = known
        return known


class DetectorParams(BaseModel):
    """What every detector's config table may hold; detectors subclass it with theirs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    severity: Severity | None = Field(
        default=None, description="severity of its findings (default: per kind)"
    )
    allow: Allowlist = Allowlist()


P = TypeVar("P", bound=DetectorParams)


class Detector(Generic[P]):
    """Base class of every detector. Subclasses set ``name``, ``kinds`` and ``Params``
    and implement ``observe`` (and ``advance`` when they hold state)."""

    name: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]]
    Params: ClassVar[type[DetectorParams]] = DetectorParams

    def __init__(self, params: P, *, label: str | None = None) -> None:
        self.params = params
        self.label = label or self.name
        self.allow = params.allow.compiled()
        self._sink: FindingSink = _discard
        self.evidence_limit: int | None = 100

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"

    # -- driven by the engine ---------------------------------------------------------

    def bind(self, sink: FindingSink, *, evidence_limit: int | None) -> None:
        """Where findings go; ``evidence_limit`` None keeps every request id (offline)."""
        self._sink = sink
        self.evidence_limit = evidence_limit

    def reconfigure(self, params: P) -> None:
        """New params from a config reload; learned state is kept."""
        self.params = params
        self.allow = params.allow.compiled()

    def observe(self, event: Event) -> None:
        raise NotImplementedError

    def advance(self, watermark: float) -> None:
        """Event time has reached ``watermark``: expire and close what is due."""

    def tracked(self) -> int:
        """How many entities this detector holds state for (bounded: contract tests).

        Called by /metrics from its own thread while detection runs: read sizes, and
        copy a table before walking it (``EntityTable.states``), never iterate one.
        """
        return 0

    def counters(self) -> dict[str, int]:
        """Running totals of the detector's work, for /metrics (none by default); read
        from another thread, as ``tracked`` is."""
        return {}

    @classmethod
    def keeps_state(cls) -> bool:
        """Whether it has learnt state to checkpoint (it overrides ``snapshot``)."""
        return cls.snapshot is not Detector.snapshot

    def snapshot(self) -> dict[str, Any] | None:
        """Learnt state worth keeping across restarts, picklable, with the Kafka
        ``positions`` it includes (``gatewatch.store.checkpoints``); None: nothing to keep."""
        return None

    def restore(self, state: dict[str, Any], *, sources: set[str] | None = None) -> bool:
        """Take over a ``snapshot`` (only ``sources``' positions when given: partitions
        taken over from another consumer); False when it does not fit."""
        return False

    # -- for subclasses -------------------------------------------------------------

    def raise_finding(
        self,
        *,
        kind: str,
        entity_type: EntityType,
        entity: str,
        first_ts: float,
        last_ts: float,
        detected_ts: float,
        summary: str,
        evidence: Iterable[str],
        score: float,
        subkind: str = "",
        severity: Severity | None = None,
        extra: dict[str, Any] | None = None,
        discriminator: str = "",
    ) -> Finding:
        """Build the finding (id, OWASP/MITRE, severity) and hand it to the sink.

        The id is derived from detector, kind, entity and ``detected_ts``, so an update
        of the same episode replaces the earlier version wherever it is stored, and a
        replay of the same input yields the same ids. ``discriminator`` tells apart
        findings that share all of those (two requests of one source in the same
        millisecond, each its own finding).
        """
        info = TAXONOMY[kind]
        finding = Finding(
            id=finding_id(
                self.label, kind, entity_type, entity, detected_ts, discriminator=discriminator
            ),
            kind=kind,
            severity=severity or self.params.severity or info.severity,
            score=min(1.0, max(0.0, round(score, 3))),
            entity_type=entity_type,
            entity=entity,
            first_ts=first_ts,
            last_ts=last_ts,
            detected_ts=detected_ts,
            summary=summary,
            subkind=subkind,
            evidence=tuple(evidence),
            owasp=info.owasp,
            mitre=info.mitre,
            detector=self.label,
            extra=extra or {},
        )
        self._sink(finding)
        return finding


def finding_id(
    detector: str,
    kind: str,
    entity_type: str,
    entity: str,
    detected_ts: float,
    *,
    discriminator: str = "",
) -> str:
    """A stable id: the same episode in the same input always gets the same one.

    >>> finding_id("brute_force", "brute_force", "ip", "203.0.113.9", 1.5)
    'f-8c9b9d8b2ccf0d076c6a'
    """
    text = f"{detector}\x1f{kind}\x1f{entity_type}\x1f{entity}\x1f{detected_ts:.3f}"
    if discriminator:
        text = f"{text}\x1f{discriminator}"
    return "f-" + hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def _discard(finding: Finding) -> None:
    """The sink of a detector not yet bound to an engine."""
