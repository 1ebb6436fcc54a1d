"""``gatewatch ingest``: read a log file or stdin into the store."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

from alerts.service import Alerting
from gatewatch.cli.common import settings_from
from gatewatch.cli.progress import ProgressLine
from gatewatch.event import DeadLetter, Event
from gatewatch.finding import Finding
from gatewatch.gc_tuning import tune_for_streaming
from gatewatch.metrics import Metrics
from gatewatch.pipeline import DetectingSink, Pipeline
from gatewatch.store.client import Store
from gatewatch.store.writer import BatchWriter
from gatewatch.wiring import (
    build_alerting,
    build_engine,
    build_pipeline,
    findings_to,
    open_store,
)
from ingest.parsers import FORMATS, MAPPING_PREFIX
from ingest.sources.base import Record
from ingest.sources.file import follow_file, read_file
from ingest.sources.stream import read_stream


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "ingest",
        help="read a log file or stdin into the store",
        description=(
            "Parse every line of a log file (or stdin) into Events and store them. A line "
            "that cannot be parsed is stored in dead_letters with the reason; none is "
            "dropped. Replaying the same file again stores nothing twice."
        ),
    )
    parser.add_argument(
        "-i", "--input", required=True, metavar="FILE", help="log file, or - for stdin"
    )
    parser.add_argument(
        "-f",
        "--format",
        metavar="FORMAT",
        help=f"log format: {', '.join(FORMATS)} or {MAPPING_PREFIX}NAME "
        "(default: ingest.format from the config, else auto)",
    )
    parser.add_argument(
        "--follow",
        action="store_true",
        help="keep reading as the file grows, like tail -F (survives rotation); "
        "stop with Ctrl-C or SIGTERM",
    )
    parser.add_argument(
        "--from-end", action="store_true", help="with --follow: start at the end of the file"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress line even on a terminal"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    fmt = args.format or settings.ingest.format
    pipeline = build_pipeline(settings, fmt)
    store = open_store(settings)
    writer = BatchWriter(
        store,
        max_rows=settings.storage.batch_max_rows,
        max_seconds=settings.storage.batch_max_seconds,
    )
    stop = threading.Event()
    previous = _stop_on_signals(stop)
    max_line = settings.ingest.max_line_bytes
    show_progress = not args.no_progress and sys.stderr.isatty()
    progress = ProgressLine(sys.stderr) if show_progress else None
    started = time.monotonic()
    sink: BatchWriter | _LockedWriter = writer
    alerting = build_alerting(settings, store, writer)
    on_alert = alerting.on_finding if alerting is not None else None
    engine = build_engine(settings, findings_to(writer.add_finding, on_alert))
    ticker: threading.Thread | None = None
    try:
        records: Iterator[Record]
        if args.input == "-":
            records = read_stream(sys.stdin.buffer, source="stdin", max_line_bytes=max_line)
        elif args.follow:
            metrics = Metrics()
            if settings.metrics.enabled:
                metrics.serve(settings.metrics.host, settings.metrics.port)
            writer.on_flush = lambda events, _dead: metrics.stored.inc(events)
            sink = _LockedWriter(writer, metrics, args.input)
            engine = build_engine(settings, findings_to(sink.add_finding, on_alert))
            metrics.watch(engine)
            ticker = threading.Thread(target=sink.tick_until, args=(stop,), daemon=True)
            ticker.start()
            records = follow_file(
                args.input, max_line_bytes=max_line, stop=stop, from_start=not args.from_end
            )
        else:
            records = read_file(
                args.input,
                max_line_bytes=max_line,
                on_progress=(lambda done, total: progress.update(done, total, pipeline.stats.lines))
                if progress
                else None,
            )
        tune_for_streaming()
        if alerting is not None:
            alerting.start()
        pipeline.run(_until(records, stop), DetectingSink(sink, engine.process))
    finally:
        if ticker is not None:
            stop.set()
            ticker.join(timeout=5)
        engine.finish()
        _close_alerting(alerting)
        writer.flush()
        _restore_signals(previous)
        if progress:
            progress.clear()
    _report(args.input, pipeline, writer, store, time.monotonic() - started)
    store.close()
    return 0


def _close_alerting(alerting: Alerting | None) -> None:
    """Close the open alerts and deliver what is due; the rest waits in the outbox."""
    if alerting is not None:
        alerting.finish()
        alerting.stop()


def _report(
    source: str, pipeline: Pipeline, writer: BatchWriter, store: Store, seconds: float
) -> None:
    stats = pipeline.stats
    elapsed = max(seconds, 1e-9)
    print(
        f"ingested {stats.lines} lines from {source}: {stats.events} events, "
        f"{stats.dead_letters} dead letters in {elapsed:.1f} s "
        f"({stats.lines / elapsed:,.0f} lines/s)"
    )
    if stats.reasons:
        top = sorted(stats.reasons.items(), key=lambda item: -item[1])[:5]
        print("dead-letter reasons: " + "; ".join(f"{reason} ({n})" for reason, n in top))
    if writer.findings_written:
        print(
            f"detectors stored {writer.findings_written} finding versions; "
            "list them with 'gatewatch query findings'"
        )
    print(f"stored in {store.dsn.split('?')[0]} database {store.database}")


def _until(records: Iterator[Record], stop: threading.Event) -> Iterator[Record]:
    for record in records:
        yield record
        if stop.is_set():
            return


class _LockedWriter:
    """Serialises the pipeline's adds with a timer's idle flushes (follow mode only),
    and counts what passes for /metrics."""

    def __init__(self, writer: BatchWriter, metrics: Metrics, source: str) -> None:
        self.writer = writer
        self.lock = threading.Lock()
        self.metrics = metrics
        self._consumed = metrics.consumed.labels(source)
        self._dead = metrics.dead_lettered.labels(source)

    def add_event(self, event: Event) -> None:
        with self.lock:
            self.writer.add_event(event)
        self._consumed.inc()

    def add_dead_letter(self, dead: DeadLetter) -> None:
        with self.lock:
            self.writer.add_dead_letter(dead)
        self._consumed.inc()
        self._dead.inc()

    def add_finding(self, finding: Finding) -> None:
        with self.lock:
            self.writer.add_finding(finding)

    def tick_until(self, stop: threading.Event) -> None:
        interval = min(self.writer.max_seconds, 1.0)
        while not stop.wait(interval):
            with self.lock:
                self.writer.tick()


_Handler = Any


def _stop_on_signals(stop: threading.Event) -> dict[int, _Handler]:
    """SIGTERM and SIGINT stop reading; what was read is flushed before exit."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[int, _Handler] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    return previous


def _restore_signals(previous: dict[int, _Handler]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
