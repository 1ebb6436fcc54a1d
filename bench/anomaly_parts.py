"""Where the ``anomaly_model`` detector's time goes: each part of closing windows, in
microseconds per event (``python -m bench.anomaly --cost-only --parts``).

Each part's functions are wrapped with a timer for one run; what the windows do not
account for is the per-request work (``observe``: an append). The wrappers cost a
little themselves, so the parts add up to slightly more than the plain cost figure.

``print_floor`` measures the least that reading the features' fields costs while
requests reach the detector as Python objects: a reference to each field they read,
copied out of every request into one array per field, nothing converted or counted.
"""

from __future__ import annotations

import collections
import gc
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

import detectors.anomaly.detector as detector_module
import detectors.anomaly.features as features_module
from bench.common import feed, figure, timed
from detectors.anomaly.activity import Activity, Rarity
from detectors.anomaly.detector import AnomalyModel, AnomalyModelParams
from detectors.anomaly.features import Columns
from detectors.anomaly.keyspace import KeySpace
from detectors.engine import DetectionEngine
from gatewatch.event import Event

# part -> the (owner, attribute) whose calls it is; static: called on the class.
PARTS: dict[str, tuple[Any, str, bool]] = {
    "requests to columns (Columns.of)": (Columns, "of", True),
    "1-minute windows joined (Columns.concat)": (Columns, "concat", True),
    "window aggregation, every scope (busy_windows)": (detector_module, "busy_windows", True),
    "route models (judge)": (AnomalyModel, "_judge_routes", False),
    "principals and addresses judged": (AnomalyModel, "_judge_client", False),
    "principals and addresses named (KeySpace.ids)": (KeySpace, "ids", False),
    "client volume baselines (Activity.learn)": (Activity, "learn", False),
    "volume rarity (Rarity.add)": (Rarity, "add", False),
    "checkpoint positions": (AnomalyModel, "_note_positions", False),
}
_WINDOWS = (AnomalyModel, "_roll", False)


def print_parts(events: list[Event], cost: float) -> None:
    """One run of ``events`` through the engine with the detector, its parts timed;
    ``cost``: the detector's measured microseconds per event (``bench.anomaly``)."""
    spent: collections.defaultdict[str, float] = collections.defaultdict(float)
    with _timed_parts({**PARTS, "windows": _WINDOWS}, spent):
        detector = AnomalyModel(AnomalyModelParams())
        feed(DetectionEngine([detector], _ignore, evidence_limit=None), events)
    per_event = 1e6 / len(events)
    for part in PARTS:
        figure(f"  {part}", spent[part] * per_event, "us/event")
    requests = cost - spent["windows"] * per_event
    figure("  per request, outside windows (observe)", max(requests, 0.0), "us/event")


def print_floor(events: list[Event], runs: int) -> None:
    """The floor (see the module's docstring), over the detector's shortest windows:
    the fastest of ``runs`` passes."""
    size = AnomalyModelParams().windows[0].size_s
    windows: list[list[Event]] = []
    end = -math.inf
    for event in events:
        if event.ts >= end:
            windows.append([])
            end = (math.floor(event.ts / size) + 1) * size
        windows[-1].append(event)
    fields = fields_read(windows[0])
    getters = [features_module._FIELD[name] for name in fields]
    fastest = math.inf
    for _ in range(runs):
        gc.collect()
        with timed() as timing:
            for window in windows:
                for getter in getters:
                    np.fromiter(map(getter, window), dtype=object, count=len(window))
        fastest = min(fastest, timing.cpu)
    figure(
        f"  floor: {len(fields)} fields of each request copied as references",
        fastest / len(events) * 1e6,
        "us/event",
    )


def fields_read(events: list[Event]) -> list[str]:
    """The Event fields ``Columns.of`` reads, in the order it reads them (recorded on a
    call over ``events``, so the floor follows the features as they change)."""
    read: list[str] = []

    class Recording(dict[str, Any]):
        def __getitem__(self, name: str) -> Any:
            read.append(name)
            return super().__getitem__(name)

    original = features_module._FIELD
    features_module._FIELD = Recording(original)
    try:
        Columns.of(events, lambda _: False)
    finally:
        features_module._FIELD = original
    return list(dict.fromkeys(read))


def _ignore(_: object) -> None:
    """Findings are not wanted here."""


@contextmanager
def _timed_parts(
    parts: dict[str, tuple[Any, str, bool]], spent: collections.defaultdict[str, float]
) -> Iterator[None]:
    originals = []
    for part, (owner, name, static) in parts.items():
        original = getattr(owner, name)
        wrapped = _timer(original, part, spent)
        originals.append((owner, name, owner.__dict__[name]))
        setattr(
            owner, name, staticmethod(wrapped) if static and isinstance(owner, type) else wrapped
        )
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def _timer(
    function: Callable[..., Any], part: str, spent: collections.defaultdict[str, float]
) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[part] += time.perf_counter() - start

    return timed
