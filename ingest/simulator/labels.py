"""A label directory: simulated events with ground truth, in the evaluation format
(docs/EVALUATION.md of the shared workspace; ``score.py`` reads it).

* ``canonical.jsonl``: every request, as the ``canonical`` renderer writes it;
* ``labels.jsonl``: ``{"request_id", "attack_id"}`` for every attack request, in event
  order (every other request is benign);
* ``attacks.json``: a list, by start, of ``{"attack_id", "accepted_kinds", "start",
  "end", ...}`` for every episode that made at least one request. ``start`` and
  ``end`` are RFC 3339 UTC with milliseconds (``start`` rounded down, ``end`` up, so
  they bracket the episode's requests); ``kind``, ``variant``, ``requests`` and
  ``description`` say what the episode was.

``LabelWriter.record`` passes the request stream through while it writes, so the same
run can also go to a log file in a gateway format or to Kafka.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NamedTuple, Self

import orjson

from ingest.simulator.attacks.base import AttackEpisode
from ingest.simulator.render import render_canonical
from ingest.simulator.request import SimRequest

CANONICAL = "canonical.jsonl"
LABELS = "labels.jsonl"
ATTACKS = "attacks.json"


def rfc3339_ms(ts: float, *, up: bool = False) -> str:
    """``ts`` as RFC 3339 UTC text with milliseconds, rounded down (or ``up``).

    >>> rfc3339_ms(1710230400.0456), rfc3339_ms(1710230400.0456, up=True)
    ('2024-03-12T08:00:00.045Z', '2024-03-12T08:00:00.046Z')
    """
    ms = math.ceil(ts * 1000) if up else math.floor(ts * 1000)
    second, fraction = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)) + f".{fraction:03d}Z"


class LabelSummary(NamedTuple):
    events: int
    attack_requests: int
    attacks: int


class _Seen:
    __slots__ = ("first", "last", "requests")

    def __init__(self, ts: float) -> None:
        self.first = ts
        self.last = ts
        self.requests = 0


class LabelWriter:
    """Writes a label directory for a run with ``episodes``; use as a context manager
    around ``record`` (``attacks.json`` is written on a clean exit).

    A request whose ``attack_id`` names no episode is an error: its accepted kinds
    would be unknown.
    """

    def __init__(self, directory: Path, episodes: Iterable[AttackEpisode]) -> None:
        self.directory = directory
        self.episodes = {episode.attack_id: episode for episode in episodes}
        self._seen: dict[str, _Seen] = {}
        self._events = 0
        self._attack_requests = 0
        self._canonical: IO[bytes] | None = None
        self._labels: IO[bytes] | None = None
        self._streams: list[Generator[SimRequest, None, None]] = []

    def __enter__(self) -> Self:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._canonical = open(self.directory / CANONICAL, "wb")
        self._labels = open(self.directory / LABELS, "wb")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for stream in self._streams:  # a reader that stopped early: flush what it saw
            stream.close()
        for handle in (self._canonical, self._labels):
            if handle is not None:
                handle.close()
        self._canonical = self._labels = None
        if kind is None:
            self._write_attacks()

    def record(self, requests: Iterable[SimRequest]) -> Iterator[SimRequest]:
        """Every request of ``requests``, unchanged, after writing it down."""
        stream = self._record(requests)
        self._streams.append(stream)
        return stream

    def _record(self, requests: Iterable[SimRequest]) -> Generator[SimRequest, None, None]:
        canonical, labels = self._canonical, self._labels
        if canonical is None or labels is None:
            raise RuntimeError("LabelWriter.record outside its with-block")
        batch: list[bytes] = []
        seen = self._seen
        try:
            for request in requests:
                batch.append(render_canonical(request))
                if len(batch) >= 4096:
                    batch.append(b"")
                    canonical.write(b"\n".join(batch))
                    batch.clear()
                self._events += 1
                attack_id = request.attack_id
                if attack_id:
                    if attack_id not in self.episodes:
                        raise ValueError(f"request of unknown attack {attack_id!r}")
                    labels.write(
                        orjson.dumps({"request_id": request.request_id, "attack_id": attack_id})
                        + b"\n"
                    )
                    state = seen.get(attack_id)
                    if state is None:
                        state = seen[attack_id] = _Seen(request.ts)
                    state.last = request.ts
                    state.requests += 1
                    self._attack_requests += 1
                yield request
        finally:
            if batch:
                batch.append(b"")
                canonical.write(b"\n".join(batch))

    def summary(self) -> LabelSummary:
        return LabelSummary(self._events, self._attack_requests, len(self._seen))

    def _write_attacks(self) -> None:
        entries: list[dict[str, Any]] = []
        for attack_id, state in sorted(self._seen.items(), key=lambda item: item[1].first):
            episode = self.episodes[attack_id]
            entries.append(
                {
                    "attack_id": attack_id,
                    "accepted_kinds": list(episode.accepted_kinds),
                    "start": rfc3339_ms(state.first),
                    "end": rfc3339_ms(state.last, up=True),
                    "kind": episode.kind,
                    "variant": episode.variant,
                    "requests": state.requests,
                    "description": episode.description,
                }
            )
        (self.directory / ATTACKS).write_bytes(orjson.dumps(entries, option=orjson.OPT_INDENT_2))


def write_label_dir(
    requests: Iterable[SimRequest], directory: Path, episodes: Iterable[AttackEpisode]
) -> LabelSummary:
    """Write the whole of ``requests`` as the label directory ``directory``."""
    with LabelWriter(directory, episodes) as writer:
        for _ in writer.record(requests):
            pass
    return writer.summary()
