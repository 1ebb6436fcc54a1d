"""Runs the registered detectors over the Event stream in event time.

Events from several partitions or files arrive slightly out of order. The engine holds
them in a sorted buffer and releases each one once the watermark (the newest event time
seen, minus ``allowed_lateness_s``) has passed it, so detectors see event time move
forward. Most events arrive in order and are appended (no heap: a heap push and pop
cost more than the cheaper detectors); a late one is inserted in place. An event older
than what was already released is still observed (counted in ``stats.late``): dropping
it would lose evidence, and the windows tolerate it. Nothing here reads the wall clock:
the same input gives the same findings. (A live source that goes idle calls
``release_held``, so findings are not held back until the next event arrives.)
"""

from __future__ import annotations

import logging
import math
from bisect import insort
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from detectors.base import Detector, DetectorParams, FindingSink
from gatewatch.event import Event

log = logging.getLogger(__name__)
_TS = attrgetter("ts")
_COMPACT_AFTER = 4096


@dataclass(slots=True)
class EngineStats:
    events: int = 0
    late: int = 0
    findings: int = 0


class DetectionEngine:
    """Feeds events to detectors in event-time order and advances their clocks."""

    def __init__(
        self,
        detectors: Sequence[Detector[Any]],
        sink: FindingSink,
        *,
        allowed_lateness_s: float = 5.0,
        evidence_limit: int | None = 100,
        advance_every_s: float = 1.0,
    ) -> None:
        self.detectors = list(detectors)
        self._sink = sink
        self.allowed_lateness_s = allowed_lateness_s
        self.advance_every_s = advance_every_s
        self.stats = EngineStats()
        self._pending: list[Event] = []  # sorted by ts; released ones before _head
        self._head = 0
        self._newest = -math.inf
        self._released = -math.inf
        self._next_advance = -math.inf
        for detector in self.detectors:
            detector.bind(self._emit, evidence_limit=evidence_limit)
        self._observers = [d.observe for d in self.detectors]

    def process(self, event: Event) -> None:
        """Take one event; detectors see it once the watermark has passed it."""
        ts = event.ts
        self._newest = max(self._newest, ts)
        if self.allowed_lateness_s <= 0 and ts >= self._released:
            self._release(event)  # in order and nothing held back: no buffering
            return
        pending = self._pending
        if not pending or ts >= pending[-1].ts:
            pending.append(event)
        else:  # out of order: after any equal timestamps, so arrival order breaks ties
            insort(pending, event, lo=self._head, key=_TS)
        self._release_until(self._newest - self.allowed_lateness_s)

    def finish(self) -> None:
        """End of input: release what is held and close every open episode."""
        self._release_until(math.inf)
        for detector in self.detectors:
            detector.advance(math.inf)

    @property
    def holding(self) -> int:
        """Events waiting for the watermark."""
        return len(self._pending) - self._head

    def release_held(self) -> None:
        """Let the watermark catch up with the newest event (a live source went idle:
        waiting longer would only delay findings). Episodes stay open."""
        self._release_until(self._newest)

    def _release_until(self, watermark: float) -> None:
        pending, head = self._pending, self._head
        end = len(pending)
        while head < end and pending[head].ts <= watermark:
            self._release(pending[head])
            head += 1
        if head >= _COMPACT_AFTER or head == end:
            del pending[:head]
            head = 0
        self._head = head

    def reconfigure(self, params: dict[str, DetectorParams]) -> None:
        """Swap params (config reload) of the detectors named in ``params``, by label."""
        for detector in self.detectors:
            new = params.get(detector.label)
            if new is not None and new != detector.params:
                detector.reconfigure(new)
                log.info("detector %s reconfigured", detector.label)

    def tracked(self) -> dict[str, int]:
        return {d.label: d.tracked() for d in self.detectors}

    def _release(self, event: Event) -> None:
        ts = event.ts
        self.stats.events += 1
        if ts < self._released:
            self.stats.late += 1
        else:
            self._released = ts
        if ts >= self._next_advance:
            # Before observing: an episode that went quiet closes before this event
            # could wrongly extend it.
            self._next_advance = ts + self.advance_every_s
            for detector in self.detectors:
                detector.advance(ts)
        for observe in self._observers:
            observe(event)

    def _emit(self, finding: Any) -> None:
        self.stats.findings += 1
        self._sink(finding)
