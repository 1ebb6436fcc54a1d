"""Detection cost: what the detectors add per event, `gatewatch detect` throughput, and
memory per tracked entity.

Targets (issue 4): all behavioural detectors together <= 10 us per event on the
simulator mix; <= 1 KB per tracked entity with 1M distinct client IPs; detect >= 50k
events/s on one core for canonical input.
"""

from __future__ import annotations

import gc
import os
import time
import tracemalloc
from typing import Any

from bench.common import feed, figure, timed
from detectors.engine import DetectionEngine
from gatewatch.event import Event
from gatewatch.settings import load_settings
from gatewatch.wiring import build_detectors, build_pipeline
from ingest.simulator.render import RENDERERS
from ingest.simulator.traffic import SimulationConfig, generate
from ingest.sources.base import Record

EVENTS = int(os.environ.get("BENCH_DETECT_EVENTS", "200000"))
ENTITIES = int(os.environ.get("BENCH_DETECT_ENTITIES", "1000000"))


def _events(settings: Any) -> tuple[list[Record], list[Event]]:
    config = SimulationConfig(seed=11, start_ts=1_710_230_400.0, count=EVENTS, duration_s=None)
    render = RENDERERS["canonical"]
    records = [
        Record("bench", i, line, len(line)) for i, line in enumerate(map(render, generate(config)))
    ]
    pipeline = build_pipeline(settings, "canonical", for_storage=False)
    events = [e for e in map(pipeline.process, records) if type(e) is Event]
    return records, events


def _detectors_cost(settings: Any, events: list[Event]) -> None:
    detectors = build_detectors(settings)
    engine = DetectionEngine(detectors, lambda f: None, allowed_lateness_s=5)
    t = feed(engine, events)
    figure(
        "all detectors together",
        t.cpu / len(events) * 1e6,
        "us/event",
        f"{len(detectors)} detectors, {engine.stats.findings} finding versions",
    )
    for detector in build_detectors(settings):
        alone = DetectionEngine([detector], lambda f: None, allowed_lateness_s=5)
        with timed() as t:
            for event in events:
                alone.process(event)
            alone.finish()
        figure(f"  {detector.label}", t.cpu / len(events) * 1e6, "us/event")


def _detect_throughput(settings: Any, records: list[Record]) -> None:
    pipeline = build_pipeline(settings, "canonical", for_storage=False)
    engine = DetectionEngine(build_detectors(settings), lambda f: None, allowed_lateness_s=5)
    process, observe = pipeline.process, engine.process
    gc.collect()
    with timed() as t:
        for record in records:
            event = process(record)
            if type(event) is Event:
                observe(event)
        engine.finish()
    figure("detect: parse + normalise + detect", len(records) / t.cpu, "events/cpu-s")


def _memory_per_entity(settings: Any) -> None:
    detectors = build_detectors(settings)
    engine = DetectionEngine(detectors, lambda f: None, allowed_lateness_s=0)
    start = 1_710_230_400.0
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    for i in range(ENTITIES):
        login = i % 4 == 0
        engine.process(
            Event(
                request_id=f"m{i}",
                ts=start + i * 0.001,
                client_ip=f"{10 + (i >> 24)}.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                method="POST" if login else "GET",
                path="/api/v1/auth/login" if login else f"/api/v1/products/{i % 5000}",
                route="/api/v1/auth/login" if login else "/api/v1/products/{productId}",
                status=401 if login else 200,
                user=f"user{i % 50_000}" if login else "",
            )
        )
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    tracked = sum(d.tracked() for d in detectors)
    figure(
        f"memory with {ENTITIES:,} distinct client IPs",
        grown / ENTITIES,
        "bytes/IP",
        f"{grown / 2**20:,.0f} MiB; {tracked:,} entities tracked; "
        f"{time.perf_counter() - started:,.0f} s",
    )


def main() -> None:
    settings = load_settings(None, data_dir="bench/out", ingest={"fingerprint_salt": "bench"})
    records, events = _events(settings)
    print(f"{len(events):,} simulated benign events (seed 11)")
    _detectors_cost(settings, events)
    _detect_throughput(settings, records)
    _memory_per_entity(settings)


if __name__ == "__main__":
    main()
