"""Parse + normalise throughput per format, lines per CPU-second (target >= 150k for JSON).

Lines come from the simulator's renderers, so each format carries the same realistic
traffic. Measured on one thread with the garbage collector left on, as in production.
"""

from __future__ import annotations

import os
import time

from bench.common import figure, timed
from gatewatch.settings import load_settings
from gatewatch.wiring import build_pipeline
from ingest.simulator.render import INGEST_FORMAT, RENDERERS
from ingest.simulator.traffic import SimulationConfig, generate
from ingest.sources.base import Record

LINES = int(os.environ.get("BENCH_LINES", "100000"))


def main() -> None:
    settings = load_settings(None, data_dir="bench/out", ingest={"fingerprint_salt": "bench"})
    requests = list(
        generate(
            SimulationConfig(seed=7, start_ts=time.time() - 3600, count=LINES, duration_s=None)
        )
    )
    for renderer, parser_format in INGEST_FORMAT.items():
        render = RENDERERS[renderer]
        records = [
            Record("bench", i, line, len(line)) for i, line in enumerate(map(render, requests))
        ]
        for fmt in (parser_format, "auto"):
            pipeline = build_pipeline(settings, fmt, for_storage=False)
            process = pipeline.process
            with timed() as t:
                for record in records:
                    process(record)
            stats = pipeline.stats
            note = f"{stats.events} events, {stats.dead_letters} dead letters"
            figure(
                f"parse+normalise {renderer:10} as {fmt:9}",
                len(records) / t.cpu,
                "lines/cpu-s",
                note,
            )


if __name__ == "__main__":
    main()
