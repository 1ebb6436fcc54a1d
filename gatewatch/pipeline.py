"""The pipeline: records from a source -> parser -> normaliser -> store.

Bad input is a named policy, not an exception path: any line that cannot become an
Event becomes a dead letter with the reason, so rows stored (events plus dead letters)
always equal lines read.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from gatewatch.errors import ParseError
from gatewatch.event import DeadLetter, Event
from ingest.normalise.normaliser import Normaliser
from ingest.normalise.secrets import SecretMasker
from ingest.parsers import Parser
from ingest.sources.base import Record

log = logging.getLogger(__name__)
_DIGITS = re.compile(r"\d+")


@dataclass(slots=True)
class PipelineStats:
    lines: int = 0
    events: int = 0
    dead_letters: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


class EventSink(Protocol):
    """Where the pipeline puts its output (the store's batch writer, or a list in tests)."""

    def add_event(self, event: Event) -> None: ...

    def add_dead_letter(self, dead: DeadLetter) -> None: ...


class DetectingSink:
    """Passes events on to ``sink`` and to the detectors (``detect``, the engine's
    ``process``); dead letters only to ``sink``."""

    def __init__(self, sink: EventSink, detect: Callable[[Event], None]) -> None:
        self.sink = sink
        self.detect = detect

    def add_event(self, event: Event) -> None:
        self.sink.add_event(event)
        self.detect(event)

    def add_dead_letter(self, dead: DeadLetter) -> None:
        self.sink.add_dead_letter(dead)


class Pipeline:
    """Turns records into Events and dead letters for one input format."""

    def __init__(
        self,
        *,
        parser: Parser,
        normaliser: Normaliser,
        masker: SecretMasker,
        format_name: str,
        max_line_bytes: int,
        dead_letter_max_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.parser = parser
        self.normaliser = normaliser
        self.masker = masker
        self.format_name = format_name
        self.max_line_bytes = max_line_bytes
        self.dead_letter_max_bytes = dead_letter_max_bytes
        self._clock = clock
        self.stats = PipelineStats()

    def process(self, record: Record) -> Event | DeadLetter:
        """One record in, exactly one Event or DeadLetter out."""
        self.stats.lines += 1
        if record.size > self.max_line_bytes:
            return self._dead(record, f"line of {record.size} bytes exceeds {self.max_line_bytes}")
        data = record.data
        if not data.strip():
            return self._dead(record, "empty line")
        try:
            raw = self.parser.parse(data)
            event = self.normaliser.normalise(raw, record.source, record.position)
        except ParseError as exc:
            return self._dead(record, exc.reason)
        except Exception as exc:
            log.warning(
                "unexpected %s on %s:%d; dead-lettered",
                type(exc).__name__,
                record.source,
                record.position,
                exc_info=True,
            )
            return self._dead(record, f"internal error: {type(exc).__name__}: {exc}"[:300])
        self.stats.events += 1
        return event

    def run(self, records: Iterable[Record], sink: EventSink) -> PipelineStats:
        add_event = sink.add_event
        add_dead = sink.add_dead_letter
        process = self.process
        for record in records:
            result = process(record)
            if isinstance(result, Event):
                add_event(result)
            else:
                add_dead(result)
        return self.stats

    def _dead(self, record: Record, reason: str) -> DeadLetter:
        self.stats.dead_letters += 1
        key = _DIGITS.sub("N", reason.split(":", 1)[0][:60])
        self.stats.reasons[key] = self.stats.reasons.get(key, 0) + 1
        text = record.data[: self.dead_letter_max_bytes].decode("utf-8", "backslashreplace")
        return DeadLetter(
            source=record.source,
            position=record.position,
            format=self.format_name,
            reason=reason,
            raw=self.masker.text(text),
            raw_size=record.size,
            received_ts=self._clock(),
        )
