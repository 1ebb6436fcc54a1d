"""Where the ``anomaly_model`` detector's time goes: each part of closing windows, in
microseconds per event (``python -m bench.anomaly --cost-only --parts``).

Each part's functions are wrapped with a timer for one run; what the windows do not
account for is the per-request work (``observe``: an append). The wrappers cost a
little themselves, so the parts add up to slightly more than the plain cost figure.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import detectors.anomaly.detector as detector_module
from bench.common import feed, figure
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
