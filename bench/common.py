"""Small helpers shared by the benchmarks: timing, CPU time, printing figures."""

from __future__ import annotations

import gc
import resource
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from detectors.engine import DetectionEngine
from gatewatch.event import Event
from gatewatch.settings import load_settings
from gatewatch.wiring import build_pipeline
from ingest.sources.file import read_file

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
OUT = Path(__file__).resolve().parent / "out"


@dataclass
class Timing:
    wall: float = 0.0
    cpu: float = 0.0


def cpu_seconds() -> float:
    """CPU time of this process, all threads (chDB works in its own threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def timed() -> Iterator[Timing]:
    timing = Timing()
    wall, cpu = time.perf_counter(), cpu_seconds()
    yield timing
    timing.wall = time.perf_counter() - wall
    timing.cpu = cpu_seconds() - cpu


def feed(engine: DetectionEngine, events: Iterable[Event]) -> Timing:
    """Feed ``events`` through ``engine`` to the end of input, timed. What exists before
    (the input list above all) is collected and frozen out of the collector's scans: a
    stream never holds its whole input, and a full collection walking 400k held events
    would be charged to whichever run allocates more."""
    gc.collect()
    gc.freeze()
    try:
        with timed() as timing:
            for event in events:
                engine.process(event)
            engine.finish()
    finally:
        gc.unfreeze()
    return timing


def repeat_ms(fn: Callable[[], object], runs: int = 7) -> tuple[float, float]:
    """(median, max) wall milliseconds over ``runs`` calls after one warm-up."""
    fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), max(samples)


def figure(name: str, value: float, unit: str, note: str = "") -> None:
    print(f"{name:58} {value:>14,.1f} {unit:12} {note}")


def canonical_events(canonical: Path) -> Iterator[Event]:
    """A simulator's canonical lines as ``gatewatch detect`` reads them (the same
    parser, normaliser and route templates)."""
    settings = load_settings(None)
    pipeline = build_pipeline(settings, "canonical", for_storage=False)
    pipeline.normaliser.max_future_skew_s = float("inf")
    for record in read_file(canonical, max_line_bytes=settings.ingest.max_line_bytes):
        event = pipeline.process(record)
        if type(event) is Event:
            yield event
