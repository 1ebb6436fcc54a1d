"""The online window model: warm-up, spikes and their drivers, a protected baseline,
the forecast's seasons."""

from __future__ import annotations

import math
import pickle
import random

import pytest
from pydantic import ValidationError

from detectors.anomaly.baseline import SeasonalForecast
from detectors.anomaly.model import ModelParams, Verdict, WindowModel

FEATURES = ("requests", "error_ratio")
ALGORITHMS = ("robust_z", "hst", "forecast")


def steady(n: int, seed: int = 1) -> list[list[float]]:
    """Benign windows: log1p(requests) near 5, error ratio near 0.02, a little noise."""
    rng = random.Random(seed)
    return [[5.0 + rng.gauss(0, 0.1), 0.02 + rng.gauss(0, 0.002)] for _ in range(n)]


def daily(n: int, period: int = 48, seed: int = 1) -> list[list[float]]:
    """A clean cycle: requests peak once a period (log1p 2 to 8), the error ratio steady."""
    rng = random.Random(seed)
    return [
        [5.0 + 3.0 * math.sin(2 * math.pi * i / period) + rng.gauss(0, 0.05), 0.02]
        for i in range(n)
    ]


def run(model: WindowModel, windows: list[list[float]]) -> list[Verdict]:
    return [model.judge(x) for x in windows]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_nothing_is_flagged_during_warm_up(algorithm: str) -> None:
    params = ModelParams(algorithm=algorithm, warmup_windows=50)  # type: ignore[arg-type]
    model = WindowModel(FEATURES, params)
    wild = [[float(10 * (i % 2)), 0.5 * (i % 3)] for i in range(49)]
    verdicts = run(model, wild)
    assert not any(v.anomalous or v.warm for v in verdicts)
    assert model.windows == 49


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_spike_after_a_steady_baseline_is_flagged_with_its_driver(algorithm: str) -> None:
    model = WindowModel(FEATURES, ModelParams(algorithm=algorithm))  # type: ignore[arg-type]
    assert not any(v.anomalous for v in run(model, steady(400)))
    verdict = model.judge([9.0, 0.02])  # ~50x the requests, the usual error ratio
    assert verdict.warm and verdict.anomalous
    assert verdict.score > 0.5
    assert [d.feature for d in verdict.drivers] == ["requests"]
    driver = verdict.drivers[0]
    assert driver.observed == 9.0
    assert driver.baseline == pytest.approx(5.0, abs=0.05)
    assert driver.deviation > 20


def test_flagged_windows_are_not_learnt() -> None:
    model = WindowModel(FEATURES, ModelParams())
    run(model, steady(400))
    attack = run(model, [[8.0, 0.3]] * 10)
    assert all(v.anomalous for v in attack)
    assert model._baseline.baseline(0) == pytest.approx(5.0, abs=0.05)  # still the usual
    assert {d.feature for d in attack[-1].drivers} == set(FEATURES)


def test_a_lasting_change_is_learnt_in_the_end() -> None:
    model = WindowModel(FEATURES, ModelParams(relearn_after=5))
    run(model, steady(400))
    after = run(model, [[7.0, 0.02]] * 300)
    assert after[0].anomalous and not after[-1].anomalous


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_pickled_model_judges_as_the_original(algorithm: str) -> None:
    model = WindowModel(FEATURES, ModelParams(algorithm=algorithm))  # type: ignore[arg-type]
    run(model, steady(300))
    copy = pickle.loads(pickle.dumps(model))
    rest = [*steady(100, seed=2), [9.0, 0.4]]
    assert run(copy, rest) == run(model, rest)
    assert copy.windows == model.windows


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_same_input_same_verdicts(algorithm: str) -> None:
    params = ModelParams(algorithm=algorithm)  # type: ignore[arg-type]
    windows = [*steady(300), [9.0, 0.4], *steady(20, seed=3)]
    first = run(WindowModel(FEATURES, params), windows)
    assert first == run(WindowModel(FEATURES, params), windows)


def test_a_forecast_expects_the_peaks_of_a_cycle_and_flags_a_spike_off_it() -> None:
    model = WindowModel(FEATURES, ModelParams(algorithm="forecast"))
    windows = daily(48 * 30)
    trough = len(windows) - 48 + 36  # sin is -1 three quarters into the period
    windows[trough] = [8.0, 0.02]  # a peak's height, at the trough: 400x the usual
    verdicts = run(model, windows)
    flagged = [i for i, v in enumerate(verdicts) if v.anomalous]
    assert flagged == [trough]
    (driver,) = verdicts[trough].drivers
    assert driver.feature == "requests"
    assert driver.baseline == pytest.approx(2.0, abs=0.3)  # the forecast: a trough
    peaks = [i for i in range(48 * 10, len(windows)) if i % 48 == 12]
    assert all(verdicts[i].score < 0.5 and not verdicts[i].drivers for i in peaks)


def test_the_level_alone_misses_a_spike_to_peak_height() -> None:
    """The contrast: against the average level a peak's height at the trough is usual."""
    model = WindowModel(FEATURES, ModelParams(algorithm="robust_z"))
    windows = daily(48 * 30)
    trough = len(windows) - 48 + 36
    windows[trough] = [8.0, 0.02]
    verdicts = run(model, windows)
    assert not any(v.anomalous for v in verdicts)


def test_a_flagged_window_moves_the_seasonal_clock_on() -> None:
    model = WindowModel(FEATURES, ModelParams(algorithm="forecast"))
    windows = daily(48 * 30)
    for i in range(48 * 20, 48 * 20 + 5):
        windows[i] = [12.0, 0.5]  # an attack, not learnt
    verdicts = run(model, windows)
    assert all(v.anomalous for v in verdicts[48 * 20 : 48 * 20 + 5])
    assert not any(v.anomalous for v in verdicts[48 * 20 + 5 :])


def test_a_wrong_number_of_features_is_refused() -> None:
    model = WindowModel(FEATURES, ModelParams())
    with pytest.raises(ValueError, match="expected 2 features, got 1"):
        model.judge([1.0])


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"threshold_quantile": 1.5}, "threshold_quantile"),
        ({"algorithm": "lof"}, "algorithm"),
        ({"warmup_windows": 0}, "warmup_windows"),
        ({"half_lfe": 10}, "half_lfe"),
        ({"season_windows": [1]}, "season_windows"),
    ],
)
def test_bad_params_name_the_key(config: dict[str, object], key: str) -> None:
    with pytest.raises(ValidationError, match=key):
        ModelParams.model_validate(config)


def test_params_are_frozen_and_documented() -> None:
    params = ModelParams()
    with pytest.raises(ValidationError):
        params.warmup_windows = 3
    assert all(f.description for f in ModelParams.model_fields.values())


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_warm_up_surprises_do_not_cap_later_events(algorithm: str) -> None:
    """The second window meets a baseline of one value and no scale: an absurd z. Were
    it remembered, a later real spike would merely tie that record."""
    params = ModelParams(algorithm=algorithm)  # type: ignore[arg-type]
    model = WindowModel(FEATURES, params)
    windows = [[5.0, 0.02], [9.0, 0.02], *steady(600, seed=4)]
    verdicts = run(model, windows)
    assert not any(v.anomalous for v in verdicts)
    spike = model.judge([9.0, 0.02])
    assert spike.anomalous and spike.score > 0.6


def test_a_forecast_follows_a_season_per_feature_only_where_there_is_one() -> None:
    """The choice of season is made per feature (and again every few windows): the
    cyclic feature follows its cycle, the steady one its level."""
    model = WindowModel(FEATURES, ModelParams(algorithm="forecast"))
    rng = random.Random(5)
    windows = [[d[0], 0.02 + rng.gauss(0, 0.002)] for d in daily(48 * 20)]
    run(model, windows)
    forecasts = []
    for x in daily(48, seed=6):
        verdict = model.judge(x)
        assert not verdict.drivers
        forecasts.append((model._baseline.baseline(0), model._baseline.baseline(1)))
    cyclic, steady_ = zip(*forecasts, strict=True)
    assert max(cyclic) - min(cyclic) > 4.0  # the cycle's 2 to 8
    assert max(steady_) - min(steady_) < 0.002  # the level: no season read into noise


def idle(n: int, seed: int = 1) -> list[list[float]]:
    """A series idle most of the time (raw bytes written, not logged): 0 in four windows
    of five, else a burst near 150; the error ratio steady."""
    rng = random.Random(seed)
    return [[max(0.0, rng.gauss(150, 40)) if rng.random() < 0.2 else 0.0, 0.02] for _ in range(n)]


def test_a_mostly_idle_series_measures_a_burst_against_the_other_bursts() -> None:
    """The forecast's error scale ignores the idle windows: the usual bursts are no
    drivers, a burst far above them is."""
    model = WindowModel(FEATURES, ModelParams(algorithm="forecast"))
    verdicts = run(model, idle(2000))
    assert not any(v.anomalous for v in verdicts)
    assert not any(v.drivers for v in verdicts[100:])
    flood = model.judge([5000.0, 0.02])
    assert flood.anomalous
    assert [d.feature for d in flood.drivers] == ["requests"]
    series = model.series
    assert series is not None
    assert series.scale[0] > 100  # the bursts' errors, not the idle windows'


# --- many series in one SeasonalForecast ------------------------------------------------

SEASONAL = ModelParams(season_windows=(6, 12, 40), warmup_windows=10)


def rounds(n: int, series: int, seed: int = 3) -> list[list[tuple[int, list[float]]]]:
    """Per round, the series with a window (about 70% of them), each with its own
    level and a cycle, spikes now and then, and error ratios that drop to 0."""
    rng = random.Random(seed)
    out = []
    for t in range(n):
        now = []
        for i in range(series):
            if rng.random() < 0.7:
                x = [max(0.0, rng.gauss(3 + 0.3 * i + (0.5 if (t // 3) % 4 == 0 else 0), 0.2))]
                x.append(0.0 if rng.random() < 0.05 else abs(rng.gauss(0.02, 0.005)))
                if rng.random() < 0.01:
                    x[0] += 4
                now.append((i, x))
        out.append(now)
    return out


def test_models_sharing_a_forecast_judged_together_as_each_alone() -> None:
    """``judge_many`` over models sharing one ``SeasonalForecast`` gives exactly the
    verdicts of models each with its own, judged one by one (spikes flagged included)."""
    shared = SeasonalForecast(2, half_life=SEASONAL.half_life, periods=(6, 12, 40), bins=48)
    together = [WindowModel(FEATURES, SEASONAL, forecasts=shared) for _ in range(5)]
    alone = [WindowModel(FEATURES, SEASONAL) for _ in range(5)]
    flagged = 0
    for now in rounds(1500, 5):
        verdicts = WindowModel.judge_many([together[i] for i, _ in now], [x for _, x in now])
        assert verdicts == [alone[i].judge(x) for i, x in now]
        flagged += sum(v.anomalous for v in verdicts)
    assert flagged >= 5
    assert shared.in_use == 5


def test_a_freed_slot_starts_a_new_series_afresh() -> None:
    shared = SeasonalForecast(2, half_life=60, periods=(6,), bins=6)
    models = [WindowModel(FEATURES, SEASONAL, forecasts=shared) for _ in range(3)]
    for x in steady(50):
        WindowModel.judge_many(models, [x, x, x])
    slots = [m.series.slot for m in models if m.series is not None]
    assert shared.release([slots[0], slots[2]]) == 1
    assert shared.in_use == 2
    reused = WindowModel(FEATURES, SEASONAL, forecasts=shared)
    assert reused.series is not None and reused.series.slot == slots[1]
    fresh = WindowModel(FEATURES, SEASONAL)
    windows = [*steady(40, seed=2), [9.0, 0.02]]
    assert [reused.judge(x) for x in windows] == run(fresh, windows)
    assert shared.allocated == 3  # no new slot for it


def test_a_series_carried_into_another_forecast_judges_as_before() -> None:
    """A route taken over from another consumer's checkpoint keeps what it learnt."""
    theirs = SeasonalForecast(2, half_life=60, periods=(6, 12), bins=48)
    original = WindowModel(FEATURES, SEASONAL, forecasts=theirs)
    run(original, daily(100, period=12))
    copy = pickle.loads(pickle.dumps(original))
    ours = SeasonalForecast(2, half_life=60, periods=(6, 12), bins=48)
    ours.series()  # a route of our own
    copy.move_to(ours)
    assert copy.series is not None and copy.series.forecast is ours and copy.series.slot == 1
    later = [*daily(30, period=12, seed=4), [9.0, 0.3]]
    assert run(copy, later) == run(original, later)


def test_one_model_twice_in_one_call_is_refused() -> None:
    model = WindowModel(FEATURES, SEASONAL)
    with pytest.raises(ValueError, match="twice"):
        WindowModel.judge_many([model, model], [[1.0, 0.0], [2.0, 0.0]])
