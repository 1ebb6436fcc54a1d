"""Stored rows per CPU-second into chDB (target >= 300k), and the Arrow build's share.

CPU time counts every thread of the process, chDB's included, so the figure is per
core of work, not per wall second.
"""

from __future__ import annotations

import os
import shutil
import time

from bench.common import OUT, figure, timed
from gatewatch.event import Event
from gatewatch.settings import load_settings
from gatewatch.store.client import Store
from gatewatch.store.columns import events_table
from gatewatch.store.writer import BatchWriter
from gatewatch.wiring import build_pipeline
from ingest.simulator.render import RENDERERS
from ingest.simulator.traffic import SimulationConfig, generate
from ingest.sources.base import Record

ROWS = int(os.environ.get("BENCH_ROWS", "400000"))
BATCH = 50_000


def main() -> None:
    settings = load_settings(None, data_dir="bench/out", ingest={"fingerprint_salt": "bench"})
    pipeline = build_pipeline(settings, "canonical")
    render = RENDERERS["canonical"]
    config = SimulationConfig(seed=11, start_ts=time.time() - 7200, count=ROWS, duration_s=None)
    events = [
        e
        for i, r in enumerate(generate(config))
        if isinstance(e := pipeline.process(Record("bench", i, render(r), 0)), Event)
    ]
    path = OUT / "chdb-store"
    shutil.rmtree(path, ignore_errors=True)
    store = Store(f"chdb://{path}", database="bench")
    store.migrate()

    with timed() as build:
        for start in range(0, len(events), BATCH):
            events_table(events[start : start + BATCH])
    figure("Arrow columns built", len(events) / build.cpu, "rows/cpu-s")

    writer = BatchWriter(store, max_rows=BATCH, max_seconds=60)
    with timed() as t:
        for event in events:
            writer.add_event(event)
        writer.flush()
    figure(
        "stored into chDB (build + insert)",
        len(events) / t.cpu,
        "rows/cpu-s",
        f"{len(events) / t.wall:,.0f} rows/wall-s; {len(events):,} rows, batches of {BATCH:,}",
    )
    assert store.count("events") == len(events)
    store.close()


if __name__ == "__main__":
    main()
