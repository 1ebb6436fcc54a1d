"""The cheap per-feature baselines every anomaly verdict is explained against.

Two kinds, one interface (``seen``, ``deviations``, ``learn``, ``skip``, ``baseline``):

- ``RobustBaseline``: a level (exponentially weighted) and the spread around it;
- ``SeasonalForecast``: a one-step forecast, the level plus a seasonal offset, and the
  spread of its errors: a window is compared with what was expected *at this point of
  the cycle*, not with the average.

Why hand-written and not ``river.stats``: one of these lives per route (or per
entity) and is updated once per closed window for every feature; plain float arrays
are ~5x faster and ~12x smaller than River's stat objects (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# E|X - mu| = sigma * sqrt(2/pi) for a normal X: this turns the mean absolute
# deviation into a standard-deviation-like scale, so a deviation reads as a z-score.
MAD_TO_SIGMA = math.sqrt(math.pi / 2.0)
_CLIP = 4.0  # a learnt value moves the level by at most this many scales (Huber-like)
_SETTLE = 8  # ... once the scale itself has been seen this many times


class RobustBaseline:
    """Per feature: an exponentially weighted level and mean absolute deviation.

    Robust in two ways: a value far from the level is clipped to ``level ± 4 scales``
    before it is learnt (one outlier that slipped through moves it little), and the
    scale has a floor (1% of the level, at least ``1e-9``) so a flat series does not
    turn every wobble into an infinite z. Until ``half_life`` windows are seen the
    weights are those of a plain running mean, so the first windows are not dominated
    by the very first one.

    >>> b = RobustBaseline(1, half_life=20)
    >>> for v in [10.0, 11.0, 9.0, 10.0, 10.5, 9.5] * 5:
    ...     b.learn([v])
    >>> round(b.baseline(0), 2), [round(z, 1) for z in b.deviations([20.0])]
    (10.0, [15.0])
    """

    __slots__ = ("_alpha", "level", "seen", "spread")

    def __init__(self, n_features: int, *, half_life: float) -> None:
        if n_features < 1 or half_life <= 0:
            raise ValueError("RobustBaseline needs n_features >= 1 and half_life > 0")
        self._alpha = 1.0 - 0.5 ** (1.0 / half_life)
        self.level = array("d", bytes(8 * n_features))
        self.spread = array("d", bytes(8 * n_features))
        self.seen = 0

    def deviations(self, values: Sequence[float]) -> list[float]:
        """Signed robust z of each value against its feature's baseline (0.0 before
        anything is learnt)."""
        if not self.seen:
            return [0.0] * len(self.level)
        return [
            (v - m) / max(d * MAD_TO_SIGMA, 0.01 * abs(m), 1e-9)
            for v, m, d in zip(values, self.level, self.spread, strict=True)
        ]

    def learn(self, values: Sequence[float]) -> None:
        """Fold one window's values into the baseline."""
        self.seen += 1
        if self.seen == 1:
            for i, v in enumerate(values):
                self.level[i] = v
            return
        alpha = max(self._alpha, 1.0 / self.seen)
        level, spread = self.level, self.spread
        clip = self.seen > _SETTLE
        # The scale (the spread as a sigma, floored) is written out here as in
        # ``deviations``: these loops run for every feature of every judged window, and
        # a method call per feature doubled their cost.
        for i, v in enumerate(values):
            m, a = level[i], spread[i]
            d = v - m
            if clip:
                bound = _CLIP * max(a * MAD_TO_SIGMA, 0.01 * abs(m), 1e-9)
                d = min(max(d, -bound), bound)
            spread[i] = a + alpha * (abs(d) - a)
            level[i] = m + alpha * d

    def skip(self) -> None:
        """A window was judged and not learnt (flagged): a level has no clock, nothing to do."""

    def baseline(self, i: int) -> float:
        """The learnt typical value of feature ``i``."""
        return self.level[i]


_CHOICE_MARGIN = 0.6  # a season is used once its recent error is below 60% of the level's
_SEASON_RATE = 0.05  # each bin of a profile learns at this rate (visited once a cycle)
_ERROR_HALF_LIFE = 200.0  # windows: the recent error that picks the season
_CHOOSE_EVERY = 16  # windows between two choices of season (the errors move slowly)

Floats = npt.NDArray[np.float64]
Indices = npt.NDArray[np.intp]


class SeasonalForecast:
    """Per feature: a one-step forecast of the next window, and the scale of its errors.

    The forecast is an exponentially weighted level plus a seasonal offset. Timestamps
    are never seen: the season is found by trying a few candidate periods (in windows;
    ``(24, 48, 288)`` is a day of hourly, half-hourly or 5-minute windows). For each,
    a profile of at most ``bins`` bins (a bin spans ``period / bins`` consecutive
    windows) holds the usual offset from the level at that point of the cycle, kept at
    mean zero so that the level stays the level. Per feature, the candidate with the
    lowest recent absolute error is used, a season only when it cuts the error of the
    level alone by 40% (noise must not pass for a cycle), and only after one whole
    period. The choice is made again every 16 windows (and when a period has first been
    seen whole): the errors it compares have a half-life of 200 windows, so choosing
    every window cost ~10 us more per judge and changed no NAB score. The error scale is
    the larger of the feature's overall one and the one of that bin: a cycle's peaks
    are often noisier than its troughs.

    The overall error scale learns only the windows whose value is not 0. A series idle
    most of the time (NAB's ``ec2_disk_write_bytes_c0d644``: 80% zeros) is forecast
    closely while idle; those small errors pulled the scale down, so an ordinary burst
    read as a large z. A burst is now measured against the errors of the other bursts;
    a series that is never 0 is unchanged. NAB (standard, swept): 51.5 to 52.3 (low FP
    41.8 to 42.8, low FN 57.4 to 58.2; the production flag 30.9 to 35.6, its false
    positives 420 to 373; simulated API traffic: the same findings, none false), ~3 us
    more per judge of 14 features. The price is on log1p counts idle most of the time:
    the bursts' errors are then their own size (a log1p of 5 against a forecast near
    1), so a flood must be far above them to drive a flag (bursts of ~150 requests, one
    of 1.2M: a z of 6.8 before, 2.5 now). Tried and dropped: a floor on the scale of 5%
    of the feature's typical nonzero magnitude (53.8 swept, but a steady log1p count of
    5 then needed a 2.7x jump for a z of 5, and scraping windows went unflagged in the
    detector's tests); the same floor at 2-3.5% (50.8-51.6).

    A window skipped (flagged, not learnt) still moves the seasonal clock. Robust as
    ``RobustBaseline``: a learnt error is clipped to 4 scales, the scale has a floor.
    State: numpy arrays, one operation covering every feature and period (a Python
    loop over 14 features and 3 periods cost 1.5-2x as much; for a single feature the
    loop is faster). The profiles of all periods are rows of one matrix, so one tick's
    bins are one ``take`` (the 3-d fancy indexing it replaced, with the choice made
    every window, cost 70 us per judge of 14 features against 48 now). Memory per
    feature: ``2 * len(periods) * max(bins)`` floats for the profiles (288 with the
    defaults) and ``2 * len(periods) + 3`` more.

    >>> f = SeasonalForecast(1, half_life=60, periods=(4,), bins=4)
    >>> for _ in range(100):
    ...     for v in (10.0, 20.0, 10.0, 0.0):
    ...         f.learn([v])
    >>> round(f.baseline(0), 1), [round(z) for z in f.deviations([10.0])]  # a 10 is due
    (10.0, [0])
    >>> f.learn([10.0])
    >>> round(f.baseline(0), 1), [round(z) for z in f.deviations([10.0])]  # a 20 is
    (20.0, [-36])
    """

    __slots__ = (
        "_alpha",
        "_bins",
        "_cached",
        "_choice",
        "_error",
        "_error_alpha",
        "_first_rows",
        "_mean",
        "_periods",
        "_profile",
        "_share",
        "_spread",
        "level",
        "scale",
        "seen",
        "ticks",
    )

    def __init__(
        self, n_features: int, *, half_life: float, periods: Sequence[int] = (), bins: int = 48
    ) -> None:
        if n_features < 1 or half_life <= 0 or bins < 2 or any(p < 2 for p in periods):
            raise ValueError(
                "SeasonalForecast needs n_features >= 1, half_life > 0, bins >= 2, periods >= 2"
            )
        n, k = n_features, len(periods)
        self._alpha = 1.0 - 0.5 ** (1.0 / half_life)
        self._error_alpha = 1.0 - 0.5 ** (1.0 / _ERROR_HALF_LIFE)
        self._periods = tuple(periods)
        self._bins = tuple(min(p, bins) for p in self._periods)
        width = max(self._bins, default=1)
        self._first_rows = tuple(j * width for j in range(k))  # period j's bin 0
        self._share: Floats = 1.0 / np.asarray(self._bins or (1,), dtype=float)[:, None]
        self._profile: Floats = np.zeros((k * width, n))  # per period and bin, per feature
        self._spread: Floats = np.zeros((k * width, n))  # its mean absolute error
        self._mean: Floats = np.zeros((k, n))  # each profile's mean over its bins
        # The recent absolute error of the level alone (row 0), then of each season.
        self._error: Floats = np.zeros((k + 1, n))
        self.level: Floats = np.zeros(n)
        self.scale: Floats = np.zeros(n)  # mean absolute error, all windows
        self.seen = 0  # windows learnt
        self.ticks = 0  # windows passed, learnt or skipped: the seasonal clock
        self._choice: _Choice | None = None
        self._cached: _Plan | None = None

    def _choose(self, t: int) -> _Choice | None:
        """Per feature, the season to follow (if any), made again every
        ``_CHOOSE_EVERY`` ticks and whenever one more period has been seen whole."""
        ready = sum(t >= p for p in self._periods)
        choice = self._choice
        if choice is not None and choice.ready == ready and t - choice.ticks < _CHOOSE_EVERY:
            return choice
        if not ready:
            self._choice = None
            return None
        candidates = [k for k, p in enumerate(self._periods) if t >= p]
        errors = self._error[1:][candidates] / _CHOICE_MARGIN
        best = errors.argmin(axis=0)
        n = len(self.level)
        columns = np.arange(n)
        follow = (errors[best, columns] < self._error[0]).astype(float)
        # A flat index into a (period, feature) matrix: the followed entry per feature.
        pick: Indices = np.asarray(candidates)[best] * n + columns
        choice = self._choice = _Choice(t, ready, follow, pick)
        return choice

    def _plan(self) -> _Plan:
        """This tick's bins and, per feature, its forecast and error scale (made once a
        window: ``deviations``, ``baseline`` and ``learn`` of the same window share it)."""
        plan = self._cached
        t = self.ticks
        if plan is not None and plan.ticks == t:
            return plan
        rows: Indices = np.asarray(
            [
                first + (t % p) * b // p
                for first, p, b in zip(self._first_rows, self._periods, self._bins, strict=True)
            ],
            dtype=np.intp,
        )
        profile = self._profile.take(rows, axis=0)
        spread = self._spread.take(rows, axis=0)
        offsets: Floats = profile - self._mean
        forecasts, scale = self.level, self.scale
        choice = self._choose(t)
        if choice is not None:
            forecasts = forecasts + offsets.take(choice.pick) * choice.follow
            # Not following: a bin spread of 0, so the overall scale.
            scale = np.maximum(scale, spread.take(choice.pick) * choice.follow)
        scales = np.maximum(scale * MAD_TO_SIGMA, np.abs(forecasts) * 0.01)
        np.maximum(scales, 1e-9, out=scales)
        plan = self._cached = _Plan(t, rows, profile, spread, offsets, forecasts, scales)
        return plan

    def deviations(self, values: Sequence[float]) -> list[float]:
        """Signed robust z of each value's forecast error (0.0 before anything is learnt)."""
        if not self.seen:
            return [0.0] * len(self.level)
        plan = self._plan()
        z: list[float] = ((np.asarray(values, dtype=float) - plan.forecasts) / plan.scales).tolist()
        return z

    def learn(self, values: Sequence[float]) -> None:
        """Fold one window's values into the level, the seasonal profiles and the errors."""
        plan = self._plan()
        x: Floats = np.asarray(values, dtype=float)
        self.seen += 1
        self.ticks += 1
        if self.seen == 1:
            self.level[:] = x
            return
        alpha = max(self._alpha, 1.0 / self.seen)
        error_alpha = max(self._error_alpha, 1.0 / self.seen)
        d = x - plan.forecasts
        if self.seen > _SETTLE:
            bound = _CLIP * plan.scales
            d = np.minimum(np.maximum(d, -bound), bound)
        # The scale learns only the windows whose value is not 0: on a series idle most
        # of the time, the exact forecasts of its idle windows would shrink it until
        # every burst were a record.
        self.scale += np.where(x != 0.0, alpha * (np.abs(d) - self.scale), 0.0)
        residual = plan.forecasts + d - self.level  # the value as learnt, less the level
        self._error[0] += error_alpha * (np.abs(residual) - self._error[0])
        self.level += alpha * d  # the value less the season it followed
        if not self._periods:
            return
        miss = np.abs(residual - plan.offsets)  # each season's error, per feature
        self._error[1:] += error_alpha * (miss - self._error[1:])
        before, spread, t = plan.profile, plan.spread, plan.ticks
        target = residual - alpha * d  # the value as learnt, less the new level
        after = before + _SEASON_RATE * (target - before)
        spread = spread + _SEASON_RATE * (miss - spread)
        if t < max(self._periods):
            # A bin's first window in the first cycle has nothing to average yet.
            first = [
                t < p and (t == 0 or ((t - 1) % p) * b // p != (t % p) * b // p)
                for p, b in zip(self._periods, self._bins, strict=True)
            ]
            if any(first):
                keep = np.asarray(first)[:, None]
                after = np.where(keep, target, after)
                spread = np.where(keep, plan.spread, spread)
        self._profile[plan.rows] = after
        self._spread[plan.rows] = spread
        self._mean += (after - before) * self._share

    def skip(self) -> None:
        """A window was judged and not learnt (flagged): the seasonal clock moves on."""
        self.ticks += 1

    def baseline(self, i: int) -> float:
        """Feature ``i``'s forecast for the window being judged."""
        return float(self._plan().forecasts[i])


@dataclass(frozen=True, slots=True)
class _Choice:
    """Which season each feature of a ``SeasonalForecast`` follows: see ``_choose``."""

    ticks: int  # when it was made
    ready: int  # how many periods had been seen whole then
    follow: Floats  # per feature, 1.0 to follow its season, 0.0 for the level alone
    pick: Indices  # per feature, a flat index into a (period, feature) matrix


@dataclass(frozen=True, slots=True)
class _Plan:
    """One tick of a ``SeasonalForecast``: see ``SeasonalForecast._plan``."""

    ticks: int
    rows: Indices  # per period, the row of this tick's bin in the profiles
    profile: Floats  # per period and feature, that bin's profile ...
    spread: Floats  # ... and the mean absolute error there
    offsets: Floats  # per period and feature, the seasonal offset at this tick
    forecasts: Floats  # per feature
    scales: Floats  # per feature, the error scale as a standard deviation, floored
