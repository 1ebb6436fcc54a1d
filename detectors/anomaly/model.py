"""One online anomaly model of one series of feature windows, with explanations.

A ``WindowModel`` judges closed windows of one series (one route's 1-minute windows,
say; counts passed as ``log1p``), one vector at a time, in order:

1. **surprise**: how unlikely the window is, ``s = -log10 p``, read from two kinds of
   robust z per feature against the per-feature reference (``baseline.py``): the
   level (``robust_z``, ``hst``: ``RobustBaseline``) or, for ``forecast``, the
   one-step forecast (``SeasonalForecast``: the level plus the seasonal offset of the
   best of a few candidate periods, ``season_windows``, found without timestamps):

   - the *level*: this window's z, strong on spikes and abrupt shifts;
   - the *sustained* (temporal context): an exponentially weighted mean of the recent
     windows' z (``short_half_life``, a few windows), rescaled to unit variance for
     independent windows. A shift of 2 z held for some windows is no spike, but its
     short mean stands out; this is the short-vs-long comparison (a short EWMA against
     the long baseline) at the cost of one multiply-add per feature. Off by default:
     on NAB (standard, swept) it moved the score by under one point, less than
     neighbouring settings of ``half_life`` do, and a flag needs a level driver anyway.

   Three algorithms, chosen by ``ModelParams.algorithm``:

   - ``robust_z``: the largest of those z, as a two-sided normal tail (Bonferroni over
     all of them). Cheap and strong on level shifts and spikes.
   - ``forecast``: the same, with the z of each feature's forecast error against the
     scale of its errors: a cycle's daily peak is expected, a departure from the cycle
     (a missing peak, a flat afternoon) is not. On NAB (standard, swept) 52.3 against
     46.1 for ``robust_z``, most of it on periodic series (51.5 before its error scale
     ignored the idle windows of a mostly-zero series: ``baseline.py``); it costs about
     2-5x per judge (~90-160 us for 14 features, judged alone; models sharing one
     ``SeasonalForecast``, judged together by ``judge_many``, ~20-50 us each at 11-30
     of them; measured on a 2-core VM, whose figures vary by 1.5x). Tried
     on top of it and dropped (NAB standard, swept): an AR(1) of the residual fitted
     online (forecast plus ``phi`` times the last residual, least squares by
     exponentially weighted moments): 51.5 to 46.0, it tracks a drift so well that a
     slow anomaly never stands out; the level's z beside the forecast's (Bonferroni
     over both): +0.1 for twice the cost; re-basing the
     level when a change is relearnt (a step as one event): -0.1 (48.0 to 47.9, before
     the warm-up fix below).
   - ``hst``: River's HalfSpaceTrees behind a MinMaxScaler (HST assumes features in
     [0, 1]; the scaler learns each feature's range online). Its raw score (how little
     mass the window's leaves held in the reference window) is read as a one-sided
     tail against the raw scores of the windows it learnt.

2. **score**, 0..1: how unusual that surprise is *for this series*. Tails are rarely
   normal: a bursty route yields z of 8 every day, a flat one never. So the surprise
   is ranked among the surprises of the last ``rarity_windows`` windows (the idea of
   Numenta's "anomaly likelihood", with an empirical tail instead of a normal one: a
   heavy-tailed series gets no free pass and a quiet one no hair trigger): the rarity
   ``r`` is ``log10`` of "one in how many", in decades. Past the most surprising
   window of that history, ``r`` grows on with the excess over it, measured in the
   series' usual spread of surprise (exponentially weighted, ``rarity_half_life``), so
   a flood still outranks a mere record. A window no rarer than one of the last
   ``repeat_windows`` counts ``repeat_weight`` of itself: the second minute of a flood
   says little the first did not. ``r`` is reported as ``r / (r + 3)``: the rarest
   window in a thousand scores 0.5. The surprises of the warm-up are scored but do
   not join the history: a baseline of one or two windows has no scale yet, and its
   absurd surprises (``-log10 p`` of 50 to 36,000 on NAB's second rows) were each
   series' record for good, capping every later event at a mere tie of it (NAB
   standard, swept: forecast 48.0 to 51.5, robust_z 42.4 to 46.1). Tried and dropped:
   an exponential tail fitted to the top tenth of the history (peaks over a
   threshold) to extrapolate past the record or above the 90th percentile (48.0 to
   42.5-44.6, before the warm-up fix: surprises are heavier-tailed than exponential,
   so growing runs all scored as new extremes); scoring a window that follows a rare one (within 3
   windows) by its excess rarity only (51.5 to 46.4: onsets that build over two windows were
   lost). Not adopted: one decade of rarity per spread past the record (``_BEYOND`` 1.0
   instead of 0.2) gave forecast 52.3 to 53.5 (0.5: 52.9), but before the idle-window
   scale its neighbours scattered (0.85: 52.3, 1.0: 52.6, 1.2: 51.6): a tuned constant.

3. **threshold** it: a window is anomalous when the model is warm, at least one
   feature deviates from its baseline by ``min_deviation`` robust z (the explanation,
   and a floor that keeps a quiet series from flagging its own noise), and either its
   score reaches the learnt ``threshold_quantile`` of the scores seen so far (River's
   P² ``stats.Quantile``, the estimator ``anomaly.QuantileFilter`` holds: the filter
   itself is not used because its ``learn_one`` scores the sample a second time,
   doubling the HST cost, and protects only by its own threshold, while here
   protection also covers the warm-up, the driver floor and re-learning) or the
   previous window was anomalous (an episode goes on while its drivers hold, even
   though repeats score low). False findings must stay rare (about 2 per 100k benign
   events): hence a high quantile and a high z floor by default.

4. **explain** it: the drivers are the features whose robust z reaches
   ``min_deviation``, largest first, with observed and baseline values. Both scorers
   are explained by the same baseline, so an analyst reads "requests 812 vs usual 40";
   for ``forecast`` the baseline is the forecast ("requests 812 vs expected 300 at this
   point of the day").

5. **learn** it only when it was not flagged: an attack must not become the baseline
   (a forecast's seasonal clock still moves on). A change flagged ``relearn_after``
   windows in a row is accepted as the new normal (a deploy, a new client) and learnt
   again, so a model cannot stay stuck on a step.

The temporal context lives in the model, never in timestamps: the sustained z, the
seasonal phase and the rarity ranks see windows in the order judged (a period is a
number of windows, so ``season_windows`` must suit the window length: 1440 for a day
of 1-minute windows). Nothing is flagged during the warm-up
(``warmup_windows`` learnt windows, and for HST a full reference window of the trees).
Deterministic: HST is seeded, the rest is arithmetic. The whole model pickles
(checkpoints).
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal, Protocol, cast

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from river import stats

from detectors.anomaly.baseline import ForecastSeries, RobustBaseline, SeasonalForecast

_HALF_SCORE = 3.0  # rarity (decades: one in 1000 windows) at which the score is 0.5
_MIN_SPREAD = 0.1  # of the surprise (-log10 p): a flat series still needs a real jump
_BEYOND = 0.2  # decades of rarity per spread of surprise past the history's record
_SQRT2 = math.sqrt(2.0)
_LN10 = math.log(10.0)
_HALF_LN_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass(frozen=True, slots=True)
class Driver:
    """One feature that drove a score: what it was, what it usually is, how far apart."""

    feature: str
    observed: float
    baseline: float  # the expected value: the learnt level, or the forecast
    deviation: float  # robust z, signed


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judgement of one window."""

    score: float  # 0..1, higher = more anomalous
    anomalous: bool  # warm, at or above the learnt threshold, and explained
    warm: bool
    drivers: tuple[Driver, ...]  # largest |deviation| first; only those >= min_deviation


def surprise(z: float, *, two_sided: bool) -> float:
    """``-log10`` of the normal tail probability beyond ``z`` (accurate far out).

    >>> round(surprise(1.96, two_sided=True), 3), round(surprise(5.0, two_sided=False), 2)
    (1.301, 6.54)
    >>> surprise(-3.0, two_sided=False) < 0.01, round(surprise(50.0, two_sided=False))
    (True, 545)
    """
    if two_sided:
        z = abs(z)
    if z < 8.0:
        p = 0.5 * math.erfc(z / _SQRT2)
        return -math.log10(2.0 * p if two_sided else p)
    # Mills ratio: ln Q(z) ~ -z^2/2 - ln z - ln sqrt(2 pi); erfc underflows near z=38.
    log_p = -0.5 * z * z - math.log(z) - _HALF_LN_2PI
    if two_sided:
        log_p += math.log(2.0)
    return -log_p / _LN10


def to_score(r: float) -> float:
    """A rarity (decades: ``log10`` of one in how many windows) as 0..1.

    >>> to_score(-3.0), to_score(3.0), round(to_score(27.0), 2)
    (0.0, 0.5, 0.9)
    """
    r = max(0.0, r)
    return r / (r + _HALF_SCORE)


Probability = Annotated[float, Field(gt=0.5, lt=1.0)]


class ModelParams(BaseModel):
    """How a ``WindowModel`` scores, thresholds and learns (validated at config load)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: Literal["forecast", "hst", "robust_z"] = Field(
        default="forecast",
        description="forecast: largest per-feature robust z of the one-step forecast error "
        "(level plus a seasonal profile); hst: River HalfSpaceTrees on min-max scaled "
        "features; robust_z: largest per-feature robust z (EWMA level and absolute deviation)",
    )
    warmup_windows: Annotated[int, Field(ge=1)] = Field(
        default=30, description="windows learnt before anything can be flagged"
    )
    threshold_quantile: Probability = Field(
        default=0.999,
        description="a window is flagged only at or above this quantile of the scores seen",
    )
    min_deviation: Annotated[float, Field(gt=0)] = Field(
        default=5.0,
        description="robust z a feature needs to be a driver; a flag needs one driver",
    )
    half_life: Annotated[float, Field(gt=0)] = Field(
        default=60.0, description="windows after which the baseline weighs a window half"
    )
    short_half_life: Annotated[float, Field(ge=0)] = Field(
        default=0.0,
        description="windows after which the sustained z (each feature's recent mean "
        "robust z, scored beside the level) weighs a window half; 0: level only",
    )
    rarity_windows: Annotated[int, Field(ge=10, le=100_000)] = Field(
        default=1000,
        description="a surprise is ranked among those of this many recent windows",
    )
    rarity_half_life: Annotated[float, Field(gt=0)] = Field(
        default=100.0,
        description="windows after which the series' spread of surprise (the unit of "
        "rarity past the history's most surprising window) weighs a window half",
    )
    repeat_windows: Annotated[int, Field(ge=0, le=10_000)] = Field(
        default=100,
        description="a window no rarer than one of this many before it is a repeat; 0: off",
    )
    repeat_weight: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.3, description="the share of its rarity a repeat keeps in the score"
    )
    relearn_after: Annotated[int, Field(ge=1)] = Field(
        default=30,
        description="a change flagged this many windows in a row is learnt as the new normal",
    )
    n_trees: Annotated[int, Field(ge=1, le=100)] = Field(
        default=10, description="HST: number of half-space trees"
    )
    height: Annotated[int, Field(ge=1, le=16)] = Field(
        default=6, description="HST: depth of each tree"
    )
    hst_window_size: Annotated[int, Field(ge=10)] = Field(
        default=100, description="HST: windows per reference mass window (also a warm-up)"
    )
    seed: int = Field(default=42, description="HST: random seed (same input, same verdicts)")
    season_windows: tuple[Annotated[int, Field(ge=2, le=100_000)], ...] = Field(
        default=(24, 48, 288),
        max_length=8,
        description="forecast: candidate periods, in windows (a day of 60-, 30- and "
        "5-minute windows); each feature follows the one that predicts it best, if any",
    )
    season_bins: Annotated[int, Field(ge=2, le=1000)] = Field(
        default=48,
        description="forecast: at most this many bins per seasonal profile (memory: two "
        "floats per bin, period and feature)",
    )


class _Reference(Protocol):
    """What a window is compared with, per feature: ``RobustBaseline`` or
    ``SeasonalForecast``."""

    @property
    def seen(self) -> int: ...

    def deviations(self, values: Sequence[float]) -> list[float]: ...

    def learn(self, values: Sequence[float]) -> None: ...

    def skip(self) -> None: ...

    def baseline(self, i: int) -> float: ...


class _Scorer(Protocol):
    """Turns a window (and its robust z: per feature the level's, then the sustained
    ones if any) into a surprise, ``-log10 p``."""

    @property
    def ready(self) -> bool: ...

    def surprise(self, x: Sequence[float], z: Sequence[float]) -> float: ...

    def learn(self, x: Sequence[float]) -> None: ...


class _RobustZ:
    """The largest robust z, two-sided, Bonferroni over all of them."""

    __slots__ = ("_log_n",)

    ready = True

    def __init__(self, n_tests: int) -> None:
        self._log_n = math.log10(n_tests)

    def surprise(self, x: Sequence[float], z: Sequence[float]) -> float:
        return surprise(max(map(abs, z)), two_sided=True) - self._log_n

    def learn(self, x: Sequence[float]) -> None:
        """Nothing of its own: the shared baseline is learnt by the model."""


class _HalfSpace:
    """River HalfSpaceTrees on min-max scaled features; its raw score is read as a
    one-sided tail against the raw scores of the windows it learnt.

    HST sees combinations (each feature usual, the mix not) but is blind beyond the
    range it has seen: every value past the maximum falls in the same outer leaf, so
    a 50x spike can score like the busiest usual window. The robust z covers that:
    the surprise is the larger of the two.
    """

    __slots__ = ("_learnt", "_names", "_pipeline", "_raw", "_raw_scores", "_robust", "_window_size")

    def __init__(self, features: Sequence[str], params: ModelParams, n_tests: int) -> None:
        # Imported here: ``river.anomaly`` loads scipy.stats (0.6 s), which every
        # command would pay at start-up for an option that is not the default.
        from river import anomaly, compose, preprocessing  # noqa: PLC0415

        self._names = tuple(features)
        self._pipeline = compose.Pipeline(
            preprocessing.MinMaxScaler(),
            anomaly.HalfSpaceTrees(
                n_trees=params.n_trees,
                height=params.height,
                window_size=params.hst_window_size,
                seed=params.seed,
            ),
        )
        self._window_size = params.hst_window_size
        self._raw_scores = RobustBaseline(1, half_life=params.half_life)
        self._robust = _RobustZ(n_tests)
        self._raw = 0.0  # the raw score of the window being judged, learnt after
        self._learnt = 0

    @property
    def ready(self) -> bool:
        # HST scores 0 until its first reference window is full; then its raw scores
        # need a few samples before they make a baseline.
        return self._raw_scores.seen >= 10

    def surprise(self, x: Sequence[float], z: Sequence[float]) -> float:
        self._raw = float(self._pipeline.score_one(dict(zip(self._names, x, strict=True))))
        robust = self._robust.surprise(x, z)
        if not self._raw_scores.seen:
            return robust
        trees = surprise(self._raw_scores.deviations((self._raw,))[0], two_sided=False)
        return max(trees, robust)

    def learn(self, x: Sequence[float]) -> None:
        if self._learnt >= self._window_size:  # before, HST scores a constant 0
            self._raw_scores.learn((self._raw,))
        self._learnt += 1
        self._pipeline.learn_one(dict(zip(self._names, x, strict=True)))


class _Rarity:
    """How rare a surprise is for this series, in decades: ``log10`` of one in how many
    recent windows were at least as surprising, repeats discounted.

    >>> r = _Rarity(ModelParams(rarity_windows=100, repeat_windows=0))
    >>> history = [r.rarity(s) for s in [1.0, 2.0, 1.5] * 33]
    >>> [round(r.rarity(s), 2) for s in (1.5, 2.0, 10.0)]  # usual; ties the record; far past it
    [0.17, 0.47, 5.93]
    """

    __slots__ = (
        "_alpha",
        "_history",
        "_mean",
        "_n",
        "_recent",
        "_repeat_weight",
        "_sorted",
        "_var",
    )

    def __init__(self, params: ModelParams) -> None:
        self._alpha = 1.0 - 0.5 ** (1.0 / params.rarity_half_life)
        self._repeat_weight = params.repeat_weight
        self._recent: deque[float] = deque(maxlen=params.repeat_windows or 1)
        if not params.repeat_windows:
            self._repeat_weight = 1.0
        self._history: deque[float] = deque(maxlen=params.rarity_windows)
        self._sorted: list[float] = []  # the history's surprises, ascending
        self._mean = self._var = 0.0
        self._n = 0

    def rarity(self, s: float, *, remember: bool = True) -> float:
        """The rarity of surprise ``s``; then, if ``remember``, ``s`` joins the history
        (every warm window's does, flagged or not: this is the distribution of the
        detector's own output, as a quantile filter's)."""
        ranked = self._sorted
        n = len(ranked)
        as_surprising = n - bisect_left(ranked, s)
        r = math.log10((n + 1) / (as_surprising + 1))
        if n and not as_surprising:
            r += _BEYOND * (s - ranked[-1]) / max(math.sqrt(self._var), _MIN_SPREAD)
        if not remember:
            return r
        history = self._history
        if len(history) == history.maxlen:
            del ranked[bisect_left(ranked, history[0])]
        history.append(s)
        insort(ranked, s)
        self._n += 1
        alpha = max(self._alpha, 1.0 / self._n)
        d = s - self._mean
        self._mean += alpha * d
        self._var = (1.0 - alpha) * (self._var + alpha * d * d)
        recent = self._recent
        repeat = bool(recent) and r <= max(recent)
        recent.append(r)
        return r * self._repeat_weight if repeat and r > 0 else r


class WindowModel:
    """One baseline of one series of feature vectors: ``judge`` each closed window."""

    __slots__ = (
        "_baseline",
        "_rarity",
        "_scorer",
        "_streak",
        "_sustained",
        "_sustained_alpha",
        "_sustained_unit",
        "_threshold",
        "features",
        "params",
        "windows",
    )

    def __init__(
        self,
        features: Sequence[str],
        params: ModelParams,
        *,
        forecasts: SeasonalForecast | None = None,
    ) -> None:
        """``forecasts``: for ``forecast``, the ``SeasonalForecast`` to take this
        model's series from (``forecast_for(params, n)``), so that models sharing one
        are judged together by ``judge_many``; else one of its own."""
        if not features:
            raise ValueError("a WindowModel needs at least one feature")
        self.features = tuple(features)
        self.params = params
        n = len(self.features)
        self._baseline: _Reference
        if params.algorithm == "forecast":
            if forecasts is None:
                forecasts = forecast_for(params, n)
            elif forecasts.n_features != n:
                raise ValueError(f"forecasts of {forecasts.n_features} features, not {n}")
            self._baseline = forecasts.series()
        else:
            self._baseline = RobustBaseline(n, half_life=params.half_life)
        # The sustained z: an EWMA of each feature's z. For independent unit z its
        # variance is alpha / (2 - alpha); dividing by its root makes it a z again.
        self._sustained = [0.0] * n if params.short_half_life else []
        self._sustained_alpha = (
            1.0 - 0.5 ** (1.0 / params.short_half_life) if params.short_half_life else 0.0
        )
        a = self._sustained_alpha
        self._sustained_unit = math.sqrt((2.0 - a) / a) if a else 0.0
        n_tests = n + len(self._sustained)
        self._scorer: _Scorer = (
            _HalfSpace(self.features, params, n_tests)
            if params.algorithm == "hst"
            else _RobustZ(n_tests)
        )
        self._rarity = _Rarity(params)
        self._threshold = stats.Quantile(params.threshold_quantile)
        self._streak = 0  # consecutive flagged windows
        self.windows = 0  # judged so far

    def __repr__(self) -> str:
        return f"WindowModel({list(self.features)!r}, {self.params!r})"

    def judge(self, x: Sequence[float]) -> Verdict:
        """Score ``x`` (one value per feature, in ``features`` order), then learn it
        unless it was flagged."""
        self._check(x)
        baseline = self._baseline
        verdict, learn = self._verdict(x, baseline.deviations(x))
        if learn:
            baseline.learn(x)
            self._scorer.learn(x)
        else:
            baseline.skip()
        return verdict

    @staticmethod
    def judge_many(models: Sequence[WindowModel], xs: Sequence[Sequence[float]]) -> list[Verdict]:
        """``judge`` each model's window (one each, in order): the same verdicts, but
        the forecasts of models sharing a ``SeasonalForecast`` are made and learnt
        together, one numpy operation for all of them instead of one each."""
        if len(models) != len(xs):
            raise ValueError(f"{len(models)} models for {len(xs)} windows")
        verdicts: list[Verdict | None] = [None] * len(models)
        shared: dict[int, list[int]] = {}
        for i, model in enumerate(models):
            series = model._baseline
            if isinstance(series, ForecastSeries):
                shared.setdefault(id(series.forecast), []).append(i)
            else:
                verdicts[i] = model.judge(xs[i])
        for group in shared.values():
            if len(group) == 1:  # alone, the plain path is cheaper
                verdicts[group[0]] = models[group[0]].judge(xs[group[0]])
                continue
            series_of = [cast("ForecastSeries", models[i]._baseline) for i in group]
            forecast = series_of[0].forecast
            slots = np.fromiter((s.slot for s in series_of), dtype=np.intp, count=len(group))
            if len(set(slots.tolist())) != len(group):
                raise ValueError("one model judged twice in one call")
            for i in group:
                models[i]._check(xs[i])
            values = np.asarray([xs[i] for i in group], dtype=float)
            plan = forecast.plan(slots)
            z = forecast.deviations(plan, values).tolist()
            learn = np.zeros(len(group), dtype=bool)
            for row, (i, series) in enumerate(zip(group, series_of, strict=True)):
                series.use(plan, row)
                verdicts[i], learn[row] = models[i]._verdict(xs[i], z[row])
            forecast.update(plan, values, learn)
            for series in series_of:
                series.use(None)
            for row in np.flatnonzero(learn).tolist():
                models[group[row]]._scorer.learn(xs[group[row]])
        return cast("list[Verdict]", verdicts)

    @property
    def series(self) -> ForecastSeries | None:
        """Its series of a shared ``SeasonalForecast`` (``forecast`` only)."""
        baseline = self._baseline
        return baseline if isinstance(baseline, ForecastSeries) else None

    def move_to(self, forecasts: SeasonalForecast) -> None:
        """Carry its forecast state over into ``forecasts`` (a route taken over from
        another consumer's checkpoint joins this one's routes)."""
        series = self.series
        if series is not None and series.forecast is not forecasts:
            self._baseline = forecasts.adopt(series.forecast, series.slot)

    def _check(self, x: Sequence[float]) -> None:
        if len(x) != len(self.features):
            raise ValueError(f"expected {len(self.features)} features, got {len(x)}")

    def _verdict(self, x: Sequence[float], z: list[float]) -> tuple[Verdict, bool]:
        """The verdict on ``x`` from its robust z, and whether it is to be learnt."""
        p = self.params
        baseline = self._baseline
        tests = z + self._sustain(z) if self._sustained else z
        warm = baseline.seen >= p.warmup_windows and self._scorer.ready
        score = to_score(self._rarity.rarity(self._scorer.surprise(x, tests), remember=warm))
        drivers = self._drivers(x, z)
        anomalous = False
        if warm:
            threshold = self._threshold.get()
            above = threshold is not None and score >= threshold
            anomalous = bool(drivers) and (above or self._streak > 0)
            self._threshold.update(score)
        self.windows += 1
        self._streak = self._streak + 1 if anomalous else 0
        learn = not anomalous or self._streak >= p.relearn_after
        return Verdict(score, anomalous, warm, drivers), learn

    def _sustain(self, z: Sequence[float]) -> list[float]:
        """Fold this window's z into the sustained z; return them as unit z."""
        a, unit, mean = self._sustained_alpha, self._sustained_unit, self._sustained
        for i, v in enumerate(z):
            mean[i] += a * (v - mean[i])
        return [m * unit for m in mean]

    def _drivers(self, x: Sequence[float], z: Sequence[float]) -> tuple[Driver, ...]:
        least = self.params.min_deviation
        found = [
            Driver(self.features[i], float(x[i]), self._baseline.baseline(i), d)
            for i, d in enumerate(z)
            if abs(d) >= least
        ]
        found.sort(key=lambda d: -abs(d.deviation))
        return tuple(found)


def forecast_for(params: ModelParams, n_features: int) -> SeasonalForecast:
    """A ``SeasonalForecast`` for the series of models of ``params`` (``forecast``)."""
    return SeasonalForecast(
        n_features,
        half_life=params.half_life,
        periods=params.season_windows,
        bins=params.season_bins,
    )
