"""One finding per attack episode, updated while the attack goes on.

A detector decides *whether* an entity is attacking; ``Episodes`` decides *when* to
emit: the first time (a new finding), then at most every ``update_every_s`` of event
time while more evidence arrives, and once more when the entity has been quiet for
``quiet_s`` (the episode closes). Every emission of one episode has the same id and
``detected_ts``, so storage and alerts replace rather than repeat it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detectors.base import Detector
from detectors.state import EntityTable
from gatewatch.finding import EntityType, Severity


@dataclass(slots=True)
class Episode:
    first_ts: float
    last_ts: float
    detected_ts: float
    summary: str
    score: float
    evidence: dict[str, None] = field(default_factory=dict)
    severity: Severity | None = None
    subkind: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    emitted_ts: float = 0.0
    dirty: bool = False


class Episodes:
    """Open episodes of one finding kind, per entity, for one detector."""

    def __init__(
        self,
        detector: Detector[Any],
        kind: str,
        entity_type: EntityType,
        *,
        quiet_s: float,
        update_every_s: float = 60.0,
        max_open: int = 100_000,
    ) -> None:
        self.detector = detector
        self.kind = kind
        self.entity_type = entity_type
        self.quiet_s = quiet_s
        self.update_every_s = update_every_s
        self._open: EntityTable[str, Episode | None] = EntityTable(
            lambda: None, ttl_s=float("inf"), max_entities=max_open
        )  # closed by advance(), not by TTL

    def __contains__(self, entity: str) -> bool:
        return self._open.peek(entity) is not None

    def __len__(self) -> int:
        return len(self._open)

    def report(
        self,
        entity: str,
        *,
        ts: float,
        first_ts: float,
        evidence: list[str] | tuple[str, ...],
        summary: str,
        score: float,
        severity: Severity | None = None,
        subkind: str = "",
        extra: dict[str, Any] | None = None,
    ) -> None:
        """The detector's verdict holds for ``entity`` at ``ts``: open or update."""
        episode = self._open.peek(entity)
        if episode is None:
            episode = Episode(first_ts, ts, ts, summary, score, severity=severity, subkind=subkind)
            self._open.put(entity, ts, episode)
            self._add(episode, evidence)
            episode.extra = extra or {}
            self._emit(entity, episode, ts)
            return
        self._open.put(entity, ts, episode)
        episode.first_ts = min(episode.first_ts, first_ts)
        episode.last_ts = max(episode.last_ts, ts)
        episode.summary, episode.score = summary, max(episode.score, score)
        if severity is not None:
            episode.severity = severity
        if extra:
            episode.extra = extra
        self._add(episode, evidence)
        episode.dirty = True
        if ts - episode.emitted_ts >= self.update_every_s:
            self._emit(entity, episode, ts)

    def add_evidence(self, entity: str, ts: float, request_id: str) -> bool:
        """One more request of an open episode; False when none is open."""
        episode = self._open.peek(entity)
        if episode is None:
            return False
        self._open.put(entity, ts, episode)
        episode.last_ts = max(episode.last_ts, ts)
        self._add(episode, (request_id,))
        episode.dirty = True
        return True

    def advance(self, watermark: float) -> None:
        """Close episodes quiet for ``quiet_s``, emitting their final version."""
        closing = [
            (entity, episode)
            for entity, episode in self._open.items()
            if episode is not None and watermark - episode.last_ts >= self.quiet_s
        ]
        for entity, episode in closing:
            if episode.dirty:
                self._emit(entity, episode, episode.last_ts)
            self._open.pop(entity)

    def _add(self, episode: Episode, evidence: list[str] | tuple[str, ...]) -> None:
        limit = self.detector.evidence_limit
        kept = episode.evidence
        for request_id in evidence:
            if limit is not None and len(kept) >= limit:
                break
            kept[request_id] = None

    def _emit(self, entity: str, episode: Episode, ts: float) -> None:
        episode.emitted_ts = ts
        episode.dirty = False
        self.detector.raise_finding(
            kind=self.kind,
            entity_type=self.entity_type,
            entity=entity,
            first_ts=episode.first_ts,
            last_ts=episode.last_ts,
            detected_ts=episode.detected_ts,
            summary=episode.summary,
            evidence=episode.evidence,
            score=episode.score,
            subkind=episode.subkind,
            severity=episode.severity,
            extra=episode.extra,
        )
