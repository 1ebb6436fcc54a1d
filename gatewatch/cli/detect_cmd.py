"""``gatewatch detect``: run the streaming detectors over a log file, offline.

The DESIGN.md contract: exactly the code ``gatewatch run`` uses, in event time, no
wall clock and no sleeps, as fast as the machine allows; the same input gives the same
findings. Nothing is stored: this is for backtesting a tuning change and for measuring
detection quality (docs: EVALUATION.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gatewatch.cli.common import settings_from
from gatewatch.cli.progress import ProgressLine
from gatewatch.event import Event
from gatewatch.finding import Finding
from gatewatch.gc_tuning import tune_for_streaming
from gatewatch.wiring import build_engine, build_pipeline
from ingest.parsers import FORMATS, MAPPING_PREFIX
from ingest.sources.base import Record
from ingest.sources.file import read_file
from ingest.sources.stream import read_stream


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "detect",
        help="run the detectors over a log file and write findings (offline)",
        description=(
            "Replay a log file through the same parsers and streaming detectors as "
            "'gatewatch run', in event time, and write one JSON finding per line. "
            "Deterministic: the same input and config give the same findings. Every "
            "request id that contributed to a finding is listed in its evidence. "
            "Unparseable lines are counted (see the summary on stderr), not stored."
        ),
    )
    parser.add_argument(
        "-i", "--input", required=True, metavar="FILE", help="log file (.gz ok), or - for stdin"
    )
    parser.add_argument(
        "-f",
        "--format",
        metavar="FORMAT",
        help=f"log format: {', '.join(FORMATS)} or {MAPPING_PREFIX}NAME "
        "(default: ingest.format from the config, else auto)",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="findings as JSON lines, or - for stdout",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress line even on a terminal"
    )
    parser.set_defaults(handler=run)


class FindingCollector:
    """Keeps the newest version of each finding (episodes are re-emitted as they grow)."""

    def __init__(self) -> None:
        self.latest: dict[str, Finding] = {}

    def __call__(self, finding: Finding) -> None:
        self.latest[finding.id] = finding

    def ordered(self) -> list[Finding]:
        return sorted(self.latest.values(), key=lambda f: (f.detected_ts, f.kind, f.id))


def run(args: argparse.Namespace) -> int:
    # Offline replays go back in time: no retention cut-off and no future-skew check
    # against today's clock, or an old capture would be rejected.
    settings = settings_from(args)
    fmt = args.format or settings.ingest.format
    pipeline = build_pipeline(settings, fmt, for_storage=False)
    pipeline.normaliser.max_future_skew_s = float("inf")
    collector = FindingCollector()
    engine = build_engine(settings, collector, offline=True)
    show_progress = not args.no_progress and sys.stderr.isatty()
    progress = ProgressLine(sys.stderr) if show_progress else None
    max_line = settings.ingest.max_line_bytes
    records = (
        read_stream(sys.stdin.buffer, source="stdin", max_line_bytes=max_line)
        if args.input == "-"
        else read_file(
            args.input,
            max_line_bytes=max_line,
            on_progress=(lambda done, total: progress.update(done, total, pipeline.stats.lines))
            if progress
            else None,
        )
    )
    started = time.monotonic()
    tune_for_streaming()
    _detect(records, pipeline.process, engine.process)
    engine.finish()
    if progress:
        progress.clear()
    findings = collector.ordered()
    _write(findings, args.output)
    elapsed = max(time.monotonic() - started, 1e-9)
    stats = pipeline.stats
    print(
        f"detect: {stats.lines:,} lines, {stats.events:,} events, {stats.dead_letters:,} "
        f"unparseable; {len(findings):,} findings in {elapsed:.1f} s "
        f"({stats.lines / elapsed:,.0f} lines/s); {engine.stats.late:,} events arrived late",
        file=sys.stderr,
    )
    if stats.reasons:
        top = sorted(stats.reasons.items(), key=lambda item: -item[1])[:5]
        print(
            "unparseable lines: " + "; ".join(f"{reason} ({n})" for reason, n in top),
            file=sys.stderr,
        )
    return 0


def _detect(
    records: Iterator[Record], process: Callable[[Record], object], observe: Callable[[Event], None]
) -> None:
    for record in records:
        result = process(record)
        if type(result) is Event:
            observe(result)


def _write(findings: list[Finding], output: str) -> None:
    lines = b"".join(f.to_json() + b"\n" for f in findings)
    if output == "-":
        sys.stdout.buffer.write(lines)
        sys.stdout.flush()
        return
    path = Path(output)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(lines)
    partial.replace(path)  # never a half-written findings file
