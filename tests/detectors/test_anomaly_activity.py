import math

import numpy as np
import numpy.typing as npt

from detectors.anomaly.activity import Activity, Rarity


def volumes(requests: float, rows: int = 1) -> npt.NDArray[np.float64]:
    return np.log1p(np.array([[requests, 1_000.0, 20_000.0]] * rows, dtype=np.float64))


def ids(*values: int) -> npt.NDArray[np.int64]:
    return np.asarray(values, dtype=np.int64)


def test_a_quiet_client_bursting_is_far_above_its_own_level() -> None:
    activity = Activity(half_life=100)
    quiet, busy = 1, 2
    for _ in range(20):
        activity.learn(ids(quiet, busy), np.vstack([volumes(2), volumes(150)]))
    seen, level, z = activity.deviations(quiet, volumes(200)[0].tolist())
    assert seen == 20 and math.expm1(level[0]) == 2.0
    assert z[0] > 10  # 200 requests where it sends 2
    _, _, z_busy = activity.deviations(busy, volumes(200)[0].tolist())
    assert z_busy[0] < 4  # 200 where it sends 150: its usual
    assert activity.history(quiet) == 20 and activity.history(7) == 0 and len(activity) == 2


def test_a_forgotten_client_starts_a_new_history() -> None:
    activity = Activity(half_life=10)
    activity.learn(ids(3), volumes(500))
    activity.forget(ids(3, 99))  # 99: an id it never learnt
    assert activity.history(3) == 0
    activity.learn(ids(3), volumes(5))
    assert activity.history(3) == 1 and math.expm1(activity.level[3][0]) == 5.0


def test_adopting_another_consumers_clients_keeps_its_own() -> None:
    mine, theirs = Activity(half_life=10), Activity(half_life=10)
    mine.learn(ids(1), volumes(5))  # "a" is 1 here ...
    theirs.learn(ids(4, 2), volumes(50, rows=2))  # ... and 4 there; "b" is 2 there
    mine.adopt(theirs, ids(1, 2), ids(4, 2))  # ("a", "b") in both numberings
    assert math.expm1(mine.level[1][0]) == 5.0
    assert math.expm1(mine.level[2][0]) == 50.0 and mine.history(2) == 1


def test_rarity_says_how_few_windows_move_as_much() -> None:
    rarity = Rarity(half_life=1e9)
    rarity.add(np.vstack([volumes(3, rows=9_990), volumes(300, rows=10)]))
    assert rarity.tail(0, math.log1p(300)) <= 1e-3
    assert rarity.tail(0, math.log1p(3)) == 1.0
    assert Rarity(half_life=10).tail(0, 5.0) == 1.0  # nothing seen: nothing is rare
