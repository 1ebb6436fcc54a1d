"""NAB v1 scoring (Numenta Anomaly Benchmark), re-implemented from its documentation.

Sources: Lavin & Ahmad, "Evaluating Real-time Anomaly Detection Algorithms - the
Numenta Anomaly Benchmark" (ICMLA 2015), the NAB README and wiki. The rules:

- Each labelled anomaly sits in a *window* of rows ``[start, end]`` (timestamps,
  inclusive). Only the first detection in a window counts: it is a true positive
  worth ``tpWeight * sigma(y)``, where ``y`` is its relative position, -1 at the
  window's first row and ``-1/width`` at its last (``y = -(right - i + 1) / width``),
  so an early detection earns nearly a whole point and a late one almost nothing.
- ``sigma(y) = 2 / (1 + e^(5y)) - 1`` (the scaled sigmoid: 0.987 at -1, 0 at 0, -> -1).
- A detection outside every window is a false positive worth ``fpWeight * sigma(y)``
  with ``y`` its distance past the end of the preceding window in window widths
  (``(i - right) / (width - 1)``): a detection just after a window (a late but real
  reaction) costs little, one far from any window the full ``-fpWeight``; before the
  first window of a file it costs ``-fpWeight``.
- A window without any detection costs ``-fnWeight``.
- The first 15% of each file (at most 750 rows) is a probationary period: detections
  there are not scored at all (the detector is still learning).
- Three cost profiles (``config/profiles.json``): standard, reward_low_FP_rate,
  reward_low_FN_rate.
- The raw corpus score ``S`` is normalised against the null detector (never detects:
  ``-fnWeight`` per window) and the perfect one (credited ``tpWeight`` per window):
  ``100 * (S - S_null) / (S_perfect - S_null)``. The published final scores are
  reproduced exactly with these two totals (``bench.nab`` checks it).
- The detector emits a score per row; for each profile one threshold for the whole
  corpus is chosen, the one maximising ``S`` (NAB's optimisation step). Here the sweep
  is exact: every distinct score is tried, in one pass over the rows sorted by score.

Pure functions over in-memory series; reading files is the runner's job (``bench.nab``).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

PROBATION_FRACTION = 0.15
PROBATION_CAP = 750  # 0.15 * 5000 rows


@dataclass(frozen=True, slots=True)
class Profile:
    """One NAB cost profile (the weights of its cost matrix)."""

    name: str
    tp: float
    fp: float
    fn: float


def profiles_from_config(config: Mapping[str, Mapping[str, Mapping[str, float]]]) -> list[Profile]:
    """Profiles from the parsed ``config/profiles.json``.

    >>> profiles_from_config({"standard": {"CostMatrix": {"tpWeight": 1.0,
    ...     "fpWeight": 0.11, "fnWeight": 1.0, "tnWeight": 1.0}}})
    [Profile(name='standard', tp=1.0, fp=0.11, fn=1.0)]
    """
    return [
        Profile(
            name,
            tp=float(body["CostMatrix"]["tpWeight"]),
            fp=float(body["CostMatrix"]["fpWeight"]),
            fn=float(body["CostMatrix"]["fnWeight"]),
        )
        for name, body in config.items()
    ]


def scaled_sigmoid(y: float) -> float:
    """NAB's weight of a detection at relative position ``y``.

    >>> round(scaled_sigmoid(-1.0), 4), scaled_sigmoid(0.0), round(scaled_sigmoid(1.0), 4)
    (0.9866, 0.0, -0.9866)
    """
    if y > 100.0:  # e^(5y) overflows long before; the limit is -1
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def probation_rows(n_rows: int) -> int:
    """Rows at the start of a file whose detections are not scored.

    >>> probation_rows(1000), probation_rows(4032), probation_rows(22695)
    (150, 604, 750)
    """
    return min(math.floor(PROBATION_FRACTION * n_rows), PROBATION_CAP)


@dataclass(frozen=True, slots=True)
class Labelled:
    """One file's rows as the scorer sees them.

    ``window[i]``: index of the window holding row ``i`` in this file, or -1;
    ``weight[i]``: the unweighted sigmoid of a detection at row ``i`` (positive in a
    window, negative outside), or ``None`` in the probationary period (not scored).
    """

    window: tuple[int, ...]
    weight: tuple[float | None, ...]
    n_windows: int


def label_rows(
    timestamps: Sequence[datetime], windows: Sequence[tuple[datetime, datetime]]
) -> Labelled:
    """Place each row against the file's anomaly windows (sorted, not overlapping).

    >>> t = [datetime(2020, 1, 1, 0, m) for m in range(20)]
    >>> rows = label_rows(t, [(t[10], t[13])])
    >>> rows.window[9:15], [None if w is None else round(w, 3) for w in rows.weight[9:15]]
    ((-1, 0, 0, 0, 0, -1), [-1.0, 0.987, 0.954, 0.848, 0.555, -0.682])
    """
    n = len(timestamps)
    window = [-1] * n
    weight: list[float | None] = [None] * n
    bounds: list[tuple[int, int]] = []
    for start, end in windows:
        left, right = bisect_left(timestamps, start), bisect_right(timestamps, end) - 1
        if right >= left:
            bounds.append((left, right))
    probation = probation_rows(n)
    previous: tuple[int, int] | None = None  # (right, width) of the last window passed
    k = 0
    for i in range(n):
        while k < len(bounds) and bounds[k][1] < i:
            previous = (bounds[k][1], bounds[k][1] - bounds[k][0] + 1)
            k += 1
        inside = k < len(bounds) and bounds[k][0] <= i
        if inside:
            window[i] = k
        if i < probation:
            continue
        if inside:
            left, right = bounds[k]
            weight[i] = scaled_sigmoid(-(right - i + 1) / (right - left + 1))
        elif previous is not None:
            right, width = previous
            weight[i] = scaled_sigmoid((i - right) / max(1, width - 1))
        else:
            weight[i] = -1.0
    return Labelled(tuple(window), tuple(weight), len(windows))


@dataclass(frozen=True, slots=True)
class Outcome:
    """A raw score with its window counts (TP/FN: windows; FP: scored detections)."""

    raw: float
    tp: int
    fp: int
    fn: int


def score_detections(rows: Labelled, detected: Sequence[bool], profile: Profile) -> Outcome:
    """The raw score of one file's detections under ``profile``.

    >>> t = [datetime(2020, 1, 1, 0, m) for m in range(20)]
    >>> rows = label_rows(t, [(t[10], t[13])])
    >>> p = Profile("standard", tp=1.0, fp=0.11, fn=1.0)
    >>> hit = [i in (10, 11) for i in range(20)]  # the second one in the window is free
    >>> round(score_detections(rows, hit, p).raw, 4)
    0.9866
    >>> score_detections(rows, [False] * 20, p)
    Outcome(raw=-1.0, tp=0, fp=0, fn=1)
    """
    best: dict[int, float] = {}
    fp_total = 0.0
    fp = 0
    for i, flag in enumerate(detected):
        u = rows.weight[i]
        if not flag or u is None:
            continue
        w = rows.window[i]
        if w >= 0:
            best[w] = max(best.get(w, -math.inf), u)
        else:
            fp_total += profile.fp * u
            fp += 1
    tp_total = sum(profile.tp * u for u in best.values())
    missed = rows.n_windows - len(best)
    return Outcome(tp_total + fp_total - profile.fn * missed, len(best), fp, missed)


def null_score(n_windows: int, profile: Profile) -> float:
    """The detector that never fires: every window missed."""
    return -profile.fn * n_windows


def perfect_score(n_windows: int, profile: Profile) -> float:
    """The detector that fires once at the start of every window, and nowhere else."""
    return profile.tp * n_windows


def normalise(raw: float, n_windows: int, profile: Profile) -> float:
    """100 for the perfect detector, 0 for the null one.

    >>> p = Profile("standard", tp=1.0, fp=0.11, fn=1.0)
    >>> normalise(-116.0, 116, p), normalise(116.0, 116, p), round(normalise(46.6345, 116, p), 2)
    (0.0, 100.0, 70.1)
    """
    null = null_score(n_windows, profile)
    return 100.0 * (raw - null) / (perfect_score(n_windows, profile) - null)


@dataclass(frozen=True, slots=True)
class Sweep:
    """The best corpus-wide threshold for one profile (detection: ``score >= threshold``)."""

    profile: Profile
    threshold: float
    raw: float
    normalised: float


def sweep_threshold(corpus: Sequence[tuple[Labelled, Sequence[float]]], profile: Profile) -> Sweep:
    """Try every distinct score as the one threshold for all files; keep the best.

    Rows are visited from the highest score down; lowering the threshold past a score
    adds its rows as detections: a window's credit is its best (earliest) detection,
    each false positive adds its (negative) weight.

    >>> t = [datetime(2020, 1, 1, 0, m) for m in range(20)]
    >>> rows = label_rows(t, [(t[10], t[13])])
    >>> scores = [0.0] * 20
    >>> scores[4], scores[11], scores[18] = 0.9, 0.8, 0.5
    >>> s = sweep_threshold([(rows, scores)], Profile("standard", 1.0, 0.11, 1.0))
    >>> s.threshold, round(s.raw, 4)
    (0.8, 0.844)
    """
    entries: list[tuple[float, int, float]] = []  # (score, global window or -1, weight)
    n_windows = 0
    for rows, scores in corpus:
        for i, u in enumerate(rows.weight):
            if u is not None:
                w = rows.window[i]
                entries.append((scores[i], n_windows + w if w >= 0 else -1, u))
        n_windows += rows.n_windows
    entries.sort(key=lambda e: e[0], reverse=True)
    raw = null_score(n_windows, profile)
    best_raw, best_threshold = raw, math.inf
    credit: dict[int, float] = {}
    for j, (score, w, u) in enumerate(entries):
        if w >= 0:
            before = credit.get(w)
            if before is None:
                raw += profile.fn + profile.tp * u
                credit[w] = u
            elif u > before:
                raw += profile.tp * (u - before)
                credit[w] = u
        else:
            raw += profile.fp * u
        last_of_tie = j + 1 == len(entries) or entries[j + 1][0] != score
        if last_of_tie and raw > best_raw:
            best_raw, best_threshold = raw, score
    return Sweep(profile, best_threshold, best_raw, normalise(best_raw, n_windows, profile))
