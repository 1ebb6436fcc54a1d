"""Runs the registered detectors over the Event stream in event time.

Events from several partitions or files arrive slightly out of order. The engine holds
them in a small heap and releases each one once the watermark (the newest event time
seen, minus ``allowed_lateness_s``) has passed it, so detectors see event time move
forward. An event older than what was already released is still observed (counted in
``stats.late``): dropping it would lose evidence, and the windows tolerate it.
Nothing here reads the wall clock: the same input gives the same findings.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from detectors.base import Detector, DetectorParams, FindingSink
from gatewatch.event import Event

log = logging.getLogger(__name__)


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
        self._heap: list[tuple[float, int, Event]] = []
        self._seq = 0
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
            self._release(event)  # in order and nothing held back: skip the heap
            return
        self._seq += 1
        heapq.heappush(self._heap, (ts, self._seq, event))
        watermark = self._newest - self.allowed_lateness_s
        heap = self._heap
        while heap and heap[0][0] <= watermark:
            self._release(heapq.heappop(heap)[2])

    def finish(self) -> None:
        """End of input: release what is held and close every open episode."""
        heap = self._heap
        while heap:
            self._release(heapq.heappop(heap)[2])
        for detector in self.detectors:
            detector.advance(math.inf)

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
