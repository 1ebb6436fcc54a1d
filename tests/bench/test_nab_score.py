"""NAB scoring rules on tiny series whose scores are worked out by hand."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from bench.nab_score import (
    Profile,
    label_rows,
    normalise,
    probation_rows,
    scaled_sigmoid,
    score_detections,
    sweep_threshold,
)

STANDARD = Profile("standard", tp=1.0, fp=0.11, fn=1.0)
LOW_FN = Profile("reward_low_FN_rate", tp=1.0, fp=0.11, fn=2.0)
T0 = datetime(2020, 1, 1)


def minutes(n: int) -> list[datetime]:
    return [T0 + timedelta(minutes=i) for i in range(n)]


def sig(y: float) -> float:
    return 2 / (1 + math.exp(5 * y)) - 1


# 40 rows (probation: the first 6), windows over rows 10-14 and 30-33.
T = minutes(40)
ROWS = label_rows(T, [(T[10], T[14]), (T[30], T[33])])


def flags(*rows: int) -> list[bool]:
    return [i in rows for i in range(40)]


def test_sigmoid_and_probation() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1e9) == -1.0
    assert probation_rows(40) == 6
    assert probation_rows(100_000) == 750


def test_rows_are_placed_against_windows() -> None:
    assert ROWS.n_windows == 2
    assert ROWS.window[9:16] == (-1, 0, 0, 0, 0, 0, -1)
    assert ROWS.weight[:6] == (None,) * 6  # probation
    assert ROWS.weight[6] == -1.0  # before any window
    assert ROWS.weight[10] == pytest.approx(sig(-5 / 5))  # first row of a window
    assert ROWS.weight[14] == pytest.approx(sig(-1 / 5))  # its last row
    assert ROWS.weight[16] == pytest.approx(sig(2 / 4))  # two rows past a 5-row window


def test_only_the_first_detection_in_a_window_counts() -> None:
    # rows 12 and 13 in window 0; window 1 missed.
    outcome = score_detections(ROWS, flags(12, 13), STANDARD)
    assert outcome.raw == pytest.approx(sig(-3 / 5) - 1.0)
    assert (outcome.tp, outcome.fp, outcome.fn) == (1, 0, 1)


def test_false_positives_weigh_by_distance_from_the_last_window() -> None:
    # 7: before any window (-0.11); 15: just after window 0; 25: far after it.
    outcome = score_detections(ROWS, flags(7, 15, 25, 30), STANDARD)
    expected = -0.11 + 0.11 * sig(1 / 4) + 0.11 * sig(11 / 4) + sig(-1.0) - 1.0
    assert outcome.raw == pytest.approx(expected)
    assert (outcome.tp, outcome.fp, outcome.fn) == (1, 3, 1)


def test_detections_in_probation_are_ignored() -> None:
    rows = label_rows(T, [(T[2], T[8])])  # a window starting in probation
    outcome = score_detections(rows, flags(1, 3), STANDARD)
    assert outcome.raw == -1.0 and outcome.fn == 1  # never detected where it is scored
    late = score_detections(rows, flags(1, 7), STANDARD)
    assert late.raw == pytest.approx(sig(-2 / 7))


def test_profiles_weigh_misses() -> None:
    assert score_detections(ROWS, flags(), LOW_FN).raw == -4.0


def test_normalisation_against_null_and_perfect() -> None:
    assert normalise(-2.0, 2, STANDARD) == 0.0
    assert normalise(2.0, 2, STANDARD) == 100.0
    assert normalise(0.0, 2, STANDARD) == 50.0
    assert normalise(-4.0, 2, LOW_FN) == 0.0
    assert normalise(2.0, 2, LOW_FN) == 100.0


def test_the_sweep_finds_the_best_corpus_threshold() -> None:
    scores = [0.0] * 40
    scores[7] = 0.9  # an early false positive
    scores[11] = 0.8  # window 0, second row
    scores[31] = 0.7  # window 1, second row
    scores[20] = 0.6  # a false positive between windows
    other = label_rows(minutes(40), [(T[20], T[25])])
    other_scores = [0.0] * 40
    other_scores[22] = 0.75
    corpus = [(ROWS, scores), (other, other_scores)]
    best = sweep_threshold(corpus, STANDARD)
    # at 0.7: FP at 7, window 0 at row 11, window 1 at 31, other window at 22
    expected = -0.11 + sig(-4 / 5) + sig(-3 / 4) + sig(-4 / 6)
    assert best.threshold == 0.7
    assert best.raw == pytest.approx(expected)
    by_hand = sum(
        score_detections(rows, [s >= 0.7 for s in ss], STANDARD).raw for rows, ss in corpus
    )
    assert best.raw == pytest.approx(by_hand)
    assert best.normalised == pytest.approx(normalise(expected, 3, STANDARD))


def test_the_sweep_keeps_silence_when_every_detection_costs() -> None:
    scores = [0.0] * 40
    scores[8] = 0.9  # a false positive ranked first, then everything at once
    strict = Profile("strict", tp=1.0, fp=1.0, fn=1.0)
    best = sweep_threshold([(ROWS, scores)], strict)
    assert best.threshold == math.inf
    assert (best.raw, best.normalised) == (-2.0, 0.0)
