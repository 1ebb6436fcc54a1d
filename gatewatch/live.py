"""Simulated traffic, live: requests generated as the clock reaches their time and put
through the whole pipeline (parse, normalise, store, detect, alert) on a thread of
their own. ``make demo`` keeps the dashboard busy with it; the browser tests use it to
inject an attack while a page watches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

from gatewatch.pipeline import DetectingSink
from gatewatch.settings import Settings
from gatewatch.store.client import Store
from gatewatch.store.writer import BatchWriter
from gatewatch.wiring import build_alerting, build_engine, build_pipeline, findings_to
from ingest.simulator.attacks import build_episodes, parse_kinds
from ingest.simulator.render import RENDERERS
from ingest.simulator.traffic import SimulationConfig, generate
from ingest.sources.base import Record

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 0.25  # how stale the dashboard may be: events, findings and alerts


class LiveTraffic:
    """``duration_s`` of traffic starting now, with ``attacks`` (simulator kinds, comma
    separated, or "" for none) spread over it; ``background`` scales the benign
    actors (1.0: about 100 requests per second)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        attacks: str = "all",
        duration_s: float = 3600.0,
        background: float = 0.2,
        seed: int = 7,
    ) -> None:
        self.settings = settings
        self.store = store
        self.attacks = attacks
        self.duration_s = duration_s
        self.background = background
        self.seed = seed
        self.requests = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-traffic", daemon=True)

    def start(self) -> LiveTraffic:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _config(self) -> SimulationConfig:
        return SimulationConfig(
            seed=self.seed, start_ts=time.time(), duration_s=self.duration_s
        ).crowded(self.background)

    def _records(self, config: SimulationConfig) -> Iterator[Record]:
        episodes = build_episodes(config, parse_kinds(self.attacks)) if self.attacks else []
        render = RENDERERS["canonical"]
        for position, request in enumerate(generate(config, episodes)):
            wait = request.ts - time.time()
            if wait > 0 and self._stop.wait(wait):
                return
            if self._stop.is_set():
                return
            line = render(request)
            self.requests += 1
            yield Record("live-simulator", position, line, len(line))

    def _run(self) -> None:
        settings = self.settings
        writer = BatchWriter(
            self.store, max_rows=settings.storage.batch_max_rows, max_seconds=FLUSH_EVERY_S
        )
        alerting = build_alerting(settings, self.store, writer)
        on_alert = alerting.on_finding if alerting is not None else None
        engine = build_engine(settings, findings_to(writer.add_finding, on_alert))
        pipeline = build_pipeline(settings, "canonical")
        if alerting is not None:
            alerting.start()
        try:
            pipeline.run(self._records(self._config()), DetectingSink(writer, engine.process))
        except Exception:
            log.exception("live traffic stopped")
        finally:
            engine.finish()
            if alerting is not None:
                alerting.finish()
                alerting.stop()
            writer.flush()
